"""Issue 13's call-panel glitches in the pure view: the state selector shows the call's state
(On call, After-call work) and offers Ready again only after Done; the call panel's Voice and
Screen rows show the state without repeating their caption."""

from __future__ import annotations

import pytest

from agent_app import i18n
from agent_app.model import (
    ActionSucceeded,
    AgentState,
    AvailabilityFetched,
    AvailabilityRequested,
    CallFetched,
    DesktopState,
    agent_state,
    reduce,
)
from agent_app.view import build_view, row_value
from tests.unit.test_agent_states_model import T0, call, in_acw, logged_in

READY_AND_REASONS = (
    ("ready", "", "Ready"),
    ("not_ready", "LUNCH", "Not Ready ▸ Lunch"),
    ("not_ready", "TRAIN", "Not Ready ▸ Training"),
)


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
    view = build_view(state, T0 + 70)
    assert [text for _, _, text in view.state_choices] == [label]
    assert view.state_choice == view.state_choices[0][:2]
    assert not view.state_selector_enabled
    # Nor does a choice sent anyway (a stale click, a shortcut) reach the server.
    assert reduce(state, AvailabilityRequested("ready")) is state
    assert reduce(state, AvailabilityRequested("not_ready", "LUNCH")) is state


def test_ready_comes_back_with_done_and_not_ready_keeps_its_reason() -> None:
    state = in_acw()
    state = reduce(state, ActionSucceeded(call(phase="done", voice="stopped")))
    view = build_view(state, T0 + 90)
    assert view.state_choices == READY_AND_REASONS and view.state_choice == ("ready", "")
    assert view.state_selector_enabled
    # Not Ready chosen before the call: after it the box says so again, not "Ready".
    state = reduce(reduce(logged_in(), AvailabilityFetched("not_ready", "TRAIN")), CallFetched(call()))
    assert build_view(state, T0).state_choice == ("on_call", "")
    state = reduce(state, CallFetched(None))
    view = build_view(state, T0)
    assert view.state_choices == READY_AND_REASONS and view.state_choice == ("not_ready", "TRAIN")


@pytest.mark.parametrize(
    ("over", "voice", "screen"),
    [
        ({}, "Recording", "Recording"),
        ({"screen": "off"}, "Recording", "Not sampled for this call"),
        ({"screen": "no_recorder"}, "Recording", "NOT recorded — the screen recorder is not connected"),
        ({"voice": "failed", "screen": "failed"}, "Recording FAILED", "Recording FAILED"),
        ({"paused": True, "voice": "paused", "screen": "paused", "pause": "paused"}, "Paused", "Paused"),
        (
            {"phase": "acw", "voice": "stopped", "screen": "stopped"},
            "Stopped (saved)",
            "Stopped, upload pending",
        ),
    ],
)
def test_call_panel_rows_show_the_state_without_the_caption(
    over: dict[str, object], voice: str, screen: str
) -> None:
    view = build_view(reduce(logged_in(), CallFetched(call(**over))), T0 + 5)
    assert (view.voice_value, view.screen_value) == (voice, screen)
    # The compact bar has no captions: it keeps the sentence.
    assert view.voice_text == f"Voice: {voice[:1].lower()}{voice[1:]}"


def test_no_call_and_unknown_states_are_shown_as_they_are() -> None:
    view = build_view(logged_in(), T0)
    assert (view.voice_value, view.screen_value) == ("—", "—")
    assert row_value("Screen: somethingnew", "Screen") == "Somethingnew"
    assert row_value("recording", "Voice") == "recording"


def test_every_row_value_is_in_the_translation_catalogue() -> None:
    """Each sentence the view makes for the Voice and Screen rows, without its caption, is listed
    for lupdate (so the German .ts has it)."""
    from agent_app import view

    sentences = [
        *view._VOICE_TEXT.values(),
        *view._SCREEN_TEXT.values(),
        *view._SCREEN_COMMAND_TEXT.values(),
        "Voice: paused",
        "Voice: recording — pausing…",
        "Voice: on hold — waiting for the screen recorder…",
        "Voice: on hold — screen pause not confirmed",
        "Screen: pause NOT confirmed — it may still be recording",
        "Screen: pausing…",
    ]
    values = {row_value(s, s.split(":", 1)[0]) for s in sentences}
    assert sorted(values - set(i18n.VIEW_TEXTS)) == []
