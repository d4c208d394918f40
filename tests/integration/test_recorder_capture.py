"""Real capture: Xvfb + mss + encoder through a CaptureSession, decoded back with PyAV."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from recorder_service.capture import MssGrabber
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool, SpoolState

COLOURS = ["red", "green", "blue", "yellow", "magenta", "cyan", "white", "black"]


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb picks a free display itself (-displayfd) and writes its number to our pipe."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
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


@pytest.mark.e2e  # a real Xvfb: outside the fast selection
def test_capture_three_seconds_of_changing_screen(display: str, tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    session = CaptureSession(
        "real-1", fps=5, spool=spool, server_now=time.time, grabber=MssGrabber(0), holdback=0.5
    )
    with ColourChanger(display):
        time.sleep(0.3)
        begin = time.time()
        session.start()
        time.sleep(3.0)
        end = time.time()
        manifest = session.stop(end)
    assert manifest.state == SpoolState.FINISHED, manifest.error
    assert manifest.started_at is not None and begin - 0.1 <= manifest.started_at <= begin + 0.5
    with av.open(str(spool.media_path("real-1"))) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 480)
        frames = list(container.decode(video=0))
    pts = [f.pts for f in frames if f.pts is not None]
    assert len(pts) == len(frames) and pts == sorted(pts)  # every frame stamped, in order
    # 5 fps for 3 s, the screen changes about every frame, plus the tail at stop time.
    assert 10 <= len(frames) <= 17, pts
    span_ms = (end - manifest.started_at) * 1000
    assert pts[-1] == pytest.approx(span_ms, abs=2)
    gaps = np.diff(pts[:-1])
    assert np.median(gaps) == pytest.approx(200, abs=60)
    colours = {tuple(int(c) // 32 for c in f.to_ndarray(format="rgb24")[240, 320]) for f in frames}
    assert len(colours) >= 4, colours
