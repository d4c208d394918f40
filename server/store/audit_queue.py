"""Writes of a live call that must not be lost when the database is busy: audit records of pauses,
resumes, stops and ends, and the call's state.

With a write lock held elsewhere (a backup, a long admin query, another process), a write waits
``db_busy_timeout_seconds`` and fails. A pause must still happen — the voice and the screen pause
first — and its audit record must still be written, later. ``WriteBacklog.write`` tries the write
now; if the database refuses it, or earlier writes are still waiting (order matters in an audit
log), it is queued in memory and retried in order, with back-off, until written. The queue is
bounded (a database gone for hours must not eat the server's memory): past ``max_items`` a write
is dropped with an error log naming it, and counted. ``/healthz`` reports the backlog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    what: str  # for logs: e.g. "audit recording.pause for <interaction>"
    write: Callable[[], None]  # synchronous, run in a thread; idempotent is best
    queued_at: float


class WriteBacklog:
    def __init__(
        self, *, max_items: int = 10_000, retry_initial: float = 0.25, retry_max: float = 5.0
    ) -> None:
        self._queue: deque[_Pending] = deque()
        self._max_items = max_items
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # writes lost because the queue was full
        self.last_error = ""

    @property
    def pending(self) -> int:
        return len(self._queue)

    def status(self) -> dict[str, object]:
        oldest = self._queue[0].queued_at if self._queue else None
        return {
            "pending": len(self._queue),
            "oldest_seconds": round(time.time() - oldest, 1) if oldest is not None else None,
            "dropped": self.dropped,
            "last_error": self.last_error,
        }

    async def write(self, what: str, write: Callable[[], None]) -> bool:
        """True: written now. False: queued (the database refused it, or older writes wait)."""
        if not self._queue:
            try:
                await asyncio.to_thread(write)
                return True
            except SQLAlchemyError as exc:
                self.last_error = _short(exc)
                log.error("database write failed (%s): %s — queued for retry", what, self.last_error)
        self._enqueue(_Pending(what, write, time.time()))
        return False

    async def flush(self, within: float) -> bool:
        """Wait (up to ``within`` seconds) for the queue to empty; True if it did (shutdown)."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=within)
        return not self._queue

    def _enqueue(self, item: _Pending) -> None:
        if len(self._queue) >= self._max_items:
            self.dropped += 1
            log.error("write backlog full (%d): LOST %s", self._max_items, item.what)
            return
        self._queue.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="write-backlog")

    async def _drain(self) -> None:
        delay = self._retry_initial
        while self._queue:
            item = self._queue[0]
            try:
                await asyncio.to_thread(item.write)
            except SQLAlchemyError as exc:
                self.last_error = _short(exc)
                await asyncio.sleep(delay)
                delay = min(self._retry_max, delay * 2)
                continue
            except Exception:  # a bug in one write must not hold every later one for ever
                log.exception("queued write %s failed for good", item.what)
            else:
                log.warning("queued write done after %.1f s: %s", time.time() - item.queued_at, item.what)
            self._queue.popleft()
            delay = self._retry_initial


def _short(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
