"""The recorder's health in the window: filled from the ``state`` on connect, updated by
``recorder.health``, a silent recorder turning into a warning on the desktop's own clock."""

from __future__ import annotations

from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from agent_app.recorder_health import Level
from tests.qt.test_agent_window import log_in, make_window

pytestmark = pytest.mark.timeout(60)


def health(fakes: Any, **over: Any) -> dict[str, Any]:
    beat = {
        "version": "1.0",
        "state": "recording",
        "interval": 10.0,
        "spool_bytes": 5 << 20,
        "segments_pending": 2,
        "upload": {"segment": "int-1/r1/3", "offset": 300, "length": 1000},
    }
    beat.update(over.pop("beat", {}))
    data = {"connected": True, "last_seen": fakes.clock.now, "heartbeat": beat, "problems": []}
    data.update(over)
    return data


def test_state_on_connect_fills_the_panel_and_events_update_it(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    panel = window.health_panel
    assert panel.level == Level.UNKNOWN and "waiting" in panel.headline.text()
    state = {"agent": None, "call": None, "recorder": health(fakes)}
    fakes.channel.send("state", state, seq=1, at=fakes.clock.now)
    qtbot.waitUntil(lambda: panel.level == Level.OK)
    assert panel.headline.text() == "Recorder: recording"
    assert panel.details.text() == "Uploads pending: 2\nUploading a screen segment: 30 %\nSpool: 5.0 MB"
    assert panel.progress.isVisibleTo(window) and panel.progress.value() == 30
    fakes.channel.send("recorder.health", health(fakes, beat={"state": "spool_full", "upload": None}))
    qtbot.waitUntil(lambda: panel.level == Level.WARNING)
    assert panel.headline.text() == "⚠ Recorder storage full — screen capture stopped"
    assert panel.property("level") == "warning" and not panel.progress.isVisibleTo(window)


def test_a_recorder_that_falls_silent_becomes_a_warning_without_any_event(qtbot: QtBot, fakes: Any) -> None:
    """Recorder hung (SIGSTOP) or gone: no event says so; three missed intervals do."""
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    fakes.channel.send("recorder.health", health(fakes), at=fakes.clock.now)
    panel = window.health_panel
    qtbot.waitUntil(lambda: panel.level == Level.OK)
    fakes.clock.now += 31  # > 3 × 10 s
    qtbot.waitUntil(lambda: panel.level == Level.WARNING, timeout=10000)  # the health timer's tick
    assert "not responding" in panel.headline.text() and "Last report 31 s ago." in panel.details.text()
    assert window.tray.level == Level.WARNING


def test_no_recorder_ever_is_a_warning_and_logout_clears_it(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    fakes.channel.send("recorder.health", {"connected": False, "last_seen": None, "heartbeat": None})
    panel = window.health_panel
    qtbot.waitUntil(lambda: panel.level == Level.WARNING)
    assert "not being recorded" in panel.headline.text()
    window.tray.logout_action.trigger()
    qtbot.waitUntil(lambda: not window.model.state.logged_in)
    assert window.tray.level == Level.UNKNOWN


def test_a_malformed_health_event_changes_nothing(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    fakes.channel.send("recorder.health", health(fakes))
    qtbot.waitUntil(lambda: window.health_panel.level == Level.OK)
    fakes.channel.send("recorder.health", health(fakes, beat={"state": "asleep"}))
    fakes.channel.send("recorder.health", health(fakes, beat={"state": "idle"}))  # the later good one lands
    qtbot.waitUntil(lambda: window.health_panel.headline.text() == "Recorder: connected, idle")
