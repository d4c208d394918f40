"""``WorkerMediaSession``: the ``MediaSession`` of a call whose media a worker process records.

The SIP layer drives it exactly like the in-process ``CallMedia``. The sync methods become
commands on the worker's stream (ordered, never awaited); ``close`` awaits the worker's reply
with the final stats, for at most ``close_timeout``. ``last_packet_at`` and the live stats come
from the worker's latest report (at most ~0.5 s old, far below any RTP timeout).

If the worker dies, the session fails: ``close`` returns at once and every stream's stats carry
an ``error`` saying so. The file on disk stays as the worker left it: it is crash-safe, so the
call's audio up to ~0.5 s before the death is kept.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from server.ratelog import RateLimitedLog
from server.rtp.workers.protocol import Close, Command, Pause, Relatch, Resume, Start

log = logging.getLogger(__name__)
_ratelog = RateLimitedLog(log)  # a dead or hung worker fails all its calls at once


class CommandSink(Protocol):
    """The proxy's worker, as the proxy sees it (``server.rtp.workers.link.WorkerLink``)."""

    @property
    def name(self) -> str: ...

    def send(self, command: Command) -> bool: ...  # False: the worker is gone


class WorkerMediaSession:
    def __init__(
        self, link: CommandSink, session: int, ports: dict[int, int], *, close_timeout: float = 10.0
    ) -> None:
        self._link = link
        self._session = session
        self._ports = dict(ports)
        self._close_timeout = close_timeout
        self._last_packet_at: float | None = None
        self._stats: dict[str, object] = {}
        self._error: str | None = None
        self._final = False  # no more commands, no more reports
        self._closed: asyncio.Future[None] | None = None

    @property
    def session(self) -> int:
        return self._session

    @property
    def ports(self) -> dict[int, int]:
        return dict(self._ports)

    @property
    def last_packet_at(self) -> float | None:
        return self._last_packet_at

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def closed(self) -> bool:
        return self._final

    def start(self, answered_at: float) -> None:
        self._command(Start(self._session, answered_at))

    def pause(self, at: float) -> None:
        self._command(Pause(self._session, at))

    def resume(self, at: float) -> None:
        self._command(Resume(self._session, at))

    def relatch(self, index: int, remote: tuple[str, int] | None) -> None:
        self._command(Relatch(self._session, index, remote))

    async def close(self, ended_at: float) -> None:
        """Finalise the file padded to ``ended_at``; idempotent; never waits longer than the timeout."""
        if self._final:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
            if not self._link.send(Close(self._session, ended_at)):
                self.fail(f"{self._link.name} is gone; the file keeps what it had written")
                return
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), self._close_timeout)
        except TimeoutError:
            self.fail(f"{self._link.name} did not confirm the close within {self._close_timeout:g} s")

    def stats(self) -> dict[str, object]:
        """Per stream (m-line index as a string), the worker's counters: final after ``close``."""
        if self._error is None:
            return dict(self._stats)
        streams: dict[str, object] = {str(index): {} for index in self._ports}
        streams.update(self._stats)
        # Per stream, not beside them: readers iterate the streams' counter dicts.
        return {
            key: {**value, "error": self._error} if isinstance(value, dict) else value
            for key, value in streams.items()
        }

    # ---- called by the link, on the worker's messages -----------------------------------------
    def report(self, last_packet_at: float | None, stats: dict[str, object]) -> None:
        if not self._final:
            self._last_packet_at = last_packet_at
            self._stats = stats

    def closed_by_worker(self, stats: dict[str, object]) -> None:
        """The worker closed the session (asked or shutting down): these stats are final."""
        if self._final:
            return
        self._stats = stats
        self._finish()

    def fail(self, error: str) -> None:
        """The worker died or cannot close the session: keep the last stats, with the error."""
        if self._final:
            return
        self._error = error
        _ratelog.warning("fail", "media session %d failed: %s", self._session, error)
        self._finish()

    def _finish(self) -> None:
        self._final = True
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def _command(self, command: Command) -> None:
        if self._final or self._closed is not None:
            return  # closed or closing: the worker would answer "unknown session"
        if not self._link.send(command):
            self.fail(f"{self._link.name} is gone; {type(command).__name__} not delivered")
