"""Pacing a segment upload's body to the admin's bandwidth cap, and stopping it mid-body.

The cap's rules are pure and live in ``recorder_service.bandwidth`` (the token bucket); this is
the part that waits: before each slice of a request body (``bandwidth.SLICE``) the segment
uploader calls ``pace``, which reserves the slice's bytes in the bucket and sleeps the wait the
bucket asks for. The cap is re-read before every chunk (``apply_cap``), so a changed policy
applies within one chunk. ``stop()`` on the uploader sets the stop event: the sleep returns at
once and ``pace`` raises ``Stopping``, so a slow, capped body never delays a stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from recorder_service.bandwidth import TokenBucket, kbps_to_bytes
from tandem_protocol.recorder_policy import RecorderPolicy


class Stopping(Exception):
    """The uploader was stopped while the body was being paced."""


class BodyPacer:
    def __init__(
        self,
        stop: threading.Event,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None] | None = None,  # None: wait on ``stop`` (wakes at once)
    ) -> None:
        self._stop = stop
        self._clock = clock
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._bucket = TokenBucket(0.0, now=clock())

    def apply_cap(self, policy: RecorderPolicy) -> None:
        rate = kbps_to_bytes(policy.bandwidth_kbps)
        if rate != self._bucket.rate:
            self._bucket.set_rate(rate, now=self._clock())

    def pace(self, n: int) -> None:
        """Wait until ``n`` more bytes may go; raises ``Stopping`` once the uploader stops."""
        if self._stop.is_set():
            raise Stopping
        wait = self._bucket.reserve(n, self._clock())
        if wait > 0:
            self._sleep(wait)
        if self._stop.is_set():
            raise Stopping

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)
