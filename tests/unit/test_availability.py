"""The state selector's rules (agent_app.availability), tested directly: which states the agent
may choose when, and what the selector lists and shows during a call and its after-call work.
Issue 13: the box shows the call's state (On call, After-call work) and offers Ready again only
after Done."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent_app.agent_codes import AgentCodes
from agent_app.availability import (
    SELECTABLE_STATES,
    can_choose_availability,
    state_choice,
    state_choices,
    valid_availability,
)
from agent_app.desktop_state import AgentState, DesktopState, Pending, agent_state
from agent_app.model import ActionSucceeded, AvailabilityFetched, AvailabilityRequested, CallFetched, reduce
from agent_app.view import build_view
from tests.unit.test_agent_states_model import T0, call, in_acw, logged_in

READY_AND_REASONS = (
    ("ready", "", "Ready"),
    ("not_ready", "LUNCH", "Not Ready ▸ Lunch"),
    ("not_ready", "TRAIN", "Not Ready ▸ Training"),
)


def test_only_ready_and_not_ready_are_the_agents_own_choice() -> None:
    assert SELECTABLE_STATES == {AgentState.READY, AgentState.NOT_READY}


def test_between_calls_ready_and_one_entry_per_reason_are_offered() -> None:
    state = logged_in()
    assert can_choose_availability(state)
    assert state_choices(state) == READY_AND_REASONS and state_choice(state) == ("ready", "")


@pytest.mark.parametrize(
    ("state", "shown", "label"),
    [
        (reduce(logged_in(), CallFetched(call())), AgentState.ON_CALL, "On call"),
        (reduce(logged_in(), CallFetched(call(paused=True, voice="paused"))), AgentState.PAUSED, "On call"),
        (in_acw(), AgentState.AFTER_CALL_WORK, "After-call work"),
    ],
)
def test_during_a_call_the_selector_shows_the_calls_state_and_is_not_choosable(
    state: DesktopState, shown: AgentState, label: str
) -> None:
    assert agent_state(state) == shown
    assert [text for _, _, text in state_choices(state)] == [label]
    assert state_choice(state) == state_choices(state)[0][:2]
    assert not can_choose_availability(state)
    # The view carries the rules' answer as it is.
    view = build_view(state, T0 + 70)
    assert view.state_choices == state_choices(state) and view.state_choice == state_choice(state)
    assert not view.state_selector_enabled
    # Nor does a choice sent anyway (a stale click, a shortcut) reach the server.
    assert reduce(state, AvailabilityRequested("ready")) is state
    assert reduce(state, AvailabilityRequested("not_ready", "LUNCH")) is state


def test_ready_comes_back_with_done_and_not_ready_keeps_its_reason() -> None:
    state = reduce(in_acw(), ActionSucceeded(call(phase="done", voice="stopped")))
    assert state_choices(state) == READY_AND_REASONS and state_choice(state) == ("ready", "")
    assert can_choose_availability(state)
    # Not Ready chosen before the call: after it the box says so again, not "Ready".
    state = reduce(reduce(logged_in(), AvailabilityFetched("not_ready", "TRAIN")), CallFetched(call()))
    assert state_choice(state) == ("on_call", "")
    state = reduce(state, CallFetched(None))
    assert state_choices(state) == READY_AND_REASONS and state_choice(state) == ("not_ready", "TRAIN")


def test_no_choice_while_logged_out_busy_or_before_the_codes_are_known() -> None:
    assert not can_choose_availability(DesktopState())
    assert not can_choose_availability(logged_in(AgentCodes()))  # an older server: nothing loaded
    assert not can_choose_availability(replace(logged_in(), pending=Pending.CHANGING_STATE))
    assert not can_choose_availability(replace(logged_in(), pending=Pending.PAUSING))


@pytest.mark.parametrize(
    ("choice", "reason", "valid"),
    [
        ("ready", "", True),
        ("not_ready", "LUNCH", True),
        ("not_ready", "TRAIN", True),
        ("not_ready", "", False),  # Not Ready needs a reason
        ("not_ready", "NOPE", False),  # not one of the admin's
        ("ready", "LUNCH", False),  # Ready has none
        ("on_call", "", False),  # comes from the call
        ("acw", "", False),
        ("logged_out", "", False),
    ],
)
def test_valid_choices(choice: str, reason: str, valid: bool) -> None:
    assert valid_availability(logged_in(), choice, reason) is valid


def test_without_reason_codes_only_ready_is_offered() -> None:
    state = logged_in(replace(logged_in().codes, reasons=()))
    assert state_choices(state) == (("ready", "", "Ready"),)
    assert not valid_availability(state, "not_ready", "LUNCH")
