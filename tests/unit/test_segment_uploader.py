"""The segment uploader's rules, driven round by round (``step``) on an injected clock against the
fake tus server (tests/unit/fake_tus.py); the worker thread itself at the end."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from recorder_service.segment_uploader import CHUNK, WINDOW_RECHECK, SegmentUploader
from recorder_service.tus_client import pause_spans
from recorder_service.upload_rules import RETRY_CAP, UNAUTHORIZED_RETRY
from tandem_protocol.recorder_policy import RecorderPolicy
from tests.unit.fake_tus import FakeTusServer, ListQueue, segment


class Clock:
    """Monotonic time the test moves; ``sleep`` (the bandwidth cap's wait) moves it too."""

    def __init__(self) -> None:
        self.t = 5000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.slept += seconds


@pytest.fixture
def server() -> Iterator[FakeTusServer]:
    with FakeTusServer() as fake:
        yield fake


MADE: list[SegmentUploader] = []


@pytest.fixture(autouse=True)
def _stop_uploaders() -> Iterator[None]:
    yield
    while MADE:
        MADE.pop().stop()


def uploader(*args: object, **kw: object) -> SegmentUploader:
    up = SegmentUploader(*args, **kw)  # type: ignore[arg-type]
    MADE.append(up)
    return up


def make(
    queue: ListQueue,
    url: str,
    clock: Clock,
    policy: Callable[[], RecorderPolicy] = RecorderPolicy,
    *,
    transport: httpx.BaseTransport | None = None,
    local_now: Callable[[], datetime] = datetime.now,
) -> SegmentUploader:
    return uploader(
        queue,
        url,
        lambda: "tok",
        policy,
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        local_now=local_now,
        rand=lambda: 0.5,  # no jitter: exact delays
    )


def drain(up: SegmentUploader, clock: Clock, queue: ListQueue, rounds: int = 100) -> list[float]:
    """Rounds until the queue is empty, sleeping (on the fake clock) what each round asks."""
    delays: list[float] = []
    for _ in range(rounds):
        if not queue.ready():
            return delays
        delay = up.step()
        delays.append(delay)
        clock.sleep(delay)
    raise AssertionError(f"still pending after {rounds} rounds: {queue.ready()}")


# -- the plain path ----------------------------------------------------------------------------
def test_uploads_every_segment_oldest_first_and_frees_only_confirmed(
    server: FakeTusServer, tmp_path: Path
) -> None:
    blobs = [os.urandom(n) for n in (600_000, 10, 300_000)]
    refs = [segment(tmp_path, "int-1", i, b, final=i == 2) for i, b in enumerate(blobs)]
    queue = ListQueue(list(reversed(refs)))
    clock = Clock()
    up = make(queue, server.url, clock)
    drain(up, clock, queue)
    assert [r.seq for r, _ in queue.done] == [0, 1, 2]
    assert [sha for _, sha in queue.done] == [r.sha256 for r in refs]
    assert [server.stored[("int-1", "run1", i)] for i in range(3)] == blobs
    assert [m.get("final") for m in server.metadata] == [None, None, "1"]
    assert server.metadata[0] == {
        "run": "run1",
        "seq": "0",
        "started_at": repr(refs[0].started_at),
        "sha256": refs[0].sha256,
    }
    assert max(p.body for p in server.patches()) == CHUNK  # one chunk per PATCH at most
    stats = up.stats()
    assert (stats.pending_segments, stats.pending_bytes, stats.segments_uploaded) == (0, 0, 3)
    assert stats.bytes_sent == sum(map(len, blobs)) and stats.bytes_resent == 0
    assert stats.current is None and stats.last_error == "" and stats.last_success_at is not None
    assert stats.to_dict()["state"] == "idle"


def test_stats_show_pending_and_progress(server: FakeTusServer, tmp_path: Path) -> None:
    queue = ListQueue(
        [segment(tmp_path, "i", 0, os.urandom(CHUNK * 2)), segment(tmp_path, "i", 1, b"x" * 99)]
    )
    clock = Clock()
    capped = RecorderPolicy.from_dict({"bandwidth_kbps": 80_000})  # 10 MB/s: the cap sleeps now and then
    progress: set[tuple[str, int, int]] = set()

    def sleep(seconds: float) -> None:  # called mid-upload, as the health heartbeat would look
        current = up.stats().current
        assert current is not None
        progress.add((current.segment, current.offset, current.length))
        clock.sleep(seconds)

    up = uploader(
        queue, server.url, lambda: "tok", lambda: capped, clock=clock, sleep=sleep, rand=lambda: 0.5
    )
    server.cut_patch(1000, skip=1)  # the second chunk is cut: the first segment stays pending
    up.step()
    assert progress == {("i/run1/0", 0, 2 * CHUNK), ("i/run1/0", CHUNK, 2 * CHUNK)}
    stats = up.stats()
    # The server holds the first chunk of segment 0 (and 1000 bytes more that HEAD will tell).
    assert (stats.pending_segments, stats.pending_bytes, stats.current) == (2, CHUNK + 99, None)
    assert stats.state == "backoff" and stats.last_error.startswith("patch: ")
    assert stats.last_error_at is not None and stats.bytes_sent >= CHUNK


# -- faults: cuts, offsets, damaged chunks, lost uploads ---------------------------------------------
@pytest.mark.parametrize("keep_partial", [True, False])
def test_resume_after_a_cut_mid_chunk_continues_from_the_servers_offset(
    server: FakeTusServer, tmp_path: Path, keep_partial: bool
) -> None:
    server.keep_partial = keep_partial
    data = os.urandom(1_000_000)
    queue = ListQueue([segment(tmp_path, "int-1", 0, data)])
    clock = Clock()
    up = make(queue, server.url, clock)
    server.cut_patch(100_000, skip=1)  # the second PATCH is cut once 100 000 bytes arrived
    delay = up.step()
    assert 0 < delay <= RETRY_CAP and queue.ready()
    assert up.stats().state == "backoff" and up.stats().last_error
    drain(up, clock, queue)
    assert server.stored[("int-1", "run1", 0)] == data
    held = CHUNK + (100_000 if keep_partial else 0)
    expected = [("POST", None), ("PATCH", 0), ("PATCH", CHUNK), ("HEAD", None)]
    expected += [("PATCH", o) for o in range(held, len(data), CHUNK)]  # never from 0 again
    assert [(s.method, s.offset) for s in server.seen] == expected
    stats = up.stats()
    assert stats.bytes_sent - stats.bytes_resent == len(data)
    # Only what the cut chunk had handed to the socket and the server did not keep goes again.
    assert stats.bytes_resent <= CHUNK - (100_000 if keep_partial else 0)
    assert stats.segments_uploaded == 1
    # the health panel's problem is gone once a segment went through; when it was stays
    assert stats.last_error == "" and stats.last_error_at is not None


def test_a_cut_is_not_the_segments_fault_it_resumes_before_the_next(
    server: FakeTusServer, tmp_path: Path
) -> None:
    """The network failed, not the segment: it keeps its place (oldest first, playable in order)."""
    first, second = segment(tmp_path, "i", 0, os.urandom(2 * CHUNK)), segment(tmp_path, "i", 1, b"next")
    queue = ListQueue([first, second])
    clock = Clock()
    up = make(queue, server.url, clock)
    server.cut_patch(500, skip=1)
    drain(up, clock, queue)
    assert [r for r, _ in queue.done] == [first, second]
    assert [s.method for s in server.seen] == ["POST", "PATCH", "PATCH", "HEAD", "PATCH", "POST", "PATCH"]


def test_offset_mismatch_takes_the_servers_offset(server: FakeTusServer, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    queue = ListQueue([segment(tmp_path, "i", 0, data)])
    server.forget_tail = [5000]  # the server answers the first PATCH, then loses its last 5000 bytes
    clock = Clock()
    drain(make(queue, server.url, clock), clock, queue)
    assert server.stored[("i", "run1", 0)] == data
    patches = [(s.offset, s.body) for s in server.patches()]
    assert patches[:3] == [(0, CHUNK), (CHUNK, CHUNK), (CHUNK - 5000, CHUNK)]  # 409, then from there
    assert [s.method for s in server.seen].count("HEAD") == 0  # no cut: the 409 said it all


def test_a_damaged_chunk_is_sent_again(server: FakeTusServer, tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK + 7)
    queue = ListQueue([segment(tmp_path, "i", 0, data)])
    server.corrupt_patches = 1
    clock = Clock()
    up = make(queue, server.url, clock)
    assert drain(up, clock, queue) == [0.0]  # one round: no backoff for one damaged chunk
    assert server.stored[("i", "run1", 0)] == data
    assert [s.offset for s in server.patches()] == [0, 0, CHUNK, 2 * CHUNK]
    assert up.stats().bytes_resent == CHUNK


def test_chunks_damaged_again_and_again_back_off(server: FakeTusServer, tmp_path: Path) -> None:
    queue = ListQueue([segment(tmp_path, "i", 0, os.urandom(1000))])
    server.corrupt_patches = 10
    clock = Clock()
    up = make(queue, server.url, clock)
    assert up.step() == pytest.approx(1.0)
    assert len(server.patches()) == 4 and "damaged" in up.stats().last_error
    drain(up, clock, queue)
    assert queue.done


def test_a_lost_upload_is_created_again(server: FakeTusServer, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    queue = ListQueue([segment(tmp_path, "i", 0, data)])
    clock = Clock()
    up = make(queue, server.url, clock)
    server.cut_patch(10, skip=1)
    up.step()  # cut after the first chunk
    server.lose_uploads()  # … and the server lost the partial upload meanwhile
    drain(up, clock, queue)
    assert server.stored[("i", "run1", 0)] == data
    methods = [(s.method, s.offset) for s in server.seen]
    assert methods[3:] == [
        ("HEAD", None),
        ("POST", None),
        ("PATCH", 0),
        ("PATCH", CHUNK),
        ("PATCH", 2 * CHUNK),
    ]
    assert up.stats().bytes_resent >= CHUNK  # honest: the lost bytes went twice


def test_a_patch_answered_404_creates_the_upload_again(server: FakeTusServer, tmp_path: Path) -> None:
    """No cut: the server lost the upload between two chunks (restored, expired)."""
    data = os.urandom(2 * CHUNK)
    queue = ListQueue([segment(tmp_path, "i", 0, data)])
    server.lose_after_patch = 1
    clock = Clock()
    assert drain(make(queue, server.url, clock), clock, queue) == [0.0]  # no backoff for it
    assert server.stored[("i", "run1", 0)] == data
    methods = [(s.method, s.offset) for s in server.seen]
    assert methods == [
        ("POST", None),
        ("PATCH", 0),
        ("PATCH", CHUNK),
        ("POST", None),
        ("PATCH", 0),
        ("PATCH", CHUNK),
    ]


def test_a_confirmation_of_other_bytes_is_not_an_upload(tmp_path: Path) -> None:
    """The local copy goes only when the server's digest is ours, whatever else it says."""
    ref = segment(tmp_path, "i", 0, b"ours")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, headers={"Location": "/api/uploads/u", "Upload-Offset": "0"})
        return httpx.Response(204, headers={"Upload-Offset": "4", "X-Tandem-Sha256": "ab" * 32})

    queue = ListQueue([ref])
    clock = Clock()
    drain(make(queue, "http://srv", clock, transport=httpx.MockTransport(handler)), clock, queue)
    assert not queue.done and [(r, c) for r, c, _ in queue.refusals] == [(ref, "checksum_mismatch")]
    assert ref.path.exists()


def test_a_lost_answer_after_the_last_byte_is_settled_by_the_stored_digest(
    server: FakeTusServer, tmp_path: Path
) -> None:
    data = os.urandom(1000)
    queue = ListQueue([segment(tmp_path, "i", 0, data)])
    clock = Clock()
    up = make(queue, server.url, clock)
    server.stored[("i", "run1", 0)] = data  # stored by an attempt whose answer never came
    drain(up, clock, queue)
    assert queue.done and not server.patches()


def test_all_bytes_held_but_not_confirmed_asks_the_server_to_store_it(tmp_path: Path) -> None:
    """The server holds every byte but has not stored the segment (the last PATCH's answer was
    lost, or its store step failed): an empty PATCH at the end asks for the store step, once per
    attempt; the verdict settles it."""
    ref = segment(tmp_path, "i", 0, b"0123456789")
    queue = ListQueue([ref])
    seen: list[tuple[str, str | None, int]] = []
    answers = [
        httpx.Response(201, headers={"Location": "/api/uploads/u", "Upload-Offset": "10"}),  # POST
        httpx.Response(507, json={"error": "storage_full", "message": "disk"}),  # store step failed
        httpx.Response(200, headers={"Upload-Offset": "10", "Upload-Length": "10"}),  # HEAD
        httpx.Response(204, headers={"Upload-Offset": "10"}),  # no verdict yet: not asked twice
        httpx.Response(404, json={"error": "unknown_upload", "message": "stored"}),  # HEAD
        httpx.Response(409, json={"error": "already_uploaded", "message": "m", "sha256": ref.sha256}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.headers.get("Upload-Offset"), len(request.read())))
        return answers.pop(0)

    clock = Clock()
    up = make(queue, "http://srv", clock, transport=httpx.MockTransport(handler))
    assert up.step() == pytest.approx(1.0) and "507" in up.stats().last_error
    clock.sleep(1.0)
    assert up.step() == pytest.approx(1.0) and "not confirmed" in up.stats().last_error
    drain(up, clock, queue)
    assert seen == [
        ("POST", None, 0),
        ("PATCH", "10", 0),
        ("HEAD", None, 0),
        ("PATCH", "10", 0),
        ("HEAD", None, 0),
        ("POST", None, 0),
    ]
    assert queue.done == [(ref, ref.sha256)] and up.stats().bytes_sent == 0


def test_an_unreadable_file_is_refused_not_retried(server: FakeTusServer, tmp_path: Path) -> None:
    ref = segment(tmp_path, "i", 0, b"data")
    ref.path.unlink()
    queue = ListQueue([ref])
    clock = Clock()
    drain(make(queue, server.url, clock), clock, queue)
    assert [(r, code) for r, code, _ in queue.refusals] == [(ref, "file_unreadable")]


def test_another_file_stored_is_a_conflict_and_ours_is_kept(server: FakeTusServer, tmp_path: Path) -> None:
    ref = segment(tmp_path, "i", 0, b"ours")
    queue = ListQueue([ref])
    server.stored[("i", "run1", 0)] = b"theirs"
    clock = Clock()
    drain(make(queue, server.url, clock), clock, queue)
    assert not queue.done and [(r, code) for r, code, _ in queue.refusals] == [(ref, "conflict")]
    assert "different segment" in queue.refusals[0][2] and ref.path.read_bytes() == b"ours"


def test_frames_in_pause_are_cut_and_the_new_segment_uploaded(server: FakeTusServer, tmp_path: Path) -> None:
    data = os.urandom(4000)
    ref = segment(tmp_path, "i", 0, data)
    queue = ListQueue([ref])
    server.pause_spans[("i", "run1", 0)] = [[1000.5, 1003.0], [1010.0, None]]
    clock = Clock()
    up = make(queue, server.url, clock)
    assert drain(up, clock, queue) == [0.0]  # the cut segment goes in the same round
    assert queue.pause_cuts == [(ref, [(1000.5, 1003.0), (1010.0, None)])]
    assert server.stored[("i", "run1", 0)] == data[:2000]
    assert [r.sha256 for r, _ in queue.done] != [ref.sha256] and len(queue.done) == 1


def test_pause_spans_in_either_shape() -> None:
    spans = [
        [1, 2],
        {"started_at": 3, "ended_at": None},
        {"start": 4, "end": 5},
        "junk",
        [1],
        {"started_at": "x"},
    ]
    assert pause_spans({"spans": spans}) == [(1.0, 2.0), (3.0, None), (4.0, 5.0)]
    assert pause_spans({"spans": "no"}) == []


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "recorder_token_required"), (422, "outside_interaction"), (412, "tus_version"), (400, "")],
)
def test_other_4xx_are_final_and_keep_the_file(
    server: FakeTusServer, tmp_path: Path, status: int, code: str
) -> None:
    ref = segment(tmp_path, "i", 0, b"data")
    queue = ListQueue([ref])
    server.forced = [(status, {"body": {"error": code, "message": "no"} if code else None})]
    clock = Clock()
    drain(make(queue, server.url, clock), clock, queue)
    assert [(r, c) for r, c, _ in queue.refusals] == [(ref, code or f"http_{status}")]
    assert ref.path.exists() and not server.stored


def test_401_is_retried_slowly(server: FakeTusServer, tmp_path: Path) -> None:
    queue = ListQueue([segment(tmp_path, "i", 0, b"data")])
    server.token = "renewed"
    token = ["old"]
    clock = Clock()
    up = uploader(queue, server.url, lambda: token[0], RecorderPolicy, clock=clock, rand=lambda: 0.5)
    assert up.step() == UNAUTHORIZED_RETRY
    assert up.stats().state == "unauthorized" and "enrol" in up.stats().last_error
    clock.sleep(UNAUTHORIZED_RETRY - 1)
    assert up.step() == pytest.approx(1.0)  # still waiting: no request
    assert len(server.seen) == 1
    token[0] = "renewed"
    clock.sleep(1)
    drain(up, clock, queue)
    assert queue.done


def test_a_redirect_is_a_configuration_problem_not_a_refusal(server: FakeTusServer, tmp_path: Path) -> None:
    """http:// answered by a redirect to https:// must not mark every segment refused for good."""
    queue = ListQueue([segment(tmp_path, "i", 0, b"data")])
    server.forced = [(308, {"headers": {"Location": "https://elsewhere/"}})]
    clock = Clock()
    up = make(queue, server.url, clock)
    assert up.step() == UNAUTHORIZED_RETRY
    assert not queue.refusals and up.stats().state == "misconfigured"
    assert "server URL" in up.stats().last_error
    clock.sleep(UNAUTHORIZED_RETRY)
    drain(up, clock, queue)
    assert queue.done


# -- backoff ---------------------------------------------------------------------------------
def outage(clock: Clock, down_until: float, attempts: list[float]) -> httpx.MockTransport:
    """A tus server that refuses connections until ``down_until`` (fake clock), then stores."""

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(clock())
        if clock() < down_until:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST":
            return httpx.Response(201, headers={"Location": "/api/uploads/u1", "Upload-Offset": "0"})
        body = request.read()
        return httpx.Response(
            204,
            headers={"Upload-Offset": str(len(body)), "X-Tandem-Sha256": hashlib.sha256(body).hexdigest()},
        )

    return httpx.MockTransport(handler)


def test_backoff_doubles_to_the_cap_and_keeps_going_after_a_5_minute_outage(tmp_path: Path) -> None:
    queue = ListQueue([segment(tmp_path, "i", 0, b"x" * 5000)])
    clock = Clock()
    attempts: list[float] = []
    back_at = clock() + 360.0  # six minutes down
    up = make(queue, "http://srv", clock, transport=outage(clock, back_at, attempts))
    drain(up, clock, queue, rounds=50)
    failed = [t for t in attempts if t < back_at]
    gaps = [b - a for a, b in itertools.pairwise(failed)]
    assert gaps[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert all(g == RETRY_CAP for g in gaps[6:]) and len(gaps) > 6
    assert failed[-1] - failed[0] > 300  # still trying after five minutes
    assert attempts[-1] - back_at <= RETRY_CAP  # and through within one cap of the server's return
    assert queue.done and up.stats().state != "backoff"


def test_backoff_spreads_with_jitter_never_past_the_cap(tmp_path: Path) -> None:
    """±25 %: many recorders back from one outage do not come back in lock step."""
    queue = ListQueue([segment(tmp_path, "i", 0, b"x")])
    clock = Clock()
    for rand, spread in ((0.0, 0.75), (0.999, 1.2495)):
        up = uploader(
            queue,
            "http://srv",
            lambda: "t",
            RecorderPolicy,
            transport=outage(clock, float("inf"), []),
            clock=clock,
            rand=lambda r=rand: r,
        )
        delays: list[float] = []
        for _ in range(10):
            delays.append(up.step())
            clock.sleep(delays[-1])
        expected = [min(RETRY_CAP, min(RETRY_CAP, 2.0**n) * spread) for n in range(10)]
        assert delays == pytest.approx(expected)


def test_a_segment_the_server_chokes_on_does_not_block_the_next(tmp_path: Path) -> None:
    bad, good = segment(tmp_path, "i", 0, b"bad"), segment(tmp_path, "i", 1, b"good")
    queue = ListQueue([bad, good])
    clock = Clock()

    def handler(request: httpx.Request) -> httpx.Response:
        meta = request.headers.get("Upload-Metadata", "")
        if request.method == "POST":
            uid = "bad" if "seq MA==" in meta else "good"
            return httpx.Response(201, headers={"Location": f"/api/uploads/{uid}", "Upload-Offset": "0"})
        if request.url.path.endswith("/bad"):
            return httpx.Response(500, json={"error": "internal", "message": "boom"})
        body = request.read()
        return httpx.Response(
            204, headers={"Upload-Offset": "4", "X-Tandem-Sha256": hashlib.sha256(body).hexdigest()}
        )

    up = make(queue, "http://srv", clock, transport=httpx.MockTransport(handler))
    for _ in range(6):
        clock.sleep(up.step())
    assert [r for r, _ in queue.done] == [good] and queue.ready() == [bad]


# -- admin policy: window and cap ------------------------------------------------------------------
def test_nothing_is_sent_outside_the_upload_window(server: FakeTusServer, tmp_path: Path) -> None:
    queue = ListQueue([segment(tmp_path, "i", 0, b"data")])
    local = [datetime(2026, 12, 4, 12, 0)]
    policy = RecorderPolicy.from_dict({"upload_window": ["22:00", "06:00"]})
    clock = Clock()
    up = make(queue, server.url, clock, lambda: policy, local_now=lambda: local[0])
    assert up.step() == WINDOW_RECHECK
    assert up.stats().state == "outside_window" and up.stats().pending_segments == 1
    assert server.seen == []
    local[0] = datetime(2026, 12, 4, 23, 30)  # past 22:00: open across midnight
    drain(up, clock, queue)
    assert queue.done


def test_the_window_closing_mid_upload_stops_between_chunks(server: FakeTusServer, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    queue = ListQueue([segment(tmp_path, "i", 0, data)])
    policy = RecorderPolicy.from_dict({"upload_window": ["22:00", "06:00"]})
    times = iter([datetime(2026, 12, 4, 5, 59)] * 2 + [datetime(2026, 12, 4, 6, 0)] * 100)
    clock = Clock()
    up = make(queue, server.url, clock, lambda: policy, local_now=lambda: next(times))
    up.step()
    assert [s.offset for s in server.patches()] == [0]  # one chunk went, then the window closed
    assert queue.ready() and up.step() > 0 and len(server.patches()) == 1


def test_the_bandwidth_cap_paces_the_body(server: FakeTusServer, tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    queue = ListQueue([segment(tmp_path, "i", 0, data)])
    cap = [RecorderPolicy.from_dict({"bandwidth_kbps": 800})]  # 100 000 bytes/s
    clock = Clock()
    up = make(queue, server.url, clock, lambda: cap[0])
    drain(up, clock, queue)
    burst = 25_000  # a quarter second at that rate
    assert clock.slept == pytest.approx((len(data) - burst) / 100_000, rel=0.02)
    # A policy change applies at the next chunk: no cap, no waiting.
    cap[0] = RecorderPolicy()
    queue.add(segment(tmp_path, "i", 1, data))
    before = clock.slept
    drain(up, clock, queue)
    assert clock.slept == before


# -- the worker thread -----------------------------------------------------------------------------
def test_the_thread_uploads_on_wake_and_stops_promptly(server: FakeTusServer, tmp_path: Path) -> None:
    queue = ListQueue()
    up = uploader(queue, server.url, lambda: "tok", RecorderPolicy)
    up.start()
    try:
        queue.add(segment(tmp_path, "i", 0, os.urandom(300_000)))
        up.wake()
        deadline = time.monotonic() + 30
        while not queue.done:
            assert time.monotonic() < deadline, "not uploaded after wake()"
            time.sleep(0.01)
        # A slow, capped upload is interrupted by stop() at its next slice.
        cap = RecorderPolicy.from_dict({"bandwidth_kbps": 8})  # 1 kB/s: a minute for this one
        slow = uploader(queue, server.url, lambda: "tok", lambda: cap)
        queue.add(segment(tmp_path, "i", 1, os.urandom(60_000)))
        slow.start()
        deadline = time.monotonic() + 30
        while slow.stats().state != "uploading":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        began = time.monotonic()
        stopped = threading.Thread(target=slow.stop)
        stopped.start()
        stopped.join(30)
        assert not stopped.is_alive() and time.monotonic() - began < 10
        assert slow.stats().state == "stopped" and queue.ready()
    finally:
        up.stop()
