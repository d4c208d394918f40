"""SegmentWriter on a real spool and encoder, with chosen timestamps (no threads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recorder_service.encoder import ScreenEncoder
from recorder_service.segment_writer import SegmentWriter
from recorder_service.spool import Spool


def _writer(spool: Spool, segment_seconds: float = 60.0) -> SegmentWriter:
    return SegmentWriter(
        spool,
        "i1",
        "r1",
        encoder_factory=lambda path: ScreenEncoder(path, fps=5),
        segment_seconds=segment_seconds,
        hold=30.0,
    )


def _image(value: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    return np.full((*shape, 4), value, dtype=np.uint8)


@pytest.mark.parametrize("fraction_ms", [0.2, 0.5, 0.7, 0.9])
def test_end_frame_at_a_pause_is_never_cut_by_the_pause_itself(tmp_path: Path, fraction_ms: float) -> None:
    """The still screen's last picture is repeated just before the pause; a cut at the pause
    (which rounds down to whole ms, to be safe) must not take it, whatever the fraction."""
    spool = Spool(tmp_path)
    writer = _writer(spool)
    for i in range(5):
        writer.write(1000.0 + i * 0.2, _image(i * 30))
    pause_at = 1003.0 + fraction_ms / 1000
    manifest = writer.close(end=pause_at, final=False)
    assert manifest is not None and manifest.frames == 6
    assert manifest.last_frame_at is not None and manifest.last_frame_at < pause_at
    assert spool.cut_from("i1", pause_at).frames == 0


def test_boundaries_by_time_and_size(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    writer = _writer(spool, segment_seconds=1.0)
    writer.write(10.0, _image(1))
    writer.write(10.4, _image(2))
    assert writer.advance(10.9) is False  # before the boundary: nothing to rotate
    assert writer.advance(11.2) is True  # a still screen: the segment ends at 11.0
    writer.write(11.5, _image(3, (40, 80)))  # another canvas size: a new segment at once
    writer.close(end=None, final=True)
    segments = sorted(spool.manifests(), key=lambda m: m.seq)
    assert [(m.seq, m.started_at) for m in segments] == [(0, 10.0), (1, 11.0), (2, 11.5)]
    assert segments[0].last_frame_at == pytest.approx(10.998)  # reaches its end
    assert segments[1].last_frame_at == pytest.approx(11.498)
    assert [m.final for m in segments] == [False, False, True]
