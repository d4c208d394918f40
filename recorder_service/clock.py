"""NTP-style estimate of the offset between this PC's clock and the server's.

The server is the clock (see docs/api.md): every frame is stamped in server time. Each
``time.ping``/``time.pong`` round gives four timestamps (t0 client send, t1 server receive,
t2 server send, t3 client receive). The sample with the smallest round trip among the last N
is the least disturbed by queueing, so its offset is the one used. Pure: the local clock is
injected.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# At connect the channel sends this many pings this far apart, then one every interval: a single
# ping answered under load was off by ~15 ms for the 10 s until the next; the best of a short
# burst is not (the window keeps them all).
CONNECT_BURST = 5
BURST_GAP = 0.2


def ping_delays(interval: float, burst: int = CONNECT_BURST, gap: float = BURST_GAP) -> Iterator[float]:
    """Seconds to wait after each ping of one connection: ``burst`` pings ``gap`` apart (spaced
    so they do not queue behind each other), then one every ``interval``."""
    for _ in range(burst - 1):
        yield gap
    while True:
        yield interval


@dataclass(frozen=True, slots=True)
class ClockSample:
    offset: float  # server - local, seconds
    rtt: float  # round trip minus server processing time, seconds


def sample_from(t0: float, t1: float, t2: float, t3: float) -> ClockSample:
    """One exchange as (offset, round-trip). ``ValueError`` for impossible timestamps."""
    if t3 < t0:
        raise ValueError("client receive time t3 precedes send time t0")
    if t2 < t1:
        raise ValueError("server send time t2 precedes receive time t1")
    rtt = (t3 - t0) - (t2 - t1)
    offset = ((t1 - t0) + (t2 - t3)) / 2.0
    return ClockSample(offset=offset, rtt=max(0.0, rtt))


class MonotonicWallClock:
    """Wall-clock seconds that never jump: anchored to ``time.time()`` once, then advanced by
    ``time.monotonic()``. An NTP step on the PC would otherwise shift frame stamps mid-capture;
    the server offset absorbs the difference at the next ping instead."""

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def __call__(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0)


class ClockSync:
    """Thread-safe offset estimator (the channel adds samples, capture threads read)."""

    def __init__(self, local_now: Callable[[], float], window: int = 8) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._local_now = local_now
        self._samples: deque[ClockSample] = deque(maxlen=window)
        self._offset = 0.0
        self._lock = threading.Lock()

    def local_now(self) -> float:
        return self._local_now()

    def add_sample(self, t0: float, t1: float, t2: float, t3: float) -> ClockSample:
        sample = sample_from(t0, t1, t2, t3)
        with self._lock:
            self._samples.append(sample)
            self._offset = min(self._samples, key=lambda s: s.rtt).offset
        return sample

    @property
    def synced(self) -> bool:
        with self._lock:
            return bool(self._samples)

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    @property
    def accuracy(self) -> float | None:
        """± seconds of the offset in use: half the round trip of its sample (the most an
        asymmetric path can have shifted it); None before the first sample."""
        with self._lock:
            if not self._samples:
                return None
            return min(self._samples, key=lambda s: s.rtt).rtt / 2.0

    def to_server(self, local: float) -> float:
        return local + self.offset

    def server_now(self) -> float:
        return self.to_server(self._local_now())
