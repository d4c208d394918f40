"""The desktop says in words when a sampled call's screen is not recorded because the agent's
recorder is not connected (CallInfo screen "no_recorder"), and follows it back to recording."""

from __future__ import annotations

from typing import Any

from agent_app.model import DesktopState, EventReceived, LoginStarted, LoginSucceeded, reduce
from agent_app.recording_view import screen_text
from tandem_protocol import Envelope, LoginResponse, UserInfo

T0 = 1_763_712_000.0


def _call(screen: str) -> dict[str, Any]:
    return {
        "interaction_id": "int-1",
        "call_id": "c1@pbx",
        "dn": "4711",
        "caller": "+4930123",
        "callee": "4711",
        "phase": "active",
        "voice": "recording",
        "screen": screen,
        "paused": False,
        "started_at": T0,
        "answered_at": T0 + 2,
    }


def test_no_recorder_is_said_plainly_and_recording_follows_when_it_returns() -> None:
    agent = UserInfo(id=7, username="alice", role="agent", full_name="Alice A", team_id=1, dn="4711")
    state = reduce(
        reduce(DesktopState(), LoginStarted()), LoginSucceeded(LoginResponse("tok", T0 + 3600, agent))
    )
    state = reduce(state, EventReceived(Envelope("call.started", _call("no_recorder"), seq=1), T0))
    assert screen_text(state) == "Screen: NOT recorded — the screen recorder is not connected"
    state = reduce(state, EventReceived(Envelope("call.updated", _call("requested"), seq=2), T0 + 5))
    assert screen_text(state) == "Screen: starting…"
    state = reduce(state, EventReceived(Envelope("call.updated", _call("recording"), seq=3), T0 + 6))
    assert screen_text(state) == "Screen: recording"
