"""The agent desktop's state (pure: no Qt, no network): one immutable `DesktopState`, the enums
it is made of, the server-clock estimate, and `agent_state`, the state the agent is in.

`agent_app.model` changes it (the reducer); `agent_app.availability` and `agent_app.view` read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agent_app.agent_codes import AgentCodes
from tandem_protocol import CallInfo, Phase, UserInfo

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


def agent_state(state: DesktopState) -> AgentState:
    if not state.logged_in:
        return AgentState.LOGGED_OUT
    call = state.call
    if call is None or call.phase == Phase.DONE:
        return AgentState.NOT_READY if state.availability == "not_ready" else AgentState.READY
    if call.phase == Phase.ACW:
        return AgentState.AFTER_CALL_WORK
    return AgentState.PAUSED if call.paused else AgentState.ON_CALL
