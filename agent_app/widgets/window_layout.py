"""The main window's widgets: built once (`_build`: the login page and the workspace — header,
state selector, call panel, ACW panel, buttons, recorder health, status) and filled from the
model's view after every change (`_render`). A mixin of `MainWindow`, kept apart so that the
window's module stays about the session, the pause and the channel; the widgets copy the view
(agent_app.view) verbatim and hold no rules.

Texts use the "MainWindow" context explicitly: ``self.tr`` here would be looked up under the
window's class while lupdate files it under this mixin's name.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from agent_app import view as v
from agent_app.i18n import view_text
from agent_app.recording_view import PAUSE
from agent_app.services import Services
from agent_app.store import DesktopModel
from agent_app.validation import LoginInput
from agent_app.widgets.acw_panel import AcwPanel
from agent_app.widgets.call_panel import CallPanel
from agent_app.widgets.health_panel import HealthPanel
from agent_app.widgets.login import LoginWidget
from agent_app.widgets.state_selector import StateSelector


class WindowLayoutMixin:
    # Provided by MainWindow and its other mixins; only annotated here (a stub method would
    # shadow the real one of a mixin that comes later in MainWindow's bases).
    services: Services
    model: DesktopModel
    call_bar_button: QPushButton  # CallBarModeMixin's
    _on_login_requested: Callable[[LoginInput], None]
    _on_pause_clicked: Callable[[], None]
    _on_done_clicked: Callable[[], None]
    _on_logout_clicked: Callable[[], None]
    _connect_workspace_state: Callable[[], None]  # WorkspaceStateMixin's
    _build_call_bar: Callable[[QWidget, Callable[..., QPushButton]], None]  # CallBarModeMixin's
    _render_call_bar: Callable[[v.DesktopView], None]  # CallBarModeMixin's
    _render_health: Callable[[], None]  # TrayHealthMixin's

    def _build(self, window: QMainWindow) -> None:
        self.login_widget = LoginWidget(window)
        self.login_widget.login_requested.connect(self._on_login_requested)

        workspace = QWidget(window)
        self.agent_name_label = QLabel("", workspace)
        self.agent_name_label.setObjectName("agentNameLabel")
        self.agent_state_label = QLabel("", workspace)
        self.agent_state_label.setObjectName("agentStateLabel")
        self.call_panel = CallPanel(workspace)
        self.state_selector = StateSelector(workspace)
        self.acw_panel = AcwPanel(workspace)
        self.acw_panel.set_view_source(lambda: self.model.view())
        self._connect_workspace_state()
        self.call_panel.set_elapsed_source(lambda: v.elapsed_text(self.model.state, self.services.clock()))
        self.pause_button = self._button(workspace, "pauseButton", PAUSE, self._on_pause_clicked)
        self.done_button = self._button(
            workspace, "doneButton", QCoreApplication.translate("MainWindow", "&Done"), self._on_done_clicked
        )
        self.done_button.setAccessibleName(QCoreApplication.translate("MainWindow", "Done"))
        self.logout_button = self._button(
            workspace,
            "logoutButton",
            QCoreApplication.translate("MainWindow", "Log &out"),
            self._on_logout_clicked,
        )
        self.logout_button.setAccessibleName(QCoreApplication.translate("MainWindow", "Log out"))
        self._build_call_bar(workspace, self._button)
        self.status_label = QLabel("", workspace)
        self.status_label.setObjectName("statusLabel")
        self.status_label.setWordWrap(True)
        self.health_panel = HealthPanel(workspace)
        self.hotkey_label = QLabel("", workspace)
        self.hotkey_label.setObjectName("hotkeyLabel")
        self.hotkey_label.setWordWrap(True)
        self.hotkey_label.setStyleSheet("color: #555555;")

        header = QHBoxLayout()
        header.addWidget(self.agent_name_label)
        header.addStretch(1)
        header.addWidget(self.agent_state_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.done_button)
        buttons.addWidget(self.call_bar_button)
        buttons.addStretch(1)
        buttons.addWidget(self.logout_button)
        layout = QVBoxLayout(workspace)
        layout.addLayout(header)
        layout.addWidget(self.state_selector)
        layout.addWidget(self.call_panel)
        layout.addWidget(self.acw_panel)
        layout.addLayout(buttons)
        layout.addWidget(self.health_panel)
        layout.addWidget(self.status_label)
        layout.addWidget(self.hotkey_label)
        layout.addStretch(1)

        self.stack = QStackedWidget(window)
        self.stack.addWidget(self.login_widget)
        self.stack.addWidget(workspace)
        self.workspace = workspace
        window.setCentralWidget(self.stack)
        for label in (self.agent_name_label, self.agent_state_label, self.status_label, self.hotkey_label):
            label.setTextFormat(Qt.TextFormat.PlainText)  # names and server messages are not markup

    @staticmethod
    def _button(parent: QWidget, name: str, text: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text, parent)
        button.setObjectName(name)
        button.clicked.connect(slot)
        return button

    def _render(self) -> None:
        view = self.model.view()
        self.stack.setCurrentWidget(self.workspace if view.page == v.Page.WORKSPACE else self.login_widget)
        self.login_widget.show_state(view.login_enabled, view.login_error)
        self.agent_name_label.setText(view.agent_name)
        self.agent_state_label.setText(view_text(view.agent_state_text))
        self.call_panel.show_view(view)
        self.state_selector.show_view(view)
        call = self.model.call
        self.acw_panel.show_view(view, call.interaction_id if call is not None else "")
        self.pause_button.setText(view_text(view.pause_label))
        self.pause_button.setAccessibleName(view_text(view.pause_label))
        self.pause_button.setEnabled(view.pause_enabled)
        self.done_button.setEnabled(view.done_enabled)
        self.logout_button.setEnabled(view.logout_enabled)
        self.status_label.setText(view_text(view.status_text))
        self._render_call_bar(view)
        self._render_health()
