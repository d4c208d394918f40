"""The tray icon: the desktop stays reachable (and logged in) with its window closed.

Its menu pauses or resumes the recording (the same path as the window's button), shows the
window, logs out and quits. The icon's colour and its tooltip carry the recorder's health — a
missing or failing recorder turns it red with a "!" — and the agent's state.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, Qt, Signal, SignalInstance
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from agent_app.recorder_health import HealthView, Level

ICON_COLOURS = {Level.OK: "#1b7f3b", Level.WARNING: "#b00020", Level.UNKNOWN: "#7a7a7a"}


def status_icon(level: Level, size: int = 64) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(ICON_COLOURS[level]))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(QRectF(2, 2, size - 4, size - 4))
    painter.setPen(QColor("white"))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.6))
    painter.setFont(font)
    # A letter as well as a colour: red and green look alike to many people.
    painter.drawText(
        QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, "!" if level == Level.WARNING else "T"
    )
    painter.end()
    return QIcon(pixmap)


class AgentTray(QObject):
    pause_requested = Signal()
    show_requested = Signal()
    logout_requested = Signal()
    quit_requested = Signal()
    call_bar_requested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(self)
        self.menu = QMenu()
        self.pause_action = self._action("trayPause", "Pause recording", self.pause_requested)
        self.show_action = self._action("trayShow", "Show Tandem", self.show_requested)
        self.call_bar_action = self._action("trayCallBar", "Compact call bar", self.call_bar_requested)
        self.menu.addSeparator()
        self.logout_action = self._action("trayLogout", "Log out", self.logout_requested)
        self.quit_action = self._action("trayQuit", "Quit", self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self.level = Level.UNKNOWN
        self.tooltip = ""
        self.show_state("Tandem", "Pause recording", False, False, HealthView(Level.UNKNOWN, "", (), None, 0))

    def _action(self, name: str, text: str, signal: SignalInstance) -> QAction:
        action = QAction(text, self.menu)
        action.setObjectName(name)
        action.triggered.connect(signal.emit)
        self.menu.addAction(action)
        return action

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        if self.available():
            self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def notify(self, title: str, message: str) -> None:
        if self.icon.isVisible():
            self.icon.showMessage(title, message, QSystemTrayIcon.MessageIcon.Information, 4000)

    def show_state(
        self, agent_text: str, pause_label: str, pause_enabled: bool, logged_in: bool, health: HealthView
    ) -> None:
        self.pause_action.setText(
            f"{pause_label} recording" if pause_label in ("Pause", "Resume") else pause_label
        )
        self.pause_action.setEnabled(pause_enabled)
        self.logout_action.setEnabled(logged_in)
        self.call_bar_action.setEnabled(logged_in)
        if health.level != self.level or self.icon.icon().isNull():
            self.icon.setIcon(status_icon(health.level))
        self.level = health.level
        lines = [f"Tandem — {agent_text}" if agent_text else "Tandem"]
        if health.headline and logged_in:
            lines.append(health.headline)
        self.tooltip = "\n".join(lines)
        self.icon.setToolTip(self.tooltip)

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.show_requested.emit()

    def close(self) -> None:
        self.icon.hide()
        self.menu.deleteLater()
