"""The compact call bar (issue 13 item 9): toggled from the window and the tray, always on top,
showing the caller, talk time and both legs; its Pause/Resume and Done take the window's path;
Escape or closing it brings the full window back, and so does the end of the session."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from agent_app.errors import AuthError
from agent_app.widgets.main_window import SESSION_EXPIRED, MainWindow
from tests.qt import scenes
from tests.qt.conftest import Fakes
from tests.qt.test_accessibility import display, screenshot, store

pytestmark = pytest.mark.timeout(120)
__all__ = ["display"]  # the Xvfb fixture, shared


def shown(qtbot: QtBot, fakes: Fakes, scene: str) -> MainWindow:
    window = scenes.make_window(fakes)
    qtbot.addWidget(window)
    window.show()
    scenes.enter(scene, window, fakes, qtbot.waitUntil)
    return window


def test_the_bar_replaces_the_window_and_pauses_through_it(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "oncall")
    QTest.mouseClick(window.call_bar_button, Qt.MouseButton.LeftButton)
    bar = window.call_bar
    qtbot.waitUntil(lambda: bar.isVisible() and not window.isVisible())
    assert bar.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert bar.caller_label.text() == "Carla Customer <+4930123456>"
    assert bar.elapsed_label.text() == "01:23"
    assert bar.voice_label.text() == "Voice: recording" and bar.voice_label.property("tone") == "ok"
    assert bar.screen_label.text() == "Screen: recording"
    fakes.channel.send("call.updated", fakes.call_data(screen="no_recorder"))
    qtbot.waitUntil(lambda: bar.screen_label.text() == "Screen: NOT recorded")  # short: the bar stays small
    assert bar.screen_label.toolTip() == "Screen: NOT recorded — the screen recorder is not connected"
    assert bar.screen_label.property("tone") == "alert"
    fakes.channel.send("call.updated", fakes.call_data(screen="recording"))
    qtbot.waitUntil(lambda: bar.screen_label.text() == "Screen: recording")
    QTest.mouseClick(bar.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bar.pause_button.text() == "Resume")
    assert "pause" in fakes.api.names() and bar.voice_label.text() == "Voice: paused"
    assert bar.pause_button.accessibleName() == "Resume"
    before = bar.elapsed_label.text()
    fakes.clock.now += 10
    window.call_panel.timer.timeout.emit()  # the window's second tick drives the bar's too
    assert bar.elapsed_label.text() != before  # the talk time runs in the bar
    assert bar.elapsed_label.text() == window.call_panel.elapsed_label.text()
    bar.activateWindow()
    bar.pause_button.setFocus()
    QTest.keyClick(bar.pause_button, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: bar.pause_button.text() == "Pause")
    assert "resume" in fakes.api.names()
    QTest.keyClick(bar.pause_button, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.isVisible() and not bar.isVisible())


def test_done_in_the_bar_sends_the_wrap_up(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "acw")
    window.tray.call_bar_action.trigger()  # from the tray
    bar = window.call_bar
    qtbot.waitUntil(bar.isVisible)
    assert bar.done_button.isEnabled() and not bar.pause_button.isEnabled()
    QTest.mouseClick(bar.done_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "wrapup" in fakes.api.names())
    _name, args = fakes.api.calls[fakes.api.names().index("wrapup")]
    assert args == ("int-1", "CB", "Wants a call back on Monday about the invoice.")


def test_closing_the_bar_brings_the_window_back(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "oncall")
    window.show_call_bar()
    qtbot.waitUntil(window.call_bar.isVisible)
    window.call_bar.close()
    qtbot.waitUntil(lambda: window.isVisible() and not window.call_bar.isVisible())


def test_a_lost_session_shows_the_login_page_not_the_bar(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "oncall")
    window.show_call_bar()
    qtbot.waitUntil(window.call_bar.isVisible)
    fakes.api.results["pause"] = AuthError("session expired")
    QTest.mouseClick(window.call_bar.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.model.state.logged_in)
    qtbot.waitUntil(lambda: window.isVisible() and not window.call_bar.isVisible())
    assert window.login_widget.error.text() == SESSION_EXPIRED


def test_the_bar_is_not_offered_when_logged_out(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "login")
    assert not window.tray.call_bar_action.isEnabled()
    window.show_call_bar()
    assert window.isVisible() and not window.call_bar.isVisible()


@pytest.mark.parametrize("scale", ["1", "1.5"])
def test_real_call_bar_fits_at_100_and_150_percent(display: str, tmp_path: Path, scale: str) -> None:
    out = tmp_path / "bar.png"
    lines = screenshot(display, out, "problem", scale, "--bar")
    assert [line for line in lines if line.startswith("CLIPPED")] == []  # incl. off the screen
    image = QImage(str(out))
    assert image.height() >= 24 * float(scale) and 400 * float(scale) <= image.width() <= 1280
    store(out, "desktop-callbar", scale)
