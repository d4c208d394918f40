"""Pause from the tray, close to the tray, log out as an explicit (confirmed) act, quit."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from agent_app.model import ChannelState
from agent_app.recorder_health import Level
from agent_app.tray import AgentTray
from agent_app.widgets.main_window import MainWindow
from tests.qt.test_agent_window import button, log_in, make_window, start_call

pytestmark = pytest.mark.timeout(60)


def confirm_box(window: MainWindow) -> QMessageBox:
    box = window.findChild(QMessageBox, "logoutConfirm")
    assert box is not None and box.isVisible()
    return box


def click(box: QMessageBox, name: str) -> None:
    target = box.findChild(QPushButton, name)
    assert target is not None
    QTest.mouseClick(target, Qt.MouseButton.LeftButton)


def test_tray_pauses_and_resumes_like_the_button(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    assert not window.tray.pause_action.isEnabled()  # no call: nothing to pause
    start_call(qtbot, window, fakes)
    assert window.tray.pause_action.isEnabled() and window.tray.pause_action.text() == "Pause recording"
    window.tray.pause_action.trigger()
    qtbot.waitUntil(lambda: window.tray.pause_action.text() == "Resume recording")
    assert ("pause", ("int-1",)) in fakes.api.calls
    assert button(window, "pauseButton").text() == "Resume"
    window.tray.pause_action.trigger()
    qtbot.waitUntil(lambda: ("resume", ("int-1",)) in fakes.api.calls)
    qtbot.waitUntil(lambda: window.tray.pause_action.text() == "Pause recording")


@pytest.mark.parametrize("tray", [True, False])
def test_closing_the_window_keeps_the_agent_logged_in(
    qtbot: QtBot, fakes: Any, monkeypatch: pytest.MonkeyPatch, tray: bool
) -> None:
    monkeypatch.setattr(AgentTray, "available", staticmethod(lambda: tray))
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    window.close()
    if tray:
        qtbot.waitUntil(lambda: not window.isVisible())
    else:  # no tray to come back from: minimised instead
        qtbot.waitUntil(window.isMinimized)
    assert window.model.state.logged_in and not fakes.channel.stopped
    assert "logout" not in fakes.api.names()
    # Pausing still works with the window hidden (from the tray; the hotkey takes the same path).
    window.tray.pause_action.trigger()
    qtbot.waitUntil(lambda: ("pause", ("int-1",)) in fakes.api.calls)
    window.tray.show_action.trigger()
    qtbot.waitUntil(lambda: window.isVisible() and not window.isMinimized())


def test_logout_on_a_call_asks_first_and_stay_keeps_the_session(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    QTest.mouseClick(button(window, "logoutButton"), Qt.MouseButton.LeftButton)
    box = confirm_box(window)
    assert "on a call" in box.text()
    click(box, "logoutCancelButton")
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "logoutConfirm") is None)
    assert window.model.state.logged_in and "logout" not in fakes.api.names()
    # Again, from the tray, in after-call work: confirmed this time.
    fakes.channel.send("call.ended", fakes.call_data(phase="acw", voice="stopped", ended_at=fakes.clock.now))
    qtbot.waitUntil(lambda: window.model.agent_state == "acw")
    window.hide()
    window.tray.logout_action.trigger()
    assert window.isVisible()  # shown for the question
    box = confirm_box(window)
    assert "after-call work" in box.text()
    click(box, "logoutConfirmButton")
    qtbot.waitUntil(lambda: not window.model.state.logged_in)
    assert "logout" in fakes.api.names() and fakes.channel.stopped


def test_logout_without_a_call_needs_no_confirmation(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    window.tray.logout_action.trigger()
    qtbot.waitUntil(lambda: not window.model.state.logged_in)
    assert window.findChild(QMessageBox, "logoutConfirm") is None and "logout" in fakes.api.names()
    assert not window.tray.logout_action.isEnabled()


def test_quit_from_the_tray_logs_out_and_closes(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    window.tray.quit_action.trigger()
    assert "logout" in fakes.api.names() and fakes.channel.stopped
    window.close()
    assert not window.isVisible()


def test_tray_icon_and_tooltip_follow_the_recorder(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    assert window.tray.level == Level.UNKNOWN
    log_in(qtbot, window)
    beat = {"version": "1", "state": "recording", "interval": 10.0}
    fakes.channel.send(
        "recorder.health",
        {"connected": True, "last_seen": fakes.clock.now, "heartbeat": beat, "problems": []},
    )
    qtbot.waitUntil(lambda: window.tray.level == Level.OK)
    assert "Recorder: recording" in window.tray.tooltip and "Ready" in window.tray.tooltip
    fakes.channel.send(
        "recorder.health",
        {"connected": False, "last_seen": fakes.clock.now, "heartbeat": beat, "problems": []},
    )
    qtbot.waitUntil(lambda: window.tray.level == Level.WARNING)
    assert "disconnected" in window.tray.tooltip


def test_a_session_lost_while_hidden_in_the_tray_brings_the_login_page_up(
    qtbot: QtBot, fakes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AgentTray, "available", staticmethod(lambda: True))
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())
    fakes.channel.status(ChannelState.REFUSED, "HTTP 401")
    qtbot.waitUntil(lambda: window.isVisible() and window.stack.currentWidget() is window.login_widget)


def test_a_recorder_warning_is_announced_by_the_tray(
    qtbot: QtBot, fakes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[tuple[str, str]] = []
    monkeypatch.setattr(AgentTray, "notify", lambda self, title, message: said.append((title, message)))
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    fakes.channel.send("recorder.health", {"connected": False, "last_seen": None, "heartbeat": None})
    qtbot.waitUntil(lambda: bool(said))
    assert said[0][0] == "Screen recorder problem" and "not being recorded" in said[0][1]
    window._render_health()  # still the same warning: said once, not at every tick
    assert len(said) == 1
