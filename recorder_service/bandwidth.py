"""When and how fast the segment uploader may send: the admin's bandwidth cap (a token bucket)
and upload window (local wall-clock hours). Pure: the clock and the local time are passed in, so
both rules are tested without waiting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# One slice of a request body: small enough that a cap of a few hundred kbit/s still spreads the
# bytes evenly (no 256 KiB burst then a long silence that starves the agent's calls).
SLICE = 16 * 1024


def kbps_to_bytes(kbps: int) -> float:
    """``bandwidth_kbps`` (kilobits per second, as admins and ISPs count) in bytes per second."""
    return kbps * 1000.0 / 8.0


class TokenBucket:
    """A byte budget refilled at ``rate`` bytes/s up to ``burst`` bytes.

    ``reserve(n, now)`` takes ``n`` bytes at once and returns how long to wait before sending
    them: the budget may go into debt, which later reservations pay back, so the long-run rate
    never exceeds ``rate`` whatever the sizes asked. ``rate`` 0 means no cap.
    """

    def __init__(self, rate: float, burst: float | None = None, *, now: float = 0.0) -> None:
        self._rate = 0.0
        self._burst = 0.0
        self._tokens = 0.0
        self._stamp = now
        self.set_rate(rate, burst, now=now)
        self._tokens = self._burst

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float, burst: float | None = None, *, now: float) -> None:
        """A new cap (the admin changed the policy); the budget so far is kept, clipped."""
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._refill(now)
        self._rate = rate
        # Default burst: a quarter second of traffic, at least one body slice.
        self._burst = burst if burst is not None else max(float(SLICE), rate / 4.0)
        self._tokens = min(self._tokens, self._burst)

    def reserve(self, n: int, now: float) -> float:
        """Seconds to wait before sending ``n`` bytes (0 when the budget covers them)."""
        if self._rate <= 0:
            return 0.0
        self._refill(now)
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def _refill(self, now: float) -> None:
        if self._rate > 0 and now > self._stamp:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = max(self._stamp, now)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def window_open(window: tuple[str, str] | None, local: datetime) -> bool:
    """Whether local time ``local`` is inside the upload window ``(start, end)`` ("HH:MM").

    The window includes its start and excludes its end; ``start > end`` wraps midnight
    (``("22:00", "06:00")`` is open at night); ``start == end`` is the whole day, which is what an
    admin who typed the same time twice most likely meant. ``None``: any time.
    """
    if window is None:
        return True
    start, end = _minutes(window[0]), _minutes(window[1])
    if start == end:
        return True
    now = local.hour * 60 + local.minute
    if start < end:
        return start <= now < end
    return now >= start or now < end


def seconds_until_open(window: tuple[str, str] | None, local: datetime) -> float:
    """Seconds from ``local`` until the window next opens (0 when it is open)."""
    if window_open(window, local):
        return 0.0
    assert window is not None  # an absent window is always open
    start = _minutes(window[0])
    opening = local.replace(hour=start // 60, minute=start % 60, second=0, microsecond=0)
    if opening <= local:
        opening += timedelta(days=1)
    return (opening - local).total_seconds()
