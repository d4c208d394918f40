"""The current call: caller, DN, running time (ticking every second), voice and screen state."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from agent_app.view import DesktopView

TICK_MS = 1000


class CallPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caller_label = self._label("callerLabel")
        self.dn_label = self._label("dnLabel")
        self.elapsed_label = self._label("elapsedLabel")
        self.voice_label = self._label("voiceStateLabel")
        self.screen_label = self._label("screenStateLabel")
        layout = QFormLayout(self)
        layout.addRow("Caller", self.caller_label)
        layout.addRow("Line", self.dn_label)
        layout.addRow("Time", self.elapsed_label)
        layout.addRow("Voice", self.voice_label)
        layout.addRow("Screen", self.screen_label)
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
        self.caller_label.setText(view.caller_text)
        self.dn_label.setText(view.dn_text)
        self.elapsed_label.setText(view.elapsed_text)
        self.voice_label.setText(view.voice_text)
        self.screen_label.setText(view.screen_text)
        if view.has_call and not self.timer.isActive():
            self.timer.start()
        elif not view.has_call and self.timer.isActive():
            self.timer.stop()

    def tick(self) -> None:
        if self._elapsed_source is not None:
            self.elapsed_label.setText(self._elapsed_source())
