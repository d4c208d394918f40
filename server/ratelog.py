"""A logger wrapper that lets through at most one line per reason per interval.

A broken or hostile peer can send thousands of bad datagrams or packets a second; logging each
would flood the log and slow the event loop. One line per reason per interval, with the count
suppressed since the last one. The one rate-limited logger of the server: SIP, RTP, the worker
processes and the voice writers all use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_reasons: int = 1024,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._max_reasons = max_reasons
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, reason: str, message: str, *args: object) -> bool:
        """Log under ``reason`` unless it was logged within the interval; return whether it was."""
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self._interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return False
        if last is None and len(self._last) >= self._max_reasons:
            # Keep the table bounded: forget the reason logged longest ago.
            oldest = min(self._last, key=self._last.__getitem__)
            del self._last[oldest]
            self._suppressed.pop(oldest, None)
        suppressed = self._suppressed.pop(reason, 0)
        self._last[reason] = now
        suffix = f" ({suppressed} more suppressed)" if suppressed else ""
        self._logger.log(level, message + suffix, *args)
        return True

    def warning(self, reason: str, message: str, *args: object) -> bool:
        return self.log(logging.WARNING, reason, message, *args)
