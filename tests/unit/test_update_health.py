"""The post-switch rule (recorder_service/updater/health.py): confirm, wait or roll back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recorder_service.updater.activity_file import pid_owner
from recorder_service.updater.health import Snapshot, Verdict, Watch, judge

T0 = 1_000_000.0
DEADLINE = 600.0
WATCH = Watch("0.2.0", "0.1.0", T0, DEADLINE, live_before=("1000",))
EARLY, LATE = T0 + 30, T0 + DEADLINE


def snap(name: str, version: str = "0.2.0", *, healthy: bool = False, alive: bool = True) -> Snapshot:
    return Snapshot(name, version, healthy, alive)


CASES: list[tuple[str, list[Snapshot], float, str, str]] = [
    # (case, snapshots, now, action, words in the reason)
    ("healthy early: confirmed at once", [snap("1000", healthy=True)], EARLY, "confirm", "1000"),
    (
        "two users both healthy",
        [snap("1000", healthy=True), snap("1001", healthy=True)],
        EARLY,
        "confirm",
        "1000, 1001",
    ),
    (
        "one of two not yet healthy: wait",
        [snap("1000", healthy=True), snap("1001")],
        EARLY,
        "wait",
        "1 not yet",
    ),
    ("still on P (in a call) early: wait", [snap("1000", "0.1.0")], EARLY, "wait", "still on older"),
    ("crash before the deadline: wait", [snap("1000", alive=False)], EARLY, "wait", "waiting up to 570 s"),
    ("nobody logged in: wait", [], EARLY, "wait", ""),
    ("nobody logged in past the deadline: still wait", [], LATE + 3600, "wait", "absence is no failure"),
    ("logged out cleanly (record gone) past the deadline: wait", [], LATE, "wait", "no recorder is running"),
    ("running V, never healthy: roll back", [snap("1000")], LATE, "roll_back", "1000 run 0.2.0 but did not"),
    (
        "re-executed into V and died (record of P, pid gone)",
        [snap("1000", "0.1.0", alive=False)],
        LATE,
        "roll_back",
        "crashed",
    ),
    ("started V and died (user unit's crash loop)", [snap("1002", alive=False)], LATE, "roll_back", "1002"),
    (
        "crashed once, back and healthy: the crash still counts",
        [snap("1000", healthy=True), snap("1001", alive=False)],
        LATE,
        "roll_back",
        "1001",
    ),
    (
        "a stale record of P by someone not live at the switch: no evidence",
        [snap("1003", "0.1.0", alive=False)],
        LATE,
        "wait",
        "",
    ),
    (
        "healthy on V, another still busy on P: confirmed at the deadline",
        [snap("1000", healthy=True), snap("1001", "0.1.0")],
        LATE,
        "confirm",
        "1001 still on older",
    ),
    (
        "healthy on V, another busy on P, early: wait",
        [snap("1000", healthy=True), snap("1001", "0.1.0")],
        EARLY,
        "wait",
        "",
    ),
    ("every recorder still busy on P at the deadline: wait", [snap("1000", "0.1.0")], LATE, "wait", "busy"),
    (
        "healthy but also one unhealthy at the deadline: roll back",
        [snap("1000", healthy=True), snap("1001")],
        LATE,
        "roll_back",
        "1001",
    ),
    ("healthy just before the deadline", [snap("1000", healthy=True)], LATE - 0.001, "confirm", ""),
]


@pytest.mark.parametrize(("case", "snaps", "now", "action", "words"), CASES, ids=[c[0] for c in CASES])
def test_rule(case: str, snaps: list[Snapshot], now: float, action: str, words: str) -> None:
    verdict = judge(WATCH, snaps, now)
    assert verdict.action == action, (case, verdict)
    assert words in verdict.reason, (case, verdict)


def test_watch_round_trips_and_refuses_what_is_not_one() -> None:
    assert Watch.from_dict(WATCH.to_dict()) == WATCH
    for bad in ({}, {**WATCH.to_dict(), "live_before": "1000"}, {**WATCH.to_dict(), "deadline": "soon"}):
        with pytest.raises((KeyError, TypeError, ValueError)):
            Watch.from_dict(bad)


def test_the_deadline_is_the_watchs_own() -> None:
    short = Watch("0.2.0", "0.1.0", T0, 60.0)
    assert judge(short, [snap("1000")], T0 + 59) == Verdict(
        "wait",
        "waiting up to 1 s more for recorders to report 0.2.0 healthy "
        "(0 healthy, 1 not yet, 0 still on older versions)",
    )
    assert judge(short, [snap("1000")], T0 + 60).action == "roll_back"
    assert "within 1 min" in judge(short, [snap("1000")], T0 + 60).reason


def test_a_recorder_that_exited_unreaped_counts_as_ended() -> None:
    """A zombie (exited, its parent has not reaped it) runs nothing: a crashed recorder under a
    parent that is slow to look must not count as live."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert pid_owner(child.pid) in (os.getuid(), None)  # live, or already a zombie
        deadline = time.monotonic() + 60
        while pid_owner(child.pid) is not None:  # it exits; nobody reaps it meanwhile
            assert time.monotonic() < deadline, "the child never ended"
            time.sleep(0.02)
        assert Path(f"/proc/{child.pid}").exists()  # still there: a zombie, not reaped
    finally:
        child.wait()
    assert pid_owner(os.getpid()) == os.getuid()
