"""What one screen *segment* must be before the server keeps it (docs/screen-segments.md).

A segment is a fragmented MP4 the recorder wrote for a few tens of seconds of an interaction's
screen: one H.264 video stream and, optionally, one audio stream (endpoint audio). Two checks:

* :func:`validate_segment_file` (PyAV, in a worker thread): the file's boxes cover it exactly and
  it is fragmented (``moof`` boxes — the layout that survives a crash); FFmpeg's MP4 demuxer
  finds the streams above; every packet demuxes uncorrupted with finite, non-negative timestamps
  and every frame decodes (one decoder thread: SIP and RTP share the two cores). It returns each
  video frame's and audio packet's pts, in seconds from the segment's pts 0.
* :func:`check_segment_times` (pure arithmetic): with ``started_at`` (the server time of pts 0,
  declared by the recorder), every frame's server time must lie in the interaction's span and
  none inside a pause span the server knows of. The check is on the frames' times, never on when
  the upload arrives: a segment sent late after a recorder or network outage is still evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import ScreenRejected
from server.media.screen_validation import check_boxes

_MP4_DEMUXER_NAMES = ("mov", "mp4")


@dataclass(frozen=True, slots=True)
class SegmentMedia:
    video_pts: list[float]  # seconds from pts 0, ascending (presentation order)
    audio_pts: list[float]  # start of each audio packet, ascending; empty without audio
    width: int
    height: int
    has_audio: bool

    @property
    def frames(self) -> int:
        return len(self.video_pts)


@dataclass(frozen=True, slots=True)
class Span:
    started_at: float
    ended_at: float | None  # None: still open (the pause lasts)

    def holds(self, at: float) -> bool:
        """A pause covers [start, end): a frame stamped at the resume instant is recorded again."""
        return self.started_at <= at and (self.ended_at is None or at < self.ended_at)

    def to_dict(self) -> dict[str, float | None]:
        return {"started_at": self.started_at, "ended_at": self.ended_at}


class FramesInPause(ScreenRejected):
    """Frames stamped inside pause spans: ``spans`` are those spans, so the recorder can cut them."""

    def __init__(self, message: str, spans: list[Span], frames: int) -> None:
        super().__init__("frames_in_pause", message)
        self.spans = spans
        self.frames = frames


@dataclass(frozen=True, slots=True)
class SegmentTimes:
    first_frame_at: float
    last_frame_at: float


@dataclass(frozen=True, slots=True)
class InteractionWindow:
    """When the interaction's screen may have been recorded, on the server clock."""

    started_at: float  # the call's start
    ended_at: float  # end of after-call work, or now while it lasts
    pauses: Sequence[Span] = field(default_factory=tuple)


def check_segment_times(
    started_at: float,
    media: SegmentMedia,
    window: InteractionWindow,
    *,
    start_slack: float,
    end_slack: float,
) -> SegmentTimes:
    """Every frame's server time (``started_at`` + pts) inside [window start − start_slack, window
    end + end_slack] (the recorder's clock offset is an estimate: the slack absorbs it), and no
    frame — video, or audio packet — inside a pause span. Raises ScreenRejected / FramesInPause."""
    if not math.isfinite(started_at):
        raise ScreenRejected("bad_started_at", f"started_at must be a finite number, not {started_at}")
    if not media.video_pts:
        raise ScreenRejected("undecodable", "the segment holds no video frame")
    first = started_at + media.video_pts[0]
    last = started_at + media.video_pts[-1]
    times = [started_at + pts for pts in media.audio_pts]
    low, high = window.started_at - start_slack, window.ended_at + end_slack
    earliest = min([first, *times[:1]])
    latest = max([last, *times[-1:]])
    if earliest < low or latest > high:
        raise ScreenRejected(
            "outside_interaction",
            f"the segment's frames run from {earliest:.3f} to {latest:.3f} (server time), outside the "
            f"interaction's span [{window.started_at:.3f}, {window.ended_at:.3f}] "
            f"(-{start_slack:g} s / +{end_slack:g} s allowed)",
        )
    hit: list[Span] = []
    count = 0
    for span in window.pauses:
        inside = sum(1 for pts in media.video_pts if span.holds(started_at + pts))
        inside += sum(1 for at in times if span.holds(at))
        if inside:
            hit.append(span)
            count += inside
    if hit:
        described = ", ".join(
            f"[{s.started_at:.3f}, {'open' if s.ended_at is None else f'{s.ended_at:.3f}'})" for s in hit
        )
        raise FramesInPause(
            f"{count} frame(s) of the segment are stamped inside pause span(s) {described}: nothing "
            "recorded during a pause is stored; cut them and upload the segment again",
            hit,
            count,
        )
    return SegmentTimes(first, last)


def validate_segment_file(path: Path) -> SegmentMedia:
    """Return what the file holds, or raise :class:`ScreenRejected`."""
    import av  # PyAV only loads once a segment arrives

    kinds = check_boxes(path)
    if "moof" not in kinds:
        raise ScreenRejected(
            "not_fragmented", "a segment must be a fragmented MP4 (moof boxes); this one has none"
        )
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise ScreenRejected("not_mp4", f"the segment cannot be opened as MP4: {exc}") from exc
    with container:
        fmt = container.format.name
        if not any(name in fmt.split(",") for name in _MP4_DEMUXER_NAMES):
            raise ScreenRejected("not_mp4", f"the segment is {fmt}, not MP4")
        streams = list(container.streams)
        video = [s for s in streams if s.type == "video"]
        audio = [s for s in streams if s.type == "audio"]
        if len(video) != 1 or len(audio) > 1 or len(video) + len(audio) != len(streams):
            kinds_found = ", ".join(f"{s.type} ({s.codec_context.name})" for s in streams) or "none"
            raise ScreenRejected(
                "wrong_streams",
                "a segment holds one H.264 video stream and at most one audio stream; "
                f"this one has: {kinds_found}",
            )
        if video[0].codec_context.name != "h264":
            raise ScreenRejected("not_h264", f"the video is {video[0].codec_context.name}, not H.264")
        for stream in streams:
            stream.codec_context.thread_count = 1
        return _decode_all(container, video[0], audio[0] if audio else None)


def _seconds(packet: Any, time_base: Any) -> float:
    if packet.is_corrupt:
        raise ScreenRejected("undecodable", f"packet at pts {packet.pts} is flagged corrupt")
    if packet.pts is None or packet.dts is None:
        raise ScreenRejected("bad_timestamps", "a packet has no timestamp")
    at = float(packet.pts * time_base)
    if not math.isfinite(at) or at < 0:
        raise ScreenRejected("bad_timestamps", f"a packet has timestamp {at} s")
    return at


def _decode_all(container: Any, video: Any, audio: Any | None) -> SegmentMedia:
    import av

    for stream in (video, audio):
        if stream is not None and (stream.time_base is None or stream.time_base <= 0):
            raise ScreenRejected("bad_timestamps", f"the {stream.type} stream has no usable time base")
    video_pts: list[float] = []
    audio_pts: list[float] = []
    width = height = 0
    streams = [video] if audio is None else [video, audio]
    try:
        for packet in container.demux(streams):
            is_video = packet.stream.index == video.index
            if packet.size == 0 and packet.pts is None:
                decoded = packet.decode()  # the flush packet at the end: frames still in the decoder
            else:
                at = _seconds(packet, packet.stream.time_base)
                if not is_video:
                    audio_pts.append(at)
                decoded = packet.decode()
            if is_video:
                for frame in decoded:
                    if frame.pts is None:
                        raise ScreenRejected("bad_timestamps", "a decoded video frame has no timestamp")
                    video_pts.append(float(frame.pts * video.time_base))
                    width, height = frame.width, frame.height
    except av.FFmpegError as exc:
        raise ScreenRejected("undecodable", f"the segment does not decode: {exc}") from exc
    if not video_pts:
        raise ScreenRejected("undecodable", "the segment holds no decodable video frame")
    if min(video_pts) < 0:
        raise ScreenRejected("bad_timestamps", "a video frame has a negative timestamp")
    video_pts.sort()
    audio_pts.sort()
    return SegmentMedia(video_pts, audio_pts, width, height, has_audio=audio is not None)
