"""The recorder's heartbeat: built from its sources (pure), validated on the server, the clock's
accuracy it reports, and the fleet's rules (offline after three missed beats, problems first) with
an injected clock."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from recorder_service.clock import ClockSync
from recorder_service.heartbeat import (
    HealthSources,
    HeartbeatSender,
    PolicyWatch,
    build_heartbeat,
    directory_bytes,
    service_sources,
)
from server.services import recorder_fleet
from server.services.recorder_fleet import FleetEntry, order_key, problems_of
from tandem_protocol.events import Envelope, EventType
from tandem_protocol.recorder_health import Heartbeat, UploadProgress
from tandem_protocol.recorder_policy import RecorderPolicy


def _sources(**over: Any) -> HealthSources:
    base: dict[str, Any] = {
        "state": lambda: "recording",
        "interaction": lambda: "int-1",
        "spool": lambda: (5_000_000, 3),
        "upload": lambda: UploadProgress("int-1/run/2", 1000, 4000),
        "last_error": lambda: "",
        "disk": lambda: (80_000_000_000, 41.234),
        "clock": lambda: (0.25, 0.004),
    }
    base.update(over)
    return HealthSources(**base)


def test_a_heartbeat_is_built_from_its_sources_and_survives_the_wire() -> None:
    beat = build_heartbeat(_sources(), version="1.2.3", host="pc-17", interval=15.0)
    assert beat == Heartbeat(
        version="1.2.3",
        state="recording",
        host="pc-17",
        interaction_id="int-1",
        spool_bytes=5_000_000,
        segments_pending=3,
        upload=UploadProgress("int-1/run/2", 1000, 4000),
        last_error="",
        free_disk_bytes=80_000_000_000,
        free_disk_percent=41.23,
        clock_offset=0.25,
        clock_accuracy=0.004,
        interval=15.0,
    )
    assert Heartbeat.from_dict(beat.to_dict()) == beat


def test_a_failing_source_costs_its_field_not_the_heartbeat() -> None:
    def broken() -> tuple[int, int]:
        raise OSError("spool directory gone")

    beat = build_heartbeat(
        _sources(spool=broken, last_error=lambda: "upload refused: 422"), version="1", host="h", interval=5
    )
    assert beat.spool_bytes == 0 and beat.segments_pending == 0
    assert beat.last_error == "spool unreadable: spool directory gone; upload refused: 422"
    assert (
        build_heartbeat(_sources(state=lambda: "dancing"), version="1", host="h", interval=5).state
        == "failed"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"state": "asleep"}, "heartbeat.state"),
        ({"spool_bytes": -1}, "heartbeat.spool_bytes"),
        ({"segments_pending": 1.5}, "heartbeat.segments_pending"),
        ({"free_disk_percent": 101}, "heartbeat.free_disk_percent"),
        ({"clock_accuracy": -0.1}, "heartbeat.clock_accuracy"),
        ({"clock_offset": float("nan")}, "heartbeat.clock_offset"),
        ({"upload": {"segment": "s", "offset": "x", "length": 1}}, "heartbeat.offset"),
        ({"interval": 0.1}, "heartbeat.interval"),
        ({"host": 7}, "heartbeat.host"),
    ],
)
def test_a_malformed_heartbeat_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    raw = {**build_heartbeat(_sources(), version="1", host="h", interval=15).to_dict(), **change}
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        Heartbeat.from_dict(raw)


def test_unknown_fields_from_a_newer_recorder_are_ignored() -> None:
    raw = {**build_heartbeat(_sources(), version="9", host="h", interval=15).to_dict(), "gpu": "busy"}
    assert Heartbeat.from_dict(raw).version == "9"


def test_clock_accuracy_is_half_the_round_trip_of_the_sample_in_use() -> None:
    clock = ClockSync(lambda: 100.0)
    assert clock.accuracy is None
    clock.add_sample(100.0, 150.05, 150.05, 100.2)  # rtt 0.2
    clock.add_sample(100.0, 150.01, 150.01, 100.02)  # rtt 0.02: the one used
    clock.add_sample(100.0, 150.2, 150.2, 100.5)  # rtt 0.5
    assert clock.accuracy == pytest.approx(0.01)
    assert clock.offset == pytest.approx(50.0)


def test_directory_bytes_counts_every_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"1" * 1000)
    (tmp_path / "y.json").write_bytes(b"2" * 24)
    assert directory_bytes(tmp_path) == 1024


def test_the_sender_beats_at_the_policys_interval_and_skips_while_disconnected() -> None:
    async def main() -> tuple[list[Heartbeat], int]:
        sent: list[Heartbeat] = []
        connected = [False]

        async def send(beat: Heartbeat) -> bool:
            if connected[0]:
                sent.append(beat)
            return connected[0]

        stop = asyncio.Event()
        sender = HeartbeatSender(_sources(), send, lambda: 1.0, version="1", host="h")
        task = asyncio.create_task(sender.run(stop))
        await asyncio.sleep(0.2)  # the first beat went nowhere: disconnected
        connected[0] = True
        deadline = time.monotonic() + 10
        while len(sent) < 2:
            assert time.monotonic() < deadline, "no two heartbeats within 10 s"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
        return sent, sender.sent

    sent, count = asyncio.run(main())
    assert len(sent) >= 2 and count == len(sent) and sent[0].interval == 1.0


# -- the fleet's rules ---------------------------------------------------------------------------
POLICY = RecorderPolicy(heartbeat_seconds=10.0, spool_min_free_percent=10.0, spool_max_mb=1000)
NOW = 1_000_000.0


def _problems(**over: object) -> list[str]:
    args: dict[str, object] = {
        "state": "idle",
        "last_seen": NOW - 1,
        "interval": 10.0,
        "segments_pending": 0,
        "spool_bytes": 0,
        "free_disk_percent": 50.0,
        "clock_accuracy": 0.005,
        "last_error": "",
        "credential_valid": True,
        "policy": POLICY,
        "now": NOW,
    }
    args.update(over)
    return problems_of(**args)  # type: ignore[arg-type]


def test_offline_after_three_missed_heartbeats_of_its_own_interval() -> None:
    assert _problems(last_seen=NOW - 30.0) == []
    assert _problems(last_seen=NOW - 30.01) == ["offline"]
    assert _problems(last_seen=NOW - 50.0, interval=20.0) == []  # a recorder on a slower beat
    assert recorder_fleet.is_offline(NOW - 46, 15.0, NOW)


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"state": "failed", "last_error": "encoder died"}, ["failed", "error"]),
        ({"state": "spool_full"}, ["spool_full"]),
        ({"free_disk_percent": 14.9}, ["low_disk"]),
        ({"free_disk_percent": 15.0}, []),
        ({"segments_pending": 10}, ["backlog"]),
        ({"spool_bytes": 500 * 1024 * 1024}, ["backlog"]),
        ({"clock_accuracy": None}, ["clock"]),
        ({"clock_accuracy": 0.2}, ["clock"]),
        ({"credential_valid": False}, ["revoked"]),
        ({"last_seen": None}, ["never_seen"]),
        ({"last_seen": NOW - 100, "clock_accuracy": None, "free_disk_percent": 1.0}, ["offline", "low_disk"]),
    ],
)
def test_each_problem_is_named(over: dict[str, object], expected: list[str]) -> None:
    assert _problems(**over) == expected


def _entry(host: str, problems: list[str], last_seen: float | None) -> FleetEntry:
    return FleetEntry(
        1,
        1,
        "a",
        "",
        "",
        host,
        "1",
        "idle",
        "idle",
        None,
        last_seen,
        0,
        0,
        None,
        None,
        None,
        None,
        None,
        "",
        15.0,
        problems,
    )


def test_problems_come_first_the_worst_first_then_the_longest_silent() -> None:
    entries = [
        _entry("fine-b", [], NOW),
        _entry("disk", ["low_disk"], NOW),
        _entry("fine-a", [], NOW),
        _entry("off-recent", ["offline"], NOW - 100),
        _entry("off-old", ["offline", "backlog"], NOW - 1000),
        _entry("failed", ["failed"], NOW),
        _entry("new", ["never_seen"], None),
    ]
    hosts = [e.host for e in sorted(entries, key=order_key)]
    assert hosts == ["off-old", "off-recent", "new", "failed", "disk", "fine-a", "fine-b"]


# -- the running service's sources ---------------------------------------------------------------
class _Stats:
    def __init__(self, state: str = "idle", current: object = None, last_error: str = "") -> None:
        self.state, self.current, self.last_error, self.pending_segments = state, current, last_error, 4


class _Uploader:
    def __init__(self, stats: _Stats) -> None:
        self._stats = stats

    def stats(self) -> _Stats:
        return self._stats


class _Controller:
    def __init__(self, mode: str, current: str | None) -> None:
        self.mode, self.current = mode, current


class _Progress:
    segment, offset, length = "int-1/r1/3", 100, 900


def test_service_sources_map_the_services_parts(tmp_path: Path) -> None:
    (tmp_path / "seg.mp4").write_bytes(b"x" * 2048)
    clock = ClockSync(lambda: 10.0)
    problem = [""]
    uploader = _Uploader(_Stats("uploading", _Progress(), "HTTP 503"))
    controller = _Controller("idle", None)
    sources = service_sources(controller, tmp_path, uploader, clock, RecorderPolicy, lambda: problem[0])
    beat = build_heartbeat(sources, version="1", host="h", interval=15)
    assert beat.state == "uploading" and beat.interaction_id is None
    assert beat.spool_bytes == 2048 and beat.segments_pending == 4
    assert beat.upload == UploadProgress("int-1/r1/3", 100, 900) and beat.last_error == "HTTP 503"
    assert beat.clock_offset is None and beat.clock_accuracy is None  # not synced yet
    assert beat.free_disk_bytes is not None and beat.free_disk_bytes > 0
    clock.add_sample(10.0, 20.0, 20.0, 10.1)
    controller.mode, controller.current = "paused", "int-1"
    beat = build_heartbeat(sources, version="1", host="h", interval=15)
    assert beat.state == "paused" and beat.interaction_id == "int-1"
    assert beat.clock_offset == pytest.approx(9.95) and beat.clock_accuracy == pytest.approx(0.05)
    problem[0] = "spool quota reached (4096 MB)"
    beat = build_heartbeat(sources, version="1", host="h", interval=15)
    assert beat.state == "spool_full" and beat.last_error == "spool quota reached (4096 MB); HTTP 503"


def test_policy_watch_follows_screen_start_and_pushes_and_ignores_bad_ones() -> None:
    watch = PolicyWatch()
    assert watch.heartbeat_seconds() == 15.0
    watch.observe(
        Envelope(
            EventType.SCREEN_START, {"interaction_id": "i", "at": 1.0, "policy": {"heartbeat_seconds": 5}}
        )
    )
    assert watch.heartbeat_seconds() == 5.0
    watch.observe(Envelope(EventType.RECORDER_POLICY, {"heartbeat_seconds": 30, "fps": 2}))
    assert watch.heartbeat_seconds() == 30.0 and watch.policy.fps == 2.0
    watch.observe(Envelope(EventType.RECORDER_POLICY, {"heartbeat_seconds": 0}))  # invalid: kept
    watch.observe(Envelope(EventType.SCREEN_STOP, {"interaction_id": "i", "at": 2.0}))
    assert watch.heartbeat_seconds() == 30.0


def test_the_spool_quota_rule_makes_the_heartbeat_say_spool_full(tmp_path: Path) -> None:
    with open(tmp_path / "big.mp4", "wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: counts as 65 MB, costs no disk
    policy = [RecorderPolicy(spool_max_mb=100)]
    sources = service_sources(
        _Controller("capturing", "i"), tmp_path, _Uploader(_Stats()), ClockSync(time.time), lambda: policy[0]
    )
    assert build_heartbeat(sources, version="1", host="h", interval=15).state == "recording"
    policy[0] = RecorderPolicy(spool_max_mb=64)
    beat = build_heartbeat(sources, version="1", host="h", interval=15)
    assert beat.state == "spool_full" and beat.last_error.startswith("spool_full: spool holds 65 MB")


def test_a_shorter_interval_pushed_meanwhile_applies_at_once() -> None:
    async def main() -> float:
        interval = [300.0]
        times: list[float] = []

        async def send(beat: Heartbeat) -> bool:
            times.append(time.monotonic())
            return True

        stop = asyncio.Event()
        task = asyncio.create_task(
            HeartbeatSender(_sources(), send, lambda: interval[0], version="1", host="h").run(stop)
        )
        deadline = time.monotonic() + 10
        while not times:
            assert time.monotonic() < deadline, "no first heartbeat"
            await asyncio.sleep(0.02)
        interval[0] = 1.0  # the admin's push: every second from now on, not in 300 s
        while len(times) < 2:
            assert time.monotonic() < deadline + 20, "the shorter interval was not applied"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
        return times[1] - times[0]

    assert asyncio.run(main()) < 10.0
