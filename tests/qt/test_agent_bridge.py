"""The Qt bridge: work runs off the Qt thread, results and events arrive on it, bounded."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QThread
from pytestqt.qtbot import QtBot

from agent_app.bridge import EventRelay, TaskRunner
from agent_app.errors import ApiError
from agent_app.model import ChannelState
from tandem_protocol import Envelope

pytestmark = pytest.mark.timeout(30)


def test_task_runner_runs_off_thread_in_order_and_delivers_on_qt_thread(qtbot: QtBot) -> None:
    runner = TaskRunner()
    work_threads: list[threading.Thread] = []
    delivered: list[tuple[Any, bool]] = []
    qt_thread = QThread.currentThread()

    def job(n: int) -> int:
        work_threads.append(threading.current_thread())
        if n == 2:
            raise ApiError("boom")
        return n

    def ok(value: Any) -> None:
        delivered.append((value, QThread.currentThread() is qt_thread))

    def err(exc: Exception) -> None:
        delivered.append((str(exc), QThread.currentThread() is qt_thread))

    for n in range(4):
        assert runner.submit(partial(job, n), ok, err)
    qtbot.waitUntil(lambda: len(delivered) == 4)
    assert delivered == [(0, True), (1, True), ("boom", True), (3, True)]
    assert all(t is not threading.main_thread() for t in work_threads)
    assert runner.pending == 0
    assert runner.shutdown(1000)
    assert not runner.submit(lambda: 1, ok, err)


def test_task_runner_bounds_its_queue(qtbot: QtBot) -> None:
    runner = TaskRunner()
    gate = threading.Event()
    results: list[int] = []
    accepted = [runner.submit(lambda: gate.wait(5), lambda _: results.append(1), print) for _ in range(20)]
    assert accepted.count(True) == 16 and accepted[16:] == [False] * 4
    gate.set()
    qtbot.waitUntil(lambda: len(results) == 16)
    runner.shutdown(1000)


def test_event_relay_delivers_on_qt_thread_and_drops_beyond_limit(qtbot: QtBot) -> None:
    relay = EventRelay(limit=5)
    received: list[tuple[int, bool]] = []
    statuses: list[tuple[ChannelState, str]] = []
    overflows: list[bool] = []
    qt_thread = QThread.currentThread()
    relay.envelope.connect(lambda e: received.append((e.seq, QThread.currentThread() is qt_thread)))
    relay.status.connect(lambda s, d: statuses.append((s, d)))
    relay.overflow.connect(lambda: overflows.append(True))

    def channel_thread() -> None:
        relay.post_status(ChannelState.CONNECTED, "")
        for seq in range(1, 9):  # the Qt thread is blocked in join(): nothing drains meanwhile
            relay.post_envelope(Envelope(type="call.updated", data={}, seq=seq))

    thread = threading.Thread(target=channel_thread)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(received) == 5 and bool(overflows))
    assert received == [(seq, True) for seq in range(1, 6)]
    assert relay.dropped.count == 3 and overflows == [True]
    assert statuses == [(ChannelState.CONNECTED, "")]
    # Room again once drained; closed relays deliver nothing.
    relay.post_envelope(Envelope(type="state", data={}, seq=1))
    qtbot.waitUntil(lambda: len(received) == 6)
    relay.close()
    relay.post_envelope(Envelope(type="state", data={}, seq=2))
    QCoreApplication.processEvents()  # a post queues its signal at once: anything queued is delivered
    assert len(received) == 6
