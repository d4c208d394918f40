"""Combine the agent's screen recording and the call's voice into one playable MP4.

The screen's H.264 is stream-copied (never re-encoded: it is the costly part and copying keeps it
bit-exact); the voice is encoded to AAC. Both are placed on the server clock: the output's t=0 is
the earlier start, the later stream is shifted by the difference — the voice by leading silence
(every player honours that), the screen by a timestamp offset (the MP4 muxer writes an edit list).
Packets are interleaved by time as they are read, so memory stays bounded whatever the length.

An interaction recorded as screen *segments* is muxed by :func:`mux_segments_and_voice`: the
segments are joined on the server clock (server/media/segment_join.py plans it,
server/media/segment_stream.py reads them), gaps stay gaps and are marked ``screen_missing``.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from server.errors import MuxError
from server.media.segment_join import JoinStats, missing_markers
from server.media.segment_stream import SegmentCounters, SegmentInput, SegmentVideo
from server.media.timeline import (
    DEFAULT_MAX_START_GAP,
    Alignment,
    Chapter,
    align,
    chapters_from_markers,
)
from server.media.voice_aac import MIN_AAC_RATE, CopiedVoice, EncodedVoice, aac_output_rate, open_voice

__all__ = ["MIN_AAC_RATE", "MuxResult", "aac_output_rate", "mux_screen_and_voice", "mux_segments_and_voice"]

log = logging.getLogger(__name__)

_CHAPTER_TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class MuxResult:
    duration: float  # seconds, as the written container declares it
    video_frames: int  # video packets copied (one frame each: H.264 in MP4)
    video_dropped: int  # corrupt (truncated) screen packets left out
    audio_duration: float  # seconds of voice, excluding the leading silence
    video_offset: float  # seconds from the output's t=0 to the screen's first frame time
    audio_offset: float  # seconds from the output's t=0 to the voice's first sample
    origin: float  # server time of the output's t=0
    chapters: list[Chapter] = field(default_factory=list)
    chapters_written: bool = False  # True when the chapters were read back from the output
    # Segment mux only: where the screen is missing (server-time spans), frames left out, segments.
    screen_missing: list[tuple[float, float]] = field(default_factory=list)
    join: JoinStats | None = None
    segments: SegmentCounters | None = None
    audio_copied: bool = False  # the voice's AAC was encoded before (voice_aac) and copied


def mux_screen_and_voice(
    screen: Path,
    screen_started_at: float,
    voice: Path,
    voice_started_at: float,
    out: Path,
    *,
    markers: list[tuple[float, str]] | None = None,
    max_start_gap: float = DEFAULT_MAX_START_GAP,
) -> MuxResult:
    """Write ``out`` (atomically, via a temporary file next to it) and describe what was written."""
    alignment = align(screen_started_at, voice_started_at, max_start_gap)

    def write(tmp: Path) -> MuxResult:
        with _open_input(screen, "screen") as vin:
            if not vin.streams.video:
                raise MuxError(f"screen file {screen.name} has no video stream")
            v_in = vin.streams.video[0]

            def video(out_stream: Any, progress: _Progress) -> Iterator[av.Packet[Any]]:
                return _video_packets(vin, v_in, out_stream, alignment.video_offset, progress)

            return _write(
                v_in, video, f"screen file {screen.name}", voice, tmp, alignment, lambda: markers or []
            )

    return _write_atomically(out, write)


def mux_segments_and_voice(
    segments: list[SegmentInput],
    pauses: list[tuple[float, float | None]],
    voice: Path,
    voice_started_at: float,
    out: Path,
    *,
    markers: list[tuple[float, str]] | None = None,
    max_start_gap: float = DEFAULT_MAX_START_GAP,
    voice_aac: Path | None = None,
) -> MuxResult:
    """Like :func:`mux_screen_and_voice`, for a screen stored as segments: every segment in
    server-time order, each frame at its segment's ``started_at`` + pts; frames in ``pauses``
    dropped (to the next keyframe after the pause); where the screen is missing between them,
    ``screen_missing``/``screen_resumed`` chapters (and ``MuxResult.screen_missing``).

    ``voice_aac``: the voice already encoded (server.media.voice_aac.encode_voice_file); copied
    instead of encoding ``voice`` again when the voice starts the output (no leading silence)."""
    video = SegmentVideo(segments, pauses)
    alignment = align(video.started_at, voice_started_at, max_start_gap)

    def write(tmp: Path) -> MuxResult:
        with video.open_template() as first:
            v_in = first.streams.video[0]

            def packets(out_stream: Any, progress: _Progress) -> Iterator[av.Packet[Any]]:
                return _counted(video.packets(v_in, out_stream, alignment.origin), progress)

            def all_markers() -> list[tuple[float, str]]:
                return [*(markers or []), *missing_markers(video.filter.stats.missing)]

            result = _write(v_in, packets, "screen segments", voice, tmp, alignment, all_markers, voice_aac)
        return dataclasses.replace(
            result,
            video_dropped=video.counters.corrupt,
            screen_missing=list(video.filter.stats.missing),
            join=video.filter.stats,
            segments=video.counters,
        )

    result = _write_atomically(out, write)
    stats = video.filter.stats
    log.info(
        "%s: %d segments (%d re-encoded, %d unreadable), %d frames dropped in pauses, %d overlapping, "
        "%d missing spans",
        out.name,
        video.counters.segments,
        video.counters.reencoded,
        video.counters.unreadable,
        stats.dropped_pause,
        stats.dropped_overlap,
        len(stats.missing),
    )
    return result


def _write_atomically(out: Path, write: Callable[[Path], MuxResult]) -> MuxResult:
    """Write ``out`` via a temporary file next to it; a failure leaves any earlier ``out`` as is."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")
    try:
        result = write(tmp)
        os.replace(tmp, out)
    except av.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise MuxError(f"mux failed: {exc}") from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MuxError(f"cannot write {out}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info(
        "muxed %s: %.2f s, %d video frames, voice %.2f s at +%.3f s, screen at +%.3f s",
        out.name,
        result.duration,
        result.video_frames,
        result.audio_duration,
        result.audio_offset,
        result.video_offset,
    )
    return result


def _open_input(path: Path, what: str) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise MuxError(f"cannot open {what} file {path.name}: {exc}") from exc


@dataclass
class _Progress:
    """Counters the packet generators update while the merge drains them."""

    video_frames: int = 0
    video_dropped: int = 0
    video_end: float = 0.0


_VideoPackets = Callable[[Any, "_Progress"], "Iterator[av.Packet[Any]]"]


def _write(
    v_in: Any,
    video: _VideoPackets,
    screen_name: str,
    voice: Path,
    tmp: Path,
    alignment: Alignment,
    markers: Callable[[], list[tuple[float, str]]],
    voice_aac: Path | None = None,
) -> MuxResult:
    """``v_in``: the video stream the output track is made from; ``video``: the packets for it;
    ``markers``: asked once every packet is written (the segment mux finds its markers then)."""
    progress = _Progress()
    copy = voice_aac is not None and alignment.audio_offset == 0
    container, stream = open_voice(voice_aac if copy and voice_aac is not None else voice)
    with container:
        source: CopiedVoice | EncodedVoice
        if copy:
            source = CopiedVoice(container, stream)
        else:
            source = EncodedVoice(container, stream, voice.name, alignment.audio_offset)
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as output:
            v_out = output.add_stream_from_template(v_in)
            a_out = source.add_stream(output)
            packets = heapq.merge(video(v_out, progress), source.packets(a_out), key=_dts_seconds)
            for packet in packets:
                output.mux(packet)
            if progress.video_frames == 0:
                raise MuxError(f"{screen_name} has no frames")
            audio_end = alignment.audio_offset + source.seconds
            chapters = chapters_from_markers(markers(), alignment.origin, max(progress.video_end, audio_end))
            if chapters:
                # The MP4 muxer writes chapters with the movie header at the end, so setting them
                # after the packets is early enough.
                output.set_chapters([_chapter_dict(i, ch) for i, ch in enumerate(chapters, start=1)])
    duration, chapters_read = _read_back(tmp)
    return MuxResult(
        duration,
        progress.video_frames,
        progress.video_dropped,
        source.seconds,
        alignment.video_offset,
        alignment.audio_offset,
        alignment.origin,
        chapters,
        bool(chapters) and chapters_read == len(chapters),
        audio_copied=copy,
    )


def _dts_seconds(packet: av.Packet[Any]) -> float:
    return float(packet.dts * packet.time_base) if packet.dts is not None else 0.0


def _video_packets(
    container: av.container.InputContainer, stream: Any, out_stream: Any, offset: float, progress: _Progress
) -> Iterator[av.Packet[Any]]:
    shift = round(Fraction(offset) / stream.time_base) if offset else 0
    first_pts: int | None = None
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's end-of-stream marker carries no data
            continue
        if packet.is_corrupt:
            # A recorder that crashed mid-write leaves a last packet shorter than its index says;
            # copying it would show a smeared frame. Only the tail can be cut, so this logs once.
            progress.video_dropped += 1
            log.warning("dropping corrupt screen packet at pts %s (%d bytes)", packet.pts, packet.size)
            continue
        if packet.pts is None:
            packet.pts = packet.dts
        if first_pts is None:
            first_pts = packet.pts
            if first_pts:
                log.warning("screen starts at pts %d instead of 0; keeping its timestamps", first_pts)
        packet.pts += shift
        packet.dts += shift
        progress.video_frames += 1
        end = packet.pts + (packet.duration or 0)
        progress.video_end = max(progress.video_end, float(end * stream.time_base))
        packet.stream = out_stream
        yield packet


def _counted(packets: Iterator[av.Packet[Any]], progress: _Progress) -> Iterator[av.Packet[Any]]:
    """Segment packets (already on the output timeline) counted like the single file's."""
    for packet in packets:
        progress.video_frames += 1
        end = (packet.pts or 0) + (packet.duration or 0)
        progress.video_end = max(progress.video_end, float(end * packet.time_base))
        yield packet


def _chapter_dict(index: int, chapter: Chapter) -> Any:
    return {
        "id": index,
        "start": int(chapter.start / _CHAPTER_TIME_BASE),
        "end": int(chapter.end / _CHAPTER_TIME_BASE),
        "time_base": _CHAPTER_TIME_BASE,
        "metadata": {"title": chapter.label},
    }


def _read_back(path: Path) -> tuple[float, int]:
    """Duration and number of chapters, as a player will see them in the written file."""
    with av.open(str(path), "r") as check:
        if len(check.streams.video) != 1 or len(check.streams.audio) != 1:
            raise MuxError(
                f"output has {len(check.streams.video)} video and "
                f"{len(check.streams.audio)} audio streams, expected one of each"
            )
        duration = check.duration / av.time_base if check.duration is not None else 0.0
        return duration, len(check.chapters())
