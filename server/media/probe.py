"""Inspect media files: WAV headers, MP4 streams and layout, decoded frame times, audio onset.

Used by the mux to validate its output, by the server to describe stored files and by tests to
measure synchronisation instead of assuming it. Decoding helpers stream frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from server.errors import ProbeError
from server.media.boxes import iter_top_level_boxes
from server.media.riff import WavInfo, parse_wav


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "video", "audio", "data", ...
    codec: str
    start_time: float | None  # seconds, on the container's timeline
    duration: float | None  # seconds
    frames: int  # as declared by the container (0 when unknown)
    rate: int | None = None  # audio sample rate
    channels: int | None = None
    width: int | None = None
    height: int | None = None


def wav_info(path: Path) -> WavInfo:
    """Describe a WAV file from its headers (tolerating the sizes a crashed writer leaves)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fp:
            return parse_wav(fp, size)
    except OSError as exc:
        raise ProbeError(f"cannot read {path}: {exc}") from exc


def top_level_boxes(path: Path) -> list[str]:
    """Four-character codes of the top-level boxes of an MP4, in file order."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fp:
            return [box.kind for box in iter_top_level_boxes(fp, size)]
    except OSError as exc:
        raise ProbeError(f"cannot read {path}: {exc}") from exc


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise ProbeError(f"cannot open {path}: {exc}") from exc


def _seconds(value: int | None, time_base: object) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)  # type: ignore[operator]


def mp4_streams(path: Path) -> list[StreamInfo]:
    """Kinds, codecs, start times and durations of every stream in a media file."""
    with _open(path) as container:
        result = []
        for stream in container.streams:
            ctx = stream.codec_context
            info = StreamInfo(
                index=stream.index,
                kind=stream.type,
                codec=ctx.name if ctx is not None else "",
                start_time=_seconds(stream.start_time, stream.time_base),
                duration=_seconds(stream.duration, stream.time_base),
                frames=stream.frames,
            )
            if isinstance(stream, AudioStream):
                info = replace(
                    info, rate=stream.codec_context.sample_rate, channels=stream.codec_context.channels
                )
            elif isinstance(stream, VideoStream):
                info = replace(info, width=stream.codec_context.width, height=stream.codec_context.height)
            result.append(info)
        return result


def container_duration(path: Path) -> float | None:
    """Duration the container declares, in seconds."""
    with _open(path) as container:
        return None if container.duration is None else container.duration / av.time_base


def video_frame_times(path: Path) -> list[float]:
    """Presentation time in seconds of every decoded frame of the first video stream."""
    with _open(path) as container:
        if not container.streams.video:
            raise ProbeError(f"{path} has no video stream")
        times: list[float] = []
        try:
            for frame in container.decode(container.streams.video[0]):
                if frame.time is not None:
                    times.append(frame.time)
        except av.FFmpegError as exc:
            raise ProbeError(f"cannot decode video of {path}: {exc}") from exc
        return times


def audio_onset(path: Path, threshold: float = 0.1) -> float | None:
    """Time in seconds of the first audio sample whose magnitude reaches ``threshold`` of full scale,
    or None if the audio never gets that loud. Measures where a known tone lands after muxing."""
    with _open(path) as container:
        if not container.streams.audio:
            raise ProbeError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono")
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                for mono in resampler.resample(frame):
                    start = mono.time if mono.time is not None else frame.time
                    samples = np.abs(mono.to_ndarray().reshape(-1))
                    loud = np.flatnonzero(samples >= threshold)
                    if loud.size:
                        return start + float(loud[0]) / mono.sample_rate
        except av.FFmpegError as exc:
            raise ProbeError(f"cannot decode audio of {path}: {exc}") from exc
        return None
