"""The agent desktop's state and the reducer that changes it (pure: no Qt, no network).

Everything the window shows is derived from one immutable `DesktopState`: events from the
server and results of REST calls are *actions*, and `reduce(state, action)` returns the next
state. The window only renders `DesktopModel.view()`. This keeps the rules that matter — above
all "Paused is shown only when the server confirmed it" — testable without a window.

The server is the clock: call times are server times, so the model keeps an estimate of the
offset between the server's clock and this PC's, from the ``at`` stamp of every envelope.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

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
from tandem_protocol.events import PauseState

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
CLOCK_WINDOW = 16


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    NOT_READY = "not_ready"
    ON_CALL = "on_call"
    PAUSED = "paused"
    AFTER_CALL_WORK = "acw"


class Pending(StrEnum):
    """The one request in flight that the UI must reflect (buttons disabled, "Pausing…")."""

    NONE = "none"
    LOGGING_IN = "logging_in"
    LOGGING_OUT = "logging_out"
    PAUSING = "pausing"
    RESUMING = "resuming"
    FINISHING = "finishing"
    CHANGING_STATE = "changing_state"


class ChannelState(StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """Server clock minus local clock, from (server send time, local receive time) samples.

    Each sample underestimates the offset by the message's transit time, which is never
    negative, so the largest recent sample is the best estimate. Only the last
    ``CLOCK_WINDOW`` samples count, so a stepped local clock is forgotten soon.
    """

    samples: tuple[float, ...] = ()

    def add(self, server_at: float, local_received: float) -> ClockOffset:
        return ClockOffset((*self.samples, server_at - local_received)[-CLOCK_WINDOW:])

    @property
    def value(self) -> float:
        return max(self.samples) if self.samples else 0.0


@dataclass(frozen=True, slots=True)
class CodeOption:
    code: str
    label: str


@dataclass(frozen=True, slots=True)
class AgentCodes:
    """What the admin defined (``GET /api/agent/codes``): Not Ready reasons, ACW dispositions,
    whether Done needs a disposition, the ACW limit. ``loaded`` False: not (yet) known — a server
    without codes leaves the state selector and the dispositions empty, never blocking Done."""

    reasons: tuple[CodeOption, ...] = ()
    dispositions: tuple[CodeOption, ...] = ()
    disposition_required: bool = False
    acw_limit_seconds: float | None = None
    may_play_own: bool = False  # the admin lets his team play its own recordings (web player)
    # Why he pauses (agent_app.pause_reason): the admin's pause codes, and whether his team must
    # name one. Asked after the pause is sent, never before (the pause is never held up).
    pause_reasons: tuple[CodeOption, ...] = ()
    pause_reason_required: bool = False
    loaded: bool = False


@dataclass(frozen=True, slots=True)
class DesktopState:
    logged_in: bool = False
    agent: UserInfo | None = None
    token_expires_at: float | None = None
    call: CallInfo | None = None
    pending: Pending = Pending.NONE
    last_error: str = ""
    # A pause/resume got 504: the server did part of it (voice) without the recorder's ack.
    unconfirmed: Pending = Pending.NONE
    # Last screen.* command for the current call that no CallInfo has answered yet.
    screen_command: str = ""
    channel: ChannelState = ChannelState.OFFLINE
    channel_detail: str = ""
    clock: ClockOffset = field(default_factory=ClockOffset)
    last_seq: int = 0
    seq_gaps: int = 0
    dropped_events: int = 0
    ignored_events: int = 0
    codes: AgentCodes = field(default_factory=AgentCodes)
    # The agent's own choice as the server stored it (On call and ACW come from the call).
    availability: str = "ready"  # ready, not_ready
    reason_code: str = ""
    # The disposition chosen in ACW for the current call ("" none yet); the notes stay in the
    # ACW panel's editor until Done sends both.
    disposition: str = ""


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


def agent_state(state: DesktopState) -> AgentState:
    if not state.logged_in:
        return AgentState.LOGGED_OUT
    call = state.call
    if call is None or call.phase == Phase.DONE:
        return AgentState.NOT_READY if state.availability == "not_ready" else AgentState.READY
    if call.phase == Phase.ACW:
        return AgentState.AFTER_CALL_WORK
    return AgentState.PAUSED if call.paused else AgentState.ON_CALL


# The secure pause's states from which Resume is offered: every state where the voice is held.
RESUMABLE = frozenset({PauseState.REQUESTED, PauseState.PAUSED, PauseState.UNCONFIRMED})


def pause_state(state: DesktopState) -> PauseState:
    """The secure pause as the desktop knows it: the server's word (``CallInfo.pause``), and
    until its resync arrives, what a 504 said (the voice is held, the screen not confirmed)."""
    call = state.call
    if call is None:
        return PauseState.RECORDING
    if call.phase != Phase.ACTIVE or call.pause != PauseState.RECORDING:
        return call.pause
    if state.unconfirmed == Pending.PAUSING:
        return PauseState.UNCONFIRMED
    if call.voice == VoiceState.PAUSED:  # a server that sends no pause state: the voice is held
        return PauseState.REQUESTED
    return PauseState.RECORDING


def can_pause(state: DesktopState) -> bool:
    call = state.call
    return (
        state.logged_in
        and state.pending == Pending.NONE
        and call is not None
        and call.phase == Phase.ACTIVE
        and pause_state(state) == PauseState.RECORDING
        # A failed (or stopped) voice recording has nothing left to pause: the server says 409.
        and call.voice == VoiceState.RECORDING
    )


def can_resume(state: DesktopState) -> bool:
    """Resume always works while the voice is held — requested, paused or unconfirmed — so the
    button never gets stuck on a pause the recorder did not confirm."""
    call = state.call
    return (
        state.logged_in
        and state.pending == Pending.NONE
        and call is not None
        and call.phase == Phase.ACTIVE
        and pause_state(state) in RESUMABLE
    )


def pause_means_resume(state: DesktopState) -> bool:
    """What the one Pause/Resume button does when clicked now."""
    return pause_state(state) in RESUMABLE


def can_finish(state: DesktopState) -> bool:
    """Done ends after-call work; where the admin requires a disposition, only with one."""
    if state.pending != Pending.NONE or agent_state(state) != AgentState.AFTER_CALL_WORK:
        return False
    return not state.codes.disposition_required or bool(state.disposition)


# The states the agent picks himself; On call, paused and ACW come from the call and end with it.
SELECTABLE_STATES = frozenset({AgentState.READY, AgentState.NOT_READY})


def can_choose_availability(state: DesktopState) -> bool:
    """Ready / Not Ready are chosen only between calls: during a call and its after-call work
    the selector shows that state, and Ready comes back with Done, not before."""
    return (
        state.logged_in
        and state.pending == Pending.NONE
        and state.codes.loaded
        and agent_state(state) in SELECTABLE_STATES
    )


def valid_availability(state: DesktopState, choice: str, reason_code: str) -> bool:
    """Ready without a reason, or Not Ready with one of the admin's (active) reasons."""
    if choice == "ready":
        return not reason_code
    return choice == "not_ready" and any(r.code == reason_code for r in state.codes.reasons)


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


def parse_codes(raw: Any) -> AgentCodes:
    """`AgentCodes` from ``GET /api/agent/codes``; ValueError if malformed."""
    data = _as_dict(raw)
    try:
        limit = data.get("acw_limit_seconds")
        return AgentCodes(
            reasons=tuple(CodeOption(str(c["code"]), str(c["label"])) for c in data.get("reason_codes", [])),
            dispositions=tuple(
                CodeOption(str(c["code"]), str(c["label"])) for c in data.get("disposition_codes", [])
            ),
            disposition_required=bool(data.get("disposition_required", False)),
            acw_limit_seconds=None if limit is None else float(limit),
            may_play_own=bool(data.get("may_play_own_recordings", False)),
            pause_reasons=tuple(
                CodeOption(str(c["code"]), str(c["label"])) for c in data.get("pause_codes", [])
            ),
            pause_reason_required=bool(data.get("pause_reason_required", False)),
            loaded=True,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed agent codes: {exc}") from exc


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
