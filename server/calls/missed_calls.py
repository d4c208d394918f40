"""Missed recordings: the refused INVITEs the SIP engine reports, stored as ``missed_calls`` rows.

The engine calls ``refused`` on the event loop for every refusal; nothing here blocks it. A flood
of refused INVITEs must not become a flood of database writes, so:

- identical refusals (same source host, reason, status and DN) within ``window`` seconds of the
  first are coalesced into one row with a ``count``;
- rows are written in one transaction per ``window``, off the event loop, one batch at a time;
- at most ``max_pending`` rows wait; beyond that a refusal is dropped and counted (``dropped``),
  still counted and logged by the engine.

``stop`` writes what is pending, so a shutdown loses nothing that was accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from server.sip.refusals import Refusal
from server.store import models
from server.store.db import session_scope

log = logging.getLogger(__name__)
WINDOW = 1.0
MAX_PENDING = 1000


@dataclass(slots=True)
class _Group:
    first: Refusal
    count: int
    last_at: float


@dataclass(slots=True)
class MissedCallStats:
    received: int = 0  # refusals reported
    coalesced: int = 0  # folded into an earlier refusal's row
    dropped: int = 0  # the pending rows were at their bound
    written: int = 0  # rows written
    write_errors: int = 0  # batches the database refused (their rows are lost, and logged)

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "coalesced": self.coalesced,
            "dropped": self.dropped,
            "written": self.written,
            "write_errors": self.write_errors,
        }


Key = tuple[str, str, int, str]


class MissedCallLog:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        window: float = WINDOW,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = factory
        self._window = window
        self._max_pending = max_pending
        self._clock = clock
        self._open: dict[Key, _Group] = {}  # still taking identical refusals
        self._closed: list[_Group] = []  # their window is over: the next batch
        self._task: asyncio.Task[None] | None = None
        self.stats = MissedCallStats()

    @property
    def pending(self) -> int:
        return len(self._open) + len(self._closed)

    # ---- the engine's side (RefusalSink) --------------------------------------------------------
    def refused(self, refusal: Refusal) -> None:
        self.stats.received += 1
        key = (refusal.source_host, refusal.reason, refusal.status, refusal.dn)
        group = self._open.get(key)
        if group is not None:
            if refusal.at - group.first.at < self._window:
                group.count += 1
                group.last_at = max(group.last_at, refusal.at)
                self.stats.coalesced += 1
                return
            self._closed.append(self._open.pop(key))
        if self.pending >= self._max_pending:
            self.stats.dropped += 1
            return
        self._open[key] = _Group(refusal, 1, refusal.at)

    # ---- writing ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._closed.extend(self._open.values())
        self._open.clear()
        await self._write_closed()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._window / 2)
            now = self._clock()
            for key in [k for k, g in self._open.items() if now - g.first.at >= self._window]:
                self._closed.append(self._open.pop(key))
            await self._write_closed()

    async def _write_closed(self) -> None:
        if not self._closed:
            return
        batch, self._closed = self._closed, []
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception as exc:  # the database is down or locked: say so, keep going
            self.stats.write_errors += 1
            log.error("could not store %d missed-call row(s): %r", len(batch), exc)
            return
        self.stats.written += len(batch)

    def _write(self, batch: list[_Group]) -> None:
        with session_scope(self._factory) as s:
            for group in batch:
                r = group.first
                s.add(
                    models.MissedCall(
                        at=r.at,
                        last_at=group.last_at,
                        count=group.count,
                        call_id=r.call_id,
                        source=r.source,
                        from_uri=r.from_uri,
                        to_uri=r.to_uri,
                        request_uri=r.request_uri,
                        dn=r.dn,
                        reason=r.reason,
                        status=r.status,
                        kind=r.kind,
                        detail=r.detail,
                    )
                )
