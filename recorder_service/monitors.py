"""Which part of the screen a capture grabs, and when to look at the monitor layout again.

Pure (no X11, no mss) so the rules are tested directly; ``capture.MssGrabber`` is the adapter.
The layout comes as mss lists it: entry 0 is the whole virtual screen (every monitor, one
canvas), entries 1… the monitors, the primary one flagged ``is_primary`` where the platform says
(XRandR, Windows). The admin's policy picks ``"all"`` or ``"primary"``.

A monitor plugged in, unplugged or resized during a call must be picked up without a restart:
the grabber re-reads the layout every ``LAYOUT_REFRESH`` seconds (and at once after a failed
grab, which is what grabbing a region that no longer exists looks like). A new region means a
new frame size; the capture session starts a new segment when the frame size changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recorder_service.errors import CaptureError

CHOICES = ("all", "primary")
LAYOUT_REFRESH = 2.0  # seconds between reads of the monitor layout


@dataclass(frozen=True, slots=True)
class Region:
    left: int
    top: int
    width: int
    height: int

    def as_mss(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


def _region(entry: Mapping[str, Any]) -> Region:
    return Region(int(entry["left"]), int(entry["top"]), int(entry["width"]), int(entry["height"]))


def select_region(layout: Sequence[Mapping[str, Any]], choice: str | int) -> Region:
    """The region to grab. ``"all"``: the whole virtual screen. ``"primary"``: the monitor
    flagged primary, else the first one (X servers without a primary set, Xvfb), else the whole
    screen (no per-monitor information at all). An int is an mss index (0 = all), kept for
    callers that name one; an index that no longer exists falls back to the whole screen rather
    than stopping the recording."""
    if not layout:
        raise CaptureError("no screen found to record")
    if isinstance(choice, int):
        if choice < 0:
            raise ValueError("monitor index must be >= 0")
        return _region(layout[choice] if choice < len(layout) else layout[0])
    if choice not in CHOICES:
        raise ValueError(f"monitors: one of {', '.join(CHOICES)}, not {choice!r}")
    monitors = list(layout[1:])
    if choice == "all" or not monitors:
        return _region(layout[0])
    primary = next((m for m in monitors if m.get("is_primary")), monitors[0])
    return _region(primary)


class LayoutClock:
    """When to read the monitor layout again: first use, every ``interval`` seconds, and at once
    after ``invalidate`` (a grab failed)."""

    def __init__(self, interval: float = LAYOUT_REFRESH) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self._interval = interval
        self._read_at: float | None = None

    def due(self, now: float) -> bool:
        return self._read_at is None or now - self._read_at >= self._interval

    def read(self, now: float) -> None:
        self._read_at = now

    def invalidate(self) -> None:
        self._read_at = None
