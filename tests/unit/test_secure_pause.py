"""The secure pause's rules (agent_app.secure_pause), tested directly: Pause and Resume are sent
only while logged in, with no request in flight, during the talk of a call — never in after-call
work — and Resume is offered in every state where the voice is held."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent_app.desktop_state import DesktopState, Pending
from agent_app.model import LoggedOut, reduce
from agent_app.secure_pause import can_pause, can_resume, pause_means_resume, pause_state
from tandem_protocol.events import PauseState
from tests.unit.test_agent_model import logged_in, on_call

HELD = {"paused": True, "pause": "paused", "voice": "paused", "screen": "paused"}


def test_pause_during_the_talk_and_resume_while_the_voice_is_held() -> None:
    state = on_call()
    assert pause_state(state) == PauseState.RECORDING
    assert can_pause(state) and not can_resume(state) and not pause_means_resume(state)
    held = on_call(**HELD)
    assert pause_state(held) == PauseState.PAUSED
    assert can_resume(held) and not can_pause(held) and pause_means_resume(held)


@pytest.mark.parametrize(
    "pending",
    [Pending.PAUSING, Pending.RESUMING, Pending.FINISHING, Pending.CHANGING_STATE, Pending.LOGGING_OUT],
)
def test_nothing_is_sent_while_a_request_is_in_flight(pending: Pending) -> None:
    assert not can_pause(replace(on_call(), pending=pending))
    assert not can_resume(replace(on_call(**HELD), pending=pending))


def test_nothing_to_pause_or_resume_without_a_call_in_talk() -> None:
    assert not can_pause(logged_in()) and not can_resume(logged_in())
    assert not can_pause(on_call(phase="acw", ended_at=1.0))
    assert not can_resume(on_call(**HELD, phase="acw", ended_at=1.0))
    assert pause_state(DesktopState()) == PauseState.RECORDING


def test_nothing_is_sent_once_logged_out() -> None:
    # The call a logged-out state still carried (a late event) is not the agent's to pause.
    assert not can_pause(replace(on_call(), logged_in=False))
    assert not can_resume(replace(on_call(**HELD), logged_in=False))
    assert reduce(on_call(), LoggedOut()).call is None


def test_a_failed_voice_has_nothing_left_to_pause() -> None:
    assert not can_pause(on_call(voice="failed"))


def test_a_pause_the_recorder_did_not_confirm_can_still_be_resumed() -> None:
    unconfirmed = replace(on_call(voice="paused"), unconfirmed=Pending.PAUSING)
    assert pause_state(unconfirmed) == PauseState.UNCONFIRMED
    assert can_resume(unconfirmed) and pause_means_resume(unconfirmed)
    requested = on_call(voice="paused")  # a server that sends no pause state: the voice is held
    assert pause_state(requested) == PauseState.REQUESTED and can_resume(requested)
