"""Encoder + frame gate on synthetic frames, decoded back with PyAV; crash-truncation recovery."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from recorder_service.encoder import ScreenEncoder
from recorder_service.errors import Mp4StructureError
from recorder_service.fmp4 import playable_length, top_level_boxes
from recorder_service.frame_gate import FrameGate, Released


def _image(value: int, w: int = 161, h: int = 121) -> np.ndarray:
    img = np.zeros((h, w, 4), dtype=np.uint8)
    img[..., 2] = value  # red channel in BGRA
    img[: h // 2, : w // 2, 1] = 255 - value
    return img


def _encode_with_pause(path: Path) -> tuple[float, float, float]:
    """10 s at 5 fps, colour changing every frame, paused [3.0, 6.0); returns (t0, pause, resume)."""
    t0, pause_at, resume_at = 1_700_000_000.0, 1_700_000_003.0, 1_700_000_006.0
    gate: FrameGate[np.ndarray] = FrameGate(holdback=1.0)
    enc = ScreenEncoder(path, fps=5)
    started: float | None = None

    def emit(frames: list[Released[np.ndarray]]) -> None:
        nonlocal started
        for f in frames:
            started = f.ts if started is None else started
            enc.encode(f.image, round((f.ts - started) * 1000))

    for i in range(50):
        ts = t0 + i * 0.2
        if abs(ts - (pause_at + 0.4)) < 1e-6:
            gate.pause(pause_at)  # the command arrives 0.4 s after its time
        if abs(ts - resume_at) < 1e-6:
            gate.resume(resume_at)
        emit(gate.offer(ts, i, _image((i * 5) % 256)))
    emit(gate.flush(t0 + 10.0))
    enc.close()
    return t0, pause_at, resume_at


def _stamped(pts: int | None) -> int:
    """A timestamp every encoded packet and frame must have."""
    assert pts is not None, "a packet or frame without a timestamp"
    return pts


def test_encoded_file_respects_pause_order_and_format(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    t0, pause_at, resume_at = _encode_with_pause(path)
    data = path.read_bytes()
    kinds = [b.kind for b in top_level_boxes(io.BytesIO(data), len(data))]
    assert kinds[:2] == ["ftyp", "moov"]  # fragmented
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None and float(stream.time_base) == pytest.approx(0.001)
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)  # made even
        packets = [p for p in container.demux(stream) if p.size]
        assert all(p.pts == p.dts for p in packets)  # no B-frames: decode order = display order
        assert packets[0].is_keyframe
        # Keyframes by time (one a minute): this 10-s file has only the first.
        assert [p.pts for p in packets if p.is_keyframe] == [0]
    # Fragments every second, keyframe or not (test_encoder_fragments.py checks the cut).
    assert kinds.count("moof") >= 7  # 7 s of frames (3 s paused)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    pts = [_stamped(f.pts) for f in frames]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert pts[0] == 0 and pts[-1] == 10_000  # tail frame at stop time
    pause_ms, resume_ms = (pause_at - t0) * 1000, (resume_at - t0) * 1000
    assert not [p for p in pts if pause_ms <= p < resume_ms], pts
    assert len(frames) == 15 + 20 + 1
    assert frames[0].pict_type == av.video.frame.PictureType.I
    assert all(f.pict_type != av.video.frame.PictureType.B for f in frames)
    # Colours really change: red channel of first and a later frame differ.
    first, later = (f.to_ndarray(format="rgb24")[..., 0].mean() for f in (frames[0], frames[20]))
    assert abs(first - later) > 20


def test_truncated_file_is_cut_to_last_complete_fragment(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    _encode_with_pause(path)
    data = path.read_bytes()
    cut = data[: len(data) - 3000]  # a torn final fragment, as after kill -9
    keep = playable_length(io.BytesIO(cut), len(cut))
    assert 0 < keep < len(cut)
    (tmp_path / "cut.mp4").write_bytes(cut[:keep])
    with av.open(str(tmp_path / "cut.mp4")) as container:
        frames = list(container.decode(video=0))
    assert 10 <= len(frames) < 36
    with pytest.raises(Mp4StructureError):
        playable_length(io.BytesIO(data[:200]), 200)
    with pytest.raises(Mp4StructureError):
        playable_length(io.BytesIO(b"\x00\x00\x00\x08junk" * 4), 32)


def test_frames_of_another_size_are_scaled(tmp_path: Path) -> None:
    enc = ScreenEncoder(tmp_path / "s.mp4", fps=5)
    enc.encode(_image(10, 64, 48), 0)
    enc.encode(_image(200, 100, 80), 500)
    enc.close()
    with av.open(str(tmp_path / "s.mp4")) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(64, 48)}
