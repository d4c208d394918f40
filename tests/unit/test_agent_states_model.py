"""Agent states, codes and after-call work in the desktop's reducer and view (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from agent_app.model import (
    ActionSucceeded,
    AgentCodes,
    AgentState,
    AvailabilityFailed,
    AvailabilityFetched,
    AvailabilityRequested,
    CallFetched,
    CodeOption,
    CodesFetched,
    DesktopState,
    DispositionChosen,
    DoneRequested,
    LoggedOut,
    LoginSucceeded,
    Pending,
    agent_state,
    can_finish,
    parse_codes,
    reduce,
)
from agent_app.recording_view import Tone
from agent_app.view import acw_countdown, build_view, split_caller
from tandem_protocol import CallInfo, LoginResponse, UserInfo

T0 = 1_763_712_000.0
CODES = AgentCodes(
    reasons=(CodeOption("LUNCH", "Lunch"), CodeOption("TRAIN", "Training")),
    dispositions=(CodeOption("SALE", "Sale"), CodeOption("CB", "Call back")),
    disposition_required=True,
    acw_limit_seconds=120.0,
    loaded=True,
)


def call(**over: Any) -> CallInfo:
    raw: dict[str, Any] = {
        "interaction_id": "int-1",
        "call_id": "c1",
        "dn": "4711",
        "caller": "Carla Customer <+4930123>",
        "callee": "4711",
        "phase": "active",
        "voice": "recording",
        "screen": "recording",
        "paused": False,
        "started_at": T0,
        "answered_at": T0 + 1,
    }
    raw.update(over)
    return CallInfo.from_dict(raw)


def logged_in(codes: AgentCodes = CODES) -> DesktopState:
    user = UserInfo(id=7, username="alice", role="agent", full_name="Alice", dn="4711")
    state = reduce(DesktopState(), LoginSucceeded(LoginResponse("t", T0 + 3600, user)))
    return reduce(state, CodesFetched(codes))


def in_acw(**over: Any) -> DesktopState:
    fields = {"phase": "acw", "voice": "stopped", "ended_at": T0 + 61, "acw_deadline": T0 + 181}
    return reduce(logged_in(), CallFetched(call(**{**fields, **over})))


def test_parse_codes_from_the_server_and_refuses_malformed() -> None:
    raw = {
        "reason_codes": [{"code": "LUNCH", "label": "Lunch", "kind": "reason", "active": True}],
        "disposition_codes": [{"code": "SALE", "label": "Sale", "kind": "disposition", "active": True}],
        "disposition_required": True,
        "acw_limit_seconds": 300,
    }
    codes = parse_codes(raw)
    assert codes.reasons == (CodeOption("LUNCH", "Lunch"),) and codes.dispositions == (
        CodeOption("SALE", "Sale"),
    )
    assert codes.disposition_required and codes.acw_limit_seconds == 300.0 and codes.loaded
    with pytest.raises(ValueError, match="malformed agent codes"):
        parse_codes({"reason_codes": [{"label": "no code"}]})


def test_ready_then_not_ready_with_a_reason_then_ready() -> None:
    state = logged_in()
    assert agent_state(state) == AgentState.READY
    view = build_view(state, T0)
    assert view.state_choices == (
        ("ready", "", "Ready"),
        ("not_ready", "LUNCH", "Not Ready ▸ Lunch"),
        ("not_ready", "TRAIN", "Not Ready ▸ Training"),
    )
    assert view.state_selector_enabled and view.state_choice == ("ready", "")
    state = reduce(state, AvailabilityRequested("not_ready", "LUNCH"))
    assert state.pending == Pending.CHANGING_STATE and not build_view(state, T0).state_selector_enabled
    assert agent_state(state) == AgentState.READY  # not before the server said so
    state = reduce(state, AvailabilityFetched("not_ready", "LUNCH"))
    assert agent_state(state) == AgentState.NOT_READY and state.pending == Pending.NONE
    view = build_view(state, T0)
    assert view.agent_state_text == "Not Ready — Lunch" and view.state_choice == ("not_ready", "LUNCH")
    state = reduce(reduce(state, AvailabilityRequested("ready")), AvailabilityFetched("ready", ""))
    assert agent_state(state) == AgentState.READY and state.reason_code == ""


@pytest.mark.parametrize(
    ("choice", "reason"),
    [("not_ready", ""), ("not_ready", "NOPE"), ("ready", "LUNCH"), ("on_call", ""), ("logged_out", "")],
)
def test_invalid_choices_are_not_sent(choice: str, reason: str) -> None:
    state = logged_in()
    assert reduce(state, AvailabilityRequested(choice, reason)) is state


def test_no_choice_before_the_codes_are_known_or_while_busy() -> None:
    state = logged_in(AgentCodes())  # an older server: nothing loaded
    assert reduce(state, AvailabilityRequested("ready")) is state
    assert not build_view(state, T0).state_selector_enabled
    busy = reduce(logged_in(), AvailabilityRequested("not_ready", "LUNCH"))
    assert reduce(busy, AvailabilityRequested("ready")) is busy


def test_a_refused_change_keeps_the_state_and_says_why() -> None:
    state = reduce(logged_in(), AvailabilityRequested("not_ready", "LUNCH"))
    state = reduce(
        state, AvailabilityFailed("Your state was not changed: 'LUNCH' is not a reason code in use")
    )
    assert agent_state(state) == AgentState.READY and state.pending == Pending.NONE
    assert build_view(state, T0).status_text.startswith("Your state was not changed")


def test_a_call_outranks_not_ready_and_after_it_not_ready_returns() -> None:
    state = reduce(logged_in(), AvailabilityFetched("not_ready", "TRAIN"))
    state = reduce(state, CallFetched(call()))
    assert agent_state(state) == AgentState.ON_CALL
    state = reduce(state, CallFetched(call(phase="acw", ended_at=T0 + 5)))
    assert agent_state(state) == AgentState.AFTER_CALL_WORK
    state = reduce(state, CallFetched(None))
    assert agent_state(state) == AgentState.NOT_READY


def test_logout_forgets_codes_and_choice() -> None:
    state = reduce(reduce(logged_in(), AvailabilityFetched("not_ready", "LUNCH")), LoggedOut())
    assert agent_state(state) == AgentState.LOGGED_OUT and not state.codes.loaded
    assert state.availability == "ready"


def test_required_disposition_gates_done() -> None:
    state = in_acw()
    assert agent_state(state) == AgentState.AFTER_CALL_WORK and not can_finish(state)
    view = build_view(state, T0 + 70)
    assert view.acw_visible and not view.done_enabled
    assert (
        view.disposition_label == "Disposition (required)"
        and view.acw_hint == "Choose a disposition, then Done."
    )
    assert view.disposition_options == (("SALE", "Sale"), ("CB", "Call back"))
    assert reduce(state, DispositionChosen("NOPE")) is state  # not one of the admin's
    state = reduce(state, DispositionChosen("SALE"))
    assert can_finish(state) and build_view(state, T0 + 70).done_enabled
    state = reduce(state, DoneRequested())
    assert state.pending == Pending.FINISHING
    state = reduce(state, ActionSucceeded(call(phase="done", voice="stopped")))
    assert agent_state(state) == AgentState.READY and state.disposition == ""


def test_optional_disposition_lets_done_through() -> None:
    state = reduce(in_acw(), CodesFetched(replace(CODES, disposition_required=False)))
    assert can_finish(state)
    view = build_view(state, T0 + 70)
    assert view.disposition_label == "Disposition (optional)" and view.acw_hint == ""


def test_required_without_any_code_says_whom_to_ask() -> None:
    state = reduce(in_acw(), CodesFetched(replace(CODES, dispositions=())))
    assert "none is defined" in build_view(state, T0).acw_hint and not can_finish(state)


def test_a_disposition_only_in_acw_and_not_carried_to_the_next_call() -> None:
    on_call = reduce(logged_in(), CallFetched(call()))
    assert reduce(on_call, DispositionChosen("SALE")) is on_call
    state = reduce(in_acw(), DispositionChosen("CB"))
    state = reduce(state, CallFetched(call(interaction_id="int-2", phase="acw", ended_at=T0 + 90)))
    assert state.disposition == ""


def test_acw_timer_and_countdown_on_the_server_clock() -> None:
    state = in_acw()  # ended T0+61, deadline T0+181
    view = build_view(state, T0 + 91)
    assert view.acw_elapsed_text == "00:30"
    assert (view.acw_countdown_text, view.acw_countdown_tone) == ("Time left: 01:30", Tone.PENDING)
    assert acw_countdown(state, T0 + 160) == ("Time left: 00:21", Tone.ALERT)  # the last 30 s in red
    assert acw_countdown(state, T0 + 181) == ("ACW limit reached — finishing…", Tone.ALERT)
    no_limit = reduce(logged_in(), CallFetched(call(phase="acw", ended_at=T0 + 61)))
    assert acw_countdown(no_limit, T0 + 70) == ("", Tone.NEUTRAL)
    assert not build_view(reduce(logged_in(), CallFetched(call())), T0).acw_visible


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("Carla Customer <+4930123>", ("Carla Customer", "+4930123")),
        ('"Carla" <+4930123>', ("Carla", "+4930123")),
        ("<+4930123>", ("—", "+4930123")),
        ("+49 30 123", ("—", "+49 30 123")),
        ("Reception", ("Reception", "—")),
        ("", ("—", "—")),
    ],
)
def test_split_caller(caller: str, expected: tuple[str, str]) -> None:
    assert split_caller(caller) == expected


def test_call_panel_fields_from_what_the_sip_side_said() -> None:
    info = call(
        direction="inbound",
        metadata={"Queue": "Billing", "service": "Gold line", "customer_id": "C-17", "direction": "in"},
    )
    view = build_view(reduce(logged_in(), CallFetched(info)), T0 + 75)
    assert (view.caller_name, view.caller_number) == ("Carla Customer", "+4930123")
    assert (view.direction_text, view.dn_text) == ("Inbound", "DN 4711")
    assert (view.service_text, view.queue_text) == ("Gold line", "Billing")
    assert view.metadata_text == "customer_id: C-17"
    assert view.elapsed_text == "01:14"  # talk time from the answer
    bare = build_view(reduce(logged_in(), CallFetched(call())), T0)
    assert (bare.direction_text, bare.queue_text, bare.service_text, bare.metadata_text) == (
        "Not known",
        "—",
        "—",
        "",
    )


@pytest.mark.parametrize(
    ("fields", "voice", "screen"),
    [
        ({}, "Voice: recording", "Screen: recording"),
        ({"screen": "off"}, "Voice: recording", "Screen: not sampled for this call"),
        ({"voice": "failed", "screen": "failed"}, "Voice: recording FAILED", "Screen: recording FAILED"),
        (
            {"phase": "acw", "voice": "stopped", "screen": "stopped"},
            "Voice: stopped (saved)",
            "Screen: stopped, upload pending",
        ),
        (
            {"paused": True, "pause": "paused", "voice": "paused", "screen": "paused"},
            "Voice: paused",
            "Screen: paused",
        ),
    ],
)
def test_voice_and_screen_in_words(fields: dict[str, Any], voice: str, screen: str) -> None:
    view = build_view(reduce(logged_in(), CallFetched(call(**fields))), T0)
    assert (view.voice_text, view.screen_text) == (voice, screen)
