"""Combining a call's two voice channels: alignment into stereo frames and downmix to mono.

Pure numpy, no files, so every case is tested directly. The caller (left) and agent (right)
streams come from two independent ``VoiceTimeline``s, each a gapless run of samples whose length
is media time. ``ChannelAligner`` turns the two runs into interleaved frames: a frame can only
be emitted once both channels have reached it, so the leading channel is buffered, but never by
more than ``max_lag`` samples: when one channel falls further behind (its packets are lost, its
timeline stalled), it is filled with silence up to that bound and its audio for positions
already filled is dropped later. Both fills and drops are counted. Silence runs are kept as
lengths, not arrays, and frames leave in blocks of at most ``block`` frames through a sink, so
memory is bounded whatever the caller passes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from server.errors import AlignerError

Int16Array = npt.NDArray[np.int16]
FrameSink = Callable[[Int16Array], None]  # receives (n, channels) int16 frames


@dataclass(slots=True)
class AlignStats:
    """Per-channel counters, in samples."""

    filled: list[int] = field(default_factory=list)  # silence inserted because the channel lagged
    fill_events: list[int] = field(default_factory=list)  # how many times that happened
    gaps: list[int] = field(default_factory=list)  # silence for a chunk that started past the end
    dropped: list[int] = field(default_factory=list)  # samples for positions already covered
    discarded_at_end: list[int] = field(default_factory=list)  # samples beyond ``finish``'s end


# A pending segment is either samples or the length of a silence run.
_Segment = Int16Array | int


class _Channel:
    def __init__(self) -> None:
        self.segments: deque[_Segment] = deque()
        self.pending = 0  # samples buffered, i.e. end - emitted

    def append(self, segment: _Segment) -> None:
        size = segment if isinstance(segment, int) else len(segment)
        if size > 0:
            self.segments.append(segment)
            self.pending += size

    def take(self, count: int) -> Int16Array:
        """Remove and return the first ``count`` buffered samples (``count`` ≤ ``pending``)."""
        out = np.zeros(count, dtype=np.int16)
        filled = 0
        while filled < count:
            head = self.segments[0]
            size = head if isinstance(head, int) else len(head)
            use = min(size, count - filled)
            if not isinstance(head, int):
                out[filled : filled + use] = head[:use]
            if use == size:
                self.segments.popleft()
            else:
                self.segments[0] = head - use if isinstance(head, int) else head[use:]
            filled += use
        self.pending -= count
        return out

    def zero(self, start: int, end: int) -> None:
        """Silence buffered samples at offsets ``[start, end)`` from the first buffered sample."""
        rebuilt: deque[_Segment] = deque()
        offset = 0
        for segment in self.segments:
            size = segment if isinstance(segment, int) else len(segment)
            lo, hi = max(start, offset), min(end, offset + size)
            if isinstance(segment, int) or lo >= hi:
                rebuilt.append(segment)
            else:
                copy = segment.copy()  # the timeline's arrays may be read-only or shared
                copy[lo - offset : hi - offset] = 0
                rebuilt.append(copy)
            offset += size
        self.segments = rebuilt

    def cut(self, keep: int) -> int:
        """Keep only the first ``keep`` buffered samples; return how many were removed."""
        removed = self.pending - keep
        if removed <= 0:
            return 0
        kept = self.take(keep) if keep > 0 else np.zeros(0, dtype=np.int16)
        self.segments.clear()
        self.pending = 0
        self.append(kept)
        return removed


class ChannelAligner:
    """Interleaves independently arriving channels into frames with bounded buffering."""

    def __init__(self, sink: FrameSink, channels: int = 2, max_lag: int = 4000, block: int = 8000) -> None:
        if channels < 1 or max_lag < 0 or block < 1:
            raise AlignerError(f"invalid aligner: channels={channels} max_lag={max_lag} block={block}")
        self.max_lag = max_lag
        self.block = block
        self.emitted = 0  # frames handed to the sink; final
        self.stats = AlignStats(*([0] * channels for _ in range(5)))
        self._sink = sink
        self._channels = [_Channel() for _ in range(channels)]
        self._finished = False

    @property
    def channels(self) -> int:
        return len(self._channels)

    def end(self, channel: int) -> int:
        """Where the channel's next sample goes (emitted frames plus what it has buffered)."""
        return self.emitted + self._channel(channel).pending

    def push(self, channel: int, position: int, samples: Int16Array) -> None:
        """Add a channel's samples starting at sample ``position``; emit the frames now complete."""
        if self._finished:
            raise AlignerError("the aligner is finished")
        state = self._channel(channel)
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise AlignerError(f"expected 1-D int16 samples, got {samples.dtype} shape {samples.shape}")
        end = self.end(channel)
        if position < end:  # overlaps what the channel already has (e.g. after a lag fill)
            overlap = min(end - position, len(samples))
            self.stats.dropped[channel] += overlap
            samples = samples[overlap:]
            position += overlap
        if len(samples) == 0:
            return
        if position > end:
            self.stats.gaps[channel] += position - end
            state.append(position - end)
        state.append(samples)
        self._fill_laggards()
        self._emit(min(self.end(c) for c in range(self.channels)))

    def zero(self, channel: int, start: int, end: int) -> tuple[int, int]:
        """Silence ``[start, end)`` of a channel where it is still buffered.

        Returns the part of the range already emitted, which the caller must silence in its file.
        """
        state = self._channel(channel)
        start = max(0, start)
        end = min(end, self.emitted + state.pending)
        if start >= end:
            return (0, 0)
        if end > self.emitted:
            state.zero(max(start, self.emitted) - self.emitted, end - self.emitted)
        return (start, min(end, self.emitted)) if start < self.emitted else (0, 0)

    def finish(self, end: int) -> None:
        """Pad every channel with silence to ``end`` frames, drop what lies beyond, emit the rest.

        Frames already emitted beyond ``end`` stay emitted; the caller truncates its file.
        """
        if self._finished:
            raise AlignerError("the aligner is already finished")
        for index, state in enumerate(self._channels):
            self.stats.discarded_at_end[index] += state.cut(max(0, end - self.emitted))
            state.append(end - self.end(index))
        self._emit(end)
        self._finished = True

    def _fill_laggards(self) -> None:
        lead = max(self.end(c) for c in range(self.channels))
        for index, state in enumerate(self._channels):
            behind = lead - self.end(index) - self.max_lag
            if behind > 0:
                state.append(behind)
                self.stats.filled[index] += behind
                self.stats.fill_events[index] += 1

    def _emit(self, target: int) -> None:
        while self.emitted < target:
            count = min(self.block, target - self.emitted)
            frames = np.empty((count, self.channels), dtype=np.int16)
            for index, state in enumerate(self._channels):
                frames[:, index] = state.take(count)
            self._sink(frames)  # a failing sink leaves the owner broken; count only what it took
            self.emitted += count

    def _channel(self, channel: int) -> _Channel:
        if not 0 <= channel < len(self._channels):
            raise AlignerError(f"no channel {channel} (have {len(self._channels)})")
        return self._channels[channel]


def downmix(frames: Int16Array) -> Int16Array:
    """(n, channels) frames → mono by summing with saturation.

    In a call the two parties rarely speak at once, so the sum keeps each voice at its recorded
    level; averaging would make every voice 6 dB quieter. Overlapping loud speech clips instead.
    """
    if frames.ndim != 2:
        raise AlignerError(f"expected (frames, channels), got shape {frames.shape}")
    if frames.shape[1] == 1:
        return frames[:, 0].copy()
    mixed = frames.astype(np.int32).sum(axis=1)
    summed: Int16Array = np.clip(mixed, -32768, 32767).astype(np.int16)  # numpy's sum is typed Any
    return summed
