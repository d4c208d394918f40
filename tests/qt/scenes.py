"""The desktop's window in each state an agent sees — idle, on call, paused, after-call work,
recorder problem — against the fake server of conftest. Used by the accessibility, translation
and scaling tests and by the screenshot script (desktop_screenshot.py), so all check the same
screens. ``wait(condition)`` pumps Qt events until the condition holds (qtbot.waitUntil in
tests)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QLineEdit

from agent_app.config import DesktopSettings
from agent_app.model import ChannelState, DispositionChosen
from agent_app.widgets.main_window import MainWindow
from tests.qt.conftest import Fakes

Wait = Callable[[Callable[[], bool]], None]
SCENES = ("login", "idle", "oncall", "paused", "acw", "problem")
CODES = {
    "reason_codes": [{"code": "LUNCH", "label": "Lunch"}, {"code": "TRAIN", "label": "Training"}],
    "disposition_codes": [{"code": "SALE", "label": "Sale"}, {"code": "CB", "label": "Call back"}],
    "disposition_required": True,
    "acw_limit_seconds": 120,
    "may_play_own_recordings": True,
}
CALL = {
    "caller": "Carla Customer <+4930123456>",
    "direction": "inbound",
    "metadata": {"queue": "Billing", "service": "Gold line", "customer_id": "C-1017"},
}


def make_window(fakes: Fakes) -> MainWindow:
    fakes.configure = lambda api: api.results.update(agent_codes=CODES)
    window = MainWindow(fakes.services(), settings=DesktopSettings(pause_hotkey=""))
    window.resize(480, 600)
    return window


def log_in(window: MainWindow, wait: Wait) -> None:
    for name, value in (
        ("loginServer", "http://tandem:8000"),
        ("loginUser", "alice"),
        ("loginPassword", "secret"),
        ("loginDn", "4711"),
    ):
        field = window.findChild(QLineEdit, name)
        assert field is not None
        field.setText(value)
    window.login_widget.submit()
    wait(
        lambda: (
            window.model.state.logged_in
            and window.runner.pending == 0
            and window.model.state.codes.loaded
            and window.model.state.pending == "none"
        )
    )


def enter(scene: str, window: MainWindow, fakes: Fakes, wait: Wait) -> None:
    """Put a fresh, shown window into ``scene`` (one of SCENES)."""
    if scene == "login":
        return
    log_in(window, wait)
    fakes.channel.status(ChannelState.CONNECTED, "")
    now = fakes.clock.now
    call = {**CALL, "answered_at": now - 83, "started_at": now - 90}
    health_ok = {
        "connected": True,
        "last_seen": now - 2,
        "heartbeat": {"version": "1.4.0", "state": "recording", "interval": 10.0, "spool_bytes": 12 << 20},
        "problems": [],
    }
    if scene == "idle":
        fakes.channel.send("recorder.health", health_ok, at=now)
        wait(lambda: window.health_panel.level.value == "ok")
    elif scene in ("oncall", "paused"):
        fakes.channel.send("recorder.health", health_ok, at=now)
        fakes.channel.send("call.started", fakes.call_data(**call), seq=2, at=now)
        wait(lambda: window.model.call is not None)
        if scene == "paused":
            paused = fakes.call_data(**call, paused=True, voice="paused", screen="paused", pause="paused")
            fakes.channel.send("recording.paused", paused, seq=3, at=now)
            wait(lambda: window.model.agent_state == "paused")
    elif scene == "acw":
        fakes.channel.send("recorder.health", health_ok, at=now)
        acw = {"phase": "acw", "voice": "stopped", "screen": "uploaded", "ended_at": now - 25}
        fakes.channel.send("call.ended", fakes.call_data(**call, **acw, acw_deadline=now + 95), seq=2, at=now)
        wait(lambda: window.model.agent_state == "acw")
        window._dispatch(DispositionChosen("CB"))
        window.acw_panel.notes_edit.setPlainText("Wants a call back on Monday about the invoice.")
    elif scene == "problem":
        fakes.channel.send("call.started", fakes.call_data(**call, screen="no_recorder"), seq=2, at=now)
        beat = {
            "version": "1.4.0",
            "state": "spool_full",
            "interval": 10.0,
            "last_error": "spool quota reached",
        }
        beat.update(segments_pending=14, spool_bytes=500 << 20)
        health = {
            "connected": True,
            "last_seen": now - 4,
            "heartbeat": beat,
            "problems": ["spool_full", "backlog", "error"],
        }
        fakes.channel.send("recorder.health", health, at=now)
        wait(lambda: window.model.call is not None and window.health_panel.level.value == "warning")
    else:
        raise ValueError(f"unknown scene {scene!r}")
    wait(lambda: window.runner.pending == 0)
