"""Item 10 on the desktop: the server publishes voice FAILED at once when the call's RTP worker
dies (or its disk is full). The agent sees it said plainly, and is not offered a pause that
has nothing left to pause (the server would answer 409)."""

from __future__ import annotations

from agent_app.model import AgentState
from agent_app.secure_pause import can_pause
from agent_app.view import build_view
from tests.unit.test_agent_model import T0, apply, call_dict, env, on_call


def test_a_failed_voice_is_shown_and_not_offered_a_pause() -> None:
    state = on_call()
    assert can_pause(state)
    state = apply(state, env("call.updated", call_dict(voice="failed"), 2))
    view = build_view(state, T0 + 10)
    assert view.voice_text == "Voice: recording FAILED"
    assert view.agent_state == AgentState.ON_CALL, "the call itself goes on"
    assert not view.pause_enabled and not can_pause(state)
    # The caller hangs up: after-call work as usual, the failure still shown.
    state = apply(state, env("call.ended", call_dict(phase="acw", voice="failed", ended_at=T0 + 30), 3))
    view = build_view(state, T0 + 31)
    assert view.agent_state == AgentState.AFTER_CALL_WORK and view.voice_text == "Voice: recording FAILED"
