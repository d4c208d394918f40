"""The first frame a capture stores is the screen as it was when the capture began: no black
priming frame, no zeroed encoder buffer, no fail-closed mask while masking works (issue 15,
"the first stored frame of a screen recording is black").

That report came from the e2e harness's Xvfb, started without ``-noreset``: an X server resets
when its last client disconnects, and a reset paints the root black again. ``xsetroot`` is a
short-lived client, so until the recorder's own connection (its first grab) keeps the server
up, the screen really is black; the recorder's first frame showed exactly that (a test grab
just before the call saw a mean of 0.0 too), and every later frame the colours. Here the Xvfb
runs with ``-noreset`` and the root colour is read back before the capture starts, so the
screen is certainly not black, and the stored frames must say so: with no masking, with a region
rule (only its rectangle black) and with a window rule that names no window on screen (the
window list is read before the first grab, so nothing is blacked out whole).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from recorder_service.capture import Grabber, MssGrabber
from recorder_service.encoder import ScreenEncoder
from recorder_service.frame_pipeline import build_grabber
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool
from tandem_protocol.recorder_policy import MaskRule, RecorderPolicy

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="X11"),
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (scripts/system-packages test)"),
    pytest.mark.e2e,  # a real Xvfb: outside the fast selection
]

WIDTH, HEIGHT = 640, 480
ROOT_RGB = (192, 57, 43)  # xsetroot -solid "#c0392b"
REGION = (0, 0, 160, 120)  # x, y, width, height
TOLERANCE = 8  # yuv420p at crf 30 and back: a flat colour comes back within a few levels
DEADLINE = 30.0  # generous: a shared, loaded machine

MASKING = {
    "none": (),
    "region": (MaskRule(name="box", kind="region", rect=REGION),),
    "window": (MaskRule(name="card", kind="window", title="no such window on screen"),),
}


def wait_for(what: str, check: Callable[[], bool], deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def near(pixel: np.ndarray, rgb: tuple[int, int, int]) -> bool:
    return bool((np.abs(pixel.astype(int) - np.array(rgb)) <= TOLERANCE).all())


def root_shows_colour() -> bool:
    """Paint the root and read it back through a connection of our own (BGRA)."""
    subprocess.run(["xsetroot", "-solid", "#{:02x}{:02x}{:02x}".format(*ROOT_RGB)], check=True)
    grabber = MssGrabber(0)
    try:
        return near(grabber.grab()[HEIGHT // 2, WIDTH // 2, 2::-1], ROOT_RGB)
    finally:
        grabber.close()


@pytest.fixture
def coloured_screen(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An Xvfb whose root shows ROOT_RGB. -noreset: without it the server resets (root black)
    whenever its last client leaves, as between two xsetroot runs."""
    read_fd, write_fd = os.pipe()
    screen = f"{WIDTH}x{HEIGHT}x24"
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    try:
        assert number, "Xvfb did not report a display"
        monkeypatch.setenv("DISPLAY", f":{number}")
        wait_for("the root window's colour", root_shows_colour)
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(10)


class CountingGrabber:
    """The grabber under test, counting grabs (to stop after a few without a fixed sleep)."""

    def __init__(self, inner: Grabber) -> None:
        self._inner = inner
        self.grabs = 0

    def grab(self) -> np.ndarray:
        frame = self._inner.grab()
        self.grabs += 1
        return frame

    def close(self) -> None:
        self._inner.close()


@pytest.mark.parametrize("masking", sorted(MASKING))
def test_first_stored_frame_shows_the_screen(coloured_screen: str, tmp_path: Path, masking: str) -> None:
    policy = RecorderPolicy(fps=5, segment_seconds=60, masking=MASKING[masking])
    grabber = CountingGrabber(build_grabber(policy))
    spool = Spool(tmp_path / "spool")
    session = CaptureSession(
        "first-frame",
        spool=spool,
        server_now=time.time,
        grabber=grabber,
        encoder_factory=lambda path: ScreenEncoder(path, fps=5),
        run="r1",
        policy=policy,
    )
    session.start()
    wait_for("five grabs", lambda: grabber.grabs >= 5)
    assert session.stop(time.time()) == ""
    refs = spool.ready()
    assert len(refs) == 1 and refs[0].final, refs
    with av.open(str(refs[0].path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    # The screen never changed: its first picture, then repeats of it (a still screen's
    # fragments, the stop time).
    assert len(frames) >= 2, len(frames)
    first = frames[0]
    x, y, w, h = REGION
    outside = first[y + h + 8 :, :]
    summary = f"first frame: mean {first.mean():.1f}, centre {first[HEIGHT // 2, WIDTH // 2].tolist()}"
    assert near(first[HEIGHT // 2, WIDTH // 2], ROOT_RGB), summary
    assert near(outside.min(axis=(0, 1)), ROOT_RGB) and near(outside.max(axis=(0, 1)), ROOT_RGB), summary
    corner = first[y + 4 : y + h - 4, x + 4 : x + w - 4]
    if masking == "region":
        assert int(corner.max()) <= TOLERANCE, f"region not masked: brightest {int(corner.max())}"
    else:
        assert near(corner.min(axis=(0, 1)), ROOT_RGB), summary
    assert all(near(f[HEIGHT // 2, WIDTH // 2], ROOT_RGB) for f in frames)
