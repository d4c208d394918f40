"""What a screen recording must be before the server keeps it as evidence.

The recorder service writes one H.264 video stream in a fragmented MP4 (recorder_service/encoder.py).
Anything else — a PNG, a GIF, Matroska, MPEG-TS, an MP4 cut short or holding another codec or only
audio — is refused here with a stable code and a sentence for the person who reads the refusal.

Checks, cheapest first:

1. the top-level ISO BMFF boxes cover the file exactly, starting with ``ftyp`` and holding a ``moov``
   (a file cut short ends in a box whose declared size runs past the end of the file);
2. FFmpeg opens it with its MP4/MOV demuxer and finds exactly one stream, H.264 video;
3. every packet demuxes without a corrupt flag, with finite, non-negative timestamps, and every frame
   decodes. All frames are decoded: screen files are small (a few fps of mostly static screen) and
   this runs in a worker thread, on one decoder thread so it does not take both cores from SIP/RTP.

``started_at`` (the server time of pts 0, sent by the recorder) is checked separately by
:func:`check_time_span`, which is pure arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from server.errors import ProbeError, ScreenRejected
from server.media.boxes import iter_top_level_boxes

# FFmpeg names its MP4 demuxer after the whole ISO BMFF family.
_MP4_DEMUXER_NAMES = ("mov", "mp4")


@dataclass(frozen=True, slots=True)
class ScreenMedia:
    duration: float  # seconds from pts 0 to the end of the last frame
    frames: int
    width: int
    height: int


def check_boxes(path: Path) -> list[str]:
    """The file's top-level box kinds, once they are known to cover it exactly as an MP4 with a
    ``moov`` (shared with the segment check, server/media/segment_validation.py)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fp:
            kinds = [box.kind for box in iter_top_level_boxes(fp, size)]
    except ProbeError as exc:
        raise ScreenRejected(
            "not_mp4", f"the upload is not a complete MP4 file ({exc}): truncated or another format"
        ) from exc
    if not kinds or kinds[0] != "ftyp":
        raise ScreenRejected("not_mp4", "the upload is not an MP4 file (it does not start with an ftyp box)")
    if "moov" not in kinds:
        raise ScreenRejected("not_mp4", "the upload is not a complete MP4 file (no moov box)")
    return kinds


def validate_screen_file(path: Path) -> ScreenMedia:
    """Return what the file holds, or raise :class:`ScreenRejected`."""
    import av  # PyAV only loads once an upload arrives

    check_boxes(path)
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise ScreenRejected("not_mp4", f"the upload cannot be opened as MP4: {exc}") from exc
    with container:
        fmt = container.format.name
        if not any(name in fmt.split(",") for name in _MP4_DEMUXER_NAMES):
            raise ScreenRejected("not_mp4", f"the upload is {fmt}, not MP4")
        streams = list(container.streams)
        if len(streams) != 1 or streams[0].type != "video":
            kinds = ", ".join(f"{s.type} ({s.codec_context.name})" for s in streams) or "none"
            raise ScreenRejected(
                "wrong_streams",
                f"a screen recording holds exactly one H.264 video stream; this one has: {kinds}",
            )
        stream = streams[0]
        codec = stream.codec_context.name
        if codec != "h264":
            raise ScreenRejected("not_h264", f"the video is {codec}, not H.264")
        stream.codec_context.thread_count = 1
        return _decode_all(container, stream)


def _decode_all(container: object, stream: object) -> ScreenMedia:
    import av

    time_base = stream.time_base  # type: ignore[attr-defined]
    if time_base is None or time_base <= 0:
        raise ScreenRejected("bad_timestamps", "the video stream has no usable time base")
    frames = 0
    end = 0.0
    width = height = 0
    try:
        for packet in container.demux(stream):  # type: ignore[attr-defined]
            if packet.size == 0 and packet.pts is None:
                decoded = packet.decode()  # the flush packet at the end: frames still in the decoder
            else:
                if packet.is_corrupt:
                    raise ScreenRejected("undecodable", f"packet at pts {packet.pts} is flagged corrupt")
                if packet.pts is None or packet.dts is None:
                    raise ScreenRejected("bad_timestamps", "a video packet has no timestamp")
                start = float(packet.pts * time_base)
                length = float(packet.duration * time_base) if packet.duration else 0.0
                if not math.isfinite(start) or start < 0 or not math.isfinite(length) or length < 0:
                    raise ScreenRejected("bad_timestamps", f"a video packet has timestamp {start} s")
                end = max(end, start + length)
                decoded = packet.decode()
            for frame in decoded:
                frames += 1
                width, height = frame.width, frame.height
    except av.FFmpegError as exc:
        raise ScreenRejected("undecodable", f"the video does not decode: {exc}") from exc
    if frames == 0:
        raise ScreenRejected("undecodable", "the video holds no decodable frame")
    return ScreenMedia(duration=end, frames=frames, width=width, height=height)


def check_time_span(
    started_at: float,
    duration: float,
    span_start: float,
    span_end: float,
    *,
    slack: float,
    end_tolerance: float,
) -> None:
    """The video must lie in the interaction: its pts 0 in [start - slack, end + slack] (the
    recorder's clock offset is estimated, and it starts on a command that travels), and its last
    frame no later than ``span_end + slack + end_tolerance``. Raise :class:`ScreenRejected` otherwise."""
    if not math.isfinite(started_at):
        raise ScreenRejected(
            "bad_started_at", f"X-Tandem-Started-At must be a finite number, not {started_at}"
        )
    low, high = span_start - slack, span_end + slack
    if not low <= started_at <= high:
        raise ScreenRejected(
            "started_at_out_of_span",
            f"the video starts at {started_at:.3f}, outside the interaction's span "
            f"[{span_start:.3f}, {span_end:.3f}] ± {slack:g} s",
        )
    if not math.isfinite(duration) or duration < 0:
        raise ScreenRejected("bad_timestamps", f"the video's duration {duration} is not a finite length")
    if started_at + duration > high + end_tolerance:
        raise ScreenRejected(
            "video_past_span",
            f"the video ends at {started_at + duration:.3f}, {started_at + duration - span_end:.1f} s after "
            f"the interaction's end {span_end:.3f} (allowed: {slack + end_tolerance:g} s)",
        )
