"""The global pause hotkey on a real X server (Xvfb): it fires while another X client (xterm) has
the keyboard focus, the key being sent like a person's with xdotool (XTEST)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from agent_app.config import DesktopSettings
from agent_app.hotkey import HotKeyError, parse_hotkey
from agent_app.hotkey.x11 import X11HotKey
from agent_app.widgets.main_window import MainWindow
from tests.qt.test_agent_window import log_in, start_call

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("Xvfb", "xterm", "xdotool")),
        reason="needs Xvfb, xterm and xdotool (scripts/system-packages test)",
    ),
]


def wait_for(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def display() -> Iterator[str]:
    """A private Xvfb (display number chosen by the server) with an xterm holding the focus."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        name = ":" + pipe.readline().strip()
    env = {**os.environ, "DISPLAY": name}
    xterm = subprocess.Popen(["xterm", "-title", "other-app"], env=env, stderr=subprocess.DEVNULL)
    try:
        found = subprocess.run(
            ["xdotool", "search", "--sync", "--name", "other-app"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        window = found.stdout.split()[0]
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, check=True, timeout=30)
        focused = subprocess.run(
            ["xdotool", "getwindowfocus"], env=env, capture_output=True, text=True, timeout=30
        )
        assert focused.stdout.strip() == window  # another application has the focus
        yield name
    finally:
        xterm.terminate()
        xterm.wait(10)
        xvfb.terminate()
        xvfb.wait(10)


def press(display: str, keys: str) -> None:
    subprocess.run(["xdotool", "key", keys], env={**os.environ, "DISPLAY": display}, check=True, timeout=30)


def test_the_hotkey_fires_while_another_program_has_the_focus(display: str) -> None:
    fired: list[float] = []
    listener = X11HotKey(parse_hotkey("Ctrl+Alt+P"), lambda: fired.append(time.monotonic()), display=display)
    listener.start()
    try:
        press(display, "ctrl+p")  # not ours: X delivers it to the xterm
        press(display, "ctrl+alt+p")
        wait_for(lambda: fired, "the hotkey")
        assert listener.presses == 1  # the ctrl+p before it (in order on the X connection) did not fire
        # With Num Lock on the key still fires (the lock bit is grabbed as well).
        press(display, "Num_Lock")
        time.sleep(0.6)  # past the auto-repeat debounce: a new press, not a held key
        press(display, "ctrl+alt+p")
        wait_for(lambda: listener.presses == 2, "the hotkey with Num Lock on")
    finally:
        listener.stop()


def test_a_key_taken_by_another_program_is_reported(display: str) -> None:
    holder = X11HotKey(parse_hotkey("Ctrl+Alt+K"), lambda: None, display=display)
    holder.start()
    try:
        with pytest.raises(HotKeyError, match="already taken by another program"):
            X11HotKey(parse_hotkey("Ctrl+Alt+K"), lambda: None, display=display).start()
    finally:
        holder.stop()


def test_the_window_pauses_on_the_hotkey_from_another_program(
    qtbot: QtBot, fakes: Any, display: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", display)  # the hotkey's X connection; Qt itself stays offscreen
    window = MainWindow(fakes.services(), settings=DesktopSettings(pause_hotkey="Ctrl+Alt+P"))
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.hotkey is not None
        assert window.hotkey_label.text() == "Pause or resume from any program: Ctrl+Alt+P"
        log_in(qtbot, window)
        start_call(qtbot, window, fakes)
        press(display, "ctrl+alt+p")
        qtbot.waitUntil(lambda: ("pause", ("int-1",)) in fakes.api.calls, timeout=20000)
        qtbot.waitUntil(lambda: window.model.view().pause_label == "Resume", timeout=20000)
        time.sleep(0.6)  # a second press, not auto-repeat
        press(display, "ctrl+alt+p")
        qtbot.waitUntil(lambda: ("resume", ("int-1",)) in fakes.api.calls, timeout=20000)
    finally:
        window.shutdown()
    assert window.hotkey is None


def test_a_bad_hotkey_setting_is_shown_not_fatal(qtbot: QtBot, fakes: Any) -> None:
    window = MainWindow(fakes.services(), settings=DesktopSettings(pause_hotkey="P"))
    qtbot.addWidget(window)
    assert window.hotkey is None
    assert window.hotkey_label.text().startswith("Pause hotkey not available: hotkey 'P'")
    window.shutdown()
