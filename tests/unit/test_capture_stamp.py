"""A frame's stamp is the time its picture was read from the screen (issue 12: within 20 ms).

Found by tests/e2e/test_screen_acceptance.py: the first frame of every capture was stamped
~0.23 s before the picture it holds (Xvfb, loaded 2-core machine; 62 ms unloaded). The session
takes the stamp (``ts = server_now()``) *before* ``grabber.grab()``, and the first grab of a
capture opens the X connection and reads the monitor layout (``MssGrabber._open`` +
``_read_layout``) before it reads the pixels. The same ordering puts every layout re-read (each
2 s) and, with masking rules, every window listing (``MaskingGrabber._windows_before``) between
the stamp and the pixels. Fix suggested: stamp when the pixels are read (the innermost grabber
notes the time just before ``sct.grab``), or open the grabber before the first stamp.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np

from recorder_service.encoder import ScreenEncoder
from recorder_service.quota import DiskUsage
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool
from tandem_protocol.recorder_policy import RecorderPolicy

MB = 1024 * 1024
SETUP = 0.25  # what opening the display took in the e2e run


class SlowFirstGrab:
    """Like mss on X11: the first grab connects and reads the layout before reading pixels.
    Each picture is one grey level; ``read_at`` says when each was read (wall clock)."""

    def __init__(self) -> None:
        self.read_at: dict[int, float] = {}
        self._opened = False
        self._lock = threading.Lock()

    def grab(self) -> np.ndarray:
        if not self._opened:
            time.sleep(SETUP)
            self._opened = True
        with self._lock:
            n = len(self.read_at) + 1
            self.read_at[n] = time.time()
        return np.full((48, 64, 4), n * 40 % 256, dtype=np.uint8)

    def close(self) -> None:
        pass


def test_first_frame_is_stamped_when_its_picture_was_read(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    grabber = SlowFirstGrab()
    session = CaptureSession(
        "i1",
        spool=spool,
        server_now=time.time,
        grabber=grabber,
        encoder_factory=lambda path: ScreenEncoder(path, fps=5),
        run="r1",
        policy=RecorderPolicy(fps=5, segment_seconds=60, spool_max_mb=100),
        holdback=0.2,
        hold=0.0,
        disk_usage=lambda: DiskUsage(90 * MB, 100 * MB, 0),
    )
    session.start()
    deadline = time.monotonic() + 20
    while len(grabber.read_at) < 4:
        assert time.monotonic() < deadline, "no frames grabbed"
        time.sleep(0.02)
    assert session.stop(time.time()) == ""
    (ref,) = spool.ready()
    with av.open(str(ref.path)) as container:
        frame = next(container.decode(video=0))
        stamp = ref.started_at + (frame.pts or 0) / 1000
        luma = float(frame.to_ndarray(format="gray").mean())
    # Grey n × 40 is the n-th picture read; the first frame's stamp is when it was read.
    n = round(luma / 40)
    assert n in grabber.read_at, luma
    assert abs(stamp - grabber.read_at[n]) <= 0.020, f"stamped {stamp - grabber.read_at[n]:+.3f} s off"
