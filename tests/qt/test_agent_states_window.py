"""The desktop window's state selector, ACW panel and call panel fields with fake services."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QLabel, QPlainTextEdit, QPushButton
from pytestqt.qtbot import QtBot

from agent_app.errors import ApiError
from agent_app.model import CodesFetched, parse_codes
from agent_app.widgets.main_window import MainWindow
from tests.qt.test_agent_window import button, find, log_in, make_window, start_call, text

pytestmark = pytest.mark.timeout(60)
CODES = {
    "reason_codes": [{"code": "LUNCH", "label": "Lunch"}, {"code": "TRAIN", "label": "Training"}],
    "disposition_codes": [{"code": "SALE", "label": "Sale"}, {"code": "CB", "label": "Call back"}],
    "disposition_required": True,
    "acw_limit_seconds": 120,
}


def with_codes(fakes: Any, **over: Any) -> None:
    fakes.configure = lambda api: api.results.update(agent_codes={**CODES, **over})


def selector(window: MainWindow) -> QComboBox:
    found: QComboBox = find(window, QComboBox, "stateSelector")
    return found


def test_state_selector_offers_ready_and_not_ready_reasons_and_shows_the_servers_answer(
    qtbot: QtBot, fakes: Any
) -> None:
    with_codes(fakes)
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    box = selector(window)
    qtbot.waitUntil(lambda: box.count() == 3 and box.isEnabled())
    assert [box.itemText(i) for i in range(3)] == ["Ready", "Not Ready ▸ Lunch", "Not Ready ▸ Training"]
    assert box.accessibleName() == "My state"
    fakes.api.results["set_agent_state"] = {"state": "not_ready", "reason_code": "LUNCH"}
    # Keyboard-operable: an arrow key opens the list (passing an entry is no state change), the
    # arrow moves in it and Enter chooses.
    box.setFocus()
    QTest.keyClick(box, Qt.Key.Key_Down)
    qtbot.waitUntil(box.view().isVisible)
    assert "set_agent_state" not in fakes.api.names()
    QTest.keyClick(box.view(), Qt.Key.Key_Down)
    QTest.keyClick(box.view(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ("set_agent_state", ("not_ready", "LUNCH")) in fakes.api.calls)
    qtbot.waitUntil(lambda: text(window, "agentStateLabel") == "Not Ready — Lunch")
    assert box.currentText() == "Not Ready ▸ Lunch"
    # A refusal leaves the state as it was and says why.
    fakes.api.results["set_agent_state"] = ApiError("'TRAIN' is not a reason code in use", status=422)
    qtbot.waitUntil(box.isEnabled)
    window.state_selector.choose("not_ready", "TRAIN")
    qtbot.waitUntil(lambda: "not changed" in text(window, "statusLabel"))
    assert text(window, "agentStateLabel") == "Not Ready — Lunch"
    assert box.currentText() == "Not Ready ▸ Lunch"


def test_selector_disabled_when_the_server_has_no_codes(qtbot: QtBot, fakes: Any) -> None:
    fakes.configure = lambda api: api.results.update(agent_codes=ApiError("Not Found", status=404))
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    qtbot.waitUntil(lambda: "agent_codes" in fakes.api.names() and window.runner.pending == 0)
    assert not selector(window).isEnabled() and text(window, "statusLabel") == "Connecting…"


def test_acw_panel_disposition_notes_countdown_and_done(qtbot: QtBot, fakes: Any) -> None:
    with_codes(fakes)
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    panel = window.acw_panel
    assert not panel.isVisible()
    now = fakes.clock.now
    ended = {"phase": "acw", "voice": "stopped", "ended_at": now - 10, "acw_deadline": now + 110}
    fakes.channel.send("call.ended", fakes.call_data(**ended), seq=3, at=now)
    qtbot.waitUntil(panel.isVisible)
    done: QPushButton = button(window, "doneButton")
    countdown: QLabel = find(window, QLabel, "acwCountdownLabel")
    assert text(window, "acwElapsedLabel") == "00:10"
    assert countdown.text() == "Time left: 01:50" and countdown.property("tone") == "pending"
    assert not done.isEnabled()  # the admin requires a disposition
    assert "Choose a disposition" in text(window, "acwHintLabel")
    # The countdown ticks on its own (the panel's timer), on the server's clock.
    fakes.clock.now = now + 95
    panel.tick()
    assert countdown.text() == "Time left: 00:15" and countdown.property("tone") == "alert"
    box: QComboBox = find(window, QComboBox, "dispositionBox")
    box.setCurrentIndex(box.findData("CB"))
    box.activated.emit(box.currentIndex())
    qtbot.waitUntil(done.isEnabled)
    notes: QPlainTextEdit = find(window, QPlainTextEdit, "notesEdit")
    QTest.keyClicks(notes, "Wants a call back on Monday")
    QTest.mouseClick(done, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.isVisible())
    assert ("wrapup", ("int-1", "CB", "Wants a call back on Monday")) in fakes.api.calls
    assert "done" not in fakes.api.names()
    assert text(window, "callerLabel") == "No call"


def test_optional_disposition_and_no_notes_is_a_plain_done(qtbot: QtBot, fakes: Any) -> None:
    with_codes(fakes, disposition_required=False)
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes)
    fakes.channel.send("call.ended", fakes.call_data(phase="acw", voice="stopped"), seq=3, at=fakes.clock.now)
    qtbot.waitUntil(window.acw_panel.isVisible)
    assert find(window, QLabel, "acwCountdownLabel").text() == "none"  # no deadline sent
    done = button(window, "doneButton")
    qtbot.waitUntil(done.isEnabled)
    QTest.mouseClick(done, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ("done", ("int-1",)) in fakes.api.calls)
    assert "wrapup" not in fakes.api.names()


def test_call_panel_shows_caller_direction_line_queue_and_attached_data(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(
        qtbot,
        window,
        fakes,
        caller="Carla Customer <+4930123>",
        direction="outbound",
        metadata={"queue": "Billing", "service": "Gold line", "ticket": "T-99"},
    )
    assert text(window, "callerLabel") == "Carla Customer <+4930123>"
    assert text(window, "callerNumberLabel") == "+4930123"
    assert text(window, "directionLabel") == "Outbound"
    assert text(window, "dnLabel") == "DN 4711"
    assert (text(window, "serviceLabel"), text(window, "queueLabel")) == ("Gold line", "Billing")
    assert (
        text(window, "metadataLabel") == "ticket: T-99" and find(window, QLabel, "metadataLabel").isVisible()
    )
    voice, screen = find(window, QLabel, "voiceStateLabel"), find(window, QLabel, "screenStateLabel")
    assert (voice.text(), voice.property("tone")) == ("Recording", "ok")
    assert (screen.text(), screen.property("tone")) == ("Recording", "ok")
    fakes.channel.send("call.updated", fakes.call_data(screen="off"), seq=3, at=fakes.clock.now)
    qtbot.waitUntil(lambda: screen.text() == "Not sampled for this call")
    assert screen.property("tone") == "neutral" and text(window, "directionLabel") == "Not known"


def test_my_recordings_opens_the_web_player_where_the_admin_allows_it(qtbot: QtBot, fakes: Any) -> None:
    opened: list[str] = []

    def open_url(url: str) -> bool:
        opened.append(url)
        return True

    services = fakes.services()
    services.open_url = open_url
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.show()
    log_in(qtbot, window)  # the default fake codes: his team may not play recordings
    my = button(window, "myRecordingsButton")
    qtbot.waitUntil(lambda: window.model.state.codes.loaded)
    assert not my.isVisible()
    window._dispatch(CodesFetched(parse_codes({**CODES, "may_play_own_recordings": True})))
    assert my.isVisible()
    QTest.mouseClick(my, Qt.MouseButton.LeftButton)
    assert opened == ["http://127.0.0.1:8000/#/recordings"]
    # No browser to open: the agent is told where his recordings are.
    services.open_url = lambda url: False
    QTest.mouseClick(my, Qt.MouseButton.LeftButton)
    assert (
        text(window, "statusLabel")
        == "Could not open a browser; your recordings are at http://127.0.0.1:8000/#/recordings"
    )


def test_state_selector_shows_on_call_and_acw_and_offers_ready_again_only_after_done(
    qtbot: QtBot, fakes: Any
) -> None:
    """Issue 13 item 3: during a call the box says On call, in ACW "After-call work", neither
    choosable; Ready and the reasons come back with Done."""
    with_codes(fakes, disposition_required=False)
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    box = selector(window)
    qtbot.waitUntil(lambda: box.count() == 3 and box.isEnabled())
    start_call(qtbot, window, fakes)
    qtbot.waitUntil(lambda: box.currentText() == "On call")
    assert [box.itemText(i) for i in range(box.count())] == ["On call"] and not box.isEnabled()
    fakes.channel.send("call.ended", fakes.call_data(phase="acw", voice="stopped"), seq=3, at=fakes.clock.now)
    qtbot.waitUntil(lambda: box.currentText() == "After-call work")
    assert box.count() == 1 and not box.isEnabled()
    QTest.mouseClick(button(window, "doneButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: box.currentText() == "Ready" and box.isEnabled())
    assert [box.itemText(i) for i in range(box.count())] == [
        "Ready",
        "Not Ready ▸ Lunch",
        "Not Ready ▸ Training",
    ]
    assert "set_agent_state" not in fakes.api.names()


def test_call_panel_rows_do_not_repeat_their_caption(qtbot: QtBot, fakes: Any) -> None:
    window = make_window(qtbot, fakes)
    log_in(qtbot, window)
    start_call(qtbot, window, fakes, screen="no_recorder")
    voice, screen = find(window, QLabel, "voiceStateLabel"), find(window, QLabel, "screenStateLabel")
    assert voice.text() == "Recording" and voice.accessibleName() == "Voice"
    assert screen.text() == "NOT recorded — the screen recorder is not connected"
    assert screen.accessibleName() == "Screen"
    # The compact bar has no captions: it keeps the words "Voice:" and "Screen:".
    assert window.call_bar.voice_label.toolTip() == "Voice: recording"
