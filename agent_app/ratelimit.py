"""A drop counter that logs at most once per interval.

Bad packets and overflowing queues are dropped, never fatal; this keeps a count of them and
says so in the log without letting a misbehaving peer flood it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class DropCounter:
    """Counts drops; logs a warning with the running count at most every ``interval`` seconds.

    Thread-safe: the event channel thread and the Qt thread may both count.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._last_logged: float | None = None
        self._suppressed = 0

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def drop(self, reason: str) -> bool:
        """Count one drop; returns True if this one was logged."""
        with self._lock:
            self._count += 1
            now = self._clock()
            if self._last_logged is not None and now - self._last_logged < self._interval:
                self._suppressed += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
            self._last_logged = now
            total = self._count
        self._logger.warning(
            "dropped %s: %s (%d dropped in total, %d not logged since last message)",
            self._what,
            reason,
            total,
            suppressed,
        )
        return True
