"""Issue 13's call-panel glitches in the pure view: the call panel's Voice and Screen rows show the
state without repeating their caption. (The state selector's half of it, showing the call's state
and offering Ready only after Done, is tested with its rules in test_availability.py.)"""

from __future__ import annotations

import pytest

from agent_app import i18n
from agent_app.model import CallFetched, reduce
from agent_app.recording_view import row_value
from agent_app.view import build_view
from tests.unit.test_agent_states_model import T0, call, logged_in


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
    from agent_app import recording_view

    sentences = [
        *recording_view._VOICE_TEXT.values(),
        *recording_view._SCREEN_TEXT.values(),
        *recording_view._SCREEN_COMMAND_TEXT.values(),
        "Voice: paused",
        "Voice: recording — pausing…",
        "Voice: on hold — waiting for the screen recorder…",
        "Voice: on hold — screen pause not confirmed",
        "Screen: pause NOT confirmed — it may still be recording",
        "Screen: pausing…",
    ]
    values = {row_value(s, s.split(":", 1)[0]) for s in sentences}
    assert sorted(values - set(i18n.VIEW_TEXTS)) == []
