"""The desktop's view of its recorder: every state, missing after three silent intervals, problems
as warnings in words — never silence."""

from __future__ import annotations

from typing import Any

import pytest

from agent_app.recorder_health import (
    UNKNOWN,
    Level,
    RecorderReport,
    format_bytes,
    health_view,
    is_missing,
    parse_report,
)
from tandem_protocol.recorder_health import Heartbeat, UploadProgress

NOW = 1_763_712_000.0


def report(
    connected: bool = True, ago: float = 2.0, problems: tuple[str, ...] = (), **beat: Any
) -> RecorderReport:
    fields: dict[str, Any] = {
        "version": "1.0",
        "state": "recording",
        "interval": 10.0,
        "spool_bytes": 3 << 20,
    }
    fields.update(beat)
    return RecorderReport(connected, NOW - ago, Heartbeat(**fields), problems)


def test_no_word_yet_is_unknown_not_ok() -> None:
    assert health_view(None, NOW) is UNKNOWN and UNKNOWN.level == Level.UNKNOWN


def test_recording_is_ok_with_spool_and_pending_uploads_and_progress() -> None:
    view = health_view(
        report(segments_pending=3, upload=UploadProgress("i/r/1", 256 * 1024, 1024 * 1024)), NOW
    )
    assert view.level == Level.OK and view.headline == "Recorder: recording"
    assert view.upload_percent == 25 and view.pending == 3
    assert view.details == ("Uploads pending: 3", "Uploading a screen segment: 25 %", "Spool: 3.0 MB")


@pytest.mark.parametrize(("state", "words"), [("idle", "connected, idle"), ("paused", "paused")])
def test_each_state_in_words(state: str, words: str) -> None:
    assert health_view(report(state=state), NOW).headline == f"Recorder: {words}"


def test_never_reported_is_a_warning() -> None:
    view = health_view(RecorderReport(False, None, None), NOW)
    assert view.level == Level.WARNING and "not being recorded" in view.headline


def test_just_connected_waits_for_its_first_report() -> None:
    assert health_view(RecorderReport(True, None, None), NOW).level == Level.UNKNOWN


def test_missing_after_three_intervals_even_with_the_socket_open() -> None:
    """A hung recorder (SIGSTOP) keeps its TCP connection: only the silence tells."""
    assert not is_missing(report(ago=29.9), NOW)
    assert is_missing(report(ago=30.1), NOW)
    view = health_view(report(ago=125), NOW)
    assert view.level == Level.WARNING and "not responding" in view.headline
    assert view.details[0] == "Last report 2 min ago."


def test_disconnected_is_a_warning_at_once() -> None:
    view = health_view(report(connected=False, ago=1), NOW)
    assert view.level == Level.WARNING and "disconnected" in view.headline


@pytest.mark.parametrize(
    ("beat", "problems", "headline"),
    [
        ({"state": "spool_full"}, (), "Recorder storage full — screen capture stopped"),
        ({"state": "failed", "last_error": "no display"}, (), "Screen recorder failed"),
        ({}, ("backlog",), "Screen uploads are falling behind"),
        ({"last_error": "upload refused"}, ("error",), "The recorder reported an error"),
    ],
)
def test_problems_are_warnings_in_words(
    beat: dict[str, Any], problems: tuple[str, ...], headline: str
) -> None:
    view = health_view(report(problems=problems, **beat), NOW)
    assert view.level == Level.WARNING and view.headline == headline
    if beat.get("last_error"):
        assert f"Last error: {beat['last_error']}" in view.details


def test_parse_report_validates() -> None:
    data = {
        "connected": True,
        "last_seen": NOW,
        "heartbeat": {"version": "1", "state": "idle", "interval": 5},
        "problems": ["clock"],
    }
    parsed = parse_report(data)
    assert parsed.connected and parsed.heartbeat is not None and parsed.heartbeat.interval == 5.0
    assert parsed.problems == ("clock",)
    with pytest.raises(ValueError, match=r"heartbeat\.state"):
        parse_report({**data, "heartbeat": {"state": "asleep"}})
    with pytest.raises(ValueError, match="problems"):
        parse_report({**data, "problems": "clock"})


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1536, 5 << 30)] == ["0 B", "1.5 KB", "5.0 GB"]
