"""Endpoint audio on the server clock (pure: no sound device, no threads).

A sound device delivers samples in blocks through a callback. Its own timestamps are not to be
trusted: with PortAudio over ALSA's PulseAudio plugin the reported ADC time was 0.68 s away from
the truth (measured), and they are on a clock of their own anyway. What is known for sure:

* the device's sample counter ``n`` (samples are contiguous unless the device reports an
  overflow), and
* when a block *arrived* (the callback's server time): its last sample was captured no later
  than that.

So ``arrival - (n + frames) / rate`` is an upper bound of the server time of sample 0, reached
when a callback runs without delay. ``AudioClock`` keeps the lowest such bound over a sliding
window: scheduling delays only ever add to it, so the minimum is the best estimate (an NTP-style
minimum filter; measured on a PulseAudio null sink: within 2 ms of the truth). The window also
handles drift: a sound card's crystal runs some ppm off the system clock, so the true offset
moves slowly, and the minimum of the last ``window`` seconds follows it (100 ppm over a 20-s
window: 2 ms late). An overflow (lost samples) breaks the counter: the clock starts again.

``StereoAssembler`` puts the blocks of two sources (left: the agent's microphone, right: what the
agent hears) on one server-time grid of samples and hands out contiguous stereo: unwritten
samples are zeros (a source that stopped, a gap), samples inside a pause are zeros too. A block
that lands within ``tolerance`` of where its source's previous block ended is appended there
(estimate jitter must not click); a bigger jump (drift corrected, clock restarted) moves it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


class AudioClock:
    """Maps one stream's sample index to server time (see the module docstring)."""

    def __init__(self, rate: int, *, window: float = 20.0) -> None:
        if rate <= 0 or window <= 0:
            raise ValueError("rate and window must be > 0")
        self.rate = rate
        self._window = window
        self._samples: deque[tuple[float, float]] = deque()  # (arrival, bound of sample 0's time)
        self.restarts = 0

    def observe(self, first_sample: int, frames: int, arrival: float) -> None:
        """A block of ``frames`` samples starting at sample index ``first_sample`` arrived at
        server time ``arrival``."""
        bound = arrival - (first_sample + frames) / self.rate
        samples = self._samples
        # Monotonic deque: a bound no lower than a newer one can never be the minimum again.
        while samples and samples[-1][1] >= bound:
            samples.pop()
        samples.append((arrival, bound))
        while samples[0][0] < arrival - self._window:
            samples.popleft()

    def restart(self) -> None:
        """Samples were lost (device overflow): the counter no longer tells time."""
        self._samples.clear()
        self.restarts += 1

    @property
    def ready(self) -> bool:
        return bool(self._samples)

    def origin(self) -> float:
        """Best estimate of sample 0's server time."""
        if not self._samples:
            raise RuntimeError("no block observed yet")
        return self._samples[0][1]

    def server_time(self, sample: int) -> float:
        return self.origin() + sample / self.rate


@dataclass(frozen=True, slots=True)
class Block:
    """``samples`` (mono float32) of one source, the first at server time ``at``."""

    source: int  # channel: 0 = microphone, 1 = what the agent hears
    at: float
    samples: np.ndarray


class StereoAssembler:
    """Blocks of up to ``channels`` sources → contiguous interleaved audio on the server clock.

    Grid index ``i`` is server time ``i / rate``. ``take(until)`` returns ``(start_time,
    samples[frames, channels])`` from where the last take ended (or the first block) up to
    ``until``; at most ``max_seconds`` are buffered ahead of that.
    """

    def __init__(
        self, rate: int, channels: int = 2, *, tolerance: float = 0.005, max_seconds: float = 10.0
    ) -> None:
        self.rate = rate
        self.channels = channels
        self._tolerance = round(tolerance * rate)
        self._max = round(max_seconds * rate)
        self._buf = np.zeros((0, channels), np.float32)
        self._base: int | None = None  # grid index of _buf[0]
        self._next: list[int | None] = [None] * channels  # where each source's next sample goes
        self._pauses: list[tuple[float, float | None]] = []
        self.dropped = 0  # samples that came too late (before what was already handed out)

    def pause(self, at: float) -> None:
        """Everything from ``at`` on is silence until ``resume``."""
        self._pauses.append((at, None))

    def resume(self, at: float) -> None:
        if self._pauses and self._pauses[-1][1] is None:
            self._pauses[-1] = (self._pauses[-1][0], at)

    def add(self, block: Block) -> None:
        n = len(block.samples)
        if n == 0:
            return
        index = round(block.at * self.rate)
        expected = self._next[block.source]
        if expected is not None and abs(index - expected) <= self._tolerance:
            index = expected
        self._next[block.source] = index + n
        if self._base is None:
            self._base = index
        data = block.samples
        if index < self._base:  # partly handed out already: keep the rest
            skip = min(n, self._base - index)
            self.dropped += skip
            data, index = data[skip:], self._base
        if len(data) == 0:
            return
        start = index - self._base
        end = start + len(data)
        if end > self._max:
            # Nobody takes (no open segment): keep the newest max_seconds.
            cut = end - self._max
            self._advance(cut)
            start, end = start - cut, end - cut
            if start < 0:
                self.dropped += -start
                data, start = data[-start:], 0
        if end > len(self._buf):
            grown = np.zeros((end, self.channels), np.float32)
            grown[: len(self._buf)] = self._buf
            self._buf = grown
        self._buf[start:end, block.source] = data

    def _advance(self, count: int) -> None:
        assert self._base is not None
        self._buf = self._buf[count:]
        self._base += count

    def take(self, until: float) -> tuple[float, np.ndarray] | None:
        """Contiguous audio from the last take up to server time ``until`` (None: nothing yet)."""
        if self._base is None:
            return None
        stop = round(until * self.rate)
        count = min(stop - self._base, len(self._buf))
        if count <= 0:
            return None
        start_time = self._base / self.rate
        out = self._buf[:count].copy()
        self._silence_pauses(self._base, out)
        self._advance(count)
        self._pauses = [p for p in self._pauses if p[1] is None or p[1] * self.rate > self._base]
        return start_time, out

    def discard_before(self, at: float) -> None:
        """Audio before server time ``at`` is not wanted (a new segment starts there)."""
        if self._base is None:
            return
        count = min(round(at * self.rate) - self._base, len(self._buf))
        if count > 0:
            self._advance(count)

    def _silence_pauses(self, base: int, out: np.ndarray) -> None:
        for start, end in self._pauses:
            a = max(0, round(start * self.rate) - base)
            b = len(out) if end is None else min(len(out), round(end * self.rate) - base)
            if a < b:
                out[a:b] = 0.0


def placement(next_pts: int | None, pts: int, frames: int) -> tuple[int, int]:
    """How a block of ``frames`` samples stamped ``pts`` continues a track that expects
    ``next_pts`` next: ``(zeros, skip)`` — zeros to insert before it (a gap) and samples to
    drop from its head (an overlap). Audio in a track is contiguous: no pts jumps."""
    if next_pts is None or pts == next_pts:
        return 0, 0
    if pts > next_pts:
        return pts - next_pts, 0
    return 0, min(frames, next_pts - pts)
