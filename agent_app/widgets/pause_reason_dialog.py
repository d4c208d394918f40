"""The pause reason chooser, shown after the pause was sent (``agent_app.pause_reason``).

Keyboard first: the list has the focus, the arrow keys (or the first letters) pick a reason and
Enter saves it; Escape is "No reason" when the admin allows it. Not modal: Resume stays usable
while it is open, and it never holds the pause up. Shown with ``show`` (not ``exec``) so the Qt
thread keeps delivering the call's events."""

from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from agent_app.pause_reason import Close, ReasonPrompt, Send, StillNeeded, decide

CODE_ROLE = Qt.ItemDataRole.UserRole
# agent_app.pause_reason's texts, for lupdate (the same literals: test_pause_reason_logic checks).
TEXTS = (
    QT_TRANSLATE_NOOP(
        "PauseReasonDialog", "Your team must give a reason for every pause: choose one and press Enter."
    ),
    QT_TRANSLATE_NOOP("PauseReasonDialog", "Choose one of the reasons in the list."),
)


class PauseReasonDialog(QDialog):
    chosen = Signal(str, str)  # (interaction id, code): send it to the server

    def __init__(self, prompt: ReasonPrompt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = prompt
        self._settled = False  # defensive: Enter may both activate the item and press the default button
        self.setObjectName("pauseReasonDialog")
        self.setWindowTitle(self.tr("Why did you pause?"))
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        intro = QLabel(
            self.tr("The recording is paused. Choose the reason and press Enter.")
            if prompt.required
            else self.tr("The recording is paused. Choose the reason and press Enter, or Escape for none."),
            self,
        )
        intro.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setObjectName("pauseReasonList")
        self.list.setAccessibleName(self.tr("Pause reason"))
        intro.setBuddy(self.list)
        for option in prompt.options:
            item = QListWidgetItem(option.label, self.list)
            item.setData(CODE_ROLE, option.code)
        self.list.setCurrentRow(0)
        self.list.itemActivated.connect(lambda _item: self.accept())
        self.message = QLabel("", self)
        self.message.setObjectName("pauseReasonMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #a40000;")
        buttons = QDialogButtonBox(self)
        save = buttons.addButton(self.tr("Save reason"), QDialogButtonBox.ButtonRole.AcceptRole)
        save.setObjectName("pauseReasonSave")
        save.setDefault(True)
        if not prompt.required:
            skip = buttons.addButton(self.tr("No reason"), QDialogButtonBox.ButtonRole.RejectRole)
            skip.setObjectName("pauseReasonSkip")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(intro)
        layout.addWidget(self.list)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.list.setFocus()

    def current_code(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(CODE_ROLE))

    def accept(self) -> None:
        self._settle(self.current_code())

    def reject(self) -> None:
        self._settle(None)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.reject()  # QDialog would close it even when a reason is required
            return
        super().keyPressEvent(event)

    def dismiss(self) -> None:
        """Closed by the program (logout, a newer pause's chooser), required reason or not."""
        super().reject()

    def _settle(self, code: str | None) -> None:
        if self._settled:
            return
        match decide(self.prompt, code):
            case Send(code=sent):
                self._settled = True
                self.chosen.emit(self.prompt.interaction_id, sent)
                super().accept()
            case Close():
                self._settled = True
                super().reject()
            case StillNeeded(message=text):
                self.message.setText(self.tr(text))
                self.list.setFocus()
