"""The pause reason chooser in the desktop (issue 13 item 2): every way to pause (button, tray,
hotkey) sends the pause at once and only then asks why; the chooser works by keyboard alone; the
reason goes out on the worker thread after the pause; a required reason cannot be waved away; a
refused reason is said plainly and the pause stands; no pause codes, no chooser."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from agent_app.errors import ApiError
from agent_app.widgets.main_window import MainWindow
from agent_app.widgets.pause_reason_dialog import PauseReasonDialog
from tests.qt.test_agent_window import assert_off_qt_thread, button, log_in, make_window, start_call, text

pytestmark = pytest.mark.timeout(60)
CODES = [
    {"kind": "pause", "code": "CARD", "label": "Card payment", "active": True},
    {"kind": "pause", "code": "HEALTH", "label": "Health data", "active": True},
]


def with_pause_codes(fakes: Any, required: bool) -> None:
    def configure(api: Any) -> None:
        api.results["agent_codes"] = {
            "reason_codes": [],
            "disposition_codes": [],
            "disposition_required": False,
            "pause_codes": CODES,
            "pause_reason_required": required,
        }

    fakes.configure = configure


def chooser(qtbot: QtBot, window: MainWindow) -> PauseReasonDialog:
    qtbot.waitUntil(lambda: window.pause_reason_dialog is not None and window.pause_reason_dialog.isVisible())
    dialog = window.pause_reason_dialog
    assert dialog is not None
    return dialog


def ready(qtbot: QtBot, fakes: Any, required: bool) -> MainWindow:
    with_pause_codes(fakes, required)
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    qtbot.waitUntil(lambda: window.model.state.codes.pause_reasons != ())
    start_call(qtbot, window, fakes)
    return window


def test_the_button_pauses_first_then_the_reason_is_chosen_by_keyboard(qtbot: QtBot, fakes: Any) -> None:
    window = ready(qtbot, fakes, required=False)
    gate = fakes.api.gates["pause"] = threading.Event()
    QTest.mouseClick(button(window, "pauseButton"), Qt.MouseButton.LeftButton)
    # The pause is on its way before anything is asked: the chooser never holds it up.
    qtbot.waitUntil(lambda: "pause" in fakes.api.names())
    dialog = chooser(qtbot, window)
    assert dialog.list.hasFocus() or dialog.list is dialog.focusWidget()
    assert [dialog.list.item(i).text() for i in range(dialog.list.count())] == ["Card payment", "Health data"]
    QTest.keyClick(dialog.list, Qt.Key.Key_Down)
    QTest.keyClick(dialog.list, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.pause_reason_dialog is None)
    gate.set()
    qtbot.waitUntil(lambda: "pause_reason" in fakes.api.names())
    names = fakes.api.names()
    assert names.index("pause") < names.index("pause_reason")  # one serial worker: in order
    assert fakes.api.calls[names.index("pause_reason")] == ("pause_reason", ("int-1", "HEALTH"))
    assert names.count("pause_reason") == 1  # Enter activates the item and the default button: once
    qtbot.waitUntil(lambda: button(window, "pauseButton").text() == "Resume")
    assert_off_qt_thread(fakes)


def test_optional_reason_escape_sends_nothing(qtbot: QtBot, fakes: Any) -> None:
    window = ready(qtbot, fakes, required=False)
    window.tray.pause_action.trigger()
    dialog = chooser(qtbot, window)
    QTest.keyClick(dialog.list, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.pause_reason_dialog is None)
    qtbot.waitUntil(lambda: button(window, "pauseButton").text() == "Resume")
    assert "pause_reason" not in fakes.api.names()


def test_a_required_reason_cannot_be_dismissed_and_tray_and_hotkey_ask_too(qtbot: QtBot, fakes: Any) -> None:
    window = ready(qtbot, fakes, required=True)
    window.tray.pause_action.trigger()
    dialog = chooser(qtbot, window)
    assert dialog.findChild(QPushButton, "pauseReasonSkip") is None  # no "No reason" button
    QTest.keyClick(dialog.list, Qt.Key.Key_Escape)
    assert dialog.isVisible() and "must give a reason" in dialog.message.text()
    dialog.close()  # the window's close button: still there
    assert dialog.isVisible()
    QTest.keyClick(dialog.list, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ("pause_reason", ("int-1", "CARD")) in fakes.api.calls)
    qtbot.waitUntil(lambda: button(window, "pauseButton").text() == "Resume")

    # Resume, then the global hotkey (delivered on the Qt thread like the real one): asked again.
    QTest.mouseClick(button(window, "pauseButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: button(window, "pauseButton").text() == "Pause")
    fakes.api.results["pause_reason"] = ApiError("'HEALTH' is not a pause reason in use", status=422)
    window.hotkey_pressed.emit()
    dialog = chooser(qtbot, window)
    QTest.keyClick(dialog.list, Qt.Key.Key_Down)
    QTest.keyClick(dialog.list, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: (
            text(window, "statusLabel")
            == "The pause stands, but its reason was not saved: 'HEALTH' is not a pause reason in use"
        )
    )
    assert fakes.api.names().count("pause") == 2


def test_without_pause_codes_nothing_is_asked(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    QTest.mouseClick(button(window, "pauseButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: button(window, "pauseButton").text() == "Resume")
    assert window.pause_reason_dialog is None and "pause_reason" not in fakes.api.names()


def test_the_chooser_speaks_german(qtbot: QtBot) -> None:
    from agent_app import i18n
    from agent_app.model import CodeOption
    from agent_app.pause_reason import ReasonPrompt

    assert i18n.install("de") == "de"
    try:
        dialog = PauseReasonDialog(ReasonPrompt("int-1", (CodeOption("CARD", "Kartenzahlung"),), True))
        qtbot.addWidget(dialog)
        assert dialog.windowTitle() == "Warum haben Sie pausiert?"
        dialog.reject()  # required: asked again, in German
        assert dialog.message.text().startswith("Ihr Team muss für jede Pause einen Grund angeben")
    finally:
        i18n.uninstall()
