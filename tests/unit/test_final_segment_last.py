"""The capture's final segment reaches the uploader after every earlier one.

Found by tests/e2e/test_screen_acceptance.py: a segment closed (by time) less than the 5-s pause
grace before Done was uploaded *after* the final one; the server muxes when the final segment is
stored, so the first muxed file lacked that segment (a ``screen_missing`` span over recorded
screen) until the sweep made it again 30 s later. Cause: ``CaptureSession._encode_loop`` finishes
the final segment with ``hold=0`` (``Spool.finish`` wakes the uploader, which takes it at once)
and only then calls ``Spool.release`` for the interaction's held segments. Fix suggested:
release the held segments before finishing the final one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recorder_service.encoder import ScreenEncoder
from recorder_service.quota import DiskUsage
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool
from tandem_protocol.recorder_policy import RecorderPolicy

MB = 1024 * 1024


class Changing:
    def __init__(self) -> None:
        self.count = 0

    def grab(self) -> np.ndarray:
        self.count += 1
        return np.full((48, 64, 4), self.count * 37 % 256, dtype=np.uint8)

    def close(self) -> None:
        pass


def test_final_segment_is_handed_out_after_the_held_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    handed: list[tuple[int, bool]] = []  # what an uploader woken at each hand-out point would take

    def take() -> None:  # ready() lists every segment not yet uploaded: the new ones count
        seen = {seq for seq, _ in handed}
        handed.extend((ref.seq, ref.final) for ref in spool.ready() if ref.seq not in seen)

    finish, release = spool.finish, spool.release

    def finish_and_take(*args: Any, **kwargs: Any) -> Any:
        manifest = finish(*args, **kwargs)
        take()
        return manifest

    def release_and_take(iid: str) -> None:
        release(iid)
        take()

    monkeypatch.setattr(spool, "finish", finish_and_take)
    monkeypatch.setattr(spool, "release", release_and_take)
    grabber = Changing()
    session = CaptureSession(
        "i1",
        spool=spool,
        server_now=time.time,
        grabber=grabber,
        encoder_factory=lambda path: ScreenEncoder(path, fps=10),
        run="r1",
        policy=RecorderPolicy(fps=10, segment_seconds=5, spool_max_mb=100),
        holdback=0.1,
        hold=30.0,  # the pause grace: segments closed by time wait for a late pause
        disk_usage=lambda: DiskUsage(90 * MB, 100 * MB, 0),
    )
    session.start()
    deadline = time.monotonic() + 30
    while grabber.count < 60:  # 6 s: one segment closed by time, held
        assert time.monotonic() < deadline, "no frames grabbed"
        time.sleep(0.05)
    assert session.stop(time.time()) == ""
    assert [seq for seq, _ in handed] == sorted(seq for seq, _ in handed) and handed[-1][1], handed
