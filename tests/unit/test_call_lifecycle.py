from __future__ import annotations

import pytest

from server.calls.lifecycle import Interaction
from server.errors import LifecycleError
from tandem_protocol.events import Phase, ScreenState, VoiceState


def make(screen: bool = True) -> Interaction:
    return Interaction("i1", "c1", 7, "1001", "Carol", "1001", started_at=100.0, screen_decision=screen)


def voice(it: Interaction) -> VoiceState:
    """``it.voice`` read afresh: after ``assert it.voice is X`` mypy takes it to stay X."""
    return it.voice


def phase(it: Interaction) -> Phase:
    """``it.phase`` read afresh (see ``voice``)."""
    return it.phase


def test_full_call_with_screen_and_pause() -> None:
    it = make()
    assert it.answer(101.0) is True and it.screen is ScreenState.REQUESTED
    it.screen_reported(ScreenState.RECORDING)
    assert it.begin_pause(105.0) is True and voice(it) is VoiceState.PAUSED and not it.paused
    it.screen_reported(ScreenState.PAUSED)  # the recorder's ack: both legs safe
    assert it.paused
    with pytest.raises(LifecycleError) as exc:
        it.begin_pause(106.0)
    assert exc.value.code == "already_paused"
    assert it.begin_resume(108.0) is True and not it.paused and voice(it) is VoiceState.RECORDING
    it.screen_reported(ScreenState.RECORDING)
    assert it.end_call(120.0, acw_limit=30) is False
    assert phase(it) is Phase.ACW and it.acw_deadline == 150.0 and voice(it) is VoiceState.STOPPED
    assert it.end_acw(125.0) is True and phase(it) is Phase.DONE
    info = it.to_info()
    assert [(p.started_at, p.ended_at) for p in info.pauses] == [(105.0, 108.0)]


def test_pause_never_outlives_the_call_and_screen_resumes_for_acw() -> None:
    it = make()
    it.answer(1.0)
    it.screen_reported(ScreenState.RECORDING)
    it.begin_pause(2.0)
    it.screen_reported(ScreenState.PAUSED)
    assert it.end_call(3.0, acw_limit=10) is True
    assert it.pauses[-1].ended_at == 3.0 and not it.pause_open and not it.paused


def test_no_screen_when_not_sampled_and_illegal_transitions() -> None:
    it = make(screen=False)
    with pytest.raises(LifecycleError):
        it.begin_pause(0.5)
    assert it.answer(1.0) is False and it.screen is ScreenState.OFF
    assert it.begin_pause(2.0) is False
    with pytest.raises(LifecycleError):
        it.end_acw(3.0)
    it.end_call(3.0, 5)
    with pytest.raises(LifecycleError):
        it.begin_resume(4.0)
    assert it.end_acw(4.0) is False
    it.screen_reported(ScreenState.RECORDING)
    assert it.screen is ScreenState.OFF


def test_late_acks_never_move_an_uploaded_screen_backwards() -> None:
    it = make()
    it.answer(1.0)
    it.screen_uploaded()
    it.screen_reported(ScreenState.STOPPED)
    assert it.screen is ScreenState.UPLOADED
