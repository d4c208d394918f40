"""ScreenEncoder settings chosen by the benchmark: keyframes by time or frame count, fragments every 0.8 s
independent of keyframes (a file cut anywhere plays up to 1 s before the cut at 5 fps), no
B-frames, changed-rows conversion equal to a full one, downscale to a maximum width."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from recorder_service.encoder import (
    KEYFRAME_FRAMES,
    ScreenEncoder,
    X264Settings,
    changed_rows,
    keyframe_due,
    output_size,
)
from recorder_service.errors import EncoderError, Mp4StructureError
from recorder_service.fmp4 import playable_length

W, H = 320, 240


def _typing(i: int) -> np.ndarray:
    """A 'text' screen after i keystrokes: a glyph-like block per keystroke, row by row."""
    img = np.full((H, W, 4), 235, np.uint8)
    for k in range(i + 1):
        y, x = 8 + 12 * ((k // 30) % 18), 4 + 10 * (k % 30)
        img[y : y + 9, x : x + 7, :3] = (k * 37) % 200
    return img


def _packets(path: Path) -> list[av.Packet[Any]]:
    with av.open(str(path)) as container:
        return [p for p in container.demux(video=0) if p.size]


def _last_pts(data: bytes, tmp_path: Path) -> int | None:
    """The last frame a player gets from a file cut to ``data`` (None: nothing playable)."""
    try:
        keep = playable_length(io.BytesIO(data), len(data))
    except Mp4StructureError:
        return None
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:keep])
    with av.open(str(cut)) as container:
        pts = [f.pts for f in container.decode(video=0)]
    last = pts[-1] if pts else None
    assert last is not None and all(p is not None for p in pts)
    return int(last)


def test_keyframe_due_by_time() -> None:
    assert keyframe_due(0, None, 60_000)
    assert not keyframe_due(59_999, 0, 60_000)
    assert keyframe_due(60_000, 0, 60_000)


def test_keyframe_due_by_frame_count() -> None:
    assert not keyframe_due(1000, 0, 60_000, frames_since_key=149, max_frames=150)
    assert keyframe_due(1000, 0, 60_000, frames_since_key=150, max_frames=150)
    assert keyframe_due(60_000, 0, 60_000, frames_since_key=3, max_frames=150)  # time first
    assert not keyframe_due(1000, 0, 60_000, frames_since_key=10_000, max_frames=0)  # 0: time only


def _keyframe_pts(path: Path) -> list[int]:
    return [int(p.pts) for p in _packets(path) if p.is_keyframe and p.pts is not None]


def test_dense_frames_get_a_keyframe_every_keyframe_frames(tmp_path: Path) -> None:
    """Every frame a change (a busy screen): a keyframe every K frames, long before the clock's
    60 s — a seek then decodes at most K frames (issue 14)."""
    path = tmp_path / "d.mp4"
    enc = ScreenEncoder(path, fps=5, keyframe_frames=20)
    for i in range(70):
        enc.encode(_typing(i), i * 200)
    enc.close()
    assert _keyframe_pts(path) == [0, 4000, 8000, 12_000]  # frames 0, 20, 40, 60


def test_default_frame_count_applies_to_a_busy_screen(tmp_path: Path) -> None:
    """The default rule, at 10 fps: frame KEYFRAME_FRAMES is a keyframe well before 60 s."""
    path = tmp_path / "b.mp4"
    enc = ScreenEncoder(path, fps=10)
    for i in range(KEYFRAME_FRAMES + 5):
        enc.encode(_typing(i % 200), i * 100)
    enc.close()
    assert _keyframe_pts(path) == [0, KEYFRAME_FRAMES * 100]
    assert KEYFRAME_FRAMES * 100 < 60_000


def test_sparse_frames_keep_keyframes_by_time(tmp_path: Path) -> None:
    """A mostly still screen (unchanged frames skipped): fewer than K frames a minute, so
    keyframes only every 60 s; the count restarts at a keyframe the clock placed."""
    path = tmp_path / "s.mp4"
    enc = ScreenEncoder(path, fps=5, keyframe_frames=20)
    # 8 dense, then one each 5 s: 19 frames in the first minute, 12 in the second (31 in all:
    # the count must restart at 60 s); then 16 frames after the keyframe at 120 s, under 20.
    times = [*range(0, 1600, 200), *range(5000, 125_000, 5000), *range(125_200, 128_000, 200)]
    for i, t in enumerate(times):
        enc.encode(_typing(i), t)
    enc.close()
    assert _keyframe_pts(path) == [0, 60_000, 120_000]


def test_repeats_of_a_still_screen_count_as_frames(tmp_path: Path) -> None:
    """mark_unchanged's repeats are decoded by a seek too: they count towards K."""
    path = tmp_path / "r.mp4"
    enc = ScreenEncoder(path, fps=5, keyframe_frames=10)
    for i in range(5):
        enc.encode(_typing(i), i * 200)
    repeats = [t for t in range(1000, 20_000, 200) if enc.mark_unchanged(t)]
    enc.close()
    assert len(repeats) >= 16
    assert _keyframe_pts(path) == [0, repeats[5], repeats[15]]  # frames 10 and 20


def test_keyframes_follow_the_clock_not_the_frame_count(tmp_path: Path) -> None:
    """Sparse, irregular frames (unchanged ones skipped): keyframes every 5 s of timeline."""
    path = tmp_path / "k.mp4"
    enc = ScreenEncoder(path, fps=5, keyframe_interval=5.0)
    times = [*range(0, 3000, 200), 4000, 9000, 9200, 9400, 14_500, *range(15_000, 21_000, 200)]
    for i, t in enumerate(times):
        enc.encode(_typing(i), t)
    enc.close()
    packets = _packets(path)
    assert [p.pts for p in packets if p.is_keyframe] == [0, 9000, 14_500, 19_600]
    # No B-frames: decode order is display order, and the decoder reports none.
    assert all(p.pts == p.dts for p in packets)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.has_b_frames == 0
        assert all(f.pict_type != av.video.frame.PictureType.B for f in container.decode(video=0))


def test_default_gop_is_long(tmp_path: Path) -> None:
    """x264's own keyframe placement is off: KEYFRAME_FRAMES frames of typing (30 s at 5 fps) are
    one keyframe."""
    path = tmp_path / "g.mp4"
    enc = ScreenEncoder(path, fps=5)
    for i in range(KEYFRAME_FRAMES):
        enc.encode(_typing(i), i * 200)
    enc.close()
    assert [p.pts for p in _packets(path) if p.is_keyframe] == [0]


def test_a_file_cut_at_any_byte_plays_up_to_a_second_before_the_cut(tmp_path: Path) -> None:
    """A kill -9 leaves whatever reached the file: cut it after every write and at arbitrary
    bytes in between, and the playable prefix ends at most fragment_seconds + one frame before
    the newest frame handed to the encoder by then (1 s at 5 fps with the default 0.8 s) —
    without any keyframe after the first."""
    path = tmp_path / "f.mp4"
    enc = ScreenEncoder(path, fps=5)
    sizes: list[tuple[int, int]] = []  # (pts handed over, file size after it)
    for i in range(100):
        enc.encode(_typing(i), i * 200)
        sizes.append((i * 200, path.stat().st_size))
    data = path.read_bytes()  # not closed: what a killed recorder leaves
    rng = np.random.default_rng(7)
    cuts = [s for _, s in sizes] + [int(c) for c in rng.integers(0, len(data), 200)]
    worst = 0
    for cut in cuts:
        # The newest frame that could have been handed over when the file had `cut` bytes.
        newest = next((pts for pts, size in sizes if size >= cut), sizes[-1][0])
        last = _last_pts(data[:cut], tmp_path)
        if last is None:
            assert newest <= 1000, f"nothing playable {newest} ms into the recording"
            continue
        worst = max(worst, newest - last)
    assert worst <= 1000, worst
    assert worst >= 800  # the bound is real: fragments really are that long
    enc.close()
    assert [p.pts for p in _packets(path) if p.is_keyframe] == [0]


def test_a_still_screen_loses_no_more_than_a_busy_one(tmp_path: Path) -> None:
    """After the last change the muxer holds that frame until another arrives; mark_unchanged
    re-sends the picture once a fragment's time has passed, so the file keeps up."""
    path = tmp_path / "s.mp4"
    enc = ScreenEncoder(path, fps=5)
    for i in range(10):
        enc.encode(_typing(i), i * 200)
    written = 0
    for t in range(2000, 30_000, 200):  # 28 s of a still screen, a tick every 200 ms
        written += enc.mark_unchanged(t)
        last = _last_pts(path.read_bytes(), tmp_path)
        assert last is not None and t - last <= 1400, (t, last)  # two fragments at most
    assert 25 <= written <= 36  # about one repeat per fragment, not one per tick
    enc.close()
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 10 + written
    assert np.array_equal(frames[9].to_ndarray(), frames[-1].to_ndarray())  # the same picture


def test_converting_only_changed_rows_equals_converting_everything(tmp_path: Path) -> None:
    """Lossless (qp 0) so the decoded pictures are exactly what was given to x264."""
    path = tmp_path / "b.mp4"
    enc = ScreenEncoder(path, fps=5, settings=X264Settings(params="qp=0"))
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (H, W, 4), dtype=np.uint8)]
    bands = [(0, 1), (7, 8), (100, 141), (239, 240), (3, 237), (120, 120)]
    bands += [
        (int(t), int(t) + int(h))
        for t, h in zip(rng.integers(0, H, 40), rng.integers(1, 12, 40), strict=True)
    ]
    for top, bottom in bands:
        nxt = images[-1].copy()
        nxt[top:bottom] = rng.integers(0, 256, nxt[top:bottom].shape, dtype=np.uint8)
        images.append(nxt)
    for i, image in enumerate(images):
        enc.encode(image, i * 200)
    enc.close()
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == len(images)
    for image, frame in zip(images, decoded, strict=True):
        full = av.VideoFrame.from_ndarray(image, format="bgra").reformat(format="yuv420p")
        assert np.array_equal(frame.to_ndarray(), full.to_ndarray())


def test_changed_rows_band_is_even_and_covers_every_difference() -> None:
    a = np.zeros((10, 6, 4), np.uint8)
    assert changed_rows(a, a.copy()) is None
    b = a.copy()
    b[3, 5, 3] = 1
    b[6, 0, 0] = 1
    assert changed_rows(a, b) == (2, 8)
    c = a.copy()
    c[9, 0, 0] = 1
    assert changed_rows(a, c) == (8, 10)
    odd = np.zeros((5, 3, 4), np.uint8)  # rows not a multiple of 8 bytes: compared bytewise
    odd2 = odd.copy()
    odd2[4, 2, 1] = 9
    assert changed_rows(odd, odd2) == (4, 5)


def test_output_size_keeps_aspect_and_even_sides() -> None:
    assert output_size(1920, 1080) == (1920, 1080)
    assert output_size(1921, 1081) == (1920, 1080)
    assert output_size(3840, 1080, 1920) == (1920, 540)
    assert output_size(5760, 1080, 1280) == (1280, 240)
    assert output_size(1366, 768, 1000) == (1000, 562)
    assert output_size(1280, 720, 1920) == (1280, 720)  # never upscaled
    with pytest.raises(EncoderError):
        output_size(1, 100)


def test_max_width_downscales_and_later_sizes_are_scaled_to_the_first(tmp_path: Path) -> None:
    path = tmp_path / "m.mp4"
    enc = ScreenEncoder(path, fps=5, max_width=160)
    enc.encode(_typing(3), 0)  # 320×240 → 160×120
    enc.encode(np.zeros((300, 500, 4), np.uint8), 200)  # a monitor resized mid-segment
    enc.encode(_typing(4), 400)
    enc.close()
    assert enc.size == (160, 120)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert {(f.width, f.height) for f in frames} == {(160, 120)}
    assert frames[1].to_ndarray(format="gray").max() < 20  # the black frame, scaled, not skipped
    assert frames[2].to_ndarray(format="gray").mean() > 150  # and the text screen again


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ScreenEncoder(tmp_path / "x.mp4", fps=5, fragment_seconds=0)
    with pytest.raises(ValueError):
        ScreenEncoder(tmp_path / "x.mp4", fps=5, max_width=-1)
    with pytest.raises(ValueError, match="keyframe_frames"):
        ScreenEncoder(tmp_path / "x.mp4", fps=5, keyframe_frames=-1)
    enc = ScreenEncoder(tmp_path / "x.mp4", fps=5)
    with pytest.raises(EncoderError, match="BGRA"):
        enc.encode(np.zeros((10, 10, 3), np.uint8), 0)
    assert not enc.mark_unchanged(5000)  # nothing to repeat before the first frame
    enc.close()
