"""Reducer and view of the agent desktop (pure; no Qt, no network)."""

from __future__ import annotations

from typing import Any

import pytest

from agent_app.desktop_state import ClockOffset
from agent_app.model import (
    ActionFailed,
    ActionSucceeded,
    AgentState,
    CallFetched,
    ChannelChanged,
    ChannelState,
    DesktopState,
    DoneRequested,
    EventReceived,
    LoggedOut,
    LoginFailed,
    LoginStarted,
    LoginSucceeded,
    PauseRequested,
    Pending,
    ResumeRequested,
    agent_state,
    reduce,
)
from agent_app.recording_view import PAUSE, PAUSING, RESUME, RESUME_UNCONFIRMED, RESUMING
from agent_app.store import DesktopModel
from agent_app.view import Page, build_view, format_duration
from tandem_protocol import CallInfo, Envelope, LoginResponse, UserInfo

T0 = 1_763_712_000.0
AGENT: dict[str, Any] = {
    "id": 7,
    "username": "alice",
    "role": "agent",
    "full_name": "Alice A",
    "team_id": 1,
    "dn": "4711",
}


def call_dict(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "interaction_id": "int-1",
        "call_id": "c1@pbx",
        "dn": "4711",
        "caller": "+4930123",
        "callee": "4711",
        "phase": "active",
        "voice": "recording",
        "screen": "recording",
        "paused": False,
        "started_at": T0,
        "answered_at": T0 + 2,
    }
    raw.update(over)
    return raw


def env(kind: str, data: dict[str, Any], seq: int = 0, at: float = 0.0) -> Envelope:
    return Envelope(type=kind, data=data, seq=seq, at=at)


def logged_in() -> DesktopState:
    state = reduce(DesktopState(), LoginStarted())
    resp = LoginResponse(token="tok", expires_at=T0 + 3600, user=UserInfo(**AGENT))
    return reduce(state, LoginSucceeded(resp))


def on_call(**over: Any) -> DesktopState:
    return reduce(logged_in(), EventReceived(env("call.started", call_dict(**over), 1, T0 + 2), T0 + 2))


def apply(state: DesktopState, *events: Envelope, local: float = T0 + 10) -> DesktopState:
    for e in events:
        state = reduce(state, EventReceived(e, local))
    return state


def test_login_flow_and_failure() -> None:
    state = reduce(DesktopState(), LoginStarted())
    assert state.pending == Pending.LOGGING_IN
    assert build_view(state, T0).login_enabled is False
    failed = reduce(state, LoginFailed("Wrong user name or password."))
    view = build_view(failed, T0)
    assert view.page == Page.LOGIN and view.login_enabled
    assert view.login_error == "Wrong user name or password."
    ok = logged_in()
    view = build_view(ok, T0)
    assert view.page == Page.WORKSPACE and view.agent_state_text == "Ready" and view.dn_text == "DN 4711"
    assert view.pause_label == PAUSE and not view.pause_enabled and not view.done_enabled


def test_events_before_login_are_ignored() -> None:
    state = reduce(DesktopState(), EventReceived(env("call.started", call_dict()), T0))
    assert state.call is None and agent_state(state) == AgentState.LOGGED_OUT


def test_call_lifecycle_started_ended_done() -> None:
    state = on_call()
    view = build_view(state, T0 + 10)
    assert view.agent_state == AgentState.ON_CALL
    assert view.caller_text == "+4930123" and view.dn_text == "DN 4711"
    assert view.voice_text == "Voice: recording" and view.screen_text == "Screen: recording"
    assert view.pause_label == PAUSE and view.pause_enabled and not view.done_enabled

    ended = call_dict(phase="acw", voice="stopped", ended_at=T0 + 62)
    state = apply(state, env("call.ended", ended, 2, T0 + 62))
    view = build_view(state, T0 + 500)
    assert view.agent_state == AgentState.AFTER_CALL_WORK
    assert view.done_enabled and not view.pause_enabled
    assert view.elapsed_text == "01:00"  # answered at +2, ended at +62: frozen in ACW

    state = reduce(state, DoneRequested())
    assert state.pending == Pending.FINISHING and not build_view(state, T0).done_enabled
    state = reduce(state, ActionSucceeded(CallInfo.from_dict(call_dict(phase="done", voice="stopped"))))
    view = build_view(state, T0)
    assert state.call is None and view.agent_state == AgentState.READY and view.caller_text == "No call"


def test_done_only_in_acw() -> None:
    state = on_call()
    assert reduce(state, DoneRequested()) == state
    assert not build_view(state, T0).done_enabled


def test_acw_ended_event_clears_call() -> None:
    state = apply(on_call(phase="acw", ended_at=T0 + 5), env("acw.ended", call_dict(phase="done"), 2))
    assert state.call is None and agent_state(state) == AgentState.READY


def test_state_event_resyncs_everything() -> None:
    state = on_call()
    paused = call_dict(interaction_id="int-2", paused=True, voice="paused", screen="paused")
    state = apply(state, env("state", {"agent": AGENT, "call": paused}, 1, T0 + 20))
    assert state.call is not None and state.call.interaction_id == "int-2" and state.call.paused
    assert build_view(state, T0 + 20).pause_label == RESUME
    state = apply(state, env("state", {"agent": AGENT, "call": None}, 1))
    assert state.call is None


def test_pause_shown_only_after_server_confirms_via_response() -> None:
    state = reduce(on_call(), PauseRequested())
    view = build_view(state, T0 + 10)
    assert (view.pause_label, view.pause_enabled) == (PAUSING, False)
    assert "paused" not in view.voice_text.lower()
    assert view.agent_state == AgentState.ON_CALL
    # An unrelated event while waiting changes nothing about the pause.
    state = apply(state, env("screen.pause", {"interaction_id": "int-1", "at": T0 + 10}, 2))
    view = build_view(state, T0 + 10)
    assert view.pause_label == PAUSING and "paused" not in view.voice_text.lower()
    assert view.screen_text == "Screen: stopping capture…"
    # The server holds the voice while it waits for the recorder: still not "paused".
    state = apply(state, env("call.updated", call_dict(voice="paused"), 3))
    view = build_view(state, T0 + 10)
    assert view.pause_label == PAUSING
    assert view.voice_text == "Voice: on hold — waiting for the screen recorder…"
    confirmed = call_dict(paused=True, voice="paused", screen="paused")
    state = reduce(state, ActionSucceeded(CallInfo.from_dict(confirmed)))
    view = build_view(state, T0 + 10)
    assert (view.pause_label, view.pause_enabled) == (RESUME, True)
    assert view.voice_text == "Voice: paused" and view.agent_state == AgentState.PAUSED


def test_pause_confirmed_by_event_before_response() -> None:
    state = reduce(on_call(), PauseRequested())
    state = apply(state, env("recording.paused", call_dict(paused=True, voice="paused", screen="paused"), 2))
    view = build_view(state, T0 + 10)
    # Still "Pausing…" until our request returns, but the voice state is confirmed.
    assert view.pause_label == PAUSING and view.voice_text == "Voice: paused"
    state = reduce(state, ActionSucceeded(CallInfo.from_dict(call_dict(paused=True, voice="paused"))))
    assert build_view(state, T0).pause_label == RESUME


def test_resume_round_trip() -> None:
    state = on_call(paused=True, voice="paused", screen="paused")
    state = reduce(state, ResumeRequested())
    assert build_view(state, T0).pause_label == RESUMING
    assert reduce(state, PauseRequested()) == state  # nothing else while pending
    state = reduce(state, ActionSucceeded(CallInfo.from_dict(call_dict())))
    view = build_view(state, T0)
    assert view.pause_label == PAUSE and view.pause_enabled and view.voice_text == "Voice: recording"


def test_screen_not_confirmed_504_path() -> None:
    state = reduce(on_call(), PauseRequested())
    state = reduce(state, ActionFailed("The recorder did not confirm the pause.", not_confirmed=True))
    view = build_view(state, T0 + 10)
    assert state.pending == Pending.NONE and state.unconfirmed == Pending.PAUSING
    # The voice is held: the button resumes it (it went back to a Pause that did nothing).
    assert (view.pause_label, view.pause_enabled) == (RESUME_UNCONFIRMED, True)
    assert "paused" not in view.voice_text.lower() and "not confirmed" in view.voice_text
    assert view.status_text == "The recorder did not confirm the pause."
    assert view.agent_state == AgentState.ON_CALL
    # The resync says voice is held but the pause is not confirmed: still not "paused".
    state = reduce(state, CallFetched(CallInfo.from_dict(call_dict(voice="paused"))))
    assert "paused" not in build_view(state, T0).voice_text.lower()
    # The recorder confirms late: now, and only now, it is paused.
    state = apply(state, env("recording.paused", call_dict(paused=True, voice="paused", screen="paused"), 2))
    view = build_view(state, T0)
    assert view.voice_text == "Voice: paused" and view.pause_label == RESUME
    assert state.unconfirmed == Pending.NONE
    assert view.status_text == "Connecting…"  # the 504 message is settled by the confirmation


def test_plain_failure_keeps_button_usable() -> None:
    state = reduce(reduce(on_call(), PauseRequested()), ActionFailed("Server unreachable"))
    view = build_view(state, T0)
    assert view.pause_label == PAUSE and view.pause_enabled and view.status_text == "Server unreachable"
    assert state.unconfirmed == Pending.NONE


def test_update_for_other_interaction_is_ignored() -> None:
    state = on_call()
    other = call_dict(interaction_id="old", phase="done", screen="uploaded")
    after = apply(state, env("call.updated", other, 2))
    assert after.call == state.call and after.ignored_events == 1
    other_active = call_dict(interaction_id="old", phase="acw")
    assert apply(state, env("call.updated", other_active, 2)).call == state.call


def test_malformed_event_is_dropped_and_counted() -> None:
    state = on_call()
    bad = apply(state, env("call.updated", {"interaction_id": "int-1"}, 2), env("state", {"call": 5}, 3))
    assert bad.call == state.call and bad.dropped_events == 2
    model = DesktopModel(clock=lambda: T0)
    model.dispatch(LoginSucceeded(LoginResponse("t", T0, UserInfo(**AGENT))))
    model.dispatch(EventReceived(env("recording.paused", {"nope": 1}), T0))
    assert model.state.dropped_events == 1


def test_seq_gaps_are_counted() -> None:
    state = apply(on_call(), env("call.updated", call_dict(), 2), env("call.updated", call_dict(), 5))
    assert state.seq_gaps == 1 and state.last_seq == 5


def test_error_event_and_channel_status_text() -> None:
    state = reduce(logged_in(), ChannelChanged(ChannelState.RECONNECTING, "connection lost"))
    assert build_view(state, T0).status_text == "Connection lost — reconnecting…: connection lost"
    state = reduce(state, ChannelChanged(ChannelState.CONNECTED))
    assert build_view(state, T0).status_text == "Connected"
    state = apply(state, env("error", {"message": "DN moved"}))
    assert build_view(state, T0).status_text == "DN moved"


def test_logged_out_resets_and_late_results_are_ignored() -> None:
    state = reduce(reduce(on_call(), PauseRequested()), LoggedOut("Your session has ended"))
    assert state == DesktopState(last_error="Your session has ended")
    assert reduce(state, ActionSucceeded(CallInfo.from_dict(call_dict(paused=True)))).call is None
    assert reduce(state, CallFetched(CallInfo.from_dict(call_dict()))).call is None


def test_elapsed_uses_server_clock_offset() -> None:
    # The server's clock is 100 s ahead of ours; messages take 0.1–0.5 s to arrive.
    state = logged_in()
    local = T0 - 100
    start = env("call.started", call_dict(answered_at=T0, started_at=T0 - 3), 1, at=T0)
    state = reduce(state, EventReceived(start, local + 0.5))
    update = env("call.updated", call_dict(answered_at=T0), 2, T0 + 5)
    state = reduce(state, EventReceived(update, local + 5.1))
    assert state.clock.value == pytest.approx(99.9)
    assert build_view(state, local + 65).elapsed_text == "01:04"  # 64.9 s on the server's clock


def test_elapsed_falls_back_to_started_at() -> None:
    state = on_call(answered_at=None)
    assert build_view(state, T0 + 3725).elapsed_text == "1:02:05"


def test_clock_offset_window_forgets_old_samples() -> None:
    clock = ClockOffset()
    clock = clock.add(T0 + 50, T0)
    for i in range(16):
        clock = clock.add(T0 + i, T0 + i)
    assert clock.value == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(-3, "00:00"), (0, "00:00"), (59.9, "00:59"), (3600, "1:00:00")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
