"""The mux benchmark (benchmarks/playback/mux_bench.py) on a small input, so it cannot rot unseen: its
recorder-like segments, the voice AAC made beforehand, one round of both paths through the same code
the 1-h run uses (our mux in a worker process, ffmpeg concatenating with stream copy), and both
outputs decoding with PyAV to the input's length, every screen frame and the voice there."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest

from benchmarks.playback import mux_bench

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")

SECONDS = 24.0
FPS = 5.0


def _decoded(path: Path) -> tuple[float, int, float]:
    """Container duration, video frames decoded, seconds of audio decoded."""
    with av.open(str(path)) as container:
        duration = container.duration / av.time_base if container.duration is not None else 0.0
        frames = sum(1 for _ in container.decode(video=0))
        container.seek(0)
        audio = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].codec_context.sample_rate
    return duration, frames, audio / rate


def test_bench_mux_paths_make_whole_playable_files(tmp_path: Path) -> None:
    manifest = mux_bench.make_input(tmp_path, SECONDS, FPS, (320, 180), segment_seconds=8.0, jobs=1)
    assert len(manifest["segments"]) == 3
    frames = round(SECONDS * FPS)
    assert manifest["frames"] == frames

    result = mux_bench.bench(manifest, tmp_path, rounds=1)
    assert result["frames"] == frames
    assert result["ours_cpu_s_median"] > 0 and result["ffmpeg_cpu_s_median"] > 0
    for name in ("ours.mp4", "ffmpeg.mp4"):
        duration, decoded, audio = _decoded(tmp_path / name)
        assert abs(duration - SECONDS) < 0.5, (name, duration)
        assert decoded == frames, (name, decoded)
        assert abs(audio - SECONDS) < 0.2, (name, audio)

    # The manifest is reused, not made again, when the same input is asked for.
    first = (tmp_path / "seg-000.mp4").stat().st_mtime_ns
    again = mux_bench.make_input(tmp_path, SECONDS, FPS, (320, 180), segment_seconds=8.0, jobs=1)
    assert again == manifest and (tmp_path / "seg-000.mp4").stat().st_mtime_ns == first
