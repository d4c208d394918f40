"""A small JPEG of a screen recording's first keyframe, for the search results. PyAV decodes only
keyframes (``skip_frame``) and encodes the picture with its MJPEG encoder: no Pillow, no ffmpeg
process. Reads the recording; never writes it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from server.errors import MediaError

WIDTH = 240
MAX_PACKETS = 2000  # a file whose first keyframe is further in than this has no usable thumbnail


class ThumbnailError(MediaError):
    """The file has no decodable keyframe near its start."""


def first_keyframe_jpeg(path: Path, width: int = WIDTH) -> bytes:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ThumbnailError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            stream.codec_context.skip_frame = "NONKEY"
            for count, packet in enumerate(container.demux(stream)):
                if count >= MAX_PACKETS:
                    break
                for frame in packet.decode():
                    return _jpeg(frame, width)
    except av.FFmpegError as exc:
        raise ThumbnailError(f"{path.name}: {exc}") from exc
    raise ThumbnailError(f"no keyframe in the first {MAX_PACKETS} packets of {path.name}")


def _jpeg(frame: av.VideoFrame, width: int) -> bytes:
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    small = frame.reformat(width=width, height=height, format="yuvj420p")
    small.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(small))
    data += b"".join(bytes(p) for p in encoder.encode(None))
    if not data.startswith(b"\xff\xd8"):
        raise ThumbnailError("the JPEG encoder gave no picture")
    return data
