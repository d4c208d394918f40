"""The desktop's window: login page ↔ workspace, wired to the model, the API and the channel.

Every user action dispatches an action to the model, runs the REST call on the
`TaskRunner` and dispatches the result when it comes back; every server event goes through
the `EventRelay` into the model. `_render` then copies the model's view into the widgets
(`WindowLayoutMixin`, which builds them).
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

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMainWindow, QWidget

from agent_app import hotkey
from agent_app.api_client import AgentApi
from agent_app.bridge import EventRelay, TaskRunner
from agent_app.config import DesktopSettings
from agent_app.errors import AgentAppError, AuthError, ScreenNotConfirmedError
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
from agent_app.widgets.call_bar_mode import CallBarModeMixin
from agent_app.widgets.logout_confirm import ask_logout
from agent_app.widgets.pause_reason_mixin import PauseReasonMixin
from agent_app.widgets.recorder_problem_watch import RecorderProblemWatch
from agent_app.widgets.remember_me import RememberMe
from agent_app.widgets.tray_health import TrayHealthMixin
from agent_app.widgets.window_layout import WindowLayoutMixin
from agent_app.widgets.workspace_state import WorkspaceStateMixin
from tandem_protocol import CallInfo, Envelope, LoginResponse

log = logging.getLogger(__name__)
SESSION_EXPIRED = "Your session has ended — please log in again."
BUSY_STATES = (AgentState.ON_CALL, AgentState.PAUSED, AgentState.AFTER_CALL_WORK)


def _message(exc: Exception) -> str:
    if isinstance(exc, AgentAppError):
        return str(exc)
    return f"Unexpected error: {exc}"


class MainWindow(
    WorkspaceStateMixin, TrayHealthMixin, CallBarModeMixin, PauseReasonMixin, WindowLayoutMixin, QMainWindow
):
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
        self._build(self)  # the widgets (WindowLayoutMixin)
        self.relay.envelope.connect(self._on_envelope)
        self.relay.status.connect(self._on_channel_status)
        self.relay.overflow.connect(self._refresh_call)
        self._build_tray(self)  # the tray icon and the recorder health's timer (TrayHealthMixin)
        self.problem_watch: RecorderProblemWatch | None = None  # the recorder's own problem file
        if self.services.problem_reporter is not None:
            self.problem_watch = RecorderProblemWatch(self.runner, self.services.problem_reporter, self)
            self.problem_watch.status_changed.connect(self.health_panel.show_problem)
        self.hotkey_pressed.connect(self._on_pause_clicked)
        self.remember_me = RememberMe(self.runner, self.login_widget, credentials)
        self._start_hotkey()
        self._apply_settings()
        self._render()

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
        if self.problem_watch is not None:  # a recorder that could not start: tell the server
            self.problem_watch.start(server_url, response.token)

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
        if self.problem_watch is not None:
            self.problem_watch.stop()
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
        if self.problem_watch is not None:
            self.problem_watch.stop()
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
