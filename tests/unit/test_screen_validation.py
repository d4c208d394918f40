"""Screen upload validation on real files made here with PyAV: only the recorder's kind of file
(one H.264 video stream in MP4, complete, decodable, sane timestamps) is accepted."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from recorder_service.encoder import ScreenEncoder
from server.errors import ScreenRejected
from server.media.screen_validation import check_time_span, validate_screen_file


def recorder_file(path: Path, frames: int = 25, step_ms: int = 200) -> Path:
    """A fragmented MP4 exactly as the recorder service writes it."""
    enc = ScreenEncoder(path, fps=5)
    for i in range(frames):
        image = np.zeros((48, 64, 4), dtype=np.uint8)
        image[:, : (i % 64) + 1, 1] = 200
        enc.encode(image, i * step_ms)
    enc.close()
    return path


def _video(path: Path, fmt: str, codec: str, frames: int = 10, pix_fmt: str = "yuv420p") -> Path:
    with av.open(str(path), "w", format=fmt) as container:
        stream: Any = container.add_stream(codec, rate=Fraction(5))
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(frames):
            image = np.full((48, 64, 3), i * 20, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _audio_only_mp4(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream: Any = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(20):
            samples = (np.sin(np.arange(1024) / 10.0) * 8000).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = 16000
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _h264_with_audio(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        video: Any = container.add_stream("libx264", rate=Fraction(5))
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio: Any = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        samples = np.zeros((1, 1024), dtype=np.int16)
        aframe = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        aframe.sample_rate, aframe.pts = 16000, 0
        for packet in [*audio.encode(aframe), *audio.encode(None)]:
            container.mux(packet)
    return path


def _rejected(path: Path) -> ScreenRejected:
    with pytest.raises(ScreenRejected) as info:
        validate_screen_file(path)
    return info.value


def test_the_recorders_fragmented_mp4_is_accepted(tmp_path: Path) -> None:
    media = validate_screen_file(recorder_file(tmp_path / "ok.mp4"))
    assert media.frames == 25
    assert (media.width, media.height) == (64, 48)
    assert 4.8 <= media.duration <= 5.01  # 25 frames 200 ms apart, the last one lasting up to 200 ms


def test_a_plain_h264_mp4_is_accepted(tmp_path: Path) -> None:
    media = validate_screen_file(_video(tmp_path / "plain.mp4", "mp4", "libx264"))
    assert media.frames == 10 and math.isclose(media.duration, 2.0, abs_tol=0.01)


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "pix_fmt"),
    [
        ("still.png", "image2", "png", "rgb24"),
        ("anim.gif", "gif", "gif", "rgb8"),
        ("video.mkv", "matroska", "libx264", "yuv420p"),
        ("video.ts", "mpegts", "libx264", "yuv420p"),
    ],
)
def test_other_containers_are_refused(tmp_path: Path, name: str, fmt: str, codec: str, pix_fmt: str) -> None:
    path = _video(tmp_path / name, fmt, codec, frames=1 if fmt == "image2" else 5, pix_fmt=pix_fmt)
    assert path.stat().st_size > 0
    assert _rejected(path).code == "not_mp4"


def test_truncated_recorder_files_are_refused(tmp_path: Path) -> None:
    whole = recorder_file(tmp_path / "whole.mp4").read_bytes()
    for keep in (len(whole) - 1, len(whole) - 300, len(whole) // 2, 40):
        cut = tmp_path / f"cut{keep}.mp4"
        cut.write_bytes(whole[:keep])
        assert _rejected(cut).code == "not_mp4", keep


def test_corrupted_video_data_is_refused(tmp_path: Path) -> None:
    """Same length, box structure intact, the coded frames overwritten: nothing decodes."""
    data = bytearray(recorder_file(tmp_path / "whole.mp4").read_bytes())
    pos = 0
    while pos < len(data):  # zero every mdat payload
        size = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"mdat":
            data[pos + 8 : pos + size] = bytes(size - 8)
        pos += size
    bad = tmp_path / "zeros.mp4"
    bad.write_bytes(bytes(data))
    assert _rejected(bad).code == "undecodable"


def test_mp4_with_another_video_codec_is_refused(tmp_path: Path) -> None:
    rejected = _rejected(_video(tmp_path / "mpeg4.mp4", "mp4", "mpeg4"))
    assert rejected.code == "not_h264" and "mpeg4" in rejected.message


def test_mp4_with_audio_only_or_extra_streams_is_refused(tmp_path: Path) -> None:
    assert _rejected(_audio_only_mp4(tmp_path / "audio.mp4")).code == "wrong_streams"
    rejected = _rejected(_h264_with_audio(tmp_path / "both.mp4"))
    assert rejected.code == "wrong_streams" and "audio" in rejected.message


def test_random_bytes_and_empty_file_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert _rejected(junk).code == "not_mp4"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert _rejected(empty).code == "not_mp4"


def test_time_span_rules() -> None:
    ok = {"span_start": 1000.0, "span_end": 1100.0, "slack": 60.0, "end_tolerance": 2.0}
    check_time_span(1000.0, 100.0, **ok)
    check_time_span(941.0, 10.0, **ok)  # clock offset within the slack
    check_time_span(1150.0, 11.0, **ok)  # ends 61 s after the call: inside slack + tolerance
    for bad, code in (
        (math.nan, "bad_started_at"),
        (math.inf, "bad_started_at"),
        (-math.inf, "bad_started_at"),
        (939.0, "started_at_out_of_span"),
        (1161.0, "started_at_out_of_span"),
        (0.0, "started_at_out_of_span"),
    ):
        with pytest.raises(ScreenRejected) as info:
            check_time_span(bad, 1.0, **ok)
        assert info.value.code == code, bad
    with pytest.raises(ScreenRejected) as info:
        check_time_span(1100.0, 63.0, **ok)
    assert info.value.code == "video_past_span"
    with pytest.raises(ScreenRejected) as info:
        check_time_span(1000.0, math.nan, **ok)
    assert info.value.code == "bad_timestamps"
