"""The main window's part for agent states and after-call work (issue 13 items 3 and 5): the
state selector, the ACW panel, the admin's codes fetched after login, and Done with the wrap-up.

A mixin of `MainWindow`, kept apart so that the window's module stays about the session, the
pause and the channel. Everything runs like the rest: dispatch to the model, REST call on the
window's `TaskRunner`, result dispatched back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from agent_app.api_client import AgentApi
from agent_app.errors import AgentAppError, AuthError
from agent_app.model import (
    ActionSucceeded,
    AvailabilityFailed,
    AvailabilityFetched,
    AvailabilityRequested,
    CodesFetched,
    DispositionChosen,
    DoneRequested,
    ErrorNoticed,
    Pending,
    parse_codes,
)
from agent_app.services import Services
from agent_app.store import DesktopModel
from agent_app.widgets.acw_panel import AcwPanel
from agent_app.widgets.state_selector import StateSelector
from tandem_protocol import CallInfo

log = logging.getLogger(__name__)


def _message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, AgentAppError) else f"Unexpected error: {exc}"


def my_recordings_url(server_url: str) -> str:
    return f"{server_url.rstrip('/')}/#/recordings"


class WorkspaceStateMixin:
    _server_url: str = ""
    # Provided by MainWindow.
    services: Services
    model: DesktopModel
    _api: AgentApi | None
    state_selector: StateSelector
    acw_panel: AcwPanel

    def _dispatch(self, action: Any) -> None: ...  # pragma: no cover - MainWindow's

    def _run(
        self, fn: Callable[[], Any], on_ok: Callable[[Any], None], on_error: Callable[[Exception], None]
    ) -> None: ...  # pragma: no cover - MainWindow's

    def _session_lost(self) -> None: ...  # pragma: no cover - MainWindow's

    def _refresh_call(self) -> None: ...  # pragma: no cover - MainWindow's

    def _on_action_failed(self, exc: Exception) -> None: ...  # pragma: no cover - MainWindow's

    def _connect_workspace_state(self) -> None:
        self.state_selector.state_chosen.connect(self._on_state_chosen)
        self.state_selector.recordings_requested.connect(self._open_my_recordings)
        self.acw_panel.disposition_chosen.connect(lambda code: self._dispatch(DispositionChosen(code)))

    def _open_my_recordings(self) -> None:
        """The agent's own recordings in the web player, in his default browser. He signs in
        there with the web login: the desktop's bearer token never goes into a URL (browser
        history, proxy logs), and no new login mechanism is opened for it."""
        if not self._server_url:
            return
        url = my_recordings_url(self._server_url)
        if not self.services.open_url(url):
            self._dispatch(ErrorNoticed(f"Could not open a browser; your recordings are at {url}"))

    def _load_codes(self, server_url: str = "") -> None:
        """After login: the admin's codes and the agent's stored state. A server without them
        (older) leaves the selector disabled and Done free: logged, not shown as an error."""
        self._server_url = server_url
        api = self._api
        if api is None:
            return

        def fetch() -> tuple[Any, dict[str, Any]]:
            return parse_codes(api.agent_codes()), api.agent_state()

        def ok(result: tuple[Any, dict[str, Any]]) -> None:
            codes, state = result
            self._dispatch(CodesFetched(codes))
            self._dispatch(
                AvailabilityFetched(str(state.get("state", "")), str(state.get("reason_code") or ""))
            )

        def failed(exc: Exception) -> None:
            if isinstance(exc, AuthError):
                self._session_lost()
            else:
                log.warning("agent codes not available: %s", exc)

        self._run(fetch, ok, failed)

    def _on_state_chosen(self, state: str, reason_code: str) -> None:
        api = self._api
        if api is None:
            return
        self._dispatch(AvailabilityRequested(state, reason_code))
        if self.model.state.pending != Pending.CHANGING_STATE:
            return

        def ok(answer: dict[str, Any]) -> None:
            self._dispatch(
                AvailabilityFetched(str(answer.get("state", "")), str(answer.get("reason_code") or ""))
            )

        def failed(exc: Exception) -> None:
            if isinstance(exc, AuthError):
                self._session_lost()
            else:
                self._dispatch(AvailabilityFailed(f"Your state was not changed: {_message(exc)}"))

        self._run(lambda: api.set_agent_state(state, reason_code), ok, failed)

    def _finish_acw(self) -> None:
        """Done: with a disposition or notes (or where the admin requires a disposition) they are
        stored with the interaction and the ACW ends in one request; otherwise a plain Done."""
        call, api = self.model.call, self._api
        if call is None or api is None:
            return
        disposition, notes = self.model.state.disposition, self.acw_panel.notes()
        self._dispatch(DoneRequested())
        if self.model.state.pending != Pending.FINISHING:
            return
        if not (disposition or notes or self.model.state.codes.disposition_required):
            self._run(
                lambda: api.done(call.interaction_id),
                lambda info: self._dispatch(ActionSucceeded(info)),
                self._on_action_failed,
            )
            return

        def ok(info: CallInfo | None) -> None:
            if info is None:  # the ACW limit had ended it: stored anyway, ask what is true now
                self._refresh_call()
            else:
                self._dispatch(ActionSucceeded(info))

        self._run(lambda: api.wrapup(call.interaction_id, disposition, notes), ok, self._on_action_failed)
