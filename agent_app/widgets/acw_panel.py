"""After-call work: how long it has lasted, the admin's limit as a countdown, the disposition
(required or optional, as the admin says) and free notes. Done itself is the window's button;
it sends what this panel holds (``disposition()``, ``notes()``)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPlainTextEdit, QWidget

from agent_app.i18n import view_text
from agent_app.recording_view import Tone
from agent_app.view import DesktopView
from agent_app.widgets.call_panel import TONE_STYLE

TICK_MS = 1000
MAX_NOTES = 4000  # the server's limit


class AcwPanel(QWidget):
    disposition_chosen = Signal(str)  # a code, "" for none

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("acwPanel")
        self.elapsed_label = QLabel("—", self)
        self.elapsed_label.setObjectName("acwElapsedLabel")
        self.countdown_label = QLabel("", self)
        self.countdown_label.setObjectName("acwCountdownLabel")
        self.countdown_label.setAccessibleName(self.tr("Time left in after-call work"))
        self.disposition_box = QComboBox(self)
        self.disposition_box.setObjectName("dispositionBox")
        self.disposition_box.setAccessibleName(self.tr("Disposition"))
        self.notes_edit = QPlainTextEdit(self)
        self.notes_edit.setObjectName("notesEdit")
        self.notes_edit.setAccessibleName(self.tr("Notes"))
        self.notes_edit.setPlaceholderText(self.tr("Notes on this call (saved with the recording)"))
        self.notes_edit.setTabChangesFocus(True)  # Tab moves on to Done, as in any form
        self.notes_edit.setFixedHeight(70)
        self.hint_label = QLabel("", self)
        self.hint_label.setObjectName("acwHintLabel")
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet(TONE_STYLE[Tone.PENDING])
        self.disposition_caption = QLabel(self.tr("D&isposition"), self)
        self.disposition_caption.setBuddy(self.disposition_box)
        notes_caption = QLabel(self.tr("&Notes"), self)
        notes_caption.setBuddy(self.notes_edit)
        layout = QFormLayout(self)
        layout.addRow(self.tr("After-call work"), self.elapsed_label)
        layout.addRow(self.tr("ACW limit"), self.countdown_label)
        layout.addRow(self.disposition_caption, self.disposition_box)
        layout.addRow(notes_caption, self.notes_edit)
        layout.addRow(self.hint_label)
        for label in (self.elapsed_label, self.countdown_label, self.hint_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        self._options: tuple[tuple[str, str], ...] | None = None
        self._updating = False
        self._interaction = ""
        self.disposition_box.activated.connect(self._on_activated)
        self.notes_edit.textChanged.connect(self._limit_notes)
        self._source: Callable[[], DesktopView] | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)

    def set_view_source(self, source: Callable[[], DesktopView]) -> None:
        """Where the ticking texts (elapsed, countdown) come from each second."""
        self._source = source

    def show_view(self, view: DesktopView, interaction_id: str = "") -> None:
        self.setVisible(view.acw_visible)
        if interaction_id != self._interaction:  # a new call's ACW starts with empty notes
            self._interaction = interaction_id
            self.notes_edit.clear()
        self._updating = True
        try:
            if view.disposition_options != self._options:
                self._options = view.disposition_options
                self.disposition_box.clear()
                self.disposition_box.addItem(self.tr("— choose —"), "")
                for code, label in view.disposition_options:
                    self.disposition_box.addItem(label, code)
            index = self.disposition_box.findData(view.disposition)
            self.disposition_box.setCurrentIndex(max(0, index))
        finally:
            self._updating = False
        self.disposition_caption.setText(
            view_text(view.disposition_label).replace(self.tr("Disposition"), self.tr("D&isposition"), 1)
        )
        self.hint_label.setText(view_text(view.acw_hint))
        self.hint_label.setVisible(bool(view.acw_hint))
        self._show_ticking(view)
        if view.acw_visible and not self.timer.isActive():
            self.timer.start()
        elif not view.acw_visible and self.timer.isActive():
            self.timer.stop()

    def _show_ticking(self, view: DesktopView) -> None:
        self.elapsed_label.setText(view.acw_elapsed_text)
        self.countdown_label.setText(view_text(view.acw_countdown_text) or self.tr("none"))
        self.countdown_label.setProperty("tone", view.acw_countdown_tone.value)
        self.countdown_label.setStyleSheet(TONE_STYLE[view.acw_countdown_tone])

    def tick(self) -> None:
        if self._source is not None:
            self._show_ticking(self._source())

    def disposition(self) -> str:
        return str(self.disposition_box.currentData() or "")

    def notes(self) -> str:
        return self.notes_edit.toPlainText().strip()

    def _on_activated(self, index: int) -> None:
        if not self._updating:
            self.disposition_chosen.emit(str(self.disposition_box.itemData(index) or ""))

    def _limit_notes(self) -> None:
        text = self.notes_edit.toPlainText()
        if len(text) > MAX_NOTES:  # cut here rather than be refused at Done
            self.notes_edit.setPlainText(text[:MAX_NOTES])
