"""Usable by everyone (issue 13 item 9): every control has an accessible name and is reachable and
operable from the keyboard, and no text is cut off at 100 % or 150 % scaling (the real window on
Xvfb, whose pictures are the README's screenshots)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from agent_app.widgets.main_window import MainWindow
from tests.qt import scenes
from tests.qt.conftest import Fakes
from tests.qt.fit import clipped

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "screenshots"
INTERACTIVE = (QAbstractButton, QComboBox, QLineEdit, QPlainTextEdit, QAbstractSlider)


def shown(qtbot: QtBot, fakes: Fakes, scene: str) -> MainWindow:
    window = scenes.make_window(fakes)
    qtbot.addWidget(window)
    window.show()
    scenes.enter(scene, window, fakes, qtbot.waitUntil)
    return window


def unnamed_controls(root: QWidget) -> list[str]:
    """Interactive widgets a person can reach (visible, taking focus or clicks) without a name."""
    missing = []
    for widget in [root, *root.findChildren(QWidget)]:
        interactive = isinstance(widget, INTERACTIVE) or bool(widget.focusPolicy() & Qt.FocusPolicy.TabFocus)
        if interactive and widget.isVisibleTo(root) and not widget.accessibleName().strip():
            missing.append(f"{type(widget).__name__} {widget.objectName()!r}")
    return missing


@pytest.mark.parametrize("scene", scenes.SCENES)
def test_every_control_has_an_accessible_name(qtbot: QtBot, fakes: Fakes, scene: str) -> None:
    window = shown(qtbot, fakes, scene)
    assert unnamed_controls(window) == []
    if scene != "login":
        window.show_call_bar()
        qtbot.waitUntil(window.call_bar.isVisible)
        assert unnamed_controls(window.call_bar) == []


def mnemonics(root: QWidget) -> list[str]:
    """The Alt+letter of every visible label and button (a letter used twice is ambiguous: Qt
    then only moves the focus between them and clicks nothing)."""
    letters = []
    for widget in root.findChildren(QWidget):
        same_window = widget.window() is root.window()  # the call bar is a window of its own
        if isinstance(widget, (QLabel, QAbstractButton)) and widget.isVisibleTo(root) and same_window:
            text = widget.text().replace("&&", "")
            at = text.find("&")
            if at >= 0 and at + 1 < len(text):
                letters.append(text[at + 1].lower())
    return letters


@pytest.mark.parametrize("scene", scenes.SCENES)
def test_no_mnemonic_is_used_twice(qtbot: QtBot, fakes: Fakes, scene: str) -> None:
    letters = mnemonics(shown(qtbot, fakes, scene))
    assert len(letters) >= 3 and sorted(letters) == sorted(set(letters)), letters


def focus_name() -> str:
    widget = QApplication.focusWidget()
    return widget.objectName() if widget is not None else ""


def test_login_page_in_tab_order_and_enter_logs_in(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "login")
    window.activateWindow()
    server = window.login_widget.server
    server.setFocus()
    qtbot.waitUntil(lambda: focus_name() == "loginServer")
    order = ["loginServer"]
    for _ in range(4):  # the remember box is disabled here (no keyring in the test)
        QTest.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Tab)
        order.append(focus_name())
    assert order == ["loginServer", "loginUser", "loginPassword", "loginDn", "loginButton"]
    for name, text in (
        ("loginServer", "http://tandem:8000"),
        ("loginUser", "alice"),
        ("loginPassword", "pw"),
    ):
        field = window.findChild(QLineEdit, name)
        assert field is not None
        field.setText(text)
    dn = window.login_widget.dn
    dn.setFocus()
    QTest.keyClicks(dn, "4711")
    QTest.keyClick(dn, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.model.state.logged_in)
    assert fakes.api.calls[0] == ("login", ("alice", "pw", "4711"))


def press(
    window: QWidget, key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.AltModifier
) -> None:
    target = QApplication.focusWidget() or window
    QTest.keyClick(target, key, modifier)


def test_pause_and_resume_with_alt_p(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "oncall")
    window.activateWindow()
    window.state_selector.recordings_button.setFocus()  # the state box is not choosable on a call
    qtbot.waitUntil(lambda: focus_name() == "myRecordingsButton")
    press(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: window.pause_button.text() == "Resume")
    assert "pause" in fakes.api.names()
    press(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: window.pause_button.text() == "Pause")
    assert "resume" in fakes.api.names()


def test_alt_m_reaches_the_state_selector_between_calls(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "idle")
    window.activateWindow()
    window.logout_button.setFocus()
    qtbot.waitUntil(lambda: focus_name() == "logoutButton")
    press(window, Qt.Key.Key_M)  # "&My state:" → its combo box
    qtbot.waitUntil(lambda: focus_name() == "stateSelector")


def test_mnemonics_reach_the_notes_disposition_and_done(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "acw")
    window.activateWindow()
    window.acw_panel.disposition_box.setFocus()
    qtbot.waitUntil(lambda: focus_name() == "dispositionBox")
    press(window, Qt.Key.Key_N)  # "&Notes" → the notes
    qtbot.waitUntil(lambda: focus_name() == "notesEdit")
    press(window, Qt.Key.Key_I)  # "D&isposition (required)" → its box
    qtbot.waitUntil(lambda: focus_name() == "dispositionBox")
    press(window, Qt.Key.Key_D)  # "&Done" sends the wrap-up
    qtbot.waitUntil(lambda: "wrapup" in fakes.api.names())
    _name, args = fakes.api.calls[fakes.api.names().index("wrapup")]
    assert args == ("int-1", "CB", "Wants a call back on Monday about the invoice.")


@pytest.mark.parametrize("scene", scenes.SCENES)
def test_no_text_is_cut_off(qtbot: QtBot, fakes: Fakes, scene: str) -> None:
    window = shown(qtbot, fakes, scene)
    qtbot.waitUntil(lambda: window.isVisible())
    QApplication.processEvents()
    assert clipped(window) == []


# ---- the real window on Xvfb, at 100 % and 150 % ------------------------------------------------


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb")
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        name = ":" + pipe.readline().strip()
    try:
        yield name
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def screenshot(
    display: str, out: Path, scene: str, scale: str, *extra: str, language: str = "en"
) -> list[str]:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "QT_SCALE_FACTOR": scale}
    env["TANDEM_LANGUAGE"] = language
    done = subprocess.run(
        [sys.executable, "-m", "tests.qt.desktop_screenshot", str(out), scene, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def store(out: Path, name: str, scale: str) -> None:
    if os.environ.get("TANDEM_WRITE_SCREENSHOTS") == "1":
        shutil.copyfile(out, DOCS / f"{name}{'' if scale == '1' else '-150'}.png")


Check = Callable[[QImage], None]


@pytest.mark.parametrize("scale", ["1", "1.5"])
@pytest.mark.parametrize("scene", ["idle", "oncall", "paused", "acw", "problem"])
def test_real_window_fits_at_100_and_150_percent(
    display: str, tmp_path: Path, scene: str, scale: str
) -> None:
    out = tmp_path / "shot.png"
    lines = screenshot(display, out, scene, scale)
    factor = float(scale)
    assert lines[0] == f"{round(480 * factor)}x{round(600 * factor)}"  # the window did not have to grow
    assert [line for line in lines if line.startswith("CLIPPED")] == []
    assert not QImage(str(out)).isNull()
    store(out, f"desktop-{scene}", scale)


@pytest.mark.parametrize("scale", ["1", "1.5"])
def test_real_window_in_german_fits(display: str, tmp_path: Path, scale: str) -> None:
    """German words are longer: the ACW screen (the fullest) still fits, nothing cut off."""
    out = tmp_path / "shot.png"
    lines = screenshot(display, out, "acw", scale, language="de")
    factor = float(scale)
    assert lines[0] == f"{round(480 * factor)}x{round(600 * factor)}"
    assert [line for line in lines if line.startswith("CLIPPED")] == []
    store(out, "desktop-acw-de", scale)
