"""The main window's tray icon and the screen recorder's health: the tray menu wired to the window
(pause, show, log out, quit, compact call bar), the icon and its menu following the agent's state
and the recorder's health, a notification when the recorder turns to a warning (seen with the
window hidden in the tray), and the health taken from the server's events (``recorder.health``,
and the ``state`` sent on (re)connect). A mixin of `MainWindow`, kept apart so that the window's
module stays about the session, the pause and the channel.

Texts use the "MainWindow" context explicitly: ``self.tr`` here would be looked up under the
window's class while lupdate files it under this mixin's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from agent_app.recorder_health import Level, RecorderReport, health_view, parse_report
from agent_app.store import DesktopModel
from agent_app.tray import AgentTray
from agent_app.widgets.health_panel import HealthPanel
from tandem_protocol import Envelope, EventType

log = logging.getLogger(__name__)
HEALTH_TICK_MS = 2000  # a silent recorder turns into a warning without any event arriving


class TrayHealthMixin:
    # Provided by MainWindow.
    model: DesktopModel
    health_panel: HealthPanel
    _health: RecorderReport | None
    _quitting: bool
    showNormal: Callable[[], None]  # QWidget's
    raise_: Callable[[], None]  # QWidget's
    activateWindow: Callable[[], None]  # QWidget's

    def _on_pause_clicked(self) -> None: ...  # pragma: no cover - MainWindow's

    def _on_logout_clicked(self) -> None: ...  # pragma: no cover - MainWindow's

    # CallBarModeMixin's, so only annotated here: a stub would shadow it, this mixin coming first
    # in MainWindow's bases (before CallBarModeMixin, whose show_from_tray stub this one's replaces).
    show_call_bar: Callable[[], None]

    def shutdown(self, timeout_ms: int = 5000) -> None: ...  # pragma: no cover - MainWindow's

    def _build_tray(self, window: QWidget) -> None:
        self.tray = AgentTray(window)
        self.tray.pause_requested.connect(self._on_pause_clicked)
        self.tray.show_requested.connect(self.show_from_tray)
        self.tray.logout_requested.connect(self._on_tray_logout)
        self.tray.quit_requested.connect(self.quit)
        self.tray.call_bar_requested.connect(self.show_call_bar)
        self.tray.show()
        self.health_timer = QTimer(window)
        self.health_timer.setInterval(HEALTH_TICK_MS)
        self.health_timer.timeout.connect(self._render_health)
        self.health_timer.start()

    def _render_health(self) -> None:
        view = self.model.view()
        logged_in = self.model.state.logged_in
        health = health_view(self._health if logged_in else None, self.model.server_now())
        if health.level == Level.WARNING and self.health_panel.level != Level.WARNING:
            self.tray.notify(
                QCoreApplication.translate("MainWindow", "Screen recorder problem"), health.headline
            )  # seen with the window hidden
        self.health_panel.show_health(health)
        self.tray.show_state(
            view.agent_state_text if logged_in else "logged out",
            view.pause_label,
            view.pause_enabled,
            logged_in,
            health,
        )

    def _take_health(self, envelope: Envelope) -> None:
        """The recorder's health: its own event, and in the ``state`` sent on (re)connect."""
        if envelope.type == EventType.RECORDER_HEALTH:
            raw: Any = envelope.data
        elif envelope.type == EventType.STATE and envelope.data.get("recorder") is not None:
            raw = envelope.data["recorder"]
        else:
            return
        try:
            self._health = parse_report(raw)
        except ValueError as exc:
            log.info("ignoring a malformed recorder.health: %s", exc)

    def show_from_tray(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def _on_tray_logout(self) -> None:
        self.show_from_tray()  # the confirmation needs the window
        self._on_logout_clicked()

    def quit(self) -> None:
        """Quit the desktop (tray menu): log out and end the program."""
        self._quitting = True
        app = QApplication.instance()
        if app is not None:
            app.quit()
        self.shutdown()
