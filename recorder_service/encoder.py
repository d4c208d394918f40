"""H.264 screen encoder writing a fragmented MP4 (PyAV adapter).

Fragmented (``frag_keyframe+empty_moov+default_base_moof``) so that a file cut short by a crash
or power loss is still playable up to its last complete fragment; a keyframe — and so a new
fragment — is forced at least every ``keyframe_interval`` seconds of timeline, which bounds what
a crash can lose. No B-frames (``bf=0``), ``tune=zerolatency``: packets come out as frames go in,
so nothing waits in the encoder either. The timeline is variable-rate: pts are milliseconds
since the first frame (time base 1/1000, also the MP4 track timescale).
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recorder_service.errors import EncoderError

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1000)
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


class ScreenEncoder:
    """Encode BGRA frames (numpy ``(h, w, 4)`` uint8) at explicit millisecond pts.

    The output size is fixed by the first frame (rounded down to even, as yuv420p needs); later
    frames of another size (a monitor was added or resized) are scaled to it.
    """

    def __init__(self, path: Path, *, fps: float, keyframe_interval: float = 2.0) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self._path = path
        self._fps = fps
        self._key_ms = int(keyframe_interval * 1000)
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._last_pts = -1
        self._last_key_pts: int | None = None
        self.frames = 0

    @property
    def size(self) -> tuple[int, int] | None:
        return self._size

    def _open(self, width: int, height: int) -> None:
        width -= width % 2
        height -= height % 2
        if width < 2 or height < 2:
            raise EncoderError(f"frame too small to encode: {width}x{height}")
        try:
            # Screens are personal data: create the file private; PyAV keeps an existing mode.
            os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            container = av.open(
                str(self._path),
                mode="w",
                format="mp4",
                # flush_packets: hand each finished fragment to the OS at once instead of keeping
                # it in FFmpeg's 32 KB I/O buffer, where a killed process would lose it.
                options={"movflags": MOVFLAGS, "video_track_timescale": "1000", "flush_packets": "1"},
            )
            stream = container.add_stream(
                "libx264",
                rate=Fraction(self._fps).limit_denominator(1000),
                options={"preset": "veryfast", "tune": "zerolatency", "bf": "0"},
            )
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            stream.codec_context.max_b_frames = 0
            # GOP ≈ keyframe_interval at the nominal rate; forced keyframes cover sparse timelines.
            stream.codec_context.gop_size = max(1, round(self._fps * self._key_ms / 1000))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise EncoderError(f"cannot open encoder for {self._path}: {exc}") from exc
        self._container, self._stream, self._size = container, stream, (width, height)

    def encode(self, image: np.ndarray, pts_ms: int) -> None:
        """Encode one frame. ``pts_ms`` must increase; a non-increasing one is bumped by 1 ms."""
        if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.uint8:
            raise EncoderError(f"expected a BGRA uint8 (h, w, 4) image, got {image.shape} {image.dtype}")
        if self._size is None:
            self._open(image.shape[1], image.shape[0])
        assert self._size is not None
        pts = max(pts_ms, self._last_pts + 1)
        width, height = self._size
        try:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgra")
            frame = frame.reformat(width=width, height=height, format="yuv420p")
            frame.pts = pts
            frame.time_base = TIME_BASE
            if self._last_key_pts is None or pts - self._last_key_pts >= self._key_ms:
                frame.pict_type = av.video.frame.PictureType.I
                self._last_key_pts = pts
            for packet in self._stream.encode(frame):
                if packet.is_keyframe:
                    self._last_key_pts = packet.pts
                self._container.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"encoding frame at {pts} ms failed: {exc}") from exc
        self._last_pts = pts
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and write the last fragment. Safe to call twice or unopened."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode(None):
                container.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"flushing {self._path} failed: {exc}") from exc
        finally:
            container.close()
