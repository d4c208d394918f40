"""The desktop's window: login page ↔ workspace, wired to the model, the API and the channel.

Every user action dispatches an action to the model, runs the REST call on the
`TaskRunner` and dispatches the result when it comes back; every server event goes through
the `EventRelay` into the model. `_render` then copies the model's view into the widgets.
No blocking work happens here.

The window is one of three ways to pause (its button, the global hotkey, the tray menu), all
through `_on_pause_clicked`. Closing it hides it to the tray: the agent stays logged in and his
calls recorded; logging out is the explicit act (confirmed while a call or ACW is in progress).
The recorder's health (server event ``recorder.health``) is shown in a panel and the tray icon
(`TrayHealthMixin`, with the tray menu's wiring).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from agent_app import hotkey
from agent_app import view as v
from agent_app.api_client import AgentApi
from agent_app.bridge import EventRelay, TaskRunner
from agent_app.config import DesktopSettings
from agent_app.errors import AgentAppError, AuthError, ScreenNotConfirmedError
from agent_app.i18n import view_text
from agent_app.keyring_store import CredentialStore
from agent_app.model import (
    ActionFailed,
    ActionSucceeded,
    AgentState,
    CallFetched,
    ChannelChanged,
    ChannelState,
    ErrorNoticed,
    EventReceived,
    LoggedOut,
    LoginFailed,
    LoginStarted,
    LoginSucceeded,
    LogoutStarted,
    PauseRequested,
    Pending,
    ResumeRequested,
)
from agent_app.recorder_health import RecorderReport
from agent_app.secure_pause import pause_means_resume
from agent_app.services import Channel, Services
from agent_app.store import DesktopModel
from agent_app.tray import AgentTray
from agent_app.validation import LoginInput
from agent_app.widgets.acw_panel import AcwPanel
from agent_app.widgets.call_bar_mode import CallBarModeMixin
from agent_app.widgets.call_panel import CallPanel
from agent_app.widgets.health_panel import HealthPanel
from agent_app.widgets.login import LoginWidget
from agent_app.widgets.logout_confirm import ask_logout
from agent_app.widgets.pause_reason_mixin import PauseReasonMixin
from agent_app.widgets.remember_me import RememberMe
from agent_app.widgets.state_selector import StateSelector
from agent_app.widgets.tray_health import TrayHealthMixin
from agent_app.widgets.workspace_state import WorkspaceStateMixin
from tandem_protocol import CallInfo, Envelope, LoginResponse

log = logging.getLogger(__name__)
SESSION_EXPIRED = "Your session has ended — please log in again."
BUSY_STATES = (AgentState.ON_CALL, AgentState.PAUSED, AgentState.AFTER_CALL_WORK)


def _message(exc: Exception) -> str:
    if isinstance(exc, AgentAppError):
        return str(exc)
    return f"Unexpected error: {exc}"


class MainWindow(WorkspaceStateMixin, TrayHealthMixin, CallBarModeMixin, PauseReasonMixin, QMainWindow):
    hotkey_pressed = Signal()  # emitted on the hotkey's thread, delivered on the Qt thread

    def __init__(
        self,
        services: Services | None = None,
        parent: QWidget | None = None,
        *,
        settings: DesktopSettings | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services or Services()
        self.settings = settings or DesktopSettings()
        self.credentials = credentials
        self._health: RecorderReport | None = None
        self._quitting = False
        self.hotkey: hotkey.GlobalHotKey | None = None
        self.pause_reason_dialog = None  # the chooser open after a pause (PauseReasonMixin)
        self.model = DesktopModel(clock=self.services.clock)
        self.runner = TaskRunner(self)
        self.relay = EventRelay(self)
        self._api: AgentApi | None = None
        self._login_api: AgentApi | None = None  # a login in flight: log it out too at shutdown
        self._channel: Channel | None = None
        self._session = 0  # bumped on login/logout so late results of an old session are ignored
        self._shut_down = False
        self.setWindowTitle("Tandem")
        self._build()
        self.relay.envelope.connect(self._on_envelope)
        self.relay.status.connect(self._on_channel_status)
        self.relay.overflow.connect(self._refresh_call)
        self._build_tray(self)  # the tray icon and the recorder health's timer (TrayHealthMixin)
        self.hotkey_pressed.connect(self._on_pause_clicked)
        self.remember_me = RememberMe(self.runner, self.login_widget, credentials)
        self._start_hotkey()
        self._apply_settings()
        self._render()

    # ---- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.login_widget = LoginWidget(self)
        self.login_widget.login_requested.connect(self._on_login_requested)

        workspace = QWidget(self)
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
        self.pause_button = self._button(workspace, "pauseButton", v.PAUSE, self._on_pause_clicked)
        self.done_button = self._button(workspace, "doneButton", self.tr("&Done"), self._on_done_clicked)
        self.done_button.setAccessibleName(self.tr("Done"))
        self.logout_button = self._button(
            workspace, "logoutButton", self.tr("Log &out"), self._on_logout_clicked
        )
        self.logout_button.setAccessibleName(self.tr("Log out"))
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

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.login_widget)
        self.stack.addWidget(workspace)
        self.workspace = workspace
        self.setCentralWidget(self.stack)
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

    # ---- settings, hotkey, remember me -----------------------------------------------------

    def _apply_settings(self) -> None:
        if self.settings.server_fixed:
            self.login_widget.fix_server(self.settings.server_url)
        elif self.settings.server_url:
            self.login_widget.server.setText(self.settings.server_url)
        self.remember_me.load(lambda: not self.model.state.logged_in)

    def _dispatch(self, action: Any) -> None:
        self.model.dispatch(action)
        self._render()

    # ---- running work off the Qt thread ----------------------------------------------------

    def _run(
        self,
        fn: Callable[[], Any],
        on_ok: Callable[[Any], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        """Submit for the current session only: results arriving after logout are dropped."""
        session = self._session

        def ok(result: Any) -> None:
            if session == self._session:
                on_ok(result)

        def failed(exc: Exception) -> None:
            if session == self._session:
                on_error(exc)

        if not self.runner.submit(fn, ok, failed):
            failed(AgentAppError("The desktop is busy; try again in a moment."))

    # ---- login / logout --------------------------------------------------------------------

    def login(self, values: LoginInput) -> None:
        """Log in with these values (also used by ``--auto-login``)."""
        self._on_login_requested(values)

    def _on_login_requested(self, values: LoginInput) -> None:
        self._dispatch(LoginStarted())
        if self.model.state.pending != Pending.LOGGING_IN:
            return
        self._session += 1
        api = self._login_api = self.services.api_factory(values.server_url)

        def failed(exc: Exception) -> None:
            self._login_api = None
            api.close()
            self._dispatch(LoginFailed(_message(exc)))

        self._run(
            lambda: api.login(values.username, values.password, values.dn),
            lambda resp: self._on_logged_in(api, values, resp),
            failed,
        )

    def _on_logged_in(self, api: AgentApi, values: LoginInput, response: LoginResponse) -> None:
        server_url = values.server_url
        self.remember_me.after_login(values)
        self._api, self._login_api = api, None
        self.login_widget.clear_password()
        self._dispatch(LoginSucceeded(response))
        self._channel = self.services.channel_factory(
            server_url, response.token, self.relay.post_envelope, self.relay.post_status
        )
        self._channel.start()
        self._refresh_call()
        self._load_codes(server_url)

    def _on_logout_clicked(self) -> None:
        if self.model.agent_state in BUSY_STATES:
            self._confirm_logout()
            return
        self._log_out()

    def _confirm_logout(self) -> None:
        in_acw = self.model.agent_state == AgentState.AFTER_CALL_WORK
        ask_logout(self, in_acw, self._log_out)

    def _log_out(self) -> None:
        self._dispatch(LogoutStarted())
        if self.model.state.pending == Pending.LOGGING_OUT:
            self._end_session(None)

    def _end_session(self, reason: str | None) -> None:
        """Stop the channel and revoke the token off the Qt thread, then show the login page.

        ``reason`` None: the agent logged out; otherwise the session ended under him.
        """
        # The worker is serial, so a login still in flight finishes before this logout runs.
        api, channel = self._api or self._login_api, self._channel
        self._api, self._login_api, self._channel = None, None, None
        self._dismiss_pause_reason()  # no session left to send a reason with
        self._session += 1
        session = self._session

        def work() -> None:
            if channel is not None:
                channel.stop()
            if api is not None:
                try:
                    if reason is None:
                        api.logout()
                finally:
                    api.close()

        def finished(message: str) -> None:
            if session == self._session:
                self._health = None  # the next login's channel says what is true then
                self._dispatch(LoggedOut(message))
                if reason is not None and not self._shut_down and not self.isVisible():
                    # Hidden in the tray, a lost session would go unseen: the login page comes up.
                    self.show_from_tray()

        note = reason or ""
        if not self.runner.submit(
            work,
            lambda _: finished(note),
            lambda exc: finished(note or f"Logged out here; the server said: {_message(exc)}"),
        ):
            finished(note)

    # ---- call actions ----------------------------------------------------------------------

    def _on_pause_clicked(self) -> None:
        call, api = self.model.call, self._api
        if call is None or api is None:
            return
        if pause_means_resume(self.model.state):  # the secure pause's state, not just "paused"
            self._dispatch(ResumeRequested())
            if self.model.state.pending == Pending.RESUMING:
                self._call_action(lambda: api.resume(call.interaction_id))
        else:
            self._dispatch(PauseRequested())
            if self.model.state.pending == Pending.PAUSING:
                self._call_action(lambda: api.pause(call.interaction_id))
                # Then why: the pause is already on its way (agent_app.pause_reason).
                self._ask_pause_reason(call.interaction_id)

    def _on_done_clicked(self) -> None:
        self._finish_acw()  # with the ACW panel's disposition and notes (workspace_state)

    def _call_action(self, fn: Callable[[], CallInfo]) -> None:
        self._run(fn, lambda call: self._dispatch(ActionSucceeded(call)), self._on_action_failed)

    def _on_action_failed(self, exc: Exception) -> None:
        if isinstance(exc, AuthError):
            self._session_lost()
            return
        self._dispatch(ActionFailed(_message(exc), not_confirmed=isinstance(exc, ScreenNotConfirmedError)))
        # The server did something, or the call moved on (409): ask what is true now.
        self._refresh_call()

    def _refresh_call(self) -> None:
        api = self._api
        if api is None:
            return
        self._run(api.current_call, lambda call: self._dispatch(CallFetched(call)), self._on_refresh_failed)

    def _on_refresh_failed(self, exc: Exception) -> None:
        if isinstance(exc, AuthError):
            self._session_lost()
        else:
            self._dispatch(ErrorNoticed(f"Could not refresh the call: {_message(exc)}"))

    def _session_lost(self) -> None:
        if self._api is not None:
            self._end_session(SESSION_EXPIRED)

    # ---- event channel ---------------------------------------------------------------------

    def _on_envelope(self, envelope: Envelope) -> None:
        self._take_health(envelope)
        self._dispatch(EventReceived(envelope, self.services.clock()))

    def _on_channel_status(self, state: ChannelState, detail: str) -> None:
        self._dispatch(ChannelChanged(state, detail))
        if state == ChannelState.REFUSED:
            self._session_lost()

    # ---- shutdown --------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the channel, log out (revoking the token frees the DN), wait for the worker."""
        if self._shut_down:
            return
        self._shut_down = True
        self.relay.close()
        self.call_panel.timer.stop()
        self.health_timer.stop()
        if self.hotkey is not None:
            self.hotkey.stop()
            self.hotkey = None
        self.tray.close()
        self.call_bar.hide()
        if self._api is not None or self._login_api is not None or self._channel is not None:
            self._end_session(None)
        if not self.runner.shutdown(timeout_ms):
            log.warning("background work did not finish within %d ms at shutdown", timeout_ms)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing hides to the tray while logged in (the agent stays logged in, his calls
        recorded); logged out, or quitting, it ends the program (and logs out)."""
        if self.model.state.logged_in and not self._quitting and not self._shut_down:
            event.ignore()
            if AgentTray.available():
                self.hide()
                self.tray.notify(
                    self.tr("Tandem is still running"),
                    self.tr("You are logged in. Use the tray icon to log out."),
                )
            else:
                self.showMinimized()  # no tray to come back from: keep it on the task bar
            return
        self.shutdown()
        super().closeEvent(event)
