"""The current call: caller (name and number), direction, DN, service line, queue and any other
data the SIP side attached, running talk time (ticking every second), voice and screen state,
each in words and colour, and the warning of a pause that could not be confirmed."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from agent_app.i18n import view_text
from agent_app.recording_view import Tone
from agent_app.view import DesktopView

TICK_MS = 1000
# Colour of each tone; the words say the same (colour is never the only signal).
TONE_STYLE = {
    Tone.OK: "color: #1b7f3b;",
    Tone.PAUSED: "color: #1f5fa8; font-weight: bold;",
    Tone.PENDING: "color: #a86400;",
    Tone.ALERT: "color: #b00020; font-weight: bold;",
    Tone.NEUTRAL: "",
}


class CallPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caller_label = self._label("callerLabel")
        self.number_label = self._label("callerNumberLabel")
        self.direction_label = self._label("directionLabel")
        self.dn_label = self._label("dnLabel")
        self.service_label = self._label("serviceLabel")
        self.queue_label = self._label("queueLabel")
        self.metadata_label = self._label("metadataLabel")
        self.metadata_label.setWordWrap(True)
        self.elapsed_label = self._label("elapsedLabel")
        self.voice_label = self._label("voiceStateLabel")
        self.screen_label = self._label("screenStateLabel")
        for label in (self.caller_label, self.voice_label, self.screen_label):
            label.setWordWrap(True)  # long states ("NOT recorded — …") wrap instead of widening the window
        self.warning_label = self._label("pauseWarningLabel")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(TONE_STYLE[Tone.ALERT])
        self.warning_label.setAccessibleName(self.tr("Pause warning"))
        # A grid, not a QFormLayout: the form layout gives a wrapped value the height of one line
        # when the window is wide (the text was cut off); the grid honours heightForWidth.
        layout = QGridLayout(self)
        layout.setColumnStretch(1, 1)
        self._metadata_caption = QLabel(self.tr("Call data"), self)
        rows: tuple[tuple[str | QLabel, QLabel], ...] = (
            (self.tr("Caller"), self.caller_label),
            (self.tr("Number"), self.number_label),
            (self.tr("Direction"), self.direction_label),
            (self.tr("Line"), self.dn_label),
            (self.tr("Service"), self.service_label),
            (self.tr("Queue"), self.queue_label),
            (self._metadata_caption, self.metadata_label),
            (self.tr("Talk time"), self.elapsed_label),
            (self.tr("Voice"), self.voice_label),
            (self.tr("Screen"), self.screen_label),
        )
        for row, (caption, value) in enumerate(rows):
            label = caption if isinstance(caption, QLabel) else QLabel(caption, self)
            value.setAccessibleName(label.text())  # a screen reader says what the value is
            layout.addWidget(label, row, 0, Qt.AlignmentFlag.AlignTop)
            layout.addWidget(value, row, 1)
        layout.addWidget(self.warning_label, len(rows), 0, 1, 2)
        self.warning_label.setVisible(False)
        self._metadata_caption.setVisible(False)
        self.metadata_label.setVisible(False)
        self._elapsed_source: Callable[[], str] | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)

    def _label(self, name: str) -> QLabel:
        label = QLabel("—", self)
        label.setObjectName(name)
        label.setTextFormat(Qt.TextFormat.PlainText)  # caller names come from the SIP peer
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def set_elapsed_source(self, source: Callable[[], str]) -> None:
        """Where the running time comes from on each tick (the model, on the server's clock)."""
        self._elapsed_source = source

    def show_view(self, view: DesktopView) -> None:
        # The caller as the SIP side named him ("Name <number>"); the number alone below it, to
        # copy for a call back.
        self.caller_label.setText(view_text(view.caller_text))
        self.number_label.setText(view.caller_number)
        self.direction_label.setText(view_text(view.direction_text))
        self.dn_label.setText(view.dn_text)
        self.service_label.setText(view.service_text)
        self.queue_label.setText(view.queue_text)
        self.metadata_label.setText(view.metadata_text)
        self._metadata_caption.setVisible(bool(view.metadata_text))
        self.metadata_label.setVisible(bool(view.metadata_text))
        self.elapsed_label.setText(view.elapsed_text)
        # The rows are captioned Voice and Screen: the value without the caption again.
        self.voice_label.setText(view_text(view.voice_value))
        self.screen_label.setText(view_text(view.screen_value))
        for label, tone in ((self.voice_label, view.voice_tone), (self.screen_label, view.screen_tone)):
            label.setProperty("tone", tone.value)  # read by tests and style sheets
            label.setStyleSheet(TONE_STYLE[tone])
        self.warning_label.setText(view_text(view.pause_warning))
        self.warning_label.setVisible(bool(view.pause_warning))
        if view.has_call and not self.timer.isActive():
            self.timer.start()
        elif not view.has_call and self.timer.isActive():
            self.timer.stop()

    def tick(self) -> None:
        if self._elapsed_source is not None:
            self.elapsed_label.setText(self._elapsed_source())
