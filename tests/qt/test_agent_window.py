"""The agent desktop window with fake services: what the agent sees and when."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtTest import QTest  # typed, unlike QtBot.mouseClick (the same function)
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton
from pytestqt.qtbot import QtBot

from agent_app.errors import ApiError, AuthError, ScreenNotConfirmedError
from agent_app.model import AgentState, ChannelState
from agent_app.widgets.main_window import SESSION_EXPIRED, MainWindow

pytestmark = pytest.mark.timeout(60)


def find(window: MainWindow, kind: Any, name: str) -> Any:
    widget = window.findChild(kind, name)
    assert widget is not None, f"no {kind.__name__} named {name}"
    return widget


def text(window: MainWindow, name: str) -> str:
    label: QLabel = find(window, QLabel, name)
    return label.text()


def button(window: MainWindow, name: str) -> QPushButton:
    found: QPushButton = find(window, QPushButton, name)
    return found


def make_window(qtbot: QtBot, fakes: Any) -> MainWindow:
    window = MainWindow(fakes.services())
    qtbot.addWidget(window)
    window.show()
    return window


def log_in(qtbot: QtBot, window: MainWindow, dn: str = "4711") -> None:
    find(window, QLineEdit, "loginServer").setText("http://127.0.0.1:8000")
    find(window, QLineEdit, "loginUser").setText("alice")
    find(window, QLineEdit, "loginPassword").setText("secret")
    find(window, QLineEdit, "loginDn").setText(dn)
    QTest.mouseClick(button(window, "loginButton"), Qt.MouseButton.LeftButton)
    # Logged in, and the call fetched after the login has landed (runner idle): on a loaded machine
    # its "no call" answer could otherwise arrive after a test's call.started and clear the call.
    qtbot.waitUntil(
        lambda: (
            window.model.state.logged_in
            and window.model.state.pending == "none"
            and window.runner.pending == 0
        )
    )


def start_call(qtbot: QtBot, window: MainWindow, fakes: Any, **over: Any) -> None:
    fakes.channel.send("call.started", fakes.call_data(**over), seq=2, at=fakes.clock.now)
    qtbot.waitUntil(lambda: window.model.call is not None)


def assert_off_qt_thread(fakes: Any) -> None:
    threads = [t for api in fakes.apis for t in api.threads]
    assert threads, "no API call was made"
    assert all(t is not threading.main_thread() for t in threads)


def test_login_shows_workspace_and_starts_channel(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    assert window.stack.currentWidget() is window.login_widget
    log_in(qtbot, window)
    assert window.stack.currentWidget() is window.workspace
    assert fakes.api.calls[0] == ("login", ("alice", "secret", "4711"))
    assert fakes.api.server_url == "http://127.0.0.1:8000"
    assert fakes.channel.started and fakes.channel.token == "tok-1"
    assert text(window, "agentStateLabel") == "Ready"
    assert find(window, QLineEdit, "loginPassword").text() == ""
    qtbot.waitUntil(lambda: "current_call" in fakes.api.names())  # resync right after login
    assert_off_qt_thread(fakes)


def test_login_error_is_shown_and_form_stays_usable(qtbot: QtBot, fakes: Any) -> None:
    fakes.configure = lambda api: api.results.update(login=AuthError("Wrong user name or password."))
    window = make_window(qtbot, fakes)
    find(window, QLineEdit, "loginServer").setText("127.0.0.1:8000")
    find(window, QLineEdit, "loginUser").setText("alice")
    find(window, QLineEdit, "loginPassword").setText("bad")
    find(window, QLineEdit, "loginDn").setText("4711")
    QTest.mouseClick(button(window, "loginButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: text(window, "loginError") == "Wrong user name or password.")
    assert button(window, "loginButton").isEnabled() and window.stack.currentWidget() is window.login_widget
    assert fakes.api.closed and not fakes.channels


def test_incomplete_form_never_calls_the_server(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    find(window, QLineEdit, "loginServer").setText("http://127.0.0.1:8000")
    QTest.mouseClick(button(window, "loginButton"), Qt.MouseButton.LeftButton)
    assert text(window, "loginError") == "Enter your user name." and not fakes.apis


def test_call_started_shows_caller_dn_and_ticking_time(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    fakes.clock.now += 5
    start_call(qtbot, window, fakes)
    assert text(window, "callerLabel") == "+4930123456"
    assert text(window, "dnLabel") == "DN 4711"
    assert text(window, "agentStateLabel") == "On call"
    assert text(window, "voiceStateLabel") == "Recording"
    assert text(window, "screenStateLabel") == "Recording"
    assert text(window, "elapsedLabel") == "00:05"
    assert window.call_panel.timer.isActive()
    fakes.clock.now += 70
    qtbot.waitUntil(lambda: text(window, "elapsedLabel") == "01:15", timeout=3000)
    assert button(window, "pauseButton").text() == "Pause" and button(window, "pauseButton").isEnabled()


def test_pause_shows_pausing_then_resume_only_after_confirmation(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    gate = fakes.api.gates["pause"] = threading.Event()
    pause = button(window, "pauseButton")
    QTest.mouseClick(pause, Qt.MouseButton.LeftButton)
    assert pause.text() == "Pausing…" and not pause.isEnabled()
    qtbot.waitUntil(lambda: "pause" in fakes.api.names())
    # The pause request is held at its gate (no answer can come): whatever the click queued is
    # delivered now, and nothing of it may claim "paused".
    QCoreApplication.processEvents()
    assert "paused" not in text(window, "voiceStateLabel").lower()
    assert pause.text() == "Pausing…"
    gate.set()
    qtbot.waitUntil(lambda: pause.text() == "Resume")
    assert pause.isEnabled() and text(window, "voiceStateLabel") == "Paused"
    assert window.model.agent_state == AgentState.PAUSED
    assert fakes.api.calls[-1] == ("pause", ("int-1",))

    gate = fakes.api.gates["resume"] = threading.Event()
    QTest.mouseClick(pause, Qt.MouseButton.LeftButton)
    assert pause.text() == "Resuming…" and not pause.isEnabled()
    assert text(window, "voiceStateLabel") == "Paused"  # still true until the server says so
    gate.set()
    qtbot.waitUntil(lambda: pause.text() == "Pause")
    assert pause.isEnabled() and text(window, "voiceStateLabel") == "Recording"
    assert_off_qt_thread(fakes)


def test_pause_error_leaves_button_usable_and_shows_message(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    fakes.api.results["pause"] = ApiError("The server could not pause the recording.", status=500)
    fakes.api.results["current_call"] = fakes.call()
    pause = button(window, "pauseButton")
    QTest.mouseClick(pause, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: text(window, "statusLabel") == "The server could not pause the recording.")
    assert pause.text() == "Pause" and pause.isEnabled()
    assert "paused" not in text(window, "voiceStateLabel").lower()
    qtbot.waitUntil(lambda: fakes.api.names().count("current_call") == 2)  # resynced after the error


def test_screen_not_confirmed_is_not_shown_as_paused(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    fakes.api.results["pause"] = ScreenNotConfirmedError("The screen recorder did not confirm the pause.")
    fakes.api.results["current_call"] = fakes.call(voice="paused")
    pause = button(window, "pauseButton")
    QTest.mouseClick(pause, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: fakes.api.names().count("current_call") == 2 and window.runner.pending == 0)
    assert text(window, "statusLabel") == "The screen recorder did not confirm the pause."
    assert "paused" not in text(window, "voiceStateLabel").lower()
    assert "not confirmed" in text(window, "voiceStateLabel")
    # The voice is held: the button resumes it (issue 13: it went back to a Pause that did nothing).
    assert pause.text() == "Resume (pause NOT confirmed)" and pause.isEnabled()
    # The recorder confirms late: the server says so on the channel.
    fakes.channel.send("recording.paused", fakes.call_data(paused=True, voice="paused", screen="paused"))
    qtbot.waitUntil(lambda: pause.text() == "Resume")
    assert text(window, "voiceStateLabel") == "Paused"


def test_an_unconfirmed_pause_is_warned_in_words_and_colour_and_resume_works(
    qtbot: QtBot, fakes: Any
) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    warning = "Screen pause NOT confirmed: the screen recorder did not answer within 1 s"
    unconfirmed = fakes.call_data(voice="paused", pause="unconfirmed", pause_warning=warning)
    fakes.channel.send("call.updated", unconfirmed)
    pause = button(window, "pauseButton")
    qtbot.waitUntil(lambda: pause.text() == "Resume (pause NOT confirmed)")
    warning_label = window.findChild(QLabel, "pauseWarningLabel")
    assert warning_label is not None and warning_label.text() == warning and warning_label.isVisibleTo(window)
    screen = window.findChild(QLabel, "screenStateLabel")
    assert screen is not None and screen.property("tone") == "alert" and "NOT confirmed" in screen.text()
    assert text(window, "agentStateLabel") == "On call — pause NOT confirmed"
    QTest.mouseClick(pause, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: text(window, "voiceStateLabel") == "Recording")
    assert "resume" in fakes.api.names() and pause.text() == "Pause" and pause.isEnabled()
    assert not warning_label.isVisibleTo(window)
    voice = window.findChild(QLabel, "voiceStateLabel")
    assert voice is not None and voice.property("tone") == "ok"


def test_done_enabled_only_in_acw(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    done = button(window, "doneButton")
    assert not done.isEnabled()
    start_call(qtbot, window, fakes)
    assert not done.isEnabled()
    ended = fakes.call_data(phase="acw", voice="stopped", ended_at=fakes.clock.now + 30)
    fakes.channel.send("call.ended", ended)
    qtbot.waitUntil(done.isEnabled)
    assert text(window, "agentStateLabel") == "After-call work"
    assert not button(window, "pauseButton").isEnabled()
    QTest.mouseClick(done, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: text(window, "agentStateLabel") == "Ready")
    assert not done.isEnabled() and text(window, "callerLabel") == "No call"
    assert ("done", ("int-1",)) in fakes.api.calls
    assert not window.call_panel.timer.isActive()


def test_state_event_after_reconnect_resyncs(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    fakes.channel.status(ChannelState.RECONNECTING, "connection lost")
    qtbot.waitUntil(lambda: text(window, "statusLabel").startswith("Connection lost"))
    fakes.channel.status(ChannelState.CONNECTED)
    agent = {"id": 7, "username": "alice", "role": "agent", "dn": "4711"}
    call = fakes.call_data(paused=True, voice="paused", screen="paused", caller="+491777")
    fakes.channel.send("state", {"agent": agent, "call": call}, seq=1)
    qtbot.waitUntil(lambda: text(window, "callerLabel") == "+491777")
    assert button(window, "pauseButton").text() == "Resume"
    assert text(window, "statusLabel") == "Connected"


def test_logout_stops_channel_and_revokes(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    QTest.mouseClick(button(window, "logoutButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.login_widget)
    assert fakes.channel.stopped and "logout" in fakes.api.names() and fakes.api.closed
    assert text(window, "loginError") == "" and button(window, "loginButton").isEnabled()
    assert_off_qt_thread(fakes)


def test_refused_channel_ends_session(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    fakes.channel.status(ChannelState.REFUSED, "HTTP 401")
    qtbot.waitUntil(lambda: text(window, "loginError") == SESSION_EXPIRED)
    assert fakes.channel.stopped and fakes.api.closed
    assert "logout" not in fakes.api.names()  # the token is already dead


def test_expired_token_on_pause_ends_session(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    fakes.api.results["pause"] = AuthError("Token expired.")
    QTest.mouseClick(button(window, "pauseButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.login_widget)
    assert text(window, "loginError") == SESSION_EXPIRED


def test_shutdown_logs_out(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    window.shutdown()
    assert fakes.channel.stopped and "logout" in fakes.api.names() and fakes.api.closed
    window.shutdown()  # idempotent
    assert fakes.api.names().count("logout") == 1


def test_shutdown_during_login_still_logs_out(qtbot: QtBot, fakes: Any) -> None:
    gate = threading.Event()
    fakes.configure = lambda api: api.gates.update(login=gate)
    window = make_window(qtbot, fakes)
    find(window, QLineEdit, "loginServer").setText("http://127.0.0.1:8000")
    find(window, QLineEdit, "loginUser").setText("alice")
    find(window, QLineEdit, "loginPassword").setText("secret")
    find(window, QLineEdit, "loginDn").setText("4711")
    QTest.mouseClick(button(window, "loginButton"), Qt.MouseButton.LeftButton)
    assert not button(window, "loginButton").isEnabled()
    qtbot.waitUntil(lambda: bool(fakes.apis) and "login" in fakes.api.names())
    threading.Timer(0.2, gate.set).start()
    window.shutdown()
    assert fakes.api.names() == ["login", "logout"] and fakes.api.closed
    assert not fakes.channels  # the login result was never delivered: no channel opened


def test_caller_name_is_plain_text(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes, caller="<b>Eve</b>")
    label: QLabel = find(window, QLabel, "callerLabel")
    assert label.text() == "<b>Eve</b>" and label.textFormat() == Qt.TextFormat.PlainText
    for name in ("dnLabel", "voiceStateLabel", "statusLabel", "loginError", "agentStateLabel"):
        assert find(window, QLabel, name).textFormat() == Qt.TextFormat.PlainText
