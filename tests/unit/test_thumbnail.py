"""The search results' screen thumbnail: a JPEG of the first keyframe, scaled, from an H.264 MP4
made here with PyAV; a file without video is refused with a clear error."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from server.media.thumbnail import ThumbnailError, first_keyframe_jpeg


def _mp4(path: Path, colour: tuple[int, int, int], frames: int = 10) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.time_base = Fraction(1, 10)
        for i in range(frames):
            picture = np.zeros((360, 640, 3), dtype=np.uint8)
            picture[:, :] = colour
            picture[: 20 + i, :40] = 255  # a little change per frame
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_first_keyframe_as_a_small_jpeg(tmp_path: Path) -> None:
    _mp4(tmp_path / "screen.mp4", (200, 30, 30))
    jpeg = first_keyframe_jpeg(tmp_path / "screen.mp4")
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    assert len(jpeg) < 20_000
    with av.open(str(_write(tmp_path / "t.jpg", jpeg))) as back:
        frame = next(back.decode(video=0))
        assert (frame.width, frame.height) == (240, 136)
        rgb = frame.to_ndarray(format="rgb24")
        red, green, _blue = rgb[100, 200].astype(int)
        assert red > 150 and green < 80  # the recording's colour, not a blank picture


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_file_without_video_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "not-video.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(ThumbnailError):
        first_keyframe_jpeg(bad)
