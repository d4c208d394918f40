"""Endpoint audio of the screen segments as one derived file on the server clock.

The recorder may put an audio track in each segment (endpoint audio: left = the agent's
microphone, right = what the agent hears; AAC). This joins them into one M4A (AAC-LC, 48 kHz,
stereo) that starts at a given server time: each decoded audio frame is placed at the segment's
``started_at`` + its pts, the time between segments (recorder down, pause) is silence, and so is
anything inside a pause span the server knows of (defence in depth: the upload already refuses
audio in a pause). Segments are only read.

Why a separate file and not a second audio track in the muxed MP4: browsers play the first
audio track of an MP4 and offer no way to switch (Chromium's ``audioTracks`` is behind a flag),
so a second track would never be heard; a separate M4A plays in an ``<audio>`` element beside the
SIP voice in every browser, and is started at the same server time as the mux.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

RATE = 48000
CHANNELS = 2
BIT_RATE = 64000
_CHUNK = 4800  # samples per encoder call (0.1 s)

Span = tuple[float, float | None]  # pause [start, end) in server time; None = open


@dataclass(frozen=True, slots=True)
class EndpointAudioTrack:
    path: Path
    started_at: float  # server time of the file's first sample
    seconds: float
    segments: int  # segments that contributed audio


def segment_audio(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """The decoded audio of one segment: ``(seconds from the segment's pts 0, float32[n, ch])``
    for each frame, resampled to 48 kHz stereo. Nothing when the segment has no audio."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        time_base = stream.time_base
        if time_base is None:
            return
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            at = float(frame.pts * time_base)
            parts = [f.to_ndarray() for f in resampler.resample(frame)]
            if parts:
                yield at, np.ascontiguousarray(np.concatenate(parts, axis=1).T, dtype=np.float32)


def build_endpoint_audio(
    segments: Sequence[tuple[Path, float]],
    out: Path,
    *,
    started_at: float,
    ended_at: float,
    pauses: Sequence[Span] = (),
) -> EndpointAudioTrack | None:
    """Write ``out`` (M4A) covering server time ``[started_at, ended_at)`` from the audio of
    ``segments`` (``(path, started_at)``), streaming (one decoded frame in memory at a time).
    None (nothing written) when no segment has audio."""
    total = max(0, round((ended_at - started_at) * RATE))
    spans = [
        (round((a - started_at) * RATE), total if b is None else round((b - started_at) * RATE))
        for a, b in pauses
    ]
    box: list[_Writer] = []
    try:
        used = _join(segments, spans, total, started_at, out, box)
    except BaseException:
        for opened in box:
            opened.abort()
        raise
    if not box:
        return None
    writer = box[0]
    writer.silence(total - writer.pos)
    writer.close()
    return EndpointAudioTrack(out, started_at, total / RATE, used)


def _join(
    segments: Sequence[tuple[Path, float]],
    spans: list[tuple[int, int]],
    total: int,
    started_at: float,
    out: Path,
    box: list[_Writer],
) -> int:
    """Feed every segment's audio in server-time order; the writer (opened at the first audio
    frame) is left in ``box``. Returns how many segments had audio."""
    writer: _Writer | None = None
    used = 0
    for path, seg_start in sorted(segments, key=lambda s: s[1]):
        had = False
        for at, samples in segment_audio(path):
            had = True
            index = round((seg_start + at - started_at) * RATE)
            if writer is None:
                writer = _Writer(out, spans)
                box.append(writer)
            if index < writer.pos:  # overlaps what is written (two runs at once): keep the first
                samples, index = samples[writer.pos - index :], writer.pos
            samples = samples[: max(0, total - index)]
            if len(samples):
                writer.silence(index - writer.pos)
                writer.write(samples)
        used += had
    return used


class _Writer:
    """AAC encoder of the track, fed in order; ``pos`` is the next sample's index."""

    def __init__(self, out: Path, pauses: list[tuple[int, int]]) -> None:
        import av

        self._av = av
        self._out = out
        self._pauses = pauses
        self._container: Any = av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream("aac", rate=RATE, layout="stereo")
        self._stream.bit_rate = BIT_RATE
        self.pos = 0

    def silence(self, count: int) -> None:
        while count > 0:
            n = min(count, _CHUNK)
            self.write(np.zeros((n, CHANNELS), np.float32))
            count -= n

    def write(self, samples: np.ndarray) -> None:
        samples = samples.copy()
        for a, b in self._pauses:
            lo, hi = max(a, self.pos), min(b, self.pos + len(samples))
            if lo < hi:
                samples[lo - self.pos : hi - self.pos] = 0.0
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T), format="fltp", layout="stereo"
        )
        frame.sample_rate = RATE
        frame.pts = self.pos
        frame.time_base = Fraction(1, RATE)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.pos += len(samples)

    def abort(self) -> None:
        """A segment failed to decode: no half-written derived file is left."""
        try:
            self._container.close()
        finally:
            self._out.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
