"""Capture session with a scripted grabber: segment boundaries, late-pause cuts, how fast a pause
stops grabbing, and the spool quota. Frames are checked by decoding what the spool hands out."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from recorder_service.encoder import ScreenEncoder
from recorder_service.quota import DiskUsage
from recorder_service.segment_queue import SegmentRef
from recorder_service.session import CaptureSession
from recorder_service.spool import SegmentState, Spool
from tandem_protocol.events import ScreenAutoPause
from tandem_protocol.recorder_policy import RecorderPolicy

MB = 1024 * 1024


class ScriptedGrabber:
    """A new picture every grab (or the same one while ``still``); ``size`` may change."""

    def __init__(self) -> None:
        self.count = 0
        self.still = False
        self.size = (48, 64)
        self.grabs: list[float] = []  # monotonic end of each grab
        self.auto_pause: str | None = None  # as a masking grabber says while a pause rule's window shows
        self._lock = threading.Lock()

    def grab(self) -> np.ndarray:
        with self._lock:
            if not self.still:
                self.count += 1
            self.grabs.append(time.monotonic())
            value = (self.count * 37) % 256
            return np.full((*self.size, 4), value, dtype=np.uint8)

    def close(self) -> None:
        pass


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def decoded(ref: SegmentRef) -> list[tuple[float, tuple[int, int], bool]]:
    """(server time, (width, height), keyframe) of every frame of a segment."""
    with av.open(str(ref.path)) as container:
        return [
            (ref.started_at + (f.pts or 0) / 1000, (f.width, f.height), f.key_frame)
            for f in container.decode(video=0)
        ]


def make_session(
    spool: Spool,
    grabber: ScriptedGrabber,
    *,
    segment_seconds: float = 60.0,
    fps: float = 20.0,
    hold: float = 30.0,
    on_status: Callable[[bool, str], None] | None = None,
    disk: Callable[[], DiskUsage] | None = None,
    on_auto_pause: Callable[[list[ScreenAutoPause]], None] | None = None,
) -> CaptureSession:
    return CaptureSession(
        "i1",
        spool=spool,
        server_now=time.time,
        grabber=grabber,
        encoder_factory=lambda path: ScreenEncoder(path, fps=fps),
        run="r1",
        policy=RecorderPolicy(fps=fps, segment_seconds=segment_seconds, spool_max_mb=100),
        holdback=0.2,
        hold=hold,
        on_status=on_status,
        disk_usage=disk or (lambda: DiskUsage(90 * MB, 100 * MB, 0)),
        on_auto_pause=on_auto_pause,
    )


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    yield Spool(tmp_path / "spool")


def test_segments_by_time_size_change_and_resume(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    session = make_session(spool, grabber, segment_seconds=1.0)
    session.start()
    wait_for(lambda: grabber.count >= 50, what="2.5 s of frames")
    with grabber._lock:
        grabber.size = (40, 80)  # a monitor added: another canvas size
    wait_for(lambda: grabber.count >= 60, what="frames of the new size")
    session.pause(time.time())
    resume_at = time.time()
    session.resume(resume_at)
    wait_for(lambda: grabber.count >= 70, what="frames after the resume")
    stop_at = time.time()
    assert session.stop(stop_at) == ""
    refs = spool.ready()
    assert [r.seq for r in refs] == list(range(len(refs))) and len(refs) >= 4
    assert refs[-1].final and not any(r.final for r in refs[:-1])
    sizes = []
    for ref in refs:
        frames = decoded(ref)
        assert frames[0][0] == pytest.approx(ref.started_at) and frames[0][2]  # starts with a key
        assert len({size for _, size, _ in frames}) == 1  # one canvas size per segment
        # A new segment at the first frame past segment_seconds (the old one's end repeated 1 ms
        # before it): longer only by the gap between two frames.
        assert frames[-1][0] - frames[0][0] <= 1.0 + 0.5
        sizes.append(frames[0][1])
    assert sizes[0] == (64, 48) and sizes[-1] == (80, 40)
    starts = [r.started_at for r in refs]
    assert starts == sorted(starts)
    assert any(r.started_at >= resume_at for r in refs)  # the resume opened a new segment
    assert decoded(refs[-1])[-1][0] == pytest.approx(stop_at, abs=0.002)


def test_still_screen_segments_end_at_their_boundary(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    grabber.still = True
    session = make_session(spool, grabber, segment_seconds=1.0, hold=0.0)
    session.start()
    wait_for(lambda: len(_all_segments(spool)) >= 3, what="three still segments")
    session.stop(time.time())
    refs = _all_segments(spool)
    assert len(refs) >= 4
    for ref, nxt in itertools.pairwise(refs):
        frames = decoded(ref)
        # The next segment starts exactly at the boundary with the same (still) picture ...
        assert nxt.started_at == pytest.approx(ref.started_at + 1.0, abs=1e-6)
        # ... and this one reaches it: its last frame is repeated 2 ms before.
        assert frames[-1][0] == pytest.approx(nxt.started_at - 0.002, abs=0.0015)
        # No keepalive re-sends: the still picture is not encoded at the frame rate (20/s).
        assert len(frames) <= 4


def _all_segments(spool: Spool) -> list[SegmentRef]:
    """Finished segments, held or not (``ready`` would hand them out)."""
    done = [m for m in spool.manifests() if m.state == SegmentState.FINISHED]
    return sorted((spool._ref(m) for m in done), key=lambda r: r.seq)


def test_late_pause_cuts_every_frame_at_or_after_at(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    session = make_session(spool, grabber, segment_seconds=1.0)
    session.start()
    wait_for(lambda: grabber.count >= 60, what="3 s of frames")
    pause_at = time.time() - 2.0  # the command arrives 2 s late
    detail = session.pause(pause_at)
    assert detail.startswith("cut ") and "encoded after the pause" in detail
    cut = int(detail.split()[1])
    assert cut >= 10  # 2 s at 20 fps minus the 0.2 s hold-back: ~36, fewer on a loaded machine
    resume_at = time.time() + 0.5
    session.resume(resume_at)
    wait_for(lambda: grabber.count >= 90, what="frames after the resume")
    session.stop(time.time())
    times = [t for ref in spool.ready() for t, _, _ in decoded(ref)]
    assert times and not [t for t in times if pause_at <= t < resume_at]
    assert max(t for t in times if t < pause_at) >= pause_at - 1.0  # up to the pause, not less
    assert min(t for t in times if t >= resume_at) <= resume_at + 1.0


def test_pause_in_time_needs_no_cut_and_capture_stops_within_250_ms(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    session = make_session(spool, grabber, fps=5.0)
    session.start()
    wait_for(lambda: grabber.count >= 3, what="first grabs")
    command = time.monotonic()
    assert session.pause(time.time()) == ""  # within the hold-back: nothing encoded past it
    wait_for(session.idle.is_set, what="the grab thread to go idle")
    assert session.last_grab is not None and session.last_grab - command <= 0.25
    n = len(grabber.grabs)
    session.resume(time.time())
    wait_for(lambda: len(grabber.grabs) > n, what="grabs after the resume")
    session.stop(time.time())


def test_spool_quota_stops_capture_reports_and_resumes(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    full = threading.Event()
    statuses: list[tuple[bool, str]] = []

    def disk() -> DiskUsage:
        return DiskUsage(5 * MB if full.is_set() else 90 * MB, 100 * MB, 0)

    session = make_session(spool, grabber, on_status=lambda c, d: statuses.append((c, d)), disk=disk)
    session.start()
    wait_for(lambda: grabber.count >= 10, what="frames")
    full.set()
    wait_for(lambda: bool(statuses), what="the spool_full report")
    assert statuses[0][0] is False and statuses[0][1].startswith("spool_full: free disk 5.0 %")
    wait_for(session.idle.is_set, what="capture to stop")
    wait_for(lambda: len(_all_segments(spool)) == 1, what="the open segment closed")
    assert spool.ready() == []  # held: if the call ends now, this is the final segment
    stopped_at = grabber.count
    full.clear()
    wait_for(lambda: len(statuses) == 2, what="the resume report")
    assert statuses[1][0] is True and "resumed" in statuses[1][1]
    wait_for(lambda: grabber.count >= stopped_at + 10, what="frames after the resume")
    assert session.stop(time.time()) == ""
    refs = _all_segments(spool)
    assert len(refs) == 2  # the stop closed one segment, the resume opened the next
    assert refs[1].started_at > decoded(refs[0])[-1][0]


def test_segment_closed_by_a_pause_waits_and_becomes_final_if_the_capture_stops_paused(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    session = make_session(spool, grabber, hold=0.0)
    session.start()
    wait_for(lambda: grabber.count >= 20, what="frames")
    assert session.pause(time.time()) == ""
    assert len(_all_segments(spool)) == 1
    assert spool.ready() == []  # held: it may yet be the capture's final segment
    assert session.stop(time.time()) == ""  # the call ends during the pause
    refs = spool.ready()
    assert len(refs) == 1 and refs[0].final  # the server makes the mux when a final one arrives


def test_pause_rule_window_pauses_the_recording_itself_and_tells_the_server(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    sent: list[ScreenAutoPause] = []
    session = make_session(spool, grabber, on_auto_pause=sent.extend)
    session.start()
    wait_for(lambda: grabber.count >= 10, what="frames")
    grabber.auto_pause = "card form"  # the window appears
    wait_for(lambda: len(sent) == 1, what="the auto-pause start")
    start = sent[0]
    assert (start.interaction_id, start.rule, start.ended_at) == ("i1", "card form", None)
    n = grabber.count
    wait_for(lambda: grabber.count >= n + 10, what="grabs during the auto-pause")
    grabber.auto_pause = None  # it goes
    wait_for(lambda: len(sent) == 2, what="the auto-pause end")
    end = sent[1]
    assert end.rule == "card form" and end.ended_at is not None and end.ended_at > start.started_at
    n = grabber.count
    wait_for(lambda: grabber.count >= n + 10, what="frames after it")
    grabber.auto_pause = "card form"  # on screen again when the call ends
    wait_for(lambda: len(sent) == 3, what="the second auto-pause")
    stop_at = time.time()
    assert session.stop(stop_at) == ""
    assert len(sent) == 4 and sent[3].ended_at == stop_at  # the open span ends at the stop
    refs = sorted(spool.ready(), key=lambda r: r.seq)
    assert len(refs) == 2 and refs[-1].final  # closed at each auto-pause; the last one is final
    times = [t for ref in refs for t, _, _ in decoded(ref)]
    spans = [(start.started_at, end.ended_at), (sent[2].started_at, stop_at + 1)]
    assert not [t for t in times for a, b in spans if a <= t < b]
    assert [t for t in times if t < start.started_at] and [t for t in times if end.ended_at <= t]


def test_stop_while_the_spool_is_full_writes_nothing_more(spool: Spool) -> None:
    grabber = ScriptedGrabber()
    full = threading.Event()
    statuses: list[tuple[bool, str]] = []

    def disk() -> DiskUsage:
        return DiskUsage(MB if full.is_set() else 90 * MB, 100 * MB, 0)

    session = make_session(spool, grabber, on_status=lambda c, d: statuses.append((c, d)), disk=disk)
    session.start()
    wait_for(lambda: grabber.count >= 10, what="frames")
    full.set()
    wait_for(lambda: len(_all_segments(spool)) == 1, what="the segment the quota closed")
    assert session.stop(time.time()) == ""
    refs = spool.ready()
    # No repeat of the last picture at the stop time (a new segment on the full disk): the segment
    # the quota closed is the capture's final one.
    assert len(refs) == 1 and refs[0].final and statuses[0][1].startswith("spool_full:")
