"""The main window's ways to pause besides its button (issue 13 items 2 and 9): the global hotkey,
Alt+P, and the compact call bar — its button, the bar wired to the window's own pause and Done,
and the switch between bar and window. A mixin of `MainWindow`, kept apart so that the window's module
stays about the session, the pause and the channel.

Texts use the "MainWindow" context explicitly: ``self.tr`` here would be looked up under the
window's class while lupdate files it under this mixin's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, SignalInstance
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from agent_app import hotkey
from agent_app import view as v
from agent_app.config import DesktopSettings
from agent_app.errors import AgentAppError
from agent_app.services import Services
from agent_app.store import DesktopModel
from agent_app.widgets.call_bar import CallBar
from agent_app.widgets.call_panel import CallPanel

log = logging.getLogger(__name__)


class CallBarModeMixin:
    # Provided by MainWindow.
    services: Services
    model: DesktopModel
    pause_button: QPushButton
    call_panel: CallPanel
    settings: DesktopSettings
    hotkey_label: QLabel
    hotkey: hotkey.GlobalHotKey | None
    hotkey_pressed: SignalInstance
    hide: Callable[[], None]  # QWidget's

    def _on_pause_clicked(self) -> None: ...  # pragma: no cover - MainWindow's

    def _on_done_clicked(self) -> None: ...  # pragma: no cover - MainWindow's

    def show_from_tray(self) -> None: ...  # pragma: no cover - MainWindow's

    def _build_call_bar(self, workspace: QWidget, button: Callable[..., QPushButton]) -> None:
        # Alt+P, not a mnemonic: the pause button's text follows the pause (Pause, Resume, …).
        QShortcut(QKeySequence("Alt+P"), workspace, self._press_pause)
        self.pause_button.setAccessibleDescription(
            QCoreApplication.translate("MainWindow", "Pause or resume the recording (Alt+P)")
        )
        self.pause_button.setToolTip(
            QCoreApplication.translate("MainWindow", "Pause or resume the recording (Alt+P)")
        )
        self.call_bar_button = button(
            workspace,
            "callBarButton",
            QCoreApplication.translate("MainWindow", "Compact call &bar"),
            self.show_call_bar,
        )
        self.call_bar_button.setAccessibleName(QCoreApplication.translate("MainWindow", "Compact call bar"))
        self.call_bar_button.setToolTip(
            QCoreApplication.translate("MainWindow", "A small always-on-top bar instead of this window")
        )
        self.call_bar = CallBar(workspace.window())
        self.call_bar.pause_clicked.connect(self._on_pause_clicked)
        self.call_bar.done_clicked.connect(self._on_done_clicked)
        self.call_bar.expand_requested.connect(self.show_full_window)
        self.call_bar.set_elapsed_source(lambda: v.elapsed_text(self.model.state, self.services.clock()))
        self.call_panel.timer.timeout.connect(self.call_bar.tick)

    def show_call_bar(self) -> None:
        """The compact always-on-top bar instead of the window (button and tray)."""
        if not self.model.state.logged_in:
            return
        self.hide()
        self.call_bar.show()
        self.call_bar.raise_()

    def show_full_window(self) -> None:
        self.call_bar.hide()
        self.show_from_tray()

    def _render_call_bar(self, view: v.DesktopView) -> None:
        self.call_bar.show_view(view)
        if not self.model.state.logged_in and self.call_bar.isVisible():
            self.show_full_window()  # the login page is in the window

    def _start_hotkey(self) -> None:
        spec = self.settings.pause_hotkey
        if not spec:
            self.hotkey_label.setText("")
            return
        try:
            key = hotkey.parse_hotkey(spec)
            listener = hotkey.create(key, self.hotkey_pressed.emit)
            listener.start()
        except AgentAppError as exc:
            self.hotkey_label.setText(
                QCoreApplication.translate("MainWindow", "Pause hotkey not available: %1").replace(
                    "%1", str(exc)
                )
            )
            log.warning("pause hotkey: %s", exc)
            return
        self.hotkey = listener
        self.hotkey_label.setText(
            QCoreApplication.translate("MainWindow", "Pause or resume from any program: %1").replace(
                "%1", str(key)
            )
        )

    def _press_pause(self) -> None:
        if self.pause_button.isEnabled():
            self.pause_button.click()
