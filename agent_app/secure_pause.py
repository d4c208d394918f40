"""The secure pause as the desktop knows it (pure: no Qt, no network): which pause state the call
is in, and when Pause and Resume are offered.

The server's word (``CallInfo.pause``) decides; until its resync arrives, a 504 on pause means
the voice is held but the screen not confirmed. Resume is offered in every state where the voice
is held, so the one Pause/Resume button never gets stuck on a pause the recorder did not confirm.
"""

from __future__ import annotations

from agent_app.desktop_state import DesktopState, Pending
from tandem_protocol import CallInfo, Phase, VoiceState
from tandem_protocol.events import PauseState

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


def _idle_in_talk(state: DesktopState) -> CallInfo | None:
    """The call, while the agent is logged in, no request is in flight and the call is in talk
    (not yet in after-call work): the only time Pause or Resume may be sent."""
    call = state.call
    if not state.logged_in or state.pending != Pending.NONE or call is None or call.phase != Phase.ACTIVE:
        return None
    return call


def can_pause(state: DesktopState) -> bool:
    call = _idle_in_talk(state)
    return (
        call is not None
        and pause_state(state) == PauseState.RECORDING
        # A failed (or stopped) voice recording has nothing left to pause: the server says 409.
        and call.voice == VoiceState.RECORDING
    )


def can_resume(state: DesktopState) -> bool:
    """Resume always works while the voice is held — requested, paused or unconfirmed — so the
    button never gets stuck on a pause the recorder did not confirm."""
    return _idle_in_talk(state) is not None and pause_state(state) in RESUMABLE


def pause_means_resume(state: DesktopState) -> bool:
    """What the one Pause/Resume button does when clicked now."""
    return pause_state(state) in RESUMABLE
