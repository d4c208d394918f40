"""What the desktop shows, derived from a `DesktopState` (pure: no Qt): the `DesktopView` the
widgets render.

The widgets copy these strings and flags verbatim, so every rule about wording and which
button is usable when lives here and is tested without a window. How the recording itself is
shown (the voice and screen legs, the secure pause's button and warning) is
`agent_app.recording_view`; this module adds the agent's state, the status line, the caller and
attached data, and after-call work, and assembles the view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from agent_app.availability import can_choose_availability, state_choice, state_choices
from agent_app.desktop_state import AgentState, ChannelState, DesktopState, Pending, agent_state
from agent_app.model import can_finish
from agent_app.recording_view import (
    NO_VALUE,
    Tone,
    pause_button,
    pause_warning,
    row_value,
    screen_text,
    screen_tone,
    voice_text,
    voice_tone,
)
from agent_app.secure_pause import pause_state
from tandem_protocol import CallInfo, Phase
from tandem_protocol.events import PauseState

AGENT_STATE_TEXT = {
    AgentState.LOGGED_OUT: "Logged out",
    AgentState.READY: "Ready",
    AgentState.NOT_READY: "Not Ready",
    AgentState.ON_CALL: "On call",
    AgentState.PAUSED: "On call — recording paused",
    AgentState.AFTER_CALL_WORK: "After-call work",
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
    Pending.CHANGING_STATE: "Changing your state…",
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
    voice_text: str  # a sentence ("Voice: recording"): the compact call bar has no captions
    screen_text: str
    voice_value: str  # the same for the call panel's captioned row "Voice" ("Recording")
    screen_value: str
    voice_tone: Tone
    screen_tone: Tone
    pause_warning: str  # the leg a pause could not confirm, in words (empty: none)
    pause_label: str
    pause_enabled: bool
    done_enabled: bool
    logout_enabled: bool
    status_text: str
    # The call panel: what the SIP side said about the call.
    caller_name: str = NO_VALUE
    caller_number: str = NO_VALUE
    direction_text: str = NO_VALUE
    service_text: str = NO_VALUE
    queue_text: str = NO_VALUE
    metadata_text: str = ""  # other attached data, one "key: value" a line
    # The state selector (Ready / Not Ready ▸ reason).
    state_choices: tuple[tuple[str, str, str], ...] = ()  # (state, reason code, label)
    state_choice: tuple[str, str] = ("ready", "")
    state_selector_enabled: bool = False
    # After-call work.
    acw_visible: bool = False
    acw_elapsed_text: str = NO_VALUE
    acw_countdown_text: str = ""
    acw_countdown_tone: Tone = Tone.NEUTRAL
    disposition_options: tuple[tuple[str, str], ...] = ()  # (code, label)
    disposition: str = ""
    disposition_label: str = "Disposition"
    acw_hint: str = ""
    my_recordings_visible: bool = False


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


def agent_state_text(state: DesktopState) -> str:
    current = agent_state(state)
    if current == AgentState.ON_CALL:
        pause = pause_state(state)
        if pause == PauseState.UNCONFIRMED:
            return "On call — pause NOT confirmed"
        if pause == PauseState.REQUESTED:
            return "On call — pausing…"
    return AGENT_STATE_TEXT[current]


def status_text(state: DesktopState) -> str:
    if state.last_error:
        return state.last_error
    if warning := pause_warning(state):
        return warning
    if state.pending in _PENDING_TEXT:
        return _PENDING_TEXT[state.pending]
    text = _CHANNEL_TEXT[state.channel]
    return f"{text}: {state.channel_detail}" if state.channel_detail else text


# Attached-data keys shown in their own rows of the call panel (X-Recording-Queue etc.).
QUEUE_KEYS = ("queue", "acd_queue", "skill")
SERVICE_KEYS = ("service", "service_line", "line", "campaign")
DIRECTION_TEXT = {"inbound": "Inbound", "outbound": "Outbound"}
ACW_WARN_SECONDS = 30.0  # the countdown turns red this close to the limit
_CALLER = re.compile(r"^\s*(?:\"?(?P<name>[^<\"]*?)\"?\s*)?<(?P<number>[^>]*)>\s*$")


def split_caller(caller: str) -> tuple[str, str]:
    """(name, number) from the server's caller text: ``Name <number>``, or a bare number/name."""
    match = _CALLER.match(caller)
    if match:
        name, number = (match.group("name") or "").strip(), match.group("number").strip()
        return name or NO_VALUE, number or NO_VALUE
    text = caller.strip()
    if not text:
        return NO_VALUE, NO_VALUE
    if re.fullmatch(r"[+\d\s().*#-]+", text):
        return NO_VALUE, text
    return text, NO_VALUE


def _first(metadata: dict[str, str], keys: tuple[str, ...]) -> str:
    lowered = {k.lower(): v for k, v in metadata.items()}
    return next((lowered[k] for k in keys if lowered.get(k)), "")


def other_metadata(metadata: dict[str, str]) -> str:
    shown = {*QUEUE_KEYS, *SERVICE_KEYS, "direction"}
    return "\n".join(f"{k}: {v}" for k, v in sorted(metadata.items()) if k.lower() not in shown)


def agent_state_text_full(state: DesktopState) -> str:
    """The header's state: Not Ready names the reason."""
    text = agent_state_text(state)
    if agent_state(state) == AgentState.NOT_READY and state.reason_code:
        label = next((r.label for r in state.codes.reasons if r.code == state.reason_code), state.reason_code)
        return f"Not Ready — {label}"
    return text


def acw_countdown(state: DesktopState, local_now: float) -> tuple[str, Tone]:
    """Time left before the admin's ACW limit ends the after-call work, on the server's clock."""
    call = state.call
    if call is None or call.phase != Phase.ACW or call.acw_deadline is None:
        return "", Tone.NEUTRAL
    left = call.acw_deadline - (local_now + state.clock.value)
    if left <= 0:
        return "ACW limit reached — finishing…", Tone.ALERT
    tone = Tone.ALERT if left <= ACW_WARN_SECONDS else Tone.PENDING
    return f"Time left: {format_duration(left + 0.999)}", tone


def acw_elapsed_text(state: DesktopState, local_now: float) -> str:
    call = state.call
    if call is None or call.phase != Phase.ACW:
        return NO_VALUE
    start = call.ended_at if call.ended_at is not None else call.started_at
    return format_duration(local_now + state.clock.value - start)


def acw_hint(state: DesktopState) -> str:
    if agent_state(state) != AgentState.AFTER_CALL_WORK:
        return ""
    if state.codes.disposition_required and not state.disposition:
        if not state.codes.dispositions:
            return "A disposition is required, but none is defined: ask your administrator."
        return "Choose a disposition, then Done."
    return ""


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
    metadata = call.metadata if call is not None else {}
    name, number = split_caller(call.caller) if call is not None else (NO_VALUE, NO_VALUE)
    countdown, countdown_tone = acw_countdown(state, local_now)
    codes = state.codes
    return DesktopView(
        page=Page.WORKSPACE if state.logged_in else Page.LOGIN,
        login_enabled=not state.logged_in and state.pending == Pending.NONE,
        login_error="" if state.logged_in else state.last_error,
        agent_name=(agent.full_name or agent.username) if agent is not None else "",
        agent_state=current,
        agent_state_text=agent_state_text_full(state),
        has_call=call is not None,
        caller_text=call.caller if call is not None else "No call",
        dn_text=dn,
        elapsed_text=elapsed_text(state, local_now),
        voice_text=voice_text(state),
        screen_text=screen_text(state),
        voice_value=row_value(voice_text(state), "Voice"),
        screen_value=row_value(screen_text(state), "Screen"),
        voice_tone=voice_tone(state),
        screen_tone=screen_tone(state),
        pause_warning=pause_warning(state),
        pause_label=label,
        pause_enabled=pause_enabled,
        done_enabled=can_finish(state),
        logout_enabled=state.logged_in and state.pending != Pending.LOGGING_OUT,
        status_text=status_text(state),
        caller_name=name,
        caller_number=number,
        direction_text=DIRECTION_TEXT.get(call.direction, "Not known") if call is not None else NO_VALUE,
        service_text=_first(metadata, SERVICE_KEYS) or NO_VALUE,
        queue_text=_first(metadata, QUEUE_KEYS) or NO_VALUE,
        metadata_text=other_metadata(metadata),
        state_choices=state_choices(state),
        state_choice=state_choice(state),
        state_selector_enabled=can_choose_availability(state),
        acw_visible=current == AgentState.AFTER_CALL_WORK,
        acw_elapsed_text=acw_elapsed_text(state, local_now),
        acw_countdown_text=countdown,
        acw_countdown_tone=countdown_tone,
        disposition_options=tuple((d.code, d.label) for d in codes.dispositions),
        disposition=state.disposition,
        disposition_label="Disposition (required)"
        if codes.disposition_required
        else "Disposition (optional)",
        acw_hint=acw_hint(state),
        my_recordings_visible=state.logged_in and codes.may_play_own,
    )
