"""The reducer that changes the agent desktop's state (pure: no Qt, no network).

Everything the window shows is derived from one immutable `DesktopState`
(`agent_app.desktop_state`): events from the server and results of REST calls are *actions*, and
`reduce(state, action)` returns the next state. The window only renders `DesktopModel.view()`.
This keeps the rules that matter — above all "Paused is shown only when the server confirmed
it" — testable without a window. The state selector's rules are `agent_app.availability`.

The server is the clock: call times are server times, so the model keeps an estimate of the
offset between the server's clock and this PC's, from the ``at`` stamp of every envelope.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

# The state's types are named from here too (`X as X`: an explicit re-export), as the desktop's
# other modules and tests have always done: the model is where they meet.
from agent_app.agent_codes import AgentCodes as AgentCodes
from agent_app.agent_codes import CodeOption as CodeOption
from agent_app.agent_codes import parse_codes as parse_codes
from agent_app.availability import can_choose_availability, valid_availability
from agent_app.desktop_state import AgentState as AgentState
from agent_app.desktop_state import ChannelState as ChannelState
from agent_app.desktop_state import DesktopState as DesktopState
from agent_app.desktop_state import Pending as Pending
from agent_app.desktop_state import agent_state as agent_state
from agent_app.secure_pause import can_pause, can_resume
from tandem_protocol import (
    CallInfo,
    Envelope,
    EventType,
    LoginResponse,
    Phase,
    ScreenCommand,
    UserInfo,
    VoiceState,
)

log = logging.getLogger(__name__)

# Envelopes whose data is a CallInfo.
_CALL_EVENTS = frozenset(
    {
        EventType.CALL_STARTED,
        EventType.CALL_ENDED,
        EventType.CALL_UPDATED,
        EventType.RECORDING_PAUSED,
        EventType.RECORDING_RESUMED,
        EventType.RECORDING_STOPPED,
        EventType.ACW_ENDED,
    }
)
_SCREEN_EVENTS = frozenset(
    {EventType.SCREEN_START, EventType.SCREEN_PAUSE, EventType.SCREEN_RESUME, EventType.SCREEN_STOP}
)


# ---- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginStarted:
    pass


@dataclass(frozen=True, slots=True)
class LoginSucceeded:
    response: LoginResponse


@dataclass(frozen=True, slots=True)
class LoginFailed:
    message: str


@dataclass(frozen=True, slots=True)
class LogoutStarted:
    pass


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """Back to the login page; ``message`` explains why when it was not the agent's choice."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class EventReceived:
    envelope: Envelope
    local_time: float


@dataclass(frozen=True, slots=True)
class CallFetched:
    """Answer of ``GET /api/agent/call``: a resync, like the ``state`` event."""

    call: CallInfo | None


@dataclass(frozen=True, slots=True)
class ChannelChanged:
    state: ChannelState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PauseRequested:
    pass


@dataclass(frozen=True, slots=True)
class ResumeRequested:
    pass


@dataclass(frozen=True, slots=True)
class DoneRequested:
    pass


@dataclass(frozen=True, slots=True)
class ActionSucceeded:
    """Pause, resume or done answered 200 with the call as the server now sees it."""

    call: CallInfo


@dataclass(frozen=True, slots=True)
class ActionFailed:
    """Pause, resume or done failed. ``not_confirmed``: 504, the recorder did not ack."""

    message: str
    not_confirmed: bool = False


@dataclass(frozen=True, slots=True)
class CodesFetched:
    codes: AgentCodes


@dataclass(frozen=True, slots=True)
class AvailabilityRequested:
    """The agent chose Ready, or Not Ready with a reason code, in the state selector."""

    state: str
    reason_code: str = ""


@dataclass(frozen=True, slots=True)
class AvailabilityFetched:
    """The server's word on the agent's own choice (answer of GET or PUT /api/agent/state)."""

    state: str
    reason_code: str = ""


@dataclass(frozen=True, slots=True)
class AvailabilityFailed:
    message: str


@dataclass(frozen=True, slots=True)
class DispositionChosen:
    code: str


@dataclass(frozen=True, slots=True)
class ErrorNoticed:
    """Any other failure worth telling the agent (e.g. a resync that failed)."""

    message: str


Action = (
    LoginStarted
    | LoginSucceeded
    | LoginFailed
    | LogoutStarted
    | LoggedOut
    | EventReceived
    | CallFetched
    | ChannelChanged
    | PauseRequested
    | ResumeRequested
    | DoneRequested
    | ActionSucceeded
    | ActionFailed
    | ErrorNoticed
    | CodesFetched
    | AvailabilityRequested
    | AvailabilityFetched
    | AvailabilityFailed
    | DispositionChosen
)


# ---- queries used by both the reducer and the view ------------------------------------------


def can_finish(state: DesktopState) -> bool:
    """Done ends after-call work; where the admin requires a disposition, only with one."""
    if state.pending != Pending.NONE or agent_state(state) != AgentState.AFTER_CALL_WORK:
        return False
    return not state.codes.disposition_required or bool(state.disposition)


# ---- the reducer ----------------------------------------------------------------------------


def reduce(state: DesktopState, action: Action) -> DesktopState:
    """The next state. Never raises: malformed event data is counted and dropped."""
    match action:
        case LoginStarted():
            if state.logged_in or state.pending != Pending.NONE:
                return state
            return replace(state, pending=Pending.LOGGING_IN, last_error="")
        case LoginSucceeded(response=resp):
            return replace(
                DesktopState(),
                logged_in=True,
                agent=resp.user,
                token_expires_at=resp.expires_at,
                channel=ChannelState.CONNECTING,
            )
        case LoginFailed(message=message):
            return replace(DesktopState(), last_error=message)
        case LogoutStarted():
            if not state.logged_in:
                return state
            return replace(state, pending=Pending.LOGGING_OUT, last_error="")
        case LoggedOut(message=message):
            return replace(DesktopState(), last_error=message)
        case EventReceived(envelope=env, local_time=local_time):
            return _on_event(state, env, local_time)
        case CallFetched(call=call):
            if not state.logged_in:
                return state
            return _resync(state, call)
        case ChannelChanged(state=channel, detail=detail):
            if not state.logged_in:
                return state
            return replace(state, channel=channel, channel_detail=detail)
        case PauseRequested():
            return replace(state, pending=Pending.PAUSING, last_error="") if can_pause(state) else state
        case ResumeRequested():
            return replace(state, pending=Pending.RESUMING, last_error="") if can_resume(state) else state
        case DoneRequested():
            return replace(state, pending=Pending.FINISHING, last_error="") if can_finish(state) else state
        case ActionSucceeded(call=call):
            if not state.logged_in:
                return state
            return _adopt_call(replace(state, pending=Pending.NONE, unconfirmed=Pending.NONE), call, True)
        case ActionFailed(message=message, not_confirmed=not_confirmed):
            if not state.logged_in:
                return state
            unconfirmed = state.pending if not_confirmed else Pending.NONE
            return replace(state, pending=Pending.NONE, last_error=message, unconfirmed=unconfirmed)
        case ErrorNoticed(message=message):
            return replace(state, last_error=message)
        case CodesFetched(codes=codes):
            if not state.logged_in:
                return state
            disposition = (
                state.disposition if any(d.code == state.disposition for d in codes.dispositions) else ""
            )
            return replace(state, codes=codes, disposition=disposition)
        case AvailabilityRequested(state=choice, reason_code=reason):
            if not (can_choose_availability(state) and valid_availability(state, choice, reason)):
                return state
            return replace(state, pending=Pending.CHANGING_STATE, last_error="")
        case AvailabilityFetched(state=choice, reason_code=reason):
            if not state.logged_in:
                return state
            pending = Pending.NONE if state.pending == Pending.CHANGING_STATE else state.pending
            available = "not_ready" if choice == "not_ready" else "ready"
            return replace(
                state,
                availability=available,
                reason_code=reason if available == "not_ready" else "",
                pending=pending,
            )
        case AvailabilityFailed(message=message):
            if not state.logged_in:
                return state
            pending = Pending.NONE if state.pending == Pending.CHANGING_STATE else state.pending
            return replace(state, pending=pending, last_error=message)
        case DispositionChosen(code=code):
            if agent_state(state) != AgentState.AFTER_CALL_WORK:
                return state
            if code and not any(d.code == code for d in state.codes.dispositions):
                return state
            return replace(state, disposition=code)
    raise TypeError(f"unknown action {action!r}")  # pragma: no cover - exhaustive match


def _on_event(state: DesktopState, env: Envelope, local_time: float) -> DesktopState:
    if not state.logged_in:
        return state
    if env.at > 0:
        state = replace(state, clock=state.clock.add(env.at, local_time))
    if env.type == EventType.STATE:
        state = replace(state, last_seq=env.seq)
    elif env.seq > 0:
        gap = state.last_seq > 0 and env.seq != state.last_seq + 1
        state = replace(state, last_seq=env.seq, seq_gaps=state.seq_gaps + int(gap))
    try:
        return _apply_event(state, env)
    except ValueError as exc:
        log.debug("malformed %s event: %s", env.type, exc)
        return replace(state, dropped_events=state.dropped_events + 1)


def _apply_event(state: DesktopState, env: Envelope) -> DesktopState:
    kind = env.type
    if kind == EventType.STATE:
        agent_raw = env.data.get("agent")
        agent = parse_user_info(agent_raw) if agent_raw is not None else state.agent
        call_raw = env.data.get("call")
        call = None if call_raw is None else CallInfo.from_dict(_as_dict(call_raw))
        return _resync(replace(state, agent=agent), call)
    if kind in _CALL_EVENTS:
        return _adopt_call(state, CallInfo.from_dict(env.data), kind == EventType.CALL_STARTED)
    if kind in _SCREEN_EVENTS:
        command = ScreenCommand.from_dict(env.data)
        if state.call is None or command.interaction_id != state.call.interaction_id:
            return replace(state, ignored_events=state.ignored_events + 1)
        return replace(state, screen_command=kind)
    if kind == EventType.ERROR:
        return replace(state, last_error=str(env.data.get("message", "server error")))
    # time.pong and types added by later servers: nothing to show.
    return replace(state, ignored_events=state.ignored_events + 1)


def _resync(state: DesktopState, call: CallInfo | None) -> DesktopState:
    """Adopt the server's word on the current call wholesale (``state`` event, GET call)."""
    if call is None or call.phase == Phase.DONE:
        return replace(state, call=None, screen_command="", unconfirmed=Pending.NONE, disposition="")
    return _adopt_call(state, call, True)


def _adopt_call(state: DesktopState, call: CallInfo, authoritative: bool) -> DesktopState:
    current = state.call
    same = current is not None and current.interaction_id == call.interaction_id
    if call.phase == Phase.DONE:
        if current is None or same:
            return replace(state, call=None, screen_command="", unconfirmed=Pending.NONE, disposition="")
        return replace(state, ignored_events=state.ignored_events + 1)
    if not (same or authoritative or current is None):
        # An update about some other interaction (e.g. an old call's upload finishing).
        return replace(state, ignored_events=state.ignored_events + 1)
    unconfirmed = state.unconfirmed if same else Pending.NONE
    if unconfirmed == Pending.PAUSING and (call.paused or call.voice != VoiceState.PAUSED):
        unconfirmed = Pending.NONE  # confirmed after all, or the server rolled the voice back
    elif unconfirmed == Pending.RESUMING and not call.paused:
        unconfirmed = Pending.NONE
    # A late confirmation (or rollback) settles the 504 the agent was told about.
    last_error = "" if state.unconfirmed != Pending.NONE and unconfirmed == Pending.NONE else state.last_error
    disposition = state.disposition if same else ""  # a new call starts without one
    return replace(
        state,
        call=call,
        screen_command="",
        unconfirmed=unconfirmed,
        last_error=last_error,
        disposition=disposition,
    )


def parse_user_info(raw: Any) -> UserInfo:
    """A `UserInfo` from its JSON form; ValueError if malformed."""
    data = _as_dict(raw)
    try:
        team = data.get("team_id")
        dn = data.get("dn")
        return UserInfo(
            id=int(data["id"]),
            username=str(data["username"]),
            role=str(data["role"]),
            full_name=str(data.get("full_name", "")),
            team_id=None if team is None else int(team),
            dn=None if dn is None else str(dn),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed UserInfo: {exc}") from exc


def _as_dict(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, got {type(raw).__name__}")
    return raw
