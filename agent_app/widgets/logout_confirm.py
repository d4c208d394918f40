"""The question before logging out on a call or in after-call work: calls to the DN would no
longer be recorded for the agent. Asked with ``open`` (not ``exec``), so the Qt thread keeps
delivering events while it is on screen."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget


def ask_logout(parent: QWidget, in_acw: bool, on_confirm: Callable[[], None]) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("logoutConfirm")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Log out?")
    box.setText("You are in after-call work." if in_acw else "You are on a call.")
    box.setInformativeText(
        "If you log out now, calls to your DN are no longer recorded for you until you log in again."
    )
    logout = box.addButton("Log out", QMessageBox.ButtonRole.AcceptRole)
    logout.setObjectName("logoutConfirmButton")
    stay = box.addButton("Stay logged in", QMessageBox.ButtonRole.RejectRole)
    stay.setObjectName("logoutCancelButton")
    box.setDefaultButton(stay)  # Enter by mistake keeps the session
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def clicked(button: QAbstractButton) -> None:
        if button is logout:
            on_confirm()

    box.buttonClicked.connect(clicked)
    box.open()
    return box
