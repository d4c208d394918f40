"""The secure pause's state machine, transition by transition: every state × every event, with the
next state (each leg and the whole) and the effects asked for."""

from __future__ import annotations

import itertools

import pytest

from server.calls.lifecycle import Interaction
from server.calls.secure_pause import (
    CallEnd,
    Effect,
    Event,
    LegState,
    RecorderGone,
    Request,
    Resume,
    ScreenConfirmed,
    ScreenFailed,
    ScreenTimeout,
    ScreenUnreachable,
    SecurePause,
    step,
)
from tandem_protocol.events import PauseState, ScreenState, VoiceState

L = LegState
E = Effect
W = "an earlier warning"

STATES: dict[str, SecurePause] = {
    "recording": SecurePause(),
    "requested": SecurePause(L.SAFE, L.PENDING, 10.0),
    "paused": SecurePause(L.SAFE, L.SAFE, 10.0),
    "paused_no_screen": SecurePause(L.SAFE, L.NOT_CAPTURED, 10.0),
    "unconfirmed": SecurePause(L.SAFE, L.UNCONFIRMED, 10.0, W),
    "ended": SecurePause(ended=True),
}
EVENTS: dict[str, Event] = {
    "request_screen": Request(20.0, screen_captured=True),
    "request_no_screen": Request(20.0, screen_captured=False),
    "confirmed": ScreenConfirmed(),
    "unreachable": ScreenUnreachable(),
    "timeout": ScreenTimeout(1.0),
    "failed": ScreenFailed("encoder crashed"),
    "recorder_gone": RecorderGone(),
    "resume": Resume(30.0),
    "call_end": CallEnd(40.0),
}
TIMEOUT_WARNING = (
    "Screen pause NOT confirmed: the screen recorder did not answer within 1 s "
    "— the screen may still be recording"
)
FAILED_WARNING = "Screen pause NOT confirmed: the screen recorder failed (encoder crashed)"
UNREACHABLE_WARNING = (
    "Screen pause NOT confirmed: the screen recorder is not connected — if it is still capturing, "
    "it cuts this pause from its recording when it reconnects"
)
RESUMED = (SecurePause(), (E.RESUME_VOICE, E.RESUME_SCREEN, E.CLOSE_SPAN, E.SHOW))
ENDED_OPEN = (SecurePause(ended=True), (E.CLOSE_SPAN, E.SHOW))
SAME: tuple[None, tuple[Effect, ...]] = (None, ())  # no change, nothing to do

# (state, event) -> (next state or None for "unchanged", effects)
TABLE: dict[tuple[str, str], tuple[SecurePause | None, tuple[Effect, ...]]] = {
    # -- recording: only a request or the call's end do anything
    ("recording", "request_screen"): (
        SecurePause(L.SAFE, L.PENDING, 20.0),
        (E.SILENCE_VOICE, E.OPEN_SPAN, E.PAUSE_SCREEN, E.SHOW),
    ),
    ("recording", "request_no_screen"): (
        SecurePause(L.SAFE, L.NOT_CAPTURED, 20.0),
        (E.SILENCE_VOICE, E.OPEN_SPAN, E.SHOW),
    ),
    ("recording", "confirmed"): SAME,
    ("recording", "unreachable"): SAME,
    ("recording", "timeout"): SAME,
    ("recording", "failed"): SAME,
    ("recording", "recorder_gone"): SAME,
    ("recording", "resume"): SAME,  # resuming what is not paused is no error
    ("recording", "call_end"): (SecurePause(ended=True), (E.SHOW,)),
    # -- requested: voice safe, screen confirming
    ("requested", "request_screen"): SAME,
    ("requested", "request_no_screen"): SAME,
    ("requested", "confirmed"): (SecurePause(L.SAFE, L.SAFE, 10.0), (E.SHOW,)),
    ("requested", "unreachable"): (
        SecurePause(L.SAFE, L.UNCONFIRMED, 10.0, UNREACHABLE_WARNING),
        (E.WARN, E.SHOW),
    ),
    ("requested", "timeout"): (
        SecurePause(L.SAFE, L.UNCONFIRMED, 10.0, TIMEOUT_WARNING),
        (E.WARN, E.SHOW),
    ),
    ("requested", "failed"): (
        SecurePause(L.SAFE, L.UNCONFIRMED, 10.0, FAILED_WARNING),
        (E.WARN, E.SHOW),
    ),
    ("requested", "recorder_gone"): (SecurePause(L.SAFE, L.NOT_CAPTURED, 10.0), (E.SHOW,)),
    ("requested", "resume"): RESUMED,
    ("requested", "call_end"): ENDED_OPEN,
    # -- paused, screen confirmed
    ("paused", "request_screen"): SAME,
    ("paused", "request_no_screen"): SAME,
    ("paused", "confirmed"): SAME,
    ("paused", "unreachable"): SAME,
    ("paused", "timeout"): SAME,  # a waiter timing out after the ack changes nothing
    ("paused", "failed"): SAME,  # confirmed paused: a later capture failure records nothing either
    ("paused", "recorder_gone"): SAME,
    ("paused", "resume"): RESUMED,
    ("paused", "call_end"): ENDED_OPEN,
    # -- paused, nothing captures the screen: no screen.resume to send
    ("paused_no_screen", "request_screen"): SAME,
    ("paused_no_screen", "request_no_screen"): SAME,
    ("paused_no_screen", "confirmed"): SAME,
    ("paused_no_screen", "unreachable"): SAME,
    ("paused_no_screen", "timeout"): SAME,
    ("paused_no_screen", "failed"): SAME,
    ("paused_no_screen", "recorder_gone"): SAME,
    ("paused_no_screen", "resume"): (SecurePause(), (E.RESUME_VOICE, E.CLOSE_SPAN, E.SHOW)),
    ("paused_no_screen", "call_end"): ENDED_OPEN,
    # -- unconfirmed: warned; a late ack or the recorder's absence settles it; resume always works
    ("unconfirmed", "request_screen"): SAME,
    ("unconfirmed", "request_no_screen"): SAME,
    ("unconfirmed", "confirmed"): (SecurePause(L.SAFE, L.SAFE, 10.0), (E.CLEAR_WARNING, E.SHOW)),
    ("unconfirmed", "timeout"): SAME,
    ("unconfirmed", "unreachable"): SAME,
    ("unconfirmed", "failed"): SAME,
    ("unconfirmed", "recorder_gone"): (
        SecurePause(L.SAFE, L.NOT_CAPTURED, 10.0),
        (E.CLEAR_WARNING, E.SHOW),
    ),
    ("unconfirmed", "resume"): (
        SecurePause(),
        (E.RESUME_VOICE, E.RESUME_SCREEN, E.CLOSE_SPAN, E.CLEAR_WARNING, E.SHOW),
    ),
    ("unconfirmed", "call_end"): (SecurePause(ended=True), (E.CLOSE_SPAN, E.CLEAR_WARNING, E.SHOW)),
    # -- ended: final
    **{("ended", event): SAME for event in EVENTS},
}
WHOLE = {
    "recording": PauseState.RECORDING,
    "requested": PauseState.REQUESTED,
    "paused": PauseState.PAUSED,
    "paused_no_screen": PauseState.PAUSED,
    "unconfirmed": PauseState.UNCONFIRMED,
    "ended": PauseState.ENDED,
}


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TABLE) == set(itertools.product(STATES, EVENTS))


@pytest.mark.parametrize(("state_name", "event_name"), sorted(TABLE))
def test_transition(state_name: str, event_name: str) -> None:
    before = STATES[state_name]
    expected, effects = TABLE[(state_name, event_name)]
    result = step(before, EVENTS[event_name])
    assert result.state == (before if expected is None else expected)
    assert result.effects == effects


@pytest.mark.parametrize("name", sorted(STATES))
def test_whole_state_of_each_leg_combination(name: str) -> None:
    assert STATES[name].whole is WHOLE[name]


def test_paused_only_when_both_legs_are_safe() -> None:
    for voice, screen in itertools.product(LegState, LegState):
        whole = SecurePause(voice, screen, 1.0).whole
        safe = {L.SAFE, L.NOT_CAPTURED}
        assert (whole is PauseState.PAUSED) == (voice in safe and screen in safe), (voice, screen)
        if L.UNCONFIRMED in (voice, screen):
            assert whole is PauseState.UNCONFIRMED


def test_resume_works_from_every_pausing_state_and_resumes_the_voice() -> None:
    for name in ("requested", "paused", "paused_no_screen", "unconfirmed"):
        result = step(STATES[name], Resume(5.0))
        assert result.state.whole is PauseState.RECORDING, name
        assert result.effects[0] is E.RESUME_VOICE, name  # the voice first, before anything else


# -- the machine inside the call's lifecycle ------------------------------------------------------


def _call(screen: bool = True) -> Interaction:
    it = Interaction("i1", "c1", 7, "1001", "Carol", "1001", started_at=100.0, screen_decision=screen)
    it.answer(101.0)
    return it


def test_lifecycle_pause_with_a_recorder_waits_for_the_screen() -> None:
    it = _call()
    it.screen_reported(ScreenState.RECORDING)
    assert it.begin_pause(105.0) is True
    info = it.to_info()
    assert info.voice is VoiceState.PAUSED and info.pause is PauseState.REQUESTED and not info.paused
    it.screen_reported(ScreenState.PAUSED)
    assert it.paused and it.to_info().pause is PauseState.PAUSED


def test_lifecycle_pause_with_no_recorder_for_the_call_is_paused_at_once() -> None:
    it = _call()
    it.recorder_lost()  # gone past its grace: screen no_recorder, nothing captures it
    assert it.begin_pause(105.0, recorder=False) is False  # nothing to ask, nothing to wait for
    assert it.paused and it.voice is VoiceState.PAUSED and it.to_info().pause_warning == ""


def test_lifecycle_pause_while_the_capturing_recorder_is_disconnected_is_unconfirmed_at_once() -> None:
    it = _call()
    it.screen_reported(ScreenState.RECORDING)  # captured; its connection then dropped (in its grace)
    assert it.begin_pause(105.0, recorder=False) is False  # no ack can come: nothing to wait for
    info = it.to_info()
    assert info.voice is VoiceState.PAUSED and info.pause is PauseState.UNCONFIRMED
    assert info.pause_warning == UNREACHABLE_WARNING
    assert it.unconfirmed_pause_start() == 105.0  # told again when the recorder connects
    it.screen_reported(ScreenState.PAUSED)
    assert it.paused and it.unconfirmed_pause_start() is None


def test_lifecycle_pause_right_after_a_resume_waits_for_a_new_ack_not_the_stale_one() -> None:
    it = _call()
    it.screen_reported(ScreenState.RECORDING)
    it.begin_pause(105.0)
    it.screen_reported(ScreenState.PAUSED)
    assert it.begin_resume(106.0) is True and it.screen is ScreenState.REQUESTED  # resume in flight
    # Paused again before the resume's ack: the recorder must be asked, the pause is not complete.
    assert it.begin_pause(106.1) is True and not it.paused
    it.screen_reported(ScreenState.RECORDING)  # the resume's ack
    assert not it.paused
    it.screen_reported(ScreenState.PAUSED)  # the new pause's ack
    assert it.paused


def test_lifecycle_unconfirmed_pause_is_warned_stored_and_resumable() -> None:
    it = _call()
    it.screen_reported(ScreenState.RECORDING)
    it.begin_pause(105.0)
    warning = it.screen_not_confirmed(1.0, 106.0)
    assert warning == TIMEOUT_WARNING and it.to_info().pause_warning == TIMEOUT_WARNING
    assert it.pause_warnings == [
        {"started_at": 105.0, "leg": "screen", "warning": TIMEOUT_WARNING, "at": 106.0}
    ]
    assert it.screen_not_confirmed(1.0, 107.0) == ""  # a second waiter's timeout: no second warning
    it.begin_resume(108.0)
    assert it.voice is VoiceState.RECORDING and it.to_info().pause is PauseState.RECORDING
    assert it.pauses[-1].ended_at == 108.0 and it.to_info().pause_warning == ""


def test_lifecycle_call_end_closes_a_pause_that_was_never_confirmed() -> None:
    it = _call()
    it.screen_reported(ScreenState.RECORDING)
    it.begin_pause(105.0)
    it.screen_not_confirmed(1.0, 106.0)
    it.end_call(110.0, acw_limit=30)
    assert it.pauses[-1].ended_at == 110.0 and it.to_info().pause is PauseState.ENDED
    assert not it.paused and it.to_info().pause_warning == ""


def test_lifecycle_recorder_lost_mid_pause_makes_the_screen_safe() -> None:
    it = _call()
    it.screen_reported(ScreenState.RECORDING)
    it.begin_pause(105.0)
    it.screen_not_confirmed(1.0, 106.0)
    assert it.recorder_lost() is True
    assert it.paused and it.screen is ScreenState.NO_RECORDER and it.to_info().pause_warning == ""


def test_lifecycle_recorder_failure_while_confirming_is_a_warning() -> None:
    it = _call()
    it.screen_reported(ScreenState.RECORDING)
    it.begin_pause(105.0)
    it.screen_reported(ScreenState.FAILED, "disk full")
    info = it.to_info()
    assert info.pause is PauseState.UNCONFIRMED and "failed (disk full)" in info.pause_warning
