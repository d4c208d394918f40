"""Decides which grabbed frames reach the encoder, and at which timestamp.

Pure (no threads, no I/O) so the timing rules are tested directly:

* Pause: the server's ``screen.pause`` names a server time ``at``; no frame stamped at or after
  it may be encoded. The command arrives *after* ``at`` (network, scheduling), so frames are held
  back for ``holdback`` seconds before release; a pause drops held frames stamped ≥ ``at``.
  Frames already released before the pause arrived are reported as ``late`` (the caller logs
  them and says so in the ack) — that only happens if the command was later than ``holdback``.
* Resume: frames stamped before the resume ``at`` are dropped, later ones kept.
* A frame identical to the previous one (same digest) is skipped, however long the screen stays
  still: a frame lasts on screen until the next one, so re-sending it would only cost bytes. (The
  capture session writes one frame at a segment's end so the segment reaches its end time.)
* Stop: held frames before the stop time are released and, unless paused, the last image is
  emitted once more at the stop time so the file covers the whole span.
* Timestamps released are strictly increasing (at least 1 ms apart; pts are milliseconds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

ImageT = TypeVar("ImageT")

_MIN_STEP = 0.001  # pts are integer milliseconds


@dataclass(frozen=True, slots=True)
class Released(Generic[ImageT]):
    ts: float  # server time of the frame
    image: ImageT


@dataclass(slots=True)
class GateStats:
    offered: int = 0
    duplicates: int = 0
    dropped_paused: int = 0  # grabbed while paused / before resume at
    dropped_on_pause: int = 0  # held back, then dropped because a pause covered them
    late: int = 0  # already released when a pause covering them arrived
    forced_early: int = 0  # released before holdback expired because the buffer was full


class FrameGate(Generic[ImageT]):
    def __init__(self, *, holdback: float = 0.5, max_held: int = 64) -> None:
        if holdback < 0 or max_held < 1:
            raise ValueError("holdback >= 0 and max_held >= 1 required")
        self._holdback = holdback
        self._max_held = max_held
        self._held: deque[tuple[float, int, ImageT]] = deque()
        self._paused_at: float | None = None
        self._resume_at: float | None = None
        self._last_emit: tuple[float, int, ImageT] | None = None
        self._last_accepted: tuple[float, int] | None = None
        self._stopped = False
        self.stats = GateStats()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def holdback(self) -> float:
        return self._holdback

    @property
    def last_released_ts(self) -> float | None:
        return None if self._last_emit is None else self._last_emit[0]

    def offer(self, ts: float, digest: int, image: ImageT) -> list[Released[ImageT]]:
        """A grabbed frame stamped ``ts`` (server time); returns frames now due for encoding."""
        self.stats.offered += 1
        if (
            self._stopped
            or self._paused_at is not None
            or (self._resume_at is not None and ts < self._resume_at)
        ):
            self.stats.dropped_paused += 1
            return self.release_due(ts)
        last = self._last_accepted
        if last is not None and digest == last[1]:
            self.stats.duplicates += 1
            return self.release_due(ts)
        if last is not None and ts <= last[0]:
            # Clock offset moved backwards: keep order rather than the raw stamp.
            ts = last[0] + _MIN_STEP
        self._held.append((ts, digest, image))
        self._last_accepted = (ts, digest)
        out = self.release_due(ts)
        while len(self._held) > self._max_held:
            self.stats.forced_early += 1
            out.extend(self._release_one())
        return out

    def release_due(self, now: float) -> list[Released[ImageT]]:
        """Frames held for at least ``holdback`` by server time ``now``."""
        out: list[Released[ImageT]] = []
        while self._held and self._held[0][0] <= now - self._holdback:
            out.extend(self._release_one())
        return out

    def release_all(self) -> list[Released[ImageT]]:
        """Every held frame now (a pause or a quota stop closes the segment behind them)."""
        out: list[Released[ImageT]] = []
        while self._held:
            out.extend(self._release_one())
        return out

    def force_next(self) -> None:
        """Accept the next frame even if the screen did not change (it starts a new segment)."""
        self._last_accepted = None

    def pause(self, at: float) -> int:
        """Stop accepting frames; drop held frames stamped ≥ ``at`` (and within 1 ms before it:
        pts are whole milliseconds, and a frame whose pts rounds up onto the pause would count as
        inside it). Returns how many frames were already released past ``at`` (0 when the pause
        was honoured exactly)."""
        if self._paused_at is not None:
            return 0
        self._paused_at = at
        self._resume_at = None
        kept = [f for f in self._held if f[0] < at - _MIN_STEP]
        self.stats.dropped_on_pause += len(self._held) - len(kept)
        self._held = deque(kept)
        late = 0
        if self._last_emit is not None and self._last_emit[0] >= at:
            late = 1
            self.stats.late += 1
        tail = self._held[-1] if self._held else self._last_emit
        self._last_accepted = None if tail is None else (tail[0], tail[1])
        return late

    def resume(self, at: float) -> None:
        if self._paused_at is None:
            return
        self._paused_at = None
        self._resume_at = at
        # The first frame after a resume must be encoded even if the screen did not change.
        self._last_accepted = None

    def flush(self, stop_at: float) -> list[Released[ImageT]]:
        """Finish: release held frames before ``stop_at`` and repeat the last image at ``stop_at``
        (not when paused: the stop time then lies inside the pause)."""
        self._stopped = True
        dropped = [f for f in self._held if f[0] >= stop_at]
        self.stats.dropped_on_pause += len(dropped)
        self._held = deque(f for f in self._held if f[0] < stop_at)
        out: list[Released[ImageT]] = []
        while self._held:
            out.extend(self._release_one())
        if self._paused_at is None and self._last_emit is not None and self._last_emit[0] < stop_at:
            _, digest, image = self._last_emit
            self._last_emit = (stop_at, digest, image)
            out.append(Released(stop_at, image))
        return out

    def _release_one(self) -> list[Released[ImageT]]:
        ts, digest, image = self._held.popleft()
        if self._last_emit is not None and ts < self._last_emit[0] + _MIN_STEP:
            ts = self._last_emit[0] + _MIN_STEP
        self._last_emit = (ts, digest, image)
        return [Released(ts, image)]
