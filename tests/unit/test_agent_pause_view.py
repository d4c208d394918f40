"""What the desktop shows for every state of the secure pause (pure model and view): the button's
meaning (Pause / Resume / Resume with the warning), voice and screen in words and colour, the
warning naming the leg. Resume is offered in every state where the voice is held."""

from __future__ import annotations

from typing import Any

import pytest

from agent_app.model import (
    ActionFailed,
    ActionSucceeded,
    CallFetched,
    EventReceived,
    PauseRequested,
    ResumeRequested,
    reduce,
)
from agent_app.recording_view import PAUSE, PAUSING, RESUME, RESUME_UNCONFIRMED, RESUMING, Tone
from agent_app.secure_pause import can_resume, pause_means_resume
from agent_app.view import build_view
from tandem_protocol import CallInfo
from tests.unit.test_agent_model import T0, call_dict, env, logged_in, on_call

WARNING = "Screen pause NOT confirmed: the screen recorder did not answer within 1 s"

# pause state -> (CallInfo fields, button label, button enabled, voice text, voice tone,
#                 screen text, screen tone, agent state text, warning shown)
CASES: dict[str, tuple[dict[str, Any], str, bool, str, Tone, str, Tone, str, str]] = {
    "recording": (
        {},
        PAUSE,
        True,
        "Voice: recording",
        Tone.OK,
        "Screen: recording",
        Tone.OK,
        "On call",
        "",
    ),
    "requested": (
        {"voice": "paused", "pause": "requested"},
        RESUME,
        True,
        "Voice: on hold — waiting for the screen recorder…",
        Tone.PENDING,
        "Screen: pausing…",
        Tone.PENDING,
        "On call — pausing…",
        "",
    ),
    "paused": (
        {"voice": "paused", "screen": "paused", "paused": True, "pause": "paused"},
        RESUME,
        True,
        "Voice: paused",
        Tone.PAUSED,
        "Screen: paused",
        Tone.PAUSED,
        "On call — recording paused",
        "",
    ),
    "paused, no recorder": (
        {"voice": "paused", "screen": "no_recorder", "paused": True, "pause": "paused"},
        RESUME,
        True,
        "Voice: paused",
        Tone.PAUSED,
        "Screen: NOT recorded — the screen recorder is not connected",
        Tone.ALERT,
        "On call — recording paused",
        "",
    ),
    "paused, not sampled": (
        {"voice": "paused", "screen": "off", "paused": True, "pause": "paused"},
        RESUME,
        True,
        "Voice: paused",
        Tone.PAUSED,
        "Screen: not sampled for this call",
        Tone.NEUTRAL,
        "On call — recording paused",
        "",
    ),
    "unconfirmed": (
        {"voice": "paused", "pause": "unconfirmed", "pause_warning": WARNING},
        RESUME_UNCONFIRMED,
        True,
        "Voice: on hold — screen pause not confirmed",
        Tone.PENDING,
        "Screen: pause NOT confirmed — it may still be recording",
        Tone.ALERT,
        "On call — pause NOT confirmed",
        WARNING,
    ),
    "ended (acw)": (
        {"phase": "acw", "voice": "stopped", "pause": "ended", "ended_at": T0 + 30},
        PAUSE,
        False,
        "Voice: stopped (saved)",
        Tone.NEUTRAL,
        "Screen: recording",
        Tone.OK,
        "After-call work",
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_pause_state_is_shown(name: str) -> None:
    fields, label, enabled, voice, voice_tone, screen, screen_tone, agent, warning = CASES[name]
    view = build_view(on_call(**fields), T0 + 10)
    assert (view.pause_label, view.pause_enabled) == (label, enabled)
    assert (view.voice_text, view.voice_tone) == (voice, voice_tone)
    assert (view.screen_text, view.screen_tone) == (screen, screen_tone)
    assert view.agent_state_text == agent
    assert view.pause_warning == warning
    if warning:
        assert view.status_text == warning  # the warning names the leg in the status line too


def test_the_word_paused_only_when_both_legs_are_safe() -> None:
    for name, (fields, *_rest) in CASES.items():
        view = build_view(on_call(**fields), T0 + 10)
        shown = "Voice: paused" in view.voice_text
        assert shown == (fields.get("pause") == "paused"), name


def test_resume_is_offered_and_sent_in_every_state_where_the_voice_is_held() -> None:
    for name in ("requested", "paused", "unconfirmed", "paused, no recorder"):
        state = on_call(**CASES[name][0])
        assert can_resume(state) and pause_means_resume(state), name
        pending = reduce(state, ResumeRequested())
        assert build_view(pending, T0).pause_label == RESUMING, name
        done = reduce(pending, ActionSucceeded(CallInfo.from_dict(call_dict())))
        view = build_view(done, T0)
        assert (view.pause_label, view.pause_enabled, view.voice_text) == (PAUSE, True, "Voice: recording")


def test_a_504_then_a_click_resumes_the_voice_the_button_never_gets_stuck() -> None:
    """The issue's failure: after an unconfirmed pause the button said Pause and did nothing."""
    state = reduce(on_call(), PauseRequested())
    assert build_view(state, T0).pause_label == PAUSING
    state = reduce(state, ActionFailed("voice paused, screen not confirmed", not_confirmed=True))
    assert pause_means_resume(state) and build_view(state, T0).pause_label == RESUME_UNCONFIRMED
    # The resync brings the server's word; still resumable.
    fetched = call_dict(voice="paused", pause="unconfirmed", pause_warning=WARNING)
    state = reduce(state, CallFetched(CallInfo.from_dict(fetched)))
    assert build_view(state, T0).pause_warning == WARNING and can_resume(state)
    state = reduce(state, ResumeRequested())
    state = reduce(state, ActionSucceeded(CallInfo.from_dict(call_dict())))
    view = build_view(state, T0)
    assert view.pause_label == PAUSE and view.voice_text == "Voice: recording" and not view.pause_warning


def test_a_late_confirmation_on_the_channel_turns_unconfirmed_into_paused() -> None:
    unconfirmed = call_dict(voice="paused", pause="unconfirmed", pause_warning=WARNING)
    state = reduce(logged_in(), EventReceived(env("state", {"call": unconfirmed}, 1), T0))
    assert build_view(state, T0).pause_label == RESUME_UNCONFIRMED  # a reconnect resyncs to it
    confirmed = call_dict(voice="paused", screen="paused", paused=True, pause="paused")
    state = reduce(state, EventReceived(env("call.updated", confirmed, 2), T0))
    view = build_view(state, T0)
    assert (view.pause_label, view.voice_text, view.pause_warning) == (RESUME, "Voice: paused", "")
