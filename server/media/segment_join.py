"""Pure planning of the segment mux: in which order an interaction's screen segments are joined,
which of their frames go into the muxed file and where the screen is missing.

Everything is on the server clock (Unix seconds). A frame's time is its segment's ``started_at``
(server time of pts 0) plus its pts; timestamps are kept, never shifted to close a gap.

Rules (docs/screen-segments.md, Muxing):

- Segments are joined in order of their first frame (then start, run, seq: a stable order).
- A frame inside a pause span is dropped, and so is every frame after it up to the next keyframe
  outside the pause: the frames between depend on dropped ones and would decode as garbage.
- Two segments overlapping in time (two recorder runs alive at once, or a clock step): the earlier
  segment is kept whole; frames of the later one at or before the last kept frame are dropped
  (counted), and it joins at its next keyframe after that.
- Except a touch: a segment whose first keyframe lies on the last kept frame, or at most
  ``TOUCH`` before it (pts are whole ms; a recorder made such boundaries when a frame was grabbed
  just before a segment's end), joins at that keyframe placed ``TOUCH`` after the last kept frame.
  Dropping it would lose the whole segment up to its next keyframe (a minute).
- Every segment is entered at a keyframe (a segment not starting with one loses its head).
- Where the screen is missing — between segments, or where frames were dropped — for more than
  two frame intervals, the time from one frame interval after the last kept frame to the next kept
  frame is a ``screen_missing`` span, minus any pause span (a pause is marked as a pause already).
  A still screen inside one segment (the recorder encodes no unchanged frames) is not missing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# A hole between kept frames must exceed this many frame intervals to count as missing screen.
GAP_FRAMES = 2.0
# A later segment's first keyframe this close to (or on) the last kept frame is moved just after it.
TOUCH = 0.001
MISSING_LABEL = "screen_missing"
RESUMED_LABEL = "screen_resumed"

Span = tuple[float, float]


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """What the planner needs of a stored segment (a ``screen_segments`` row)."""

    key: str  # storage key
    run: str
    seq: int
    sha256: str
    started_at: float  # server time of pts 0
    first_frame_at: float
    last_frame_at: float


def order_segments(segments: Iterable[SegmentRef]) -> list[SegmentRef]:
    """Server-time order: by first frame, then start, run and seq (deterministic on ties)."""
    return sorted(segments, key=lambda s: (s.first_frame_at, s.started_at, s.run, s.seq))


def segment_set_digest(segments: Iterable[SegmentRef]) -> str:
    """Identifies the set of segments a mux was made from, whatever order they are listed in: a
    muxed file named after it is current exactly while no segment was added."""
    lines = sorted(f"{s.run}\x00{s.seq}\x00{s.sha256}" for s in segments)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def muxed_name(segments: Iterable[SegmentRef]) -> str:
    return f"muxed-{segment_set_digest(segments)[:16]}.mp4"


def pause_spans(spans: Iterable[tuple[float, float | None]]) -> list[Span]:
    """Pause spans as closed intervals sorted by start; a span still open lasts for ever."""
    return sorted((start, math.inf if end is None else end) for start, end in spans)


def in_spans(t: float, spans: Sequence[Span]) -> bool:
    """``t`` in some [start, end): a frame stamped at the pause's start is inside it, one stamped
    at its end is after it."""
    return any(start <= t < end for start, end in spans)


def subtract_spans(span: Span, holes: Sequence[Span], min_length: float = 0.0) -> list[Span]:
    """``span`` minus every interval of ``holes``; pieces not longer than ``min_length`` dropped."""
    pieces = [span]
    for h_start, h_end in holes:
        rest: list[Span] = []
        for start, end in pieces:
            if h_end <= start or h_start >= end:
                rest.append((start, end))
                continue
            if h_start > start:
                rest.append((start, h_start))
            if h_end < end:
                rest.append((h_end, end))
        pieces = rest
    return [(s, e) for s, e in pieces if e - s > min_length]


@dataclass
class JoinStats:
    kept: int = 0
    dropped_pause: int = 0  # inside a pause, or after one until the next keyframe
    dropped_overlap: int = 0  # at or before an earlier segment's last kept frame, then to a keyframe
    dropped_no_key: int = 0  # a segment's head before its first keyframe
    missing: list[Span] = field(default_factory=list)


class FrameFilter:
    """Decides, frame by frame in segment order, which frames are muxed; collects missing spans.

    Call :meth:`begin_segment` before each segment's frames, then :meth:`offer` for every frame in
    decoding order; it answers whether to keep it."""

    def __init__(self, pauses: Iterable[tuple[float, float | None]]) -> None:
        self._pauses = pause_spans(pauses)
        self.stats = JoinStats()
        self._interval = 0.0  # the current segment's frame interval
        self._last_kept: float | None = None
        self._last_interval = 0.0  # frame interval of the segment the last kept frame belongs to
        self._broken = False  # a segment boundary or a drop since the last kept frame
        self._awaiting_key = False
        self._drop_reason = ""

    def begin_segment(self, frame_interval: float) -> None:
        if not (math.isfinite(frame_interval) and frame_interval > 0):
            raise ValueError(f"frame interval must be a positive number of seconds, not {frame_interval!r}")
        self._interval = frame_interval
        self._broken = True
        self._awaiting_key = True
        self._drop_reason = "no_key"

    def offer(self, t: float, keyframe: bool) -> bool:
        return self.place(t, keyframe) is not None

    def place(self, t: float, keyframe: bool) -> float | None:
        """The time the frame stamped ``t`` is muxed at (``t``, or just after the last kept frame
        for a segment's first keyframe touching it), or None when it is dropped."""
        if in_spans(t, self._pauses):
            self._drop("pause")
            return None
        if self._last_kept is not None and t <= self._last_kept:
            touching = keyframe and self._awaiting_key and self._drop_reason == "no_key"
            if not (touching and t >= self._last_kept - TOUCH):
                self._drop("overlap")
                return None
            t = self._last_kept + TOUCH
            if in_spans(t, self._pauses):
                self._drop("pause")
                return None
        if self._awaiting_key and not keyframe:
            self._drop(self._drop_reason)
            return None
        if self._last_kept is not None and self._broken:
            self._note_hole(self._last_kept, t)
        self._awaiting_key = False
        self._broken = False
        self._last_kept = t
        self._last_interval = self._interval
        self.stats.kept += 1
        return t

    def _drop(self, reason: str) -> None:
        self._drop_reason = reason  # the rest of the run up to a keyframe is counted alike
        self._awaiting_key = True
        self._broken = True
        if self._drop_reason == "pause":
            self.stats.dropped_pause += 1
        elif self._drop_reason == "overlap":
            self.stats.dropped_overlap += 1
        else:
            self.stats.dropped_no_key += 1
        return None

    def _note_hole(self, last: float, t: float) -> None:
        interval = self._last_interval
        if t - last <= GAP_FRAMES * interval:
            return
        self.stats.missing.extend(subtract_spans((last + interval, t), self._pauses, min_length=interval))


def missing_markers(missing: Iterable[Span]) -> list[tuple[float, str]]:
    """Chapter markers for missing spans: one where the screen goes missing, one where it is back."""
    markers: list[tuple[float, str]] = []
    for start, end in missing:
        markers.append((start, MISSING_LABEL))
        markers.append((end, RESUMED_LABEL))
    return markers
