"""How the call's recording is shown (pure: no Qt): the voice and screen legs' texts and tones,
and the secure pause's button and warning, derived from a `DesktopState`.

The pause button texts and the rule that "paused" appears only after the server confirmed are
part of the desktop's contract with the end-to-end tests. `agent_app.view` puts these into the
`DesktopView`; `Tone` and `NO_VALUE` are the words the whole view paints and fills with.
The texts are translated when a widget shows them (`agent_app.i18n.VIEW_TEXTS` lists them).
"""

from __future__ import annotations

from enum import StrEnum

from agent_app.desktop_state import DesktopState, Pending
from agent_app.secure_pause import can_pause, can_resume, pause_state
from tandem_protocol import EventType, ScreenState, VoiceState
from tandem_protocol.events import PauseState

PAUSE = "Pause"
PAUSING = "Pausing…"
RESUME = "Resume"
RESUMING = "Resuming…"
# The pause could not be confirmed (a leg is named in the warning): Resume still works.
RESUME_UNCONFIRMED = "Resume (pause NOT confirmed)"


class Tone(StrEnum):
    """The colour of a state in words: what the call panel paints it with."""

    OK = "ok"  # recording
    PAUSED = "paused"  # safely paused
    PENDING = "pending"  # in progress (starting, pausing, uploading)
    ALERT = "alert"  # not recorded when it should be, or not confirmed: the agent must see it
    NEUTRAL = "neutral"  # nothing to record (no call, not sampled, saved)


NO_VALUE = "—"

_VOICE_TEXT = {
    VoiceState.RECORDING: "Voice: recording",
    VoiceState.STOPPED: "Voice: stopped (saved)",
    VoiceState.FAILED: "Voice: recording FAILED",
}
_SCREEN_TEXT = {
    ScreenState.OFF: "Screen: not sampled for this call",
    ScreenState.REQUESTED: "Screen: starting…",
    ScreenState.RECORDING: "Screen: recording",
    ScreenState.PAUSED: "Screen: paused",
    ScreenState.STOPPED: "Screen: stopped, upload pending",
    ScreenState.UPLOADED: "Screen: stopped (uploaded)",
    ScreenState.FAILED: "Screen: recording FAILED",
    ScreenState.NO_RECORDER: "Screen: NOT recorded — the screen recorder is not connected",
}
_CAPTURING = frozenset({ScreenState.REQUESTED, ScreenState.RECORDING})
_VOICE_TONE = {
    VoiceState.RECORDING: Tone.OK,
    VoiceState.PAUSED: Tone.PENDING,
    VoiceState.STOPPED: Tone.NEUTRAL,
    VoiceState.FAILED: Tone.ALERT,
}
_SCREEN_TONE = {
    ScreenState.OFF: Tone.NEUTRAL,
    ScreenState.REQUESTED: Tone.PENDING,
    ScreenState.RECORDING: Tone.OK,
    ScreenState.PAUSED: Tone.PAUSED,
    ScreenState.STOPPED: Tone.PENDING,
    ScreenState.UPLOADED: Tone.NEUTRAL,
    ScreenState.FAILED: Tone.ALERT,
    ScreenState.NO_RECORDER: Tone.ALERT,
}
_SCREEN_COMMAND_TEXT = {
    EventType.SCREEN_START: "Screen: starting…",
    EventType.SCREEN_PAUSE: "Screen: stopping capture…",
    EventType.SCREEN_RESUME: "Screen: restarting capture…",
    EventType.SCREEN_STOP: "Screen: finishing…",
}


def voice_text(state: DesktopState) -> str:
    call = state.call
    if call is None:
        return NO_VALUE
    pause = pause_state(state)
    if pause == PauseState.PAUSED:
        return "Voice: paused"
    # Below, deliberately never the word "paused": the pause as a whole is not confirmed.
    if state.pending == Pending.PAUSING and pause == PauseState.RECORDING:
        return "Voice: recording — pausing…"
    if pause == PauseState.REQUESTED:  # the server holds the voice while the recorder acks
        return "Voice: on hold — waiting for the screen recorder…"
    if pause == PauseState.UNCONFIRMED:
        return "Voice: on hold — screen pause not confirmed"
    return _VOICE_TEXT.get(call.voice, f"Voice: {call.voice}")


def voice_tone(state: DesktopState) -> Tone:
    call = state.call
    if call is None:
        return Tone.NEUTRAL
    pause = pause_state(state)
    if pause == PauseState.PAUSED:
        return Tone.PAUSED
    if pause in (PauseState.REQUESTED, PauseState.UNCONFIRMED):
        return Tone.PENDING  # held: nothing recorded, and the pause is not complete
    return _VOICE_TONE.get(call.voice, Tone.NEUTRAL)


def screen_text(state: DesktopState) -> str:
    call = state.call
    if call is None:
        return NO_VALUE
    pause = pause_state(state)
    if pause == PauseState.UNCONFIRMED and call.screen in _CAPTURING:
        return "Screen: pause NOT confirmed — it may still be recording"
    if state.screen_command:
        return _SCREEN_COMMAND_TEXT.get(EventType(state.screen_command), NO_VALUE)
    if pause == PauseState.REQUESTED and call.screen in _CAPTURING:
        return "Screen: pausing…"
    return _SCREEN_TEXT.get(call.screen, f"Screen: {call.screen}")


def screen_tone(state: DesktopState) -> Tone:
    call = state.call
    if call is None:
        return Tone.NEUTRAL
    pause = pause_state(state)
    if pause == PauseState.UNCONFIRMED and call.screen in _CAPTURING:
        return Tone.ALERT
    if state.screen_command or (pause == PauseState.REQUESTED and call.screen in _CAPTURING):
        return Tone.PENDING
    return _SCREEN_TONE.get(call.screen, Tone.NEUTRAL)


def pause_warning(state: DesktopState) -> str:
    """The warning of a pause that could not be confirmed, naming the leg."""
    if pause_state(state) != PauseState.UNCONFIRMED or state.call is None:
        return ""
    return state.call.pause_warning or "Screen pause NOT confirmed: the screen may still be recording"


def pause_button(state: DesktopState) -> tuple[str, bool]:
    """The button follows the secure pause: Pause, Resume, or Resume with the warning — never a
    Pause that does nothing while the voice is held."""
    if state.pending == Pending.PAUSING:
        return PAUSING, False
    if state.pending == Pending.RESUMING:
        return RESUMING, False
    pause = pause_state(state)
    if pause == PauseState.UNCONFIRMED:
        return RESUME_UNCONFIRMED, can_resume(state)
    if pause in (PauseState.REQUESTED, PauseState.PAUSED):
        return RESUME, can_resume(state)
    return PAUSE, can_pause(state)


def row_value(text: str, caption: str) -> str:
    """A state sentence for the call panel's row captioned ``caption``: "Voice: recording" in the
    row "Voice" reads "Recording" (the compact call bar, without captions, keeps the sentence)."""
    prefix = f"{caption}: "
    if not text.startswith(prefix):
        return text
    rest = text[len(prefix) :]
    return rest[:1].upper() + rest[1:]
