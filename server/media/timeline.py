"""Pure timing arithmetic of the mux: where each stream starts on the output's timeline, and which
markers become chapters.

Everything is in seconds; the output's t=0 is the earlier of the two streams' server-clock starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from server.errors import MuxError

# A screen and a voice file of the same interaction cannot start hours apart; a larger gap means a
# clock or bookkeeping bug, and honouring it would pad hours of silence into the output.
DEFAULT_MAX_START_GAP = 6 * 3600.0
LEAD_IN_LABEL = "Start of recording"


@dataclass(frozen=True)
class Alignment:
    """Placement of both inputs on the output timeline."""

    origin: float  # server time of the output's t=0
    video_offset: float  # seconds from t=0 to the screen's pts 0
    audio_offset: float  # seconds from t=0 to the voice's sample 0


@dataclass(frozen=True)
class Chapter:
    start: float  # seconds on the output timeline
    end: float
    label: str


def align(
    screen_started_at: float, voice_started_at: float, max_start_gap: float = DEFAULT_MAX_START_GAP
) -> Alignment:
    """Put the earlier stream at t=0 and offset the other by the difference of their starts."""
    for name, value in (("screen_started_at", screen_started_at), ("voice_started_at", voice_started_at)):
        if not math.isfinite(value):
            raise MuxError(f"{name} is not a finite time: {value!r}")
    gap = abs(screen_started_at - voice_started_at)
    if gap > max_start_gap:
        raise MuxError(f"screen and voice start {gap:.1f} s apart (limit {max_start_gap:.0f} s)")
    origin = min(screen_started_at, voice_started_at)
    return Alignment(origin, screen_started_at - origin, voice_started_at - origin)


def chapters_from_markers(
    markers: Iterable[tuple[float, str]], origin: float, duration: float
) -> list[Chapter]:
    """Turn (server time, label) markers into contiguous chapters over [0, duration].

    Markers are sorted; those before t=0 are clamped to 0 and those past the end are dropped, as a
    chapter outside the file cannot be played. Each chapter lasts until the next one starts; when
    the first marker is after t=0 a chapter labelled LEAD_IN_LABEL covers the time before it.
    """
    if duration <= 0:
        return []
    points: list[tuple[float, str]] = []
    for at, label in markers:
        if not math.isfinite(at):
            continue
        rel = max(0.0, at - origin)
        if rel < duration:
            points.append((rel, label))
    points.sort(key=lambda p: p[0])
    if points and points[0][0] > 0:
        # MP4 chapter tracks are gapless from t=0, so a reader would pull the first marker back to
        # 0; an explicit lead-in chapter keeps every real marker at its true time.
        points.insert(0, (0.0, LEAD_IN_LABEL))
    chapters: list[Chapter] = []
    for i, (start, label) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else duration
        chapters.append(Chapter(start, end, label))
    return chapters


def seconds_to_ticks(seconds: float, ticks_per_second: int) -> int:
    """Round a duration to a whole number of ticks (samples, time-base units)."""
    return round(seconds * ticks_per_second)
