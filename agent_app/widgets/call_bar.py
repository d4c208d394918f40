"""The compact call bar: one always-on-top strip with what an agent needs during a call — the
caller, the talk time, the voice and screen state (in words and colour), Pause/Resume and Done —
for agents who keep the CRM full-screen. The main window and the tray toggle it; "Full window"
goes back. It renders the same `DesktopView` as the window and sends its clicks to the window's
own slots, so the secure pause follows one path whichever control was used."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from agent_app.i18n import view_text
from agent_app.view import DesktopView
from agent_app.widgets.call_panel import TONE_STYLE


class CallBar(QWidget):
    pause_clicked = Signal()
    done_clicked = Signal()
    expand_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        # A tool window of its own (parent only for lifetime), above the agent's other programs.
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.WindowStaysOnTopHint)
        self.setObjectName("callBar")
        self.setWindowTitle(self.tr("Tandem — call bar"))
        self.setAccessibleName(self.tr("Compact call bar"))
        self.caller_label = self._label("barCaller", self.tr("Caller"))
        self.elapsed_label = self._label("barElapsed", self.tr("Talk time"))
        self.voice_label = self._label("barVoice", self.tr("Voice"))
        self.screen_label = self._label("barScreen", self.tr("Screen"))
        self.pause_button = self._button("barPause", self.tr("Pause or resume the recording"))
        self.pause_button.clicked.connect(self.pause_clicked)
        self.done_button = self._button("barDone", self.tr("Done with after-call work"))
        self.done_button.setText(self.tr("&Done"))
        self.done_button.clicked.connect(self.done_clicked)
        self.expand_button = self._button("barExpand", self.tr("Back to the full window"))
        self.expand_button.setText(self.tr("&Full window"))
        self.expand_button.clicked.connect(self.expand_requested)
        # Alt+P pauses here too; Escape goes back to the full window (nothing is lost).
        QShortcut(QKeySequence("Alt+P"), self, self._press_pause)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.expand_requested.emit)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        for widget in (self.caller_label, self.elapsed_label, self.voice_label, self.screen_label):
            layout.addWidget(widget)
        layout.addStretch(1)
        for button in (self.pause_button, self.done_button, self.expand_button):
            layout.addWidget(button)
        self.setTabOrder(self.pause_button, self.done_button)
        self.setTabOrder(self.done_button, self.expand_button)
        self._elapsed_source: Callable[[], str] | None = None

    def _label(self, name: str, accessible: str) -> QLabel:
        label = QLabel("—", self)
        label.setObjectName(name)
        label.setAccessibleName(accessible)
        label.setTextFormat(Qt.TextFormat.PlainText)  # caller names come from the SIP peer
        return label

    def _button(self, name: str, description: str) -> QPushButton:
        button = QPushButton(self)
        button.setObjectName(name)
        button.setAccessibleDescription(description)
        button.setToolTip(description)
        return button

    def set_elapsed_source(self, source: Callable[[], str]) -> None:
        self._elapsed_source = source

    def show_view(self, view: DesktopView) -> None:
        self.caller_label.setText(view_text(view.caller_text))
        self.elapsed_label.setText(view.elapsed_text)
        # The bar must stay small: the words before " — " ("Screen: NOT recorded"); the whole
        # sentence is its tooltip and accessible description.
        for label, text in ((self.voice_label, view.voice_text), (self.screen_label, view.screen_text)):
            full = view_text(text)
            label.setText(full.split(" — ", 1)[0])
            label.setToolTip(full)
            label.setAccessibleDescription(full)
        for label, tone in ((self.voice_label, view.voice_tone), (self.screen_label, view.screen_tone)):
            label.setProperty("tone", tone.value)
            label.setStyleSheet(TONE_STYLE[tone])
        pause = view_text(view.pause_label)
        self.pause_button.setText(pause)
        self.pause_button.setAccessibleName(pause)
        self.pause_button.setEnabled(view.pause_enabled)
        self.done_button.setAccessibleName(self.tr("Done"))
        self.done_button.setEnabled(view.done_enabled)
        self.expand_button.setAccessibleName(self.tr("Full window"))
        if view.pause_warning:  # the unconfirmed leg is named in the bar as well
            self.screen_label.setToolTip(view_text(view.pause_warning))

    def tick(self) -> None:
        if self._elapsed_source is not None and self.isVisible():
            self.elapsed_label.setText(self._elapsed_source())

    def _press_pause(self) -> None:
        if self.pause_button.isEnabled():
            self.pause_button.click()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the bar brings the full window back: the agent is never left with neither."""
        event.ignore()
        self.expand_requested.emit()
