"""The agent's own row: the state selector (Ready, or Not Ready ▸ one of the admin's reason
codes) and, where the admin lets his team, the "My recordings" button (the web player).

A combo box (keyboard-operable, with an accessible name) listing Ready and one "Not Ready ▸
reason" entry per code. Choosing emits ``state_chosen(state, reason_code)``; the box then shows
what the model says (the server's answer), not merely what was clicked.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from agent_app.i18n import view_text
from agent_app.view import DesktopView


class StateSelector(QWidget):
    state_chosen = Signal(str, str)  # state ("ready" | "not_ready"), reason code ("" for Ready)
    recordings_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox(self)
        self.combo.setObjectName("stateSelector")
        self.combo.setAccessibleName(self.tr("My state"))
        self.combo.setToolTip(self.tr("Ready, or Not Ready with a reason"))
        label = QLabel(self.tr("&My state:"), self)
        label.setBuddy(self.combo)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(label)
        layout.addWidget(self.combo, 1)
        self.recordings_button = QPushButton(self.tr("My &recordings"), self)
        self.recordings_button.setObjectName("myRecordingsButton")
        self.recordings_button.setToolTip(
            self.tr("Open your own recordings in the web player (your browser)")
        )
        self.recordings_button.setAccessibleName(self.tr("My recordings"))
        self.recordings_button.clicked.connect(self.recordings_requested)
        self.recordings_button.setVisible(False)
        layout.addWidget(self.recordings_button)
        self._choices: tuple[tuple[str, str, str], ...] = ()
        self._updating = False
        self.combo.activated.connect(self._on_activated)
        self.combo.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """An arrow key on the closed box opens the list instead of choosing the next entry: each
        choice is a state change the server stores and audits, so passing through "Not Ready ▸
        Lunch" on the way to "Training" must not send one. Enter in the list chooses."""
        if watched is self.combo and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down) and not event.modifiers():
                self.combo.showPopup()
                return True
        return super().eventFilter(watched, event)

    def show_view(self, view: DesktopView) -> None:
        self._updating = True
        try:
            if view.state_choices != self._choices:
                self._choices = view.state_choices
                self.combo.clear()
                for state, reason, label in view.state_choices:
                    self.combo.addItem(view_text(label), (state, reason))
            index = next((i for i, (s, r, _) in enumerate(self._choices) if (s, r) == view.state_choice), 0)
            self.combo.setCurrentIndex(index)
            self.combo.setEnabled(view.state_selector_enabled)
            self.recordings_button.setVisible(view.my_recordings_visible)
        finally:
            self._updating = False

    def choose(self, state: str, reason_code: str = "") -> None:
        """Pick the entry for (state, reason) as the agent would (tests, keyboard shortcuts)."""
        for i, (s, r, _) in enumerate(self._choices):
            if (s, r) == (state, reason_code):
                self.combo.setCurrentIndex(i)
                self._on_activated(i)
                return
        raise ValueError(f"no state choice {state!r}/{reason_code!r}")

    def _on_activated(self, index: int) -> None:
        if self._updating or not 0 <= index < len(self._choices):
            return
        state, reason, _ = self._choices[index]
        self.state_chosen.emit(state, reason)
