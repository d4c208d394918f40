"""Real capture: Xvfb + mss + encoder through a CaptureSession into segments, decoded back with
PyAV; a pause delivered late is cut from what the spool hands out."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from recorder_service.capture import Grabber, MssGrabber
from recorder_service.encoder import ScreenEncoder
from recorder_service.segment_queue import SegmentRef
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool
from tandem_protocol.recorder_policy import RecorderPolicy

COLOURS = ["red", "green", "blue", "yellow", "magenta", "cyan", "white", "black"]


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb picks a free display itself (-displayfd) and writes its number to our pipe."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not report a display")
    return proc, f":{number}"


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    proc, name = start_xvfb()
    monkeypatch.setenv("DISPLAY", name)
    try:
        yield name
    finally:
        proc.terminate()
        proc.wait(5)


class ColourChanger:
    """Repaints the X root window every 0.2 s in a thread."""

    def __init__(self, display: str) -> None:
        self._display = display
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ColourChanger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            subprocess.run(
                ["xsetroot", "-display", self._display, "-solid", COLOURS[i % len(COLOURS)]], check=False
            )
            i += 1
            self._stop.wait(0.2)


class TimedGrabber:
    """The real grabber, with the monotonic time each grab ended (pause latency)."""

    def __init__(self) -> None:
        self._inner = MssGrabber(0)
        self.grabs: list[float] = []

    def grab(self) -> np.ndarray:
        try:
            return self._inner.grab()
        finally:
            self.grabs.append(time.monotonic())

    def close(self) -> None:
        self._inner.close()


def _session(spool: Spool, grabber: Grabber, *, segment_seconds: float = 60.0) -> CaptureSession:
    return CaptureSession(
        "real-1",
        spool=spool,
        server_now=time.time,
        grabber=grabber,
        encoder_factory=lambda path: ScreenEncoder(path, fps=5),
        run="r1",
        policy=RecorderPolicy(fps=5, segment_seconds=segment_seconds),
    )


def _decode(ref: SegmentRef) -> list[tuple[float, tuple[int, int, int]]]:
    """(server time, centre colour) of every frame of a segment the spool handed out."""
    with av.open(str(ref.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 480)
        return [
            (
                ref.started_at + (f.pts or 0) / 1000,
                tuple(int(c) // 32 for c in f.to_ndarray(format="rgb24")[240, 320]),  # type: ignore[misc]
            )
            for f in container.decode(video=0)
        ]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.e2e  # a real Xvfb: outside the fast selection
def test_capture_three_seconds_of_changing_screen(display: str, tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    session = _session(spool, MssGrabber(0))
    with ColourChanger(display):
        time.sleep(0.3)
        begin = time.time()
        session.start()
        time.sleep(3.0)
        end = time.time()
        assert session.stop(end) == ""
    refs = spool.ready()
    assert len(refs) == 1 and refs[0].final
    assert begin - 0.1 <= refs[0].started_at <= begin + 0.5
    frames = _decode(refs[0])
    times = [t for t, _ in frames]
    assert times == sorted(times)
    # 5 fps for 3 s, the screen changes about every frame, plus the tail at stop time.
    assert 10 <= len(frames) <= 17, times
    assert times[-1] == pytest.approx(end, abs=0.002)
    assert np.median(np.diff(times[:-1])) == pytest.approx(0.2, abs=0.06)
    assert len({c for _, c in frames}) >= 4


@pytest.mark.e2e
def test_pause_delivered_two_seconds_late_leaves_no_frame_inside_it(display: str, tmp_path: Path) -> None:
    """A real capture in 5-s segments; the pause command comes 2 s after its time: no frame
    stamped inside the pause is in any segment the spool hands out, decoded to check. The grab
    thread stops within 250 ms of the command."""
    spool = Spool(tmp_path)
    grabber = TimedGrabber()
    session = _session(spool, grabber, segment_seconds=5.0)
    with ColourChanger(display):
        time.sleep(0.3)
        session.start()
        _wait(lambda: len(grabber.grabs) >= 30, 30, "6 s of grabs")  # past a segment boundary
        pause_at = time.time() - 2.0
        command = time.monotonic()
        detail = session.pause(pause_at)
        _wait(session.idle.is_set, 10, "the grab thread to stop")
        last_grab = grabber.grabs[-1]
        time.sleep(1.0)
        resume_at = time.time()
        session.resume(resume_at)
        _wait(lambda: len(grabber.grabs) >= 45, 30, "grabs after the resume")
        stop_at = time.time()
        assert session.stop(stop_at) == ""
    assert last_grab - command <= 0.25, last_grab - command
    assert detail.startswith("cut ") and "encoded after the pause" in detail, detail
    refs = spool.ready()
    times = sorted(t for ref in refs for t, _ in _decode(ref))
    inside = [t for t in times if pause_at <= t < resume_at]
    assert not inside, (pause_at, resume_at, inside)
    assert len([t for t in times if t < pause_at]) >= 15 and len([t for t in times if t >= resume_at]) >= 5
    assert times[-1] == pytest.approx(stop_at, abs=0.002)
