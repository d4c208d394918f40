"""Login throttling (server.security.throttle) with an injected clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from server.errors import PasswordCheckBusy
from server.security.passwords import Gate
from server.security.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kw: int | float) -> LoginThrottle:
    return LoginThrottle(clock=clock, **kw)  # type: ignore[arg-type]


def test_five_free_failures_then_back_off_doubles_up_to_fifteen_minutes() -> None:
    clock = Clock()
    t = make(clock)
    for _ in range(5):
        assert t.retry_after("alice", "10.0.0.1") == 0
        t.failed("alice", "10.0.0.1")
    waits = []
    for _ in range(14):
        wait = t.retry_after("alice", "10.0.0.1")
        waits.append(wait)
        clock.now += wait  # the client waits exactly as told, then fails again
        assert t.retry_after("alice", "10.0.0.1") == 0
        t.failed("alice", "10.0.0.1")
    assert waits[:11] == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert waits[11:] == [900, 900, 900]  # capped at 15 min


def test_per_user_counter_catches_one_account_from_many_addresses() -> None:
    clock = Clock()
    t = make(clock)
    for i in range(6):
        t.failed("alice", f"10.0.0.{i}")
    assert t.retry_after("alice", "192.168.1.1") == 1.0  # a new address does not help
    assert t.retry_after("bob", "10.0.0.1") == 0  # another user is not affected


def test_per_source_counter_catches_many_accounts_from_one_address() -> None:
    clock = Clock()
    t = make(clock)
    for i in range(20):
        t.failed(f"user{i}", "10.6.6.6")
    assert t.retry_after("someone-new", "10.6.6.6") == 0  # 20 free failures per source
    t.failed("user20", "10.6.6.6")
    assert t.retry_after("someone-new", "10.6.6.6") == 1.0
    assert t.retry_after("someone-new", "10.0.0.1") == 0


def test_success_resets_the_user_but_not_the_source() -> None:
    clock = Clock()
    t = make(clock, source_free_failures=6)
    for _ in range(7):
        t.failed("alice", "10.0.0.1")
    assert t.retry_after("alice", "10.0.0.9") > 0
    t.succeeded("alice")
    assert t.retry_after("alice", "10.0.0.9") == 0
    assert t.retry_after("alice", "10.0.0.1") > 0  # the source still waits out its back-off


def test_failures_are_forgotten_after_a_quiet_hour() -> None:
    clock = Clock()
    t = make(clock)
    for _ in range(8):
        t.failed("alice", "10.0.0.1")
    assert t.retry_after("alice", "10.0.0.1") == 4.0
    clock.now += 3600
    assert t.retry_after("alice", "10.0.0.1") == 0
    t.failed("alice", "10.0.0.1")  # counting starts again: one failure is free
    assert t.retry_after("alice", "10.0.0.1") == 0


def test_memory_is_bounded_and_the_hammered_key_survives() -> None:
    clock = Clock()
    t = make(clock, max_entries=100)
    for _ in range(8):
        t.failed("alice", "10.0.0.1")
    for i in range(1000):
        t.failed(f"spray{i}", f"10.1.{i // 256}.{i % 256}")
        if i % 50 == 0:
            t.failed("alice", "10.0.0.1")  # still being hammered: stays recent
        assert t.tracked()[0] <= 100 and t.tracked()[1] <= 100
    assert t.retry_after("alice", "10.9.9.9") == 900
    assert t.tracked() == (100, 100)


def test_huge_usernames_are_capped() -> None:
    clock = Clock()
    t = make(clock)
    for _ in range(6):
        t.failed("x" * 1_000_000, "10.0.0.1")
    assert t.retry_after("x" * 200, "10.0.0.2") == 1.0


def test_password_gate_runs_two_queues_a_few_and_refuses_the_rest() -> None:
    gate = Gate(concurrent=2, waiting=3, wait_seconds=30)
    release = threading.Event()
    running: list[int] = []
    lock = threading.Lock()
    outcomes: list[str] = []

    def work(i: int) -> None:
        try:
            with gate.turn():
                with lock:
                    running.append(i)
                release.wait(30)
                with lock:
                    running.remove(i)
            outcomes.append("done")
        except PasswordCheckBusy:
            outcomes.append("busy")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
    for th in threads:
        th.start()
    wait_for(lambda: len(running) == 2)  # two run, three wait
    with pytest.raises(PasswordCheckBusy):  # the sixth finds the waiting room full: refused at once
        with gate.turn():
            pass
    assert len(running) == 2
    release.set()
    for th in threads:
        th.join(30)
    assert outcomes == ["done"] * 5
    with gate.turn():  # free again
        pass


def test_password_gate_waits_without_limit_when_asked() -> None:
    gate = Gate(concurrent=1, waiting=0, wait_seconds=30)
    outcome: list[str] = []

    def admin_work() -> None:
        try:
            with gate.turn(refuse_when_full=False):
                outcome.append("done")
        except PasswordCheckBusy:
            outcome.append("busy")

    with gate.turn():
        with pytest.raises(PasswordCheckBusy):  # a login finds no room
            with gate.turn():
                pass
        admin = threading.Thread(target=admin_work)
        admin.start()  # setting a password waits for the turn instead
    admin.join(30)
    assert outcome == ["done"]


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
