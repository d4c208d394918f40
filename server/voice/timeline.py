"""The voice timeline: where each received RTP payload goes in the call's WAV.

Pure logic (no sockets, no files, no clock of its own) so every case is tested directly. Sample
0 is ``answered_at`` on the server clock. The first packet is placed at its arrival time; later
packets by their RTP timestamp relative to that anchor (32-bit wrap-around unwrapped), so network
jitter does not move audio around. Gaps (loss, silence suppression) become silence. A short
reorder window holds packets before their samples are emitted, so a packet that arrives a little
late still lands in place; once emitted, a position is final and the writer only ever appends.

The anchor is the stream's earliest arrival, not its first: until the stream's first audio is
emitted (a reorder window after its first packet), a packet that arrives earlier than its place
moves the whole stream earlier. A sender that starts late and then catches up with a burst (a
thread scheduled late, a path set up on the first packet) sends its first packet late but the
following ones on time; anchored on the first, the whole call would sit that much late and its
end would be cut at the BYE. ``settled`` says when the anchor is final.

Re-anchoring on arrival time happens when the SSRC changes, when a timestamp disagrees with
arrival time by more than ``max_jump`` (a sender restart or a broken clock), and when a packet
would land more than ``resync_late`` behind what is already written (the sender stalled and then
carried on with continuous timestamps; without a resync every later packet would be "late").

Pause spans are sample ranges written as zeros whatever arrives; ``pause`` returns the part of
a span that is already written so the caller can overwrite it.

``timestamp_scale`` is the number of samples per RTP timestamp unit: 1 when the file runs at the
RTP clock (G.711 at 8 kHz), 2 for G.722 (RFC 3551: an 8000 Hz RTP clock for 16 kHz audio, so a
packet of 160 timestamp units carries 320 samples) or for G.711 upsampled into a 16 kHz file.

This runs once per received packet, so the common in-order case avoids needless work (no sort
when the packet goes last, no span filtering while nothing is paused).
"""

from __future__ import annotations

import bisect
import collections
import math
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from server.errors import TimelineError

Int16Array = npt.NDArray[np.int16]

_RECENT_KEYS = 256  # emitted packets remembered to tell a duplicate from a late packet


class Chunk(NamedTuple):  # NamedTuples, not frozen dataclasses: made for every packet, cheaper
    """Samples for the file starting at sample ``position`` (always the writer's current end)."""

    position: int
    samples: Int16Array


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    LATE = "late"  # its samples are already written
    DUPLICATE = "duplicate"
    AFTER_END = "after_end"  # the timeline is finished
    EMPTY = "empty"  # no samples


_ACCEPTED = Verdict.ACCEPTED  # bound once: push returns it for every packet


class PushResult(NamedTuple):
    verdict: Verdict
    chunks: list[Chunk]


@dataclass(frozen=True, slots=True)
class FinishResult:
    chunks: list[Chunk]
    length: int  # the file's final length in samples; truncate anything written beyond it


@dataclass(slots=True)
class TimelineStats:
    accepted: int = 0
    late: int = 0
    duplicates: int = 0
    ssrc_changes: int = 0
    reanchors: int = 0  # timestamp jumps and stalls (SSRC changes are counted apart)
    overlapped: int = 0  # accepted packets entirely covered by audio emitted before them
    forced: int = 0  # emissions forced by a full reorder buffer
    discarded_at_end: int = 0  # samples that fell after the end of the call


@dataclass(slots=True)
class _Pending:
    position: int
    end: int  # position + len(samples), kept to spare the hot path a property call
    key: tuple[int, int]  # (anchor epoch, unwrapped timestamp)
    samples: Int16Array


@dataclass(slots=True)
class _Span:
    start: int
    end: int | None  # None while the pause lasts


class VoiceTimeline:
    def __init__(
        self,
        answered_at: float,
        sample_rate: int = 8000,
        reorder_window: float = 0.06,
        idle_hold: float = 0.25,
        max_jump: float = 5.0,
        resync_late: float = 1.0,
        max_pending: int = 512,
        max_chunk_seconds: float = 10.0,
        timestamp_scale: Fraction | int = 1,
    ) -> None:
        scale = Fraction(timestamp_scale)
        if scale <= 0:
            raise TimelineError(f"timestamp scale must be positive, got {timestamp_scale}")
        self.answered_at = answered_at
        self.sample_rate = sample_rate
        self.timestamp_scale = scale
        self._ts_num, self._ts_den = scale.numerator, scale.denominator
        self.stats = TimelineStats()
        self._window = round(reorder_window * sample_rate)
        self._idle_hold = round(idle_hold * sample_rate)
        self._max_jump = round(max_jump * sample_rate)
        self._resync_late = round(resync_late * sample_rate)
        self._max_pending = max_pending
        self._silence = np.zeros(max(1, round(max_chunk_seconds * sample_rate)), dtype=np.int16)
        self._silence.setflags(write=False)
        self._written = 0
        self._pending: list[_Pending] = []
        self._pending_keys: set[tuple[int, int]] = set()
        # Keys of the last _RECENT_KEYS emitted packets: a set to look up, a ring to forget the oldest.
        self._recent_keys: set[tuple[int, int]] = set()
        self._recent_order: collections.deque[tuple[int, int]] = collections.deque()
        self._spans: list[_Span] = []
        self._finished = False
        self.anchors = 0  # first anchor, SSRC changes and re-anchors: a cheap "did it move" check
        # Anchor state: the current stream's epoch, SSRC, where it started, and its RTP clock.
        self._epoch = 0
        self._ssrc: int | None = None
        self._anchor_pos = 0
        self._anchor_delta = 0
        self._last_ts = 0
        self._last_ext = 0
        self._ref_delta = 0  # arrival minus placement of the latest packet, in samples
        self._horizon = 0
        self._settled = True  # the current stream's anchor is final (its audio was emitted)
        self._anchor_floor = 0  # no earlier than this: the previous stream's audio

    @property
    def written(self) -> int:
        """Samples emitted so far: everything before this position is final."""
        return self._written

    @property
    def settled(self) -> bool:
        """The current stream's anchor is final: some of its audio is written. Until then each
        packet should come with its own arrival time (it may move the stream earlier)."""
        return self._settled

    @property
    def paused(self) -> bool:
        return bool(self._spans) and self._spans[-1].end is None

    @property
    def finished(self) -> bool:
        return self._finished

    def position_of(self, at: float) -> int:
        """The sample position of server time ``at`` (may be negative before the answer)."""
        return round((at - self.answered_at) * self.sample_rate)

    def push(self, ssrc: int, timestamp: int, samples: Int16Array, arrival: float) -> PushResult:
        """Place one packet's decoded samples; return the chunks that became final."""
        if self._finished:
            return PushResult(Verdict.AFTER_END, [])
        count = len(samples)
        if count == 0:
            return PushResult(Verdict.EMPTY, [])
        arrival_pos = round((arrival - self.answered_at) * self.sample_rate)
        if ssrc != self._ssrc:
            if self._ssrc is not None:
                self.stats.ssrc_changes += 1
            self._anchor(ssrc, timestamp, arrival_pos)
        # _unwrap, inlined: this runs for every packet
        diff = ((timestamp - self._last_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        ext = self._last_ext + diff
        if diff > 0:
            self._last_ts = timestamp
            self._last_ext = ext
        position = self._anchor_pos + ext * self._ts_num // self._ts_den
        delta = arrival_pos - position
        written = self._written
        if abs(delta - self._anchor_delta) > self._max_jump or (
            position + count <= written and delta - self._ref_delta > self._resync_late
        ):  # a timestamp jump, or a stalled sender
            self.stats.reanchors += 1
            self._anchor(ssrc, timestamp, arrival_pos)
            ext = self._unwrap(timestamp)
            position = self._anchor_pos + ext * self._ts_num // self._ts_den
            delta = arrival_pos - position
        if not self._settled and delta < self._anchor_delta:  # settled first: the usual case
            # Earlier than the anchor implies: the stream's first packet came late (module docstring).
            shift = self._move_anchor_earlier(self._anchor_delta - delta, position)
            position -= shift
            delta += shift
        key = (self._epoch, ext)
        pending_keys = self._pending_keys
        if key in pending_keys or key in self._recent_keys:
            self.stats.duplicates += 1
            return PushResult(Verdict.DUPLICATE, [])
        end = position + count
        if end <= written:
            self.stats.late += 1
            return PushResult(Verdict.LATE, [])
        self.stats.accepted += 1
        self._ref_delta = delta
        entry = _Pending(position, end, key, samples)
        pending = self._pending
        if not pending or pending[-1].position <= position:
            pending.append(entry)  # in order: the usual case
        else:
            bisect.insort(pending, entry, key=_position)
        pending_keys.add(key)
        if end > self._horizon:
            self._horizon = end
        target = self._horizon - self._window
        chunks = self._emit(target) if target > written else []
        while len(pending) > self._max_pending:
            self.stats.forced += 1
            chunks += self._emit(pending[0].end)
        return PushResult(_ACCEPTED, chunks)

    def flush(self, now: float) -> list[Chunk]:
        """Emit what is final by server time ``now``: keeps the file growing through silence.

        Holds back ``idle_hold`` behind where the current stream's next packet is expected, so
        ordinary jitter never turns a packet late.
        """
        if self._finished:
            return []
        return self._emit(self.position_of(now) - self._ref_delta - self._idle_hold)

    def pause(self, at: float) -> list[tuple[int, int]]:
        """Silence from server time ``at``; return already written ranges to overwrite."""
        if self._finished:
            raise TimelineError("cannot pause a finished timeline")
        if self.paused:
            return []
        start = max(0, self.position_of(at))
        self._spans.append(_Span(start, None))
        return [(start, self._written)] if start < self._written else []

    def resume(self, at: float) -> None:
        """Audio again from server time ``at`` (never before the pause began)."""
        if not self.paused:
            return
        span = self._spans[-1]
        span.end = max(span.start, self.position_of(at))

    def finish(self, ended_at: float) -> FinishResult:
        """Emit everything up to the call's end, padded with silence; drop audio beyond it."""
        if self._finished:
            raise TimelineError("the timeline is already finished")
        length = max(0, self.position_of(ended_at))
        chunks = self._emit(length)
        for entry in self._pending:
            self.stats.discarded_at_end += entry.end - max(entry.position, length)
        self._pending.clear()
        self._pending_keys.clear()
        self._finished = True
        return FinishResult(chunks, length)

    def _anchor(self, ssrc: int, timestamp: int, arrival_pos: int) -> None:
        self.anchors += 1
        self._epoch += 1
        self._ssrc = ssrc
        # Never before what is written (final) nor over the old stream's buffered audio: a new
        # stream that starts while the old one's last packet is still in the window follows it.
        self._anchor_floor = max(self._written, self._horizon)
        self._anchor_pos = max(arrival_pos, self._anchor_floor)
        self._anchor_delta = arrival_pos - self._anchor_pos
        self._ref_delta = self._anchor_delta
        self._last_ts = timestamp
        self._last_ext = 0
        self._settled = False

    def _move_anchor_earlier(self, wanted: int, position: int) -> int:
        """Move the unsettled current stream up to ``wanted`` samples earlier, with its pending
        packets, never onto what is written or onto the previous stream; return the shift."""
        epoch = self._epoch
        mine = [entry for entry in self._pending if entry.key[0] == epoch]
        earliest = min([position, *(entry.position for entry in mine)])
        shift = min(wanted, earliest - max(self._written, self._anchor_floor))
        if shift <= 0:
            return 0
        # The stream's transit (``_anchor_delta``) stays: it is its packets that move.
        self._anchor_pos -= shift
        for entry in mine:
            entry.position -= shift
            entry.end -= shift
        self._horizon = max([self._written, *(entry.end for entry in self._pending)])
        return shift

    def _unwrap(self, timestamp: int) -> int:
        """RTP timestamp → samples since the anchor, across 32-bit wrap-around."""
        diff = ((timestamp - self._last_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        ext = self._last_ext + diff
        if diff > 0:
            self._last_ts = timestamp
            self._last_ext = ext
        return ext

    def _emit(self, target: int) -> list[Chunk]:
        out: list[Chunk] = []
        pending = self._pending
        while self._written < target:
            head = pending[0] if pending else None
            if head is None or head.position >= target:
                self._emit_silence(out, target)
                break
            written = self._written
            if head.position > written:
                self._emit_silence(out, head.position)
                continue
            if head.end <= written:
                self.stats.overlapped += 1
                self._retire()
                continue
            if head.position == written and head.end <= target:
                # The whole packet, exactly at the end of the file: the usual case, no slicing.
                if self._spans:
                    self._emit_audio(out, head.samples)
                else:
                    out.append(Chunk(written, head.samples))
                    self._written = head.end
                self._retire()
                continue
            stop = head.end if head.end < target else target
            self._emit_audio(out, head.samples[written - head.position : stop - head.position])
            if stop == head.end:
                self._retire()
        if self._spans:
            self._spans = [s for s in self._spans if s.end is None or s.end > self._written]
        return out

    def _retire(self) -> None:
        """The head of the pending list is written: remember its key to recognise duplicates."""
        key = self._pending.pop(0).key
        if key[0] == self._epoch:
            self._settled = True
        self._pending_keys.discard(key)
        order = self._recent_order
        if len(order) == _RECENT_KEYS:
            self._recent_keys.discard(order.popleft())
        order.append(key)
        self._recent_keys.add(key)

    def _emit_silence(self, out: list[Chunk], upto: int) -> None:
        while self._written < upto:
            count = min(upto - self._written, len(self._silence))
            out.append(Chunk(self._written, self._silence[:count]))
            self._written += count

    def _emit_audio(self, out: list[Chunk], samples: Int16Array) -> None:
        start, end = self._written, self._written + len(samples)
        masked = samples
        for span in self._spans:  # usually none
            lo = max(span.start, start)
            hi = min(math.inf if span.end is None else span.end, end)
            if lo < hi:
                if masked is samples:
                    masked = samples.copy()
                masked[lo - start : int(hi) - start] = 0
        out.append(Chunk(start, masked))
        self._written = end


def _position(entry: _Pending) -> int:
    return entry.position
