"""What the desktop shows, derived from a `DesktopState` (pure: no Qt).

The widgets copy these strings and flags verbatim, so every rule about wording and which
button is usable when lives here and is tested without a window. The pause button texts and
the rule that "paused" appears only after the server confirmed are part of the desktop's
contract with the end-to-end tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent_app.model import (
    AgentState,
    ChannelState,
    DesktopState,
    Pending,
    agent_state,
    can_finish,
    can_pause,
    can_resume,
)
from tandem_protocol import CallInfo, EventType, ScreenState, VoiceState

PAUSE = "Pause"
PAUSING = "Pausing…"
RESUME = "Resume"
RESUMING = "Resuming…"
NO_VALUE = "—"

AGENT_STATE_TEXT = {
    AgentState.LOGGED_OUT: "Logged out",
    AgentState.READY: "Ready",
    AgentState.ON_CALL: "On call",
    AgentState.PAUSED: "On call — recording paused",
    AgentState.AFTER_CALL_WORK: "After-call work",
}
_VOICE_TEXT = {
    VoiceState.RECORDING: "Voice: recording",
    VoiceState.STOPPED: "Voice: saved",
    VoiceState.FAILED: "Voice: recording FAILED",
}
_SCREEN_TEXT = {
    ScreenState.OFF: "Screen: not recorded for this call",
    ScreenState.REQUESTED: "Screen: starting…",
    ScreenState.RECORDING: "Screen: recording",
    ScreenState.PAUSED: "Screen: paused",
    ScreenState.STOPPED: "Screen: stopped, upload pending",
    ScreenState.UPLOADED: "Screen: uploaded",
    ScreenState.FAILED: "Screen: recording FAILED",
    ScreenState.NO_RECORDER: "Screen: NOT recorded — the screen recorder is not connected",
}
_SCREEN_COMMAND_TEXT = {
    EventType.SCREEN_START: "Screen: starting…",
    EventType.SCREEN_PAUSE: "Screen: stopping capture…",
    EventType.SCREEN_RESUME: "Screen: restarting capture…",
    EventType.SCREEN_STOP: "Screen: finishing…",
}
_CHANNEL_TEXT = {
    ChannelState.OFFLINE: "Not connected",
    ChannelState.CONNECTING: "Connecting…",
    ChannelState.CONNECTED: "Connected",
    ChannelState.RECONNECTING: "Connection lost — reconnecting…",
    ChannelState.REFUSED: "The server refused the event connection",
}
_PENDING_TEXT = {
    Pending.LOGGING_IN: "Logging in…",
    Pending.LOGGING_OUT: "Logging out…",
    Pending.PAUSING: "Pausing recording…",
    Pending.RESUMING: "Resuming recording…",
    Pending.FINISHING: "Finishing after-call work…",
}


class Page(StrEnum):
    LOGIN = "login"
    WORKSPACE = "workspace"


@dataclass(frozen=True, slots=True)
class DesktopView:
    page: Page
    login_enabled: bool
    login_error: str
    agent_name: str
    agent_state: AgentState
    agent_state_text: str
    has_call: bool
    caller_text: str
    dn_text: str
    elapsed_text: str
    voice_text: str
    screen_text: str
    pause_label: str
    pause_enabled: bool
    done_enabled: bool
    logout_enabled: bool
    status_text: str


def format_duration(seconds: float) -> str:
    """``MM:SS`` below an hour, ``H:MM:SS`` above; negative (clock skew) shows as zero."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def elapsed_seconds(call: CallInfo, server_now: float) -> float:
    """Talk time: from answer (or start) to the end of the call, or to now while it lasts."""
    start = call.answered_at if call.answered_at is not None else call.started_at
    end = call.ended_at if call.ended_at is not None else server_now
    return max(0.0, end - start)


def elapsed_text(state: DesktopState, local_now: float) -> str:
    if state.call is None:
        return NO_VALUE
    return format_duration(elapsed_seconds(state.call, local_now + state.clock.value))


def voice_text(state: DesktopState) -> str:
    call = state.call
    if call is None:
        return NO_VALUE
    if call.paused:
        return "Voice: paused"
    # Below, deliberately never the word "paused": the pause is not confirmed.
    if state.pending == Pending.PAUSING:
        if call.voice == VoiceState.PAUSED:  # the server holds the voice while the recorder acks
            return "Voice: on hold — waiting for the screen recorder…"
        return "Voice: recording — pausing…"
    if state.unconfirmed == Pending.PAUSING or call.voice == VoiceState.PAUSED:
        return "Voice: on hold — screen pause not confirmed"
    return _VOICE_TEXT.get(call.voice, f"Voice: {call.voice}")


def screen_text(state: DesktopState) -> str:
    call = state.call
    if call is None:
        return NO_VALUE
    if state.screen_command:
        return _SCREEN_COMMAND_TEXT.get(EventType(state.screen_command), NO_VALUE)
    return _SCREEN_TEXT.get(call.screen, f"Screen: {call.screen}")


def pause_button(state: DesktopState) -> tuple[str, bool]:
    if state.pending == Pending.PAUSING:
        return PAUSING, False
    if state.pending == Pending.RESUMING:
        return RESUMING, False
    if state.call is not None and state.call.paused:
        return RESUME, can_resume(state)
    return PAUSE, can_pause(state)


def status_text(state: DesktopState) -> str:
    if state.last_error:
        return state.last_error
    if state.pending in _PENDING_TEXT:
        return _PENDING_TEXT[state.pending]
    text = _CHANNEL_TEXT[state.channel]
    return f"{text}: {state.channel_detail}" if state.channel_detail else text


def build_view(state: DesktopState, local_now: float) -> DesktopView:
    call = state.call
    agent = state.agent
    current = agent_state(state)
    label, pause_enabled = pause_button(state)
    if call is not None:
        dn = f"DN {call.dn}"
    elif agent is not None and agent.dn:
        dn = f"DN {agent.dn}"
    else:
        dn = NO_VALUE
    return DesktopView(
        page=Page.WORKSPACE if state.logged_in else Page.LOGIN,
        login_enabled=not state.logged_in and state.pending == Pending.NONE,
        login_error="" if state.logged_in else state.last_error,
        agent_name=(agent.full_name or agent.username) if agent is not None else "",
        agent_state=current,
        agent_state_text=AGENT_STATE_TEXT[current],
        has_call=call is not None,
        caller_text=call.caller if call is not None else "No call",
        dn_text=dn,
        elapsed_text=elapsed_text(state, local_now),
        voice_text=voice_text(state),
        screen_text=screen_text(state),
        pause_label=label,
        pause_enabled=pause_enabled,
        done_enabled=can_finish(state),
        logout_enabled=state.logged_in and state.pending != Pending.LOGGING_OUT,
        status_text=status_text(state),
    )
