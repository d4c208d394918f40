"""``WorkerPool``: N RTP worker processes, the calls placed on them, and their supervision.

``pool.media_factory`` is the SIP layer's ``MediaFactory``: it places each new call on the live
worker with the fewest sessions, in that worker's own even-aligned sub-range of the configured
RTP port range (``ranges.split_port_range``), and returns the call's ``WorkerMediaSession``.

Each worker slot has a supervising task: a worker that dies is logged with its exit code, its
sessions fail (their files stay as written: crash-safe), and a new one is started after a paced
back-off (``tandem_protocol.backoff.RestartBackoff``). A new worker takes calls only once it has
sent its first report (it has loaded the RTP stack): ``start`` returns then, and a call's
``open_timeout`` never counts a worker's start-up; one not ready within ``start_timeout`` is
killed. A worker silent for ``hang_timeout`` (it reports twice a second) is killed, which the
same supervision then handles.
``stop`` closes every worker's stream, so each finalises its files and exits, and kills those that
do not within ``stop_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from asyncio import FIRST_COMPLETED
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import NoWorkerError, RtpWorkerError
from server.rtp.workers.link import WorkerLink
from server.rtp.workers.ranges import split_port_range
from tandem_protocol.backoff import RestartBackoff

if TYPE_CHECKING:
    from collections.abc import Callable

    from server.callmedia.plan import MediaPlan
    from server.callmedia.session import MediaSession
    from server.rtp.workers.proxy import WorkerMediaSession

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Slot:
    index: int
    backoff: RestartBackoff
    link: WorkerLink | None = None
    task: asyncio.Task[None] | None = None
    first_start: asyncio.Event = field(default_factory=asyncio.Event)  # the first attempt is over


class WorkerPool:
    def __init__(
        self,
        workers: int,
        *,
        open_timeout: float = 5.0,
        close_timeout: float = 10.0,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        hang_timeout: float = 30.0,
        restart_initial: float = 0.5,
        restart_max: float = 30.0,
        log_level: str | None = None,
        on_session_lost: Callable[[Path, str, float], None] | None = None,
    ) -> None:
        """``on_session_lost(voice_path, reason, at)``: a worker died (or was killed as hung) with
        this call's media open — called at once, so the call is not left to an RTP timeout."""
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._hang_timeout = hang_timeout
        # A number: a custom level has no name the worker could parse.
        self._log_level = log_level or str(logging.getLogger().getEffectiveLevel())
        self._slots = [_Slot(i, RestartBackoff(restart_initial, restart_max)) for i in range(workers)]
        self._stopping = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self.restarts = 0
        self._on_session_lost = on_session_lost
        self._placed: dict[WorkerMediaSession, tuple[WorkerLink, Path]] = {}  # open calls, for deaths

    @property
    def size(self) -> int:
        return len(self._slots)

    @property
    def links(self) -> list[WorkerLink | None]:
        """The current worker of each slot (None while one is being restarted)."""
        return [slot.link for slot in self._slots]

    @property
    def pids(self) -> list[int]:
        return [slot.link.pid for slot in self._slots if slot.link is not None]

    async def start(self) -> None:
        """Start every worker; raise ``RtpWorkerError`` if not even one could be started."""
        for slot in self._slots:
            slot.task = asyncio.create_task(self._supervise(slot), name=f"rtp-worker-{slot.index}")
        await asyncio.gather(*(slot.first_start.wait() for slot in self._slots))
        if not any(slot.link is not None and slot.link.ready.is_set() for slot in self._slots):
            await self.stop()
            raise RtpWorkerError("no RTP worker process could be started")
        self._watchdog = asyncio.create_task(self._watch_hangs())
        log.info("%d RTP worker processes started (pids %s)", self.size, ", ".join(map(str, self.pids)))

    async def media_factory(
        self, bind_host: str, port_range: tuple[int, int], voice_path: Path, plan: MediaPlan
    ) -> MediaSession:
        """The SIP layer's ``MediaFactory``: the call's media, opened in the least-loaded worker."""
        if self._stopping.is_set():
            raise NoWorkerError("the RTP worker pool is stopping")
        ranges = split_port_range(port_range, self.size)
        candidates = [
            (link, ranges[slot.index])
            for slot in self._slots
            if (link := slot.link) is not None
            and link.alive
            and link.ready.is_set()
            and ranges[slot.index] is not None
        ]
        if not candidates:
            raise NoWorkerError(f"no live RTP worker with ports in {port_range[0]}-{port_range[1]}")
        link, sub_range = min(candidates, key=lambda c: (c[0].load, c[0].index))
        assert sub_range is not None
        session = await link.open(bind_host, sub_range, voice_path, plan)
        for done in [p for p in self._placed if p.closed]:  # ended calls: forget them
            del self._placed[done]
        self._placed[session] = (link, voice_path)
        return session

    def _report_lost(self, link: WorkerLink) -> None:
        """The worker behind ``link`` is gone: tell the owner of each call it still carried."""
        at = time.time()
        for session, (owner, voice_path) in list(self._placed.items()):
            if owner is not link:
                continue
            del self._placed[session]
            if session.error is not None and self._on_session_lost is not None:
                try:
                    self._on_session_lost(voice_path, session.error, at)
                except Exception:  # one call's handler must not keep the others from hearing
                    log.exception("reporting the lost media of %s failed", voice_path)

    async def stop(self) -> None:
        """Close every worker's stream (they finalise their files and exit); kill the laggards."""
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
        for slot in self._slots:
            if slot.link is not None:
                slot.link.close_stream()
        tasks = [slot.task for slot in self._slots if slot.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._stop_timeout)
        for slot in self._slots:
            if slot.task in pending and slot.link is not None:
                log.error("%s did not finish within %g s: killing it", slot.link.name, self._stop_timeout)
                slot.link.kill()
        if pending:
            _, pending = await asyncio.wait(pending, timeout=5.0)
            for task in pending:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._watchdog is not None:
            await asyncio.gather(self._watchdog, return_exceptions=True)

    async def _supervise(self, slot: _Slot) -> None:
        resume_after: int | None = None
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                link = await WorkerLink.spawn(
                    slot.index,
                    log_level=self._log_level,
                    open_timeout=self._open_timeout,
                    close_timeout=self._close_timeout,
                    resume_after=resume_after,
                )
            except RtpWorkerError as exc:
                log.error("%s", exc)
            except Exception:  # whatever it is, the slot must go on (and start() must return)
                log.exception("cannot start RTP worker %d", slot.index)
            else:
                slot.link = link
                if self._stopping.is_set():  # stop() ran while we spawned: it did not see this one
                    link.close_stream()
                code: int | None = None
                running = asyncio.create_task(link.run(), name=f"{link.name} stream")
                try:
                    await self._until_ready(link, running)
                    slot.first_start.set()
                    code = await running
                except Exception:  # a bug in reading it: count the worker as dead, restart it
                    log.exception("%s: supervision failed", link.name)
                    link.kill()
                finally:
                    running.cancel()  # done already, unless this supervision is being cancelled
                    slot.link = None
                    self._report_lost(link)  # at once: not left to the calls' RTP timeout
                    resume_after = link.last_port if link.last_port is not None else resume_after
                if self._stopping.is_set():
                    log.info("%s exited with code %s", link.name, code)
                    return
                log.error("%s died with exit code %s", link.name, code)
            slot.first_start.set()
            delay = slot.backoff.delay(time.monotonic() - started)
            log.warning("restarting RTP worker %d in %.1f s", slot.index, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if not self._stopping.is_set():
                self.restarts += 1

    async def _until_ready(self, link: WorkerLink, running: asyncio.Task[int | None]) -> None:
        """Wait for the worker's first report (or its end); kill one not ready in ``start_timeout``."""
        ready = asyncio.create_task(link.ready.wait())
        try:
            await asyncio.wait({ready, running}, timeout=self._start_timeout, return_when=FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not link.ready.is_set() and not running.done():
            log.error("%s did not start within %g s: killing it", link.name, self._start_timeout)
            link.kill()

    async def _watch_hangs(self) -> None:
        """A worker reports twice a second; one silent for ``hang_timeout`` is stuck: kill it."""
        while True:
            await asyncio.sleep(min(1.0, self._hang_timeout / 4))
            now = time.monotonic()
            for slot in self._slots:
                link = slot.link
                if link is None or not link.alive or not link.ready.is_set():
                    continue  # a worker still starting is bounded by start_timeout instead
                if now - link.last_heard > self._hang_timeout:
                    log.error("%s silent for %.0f s: killing it", link.name, now - link.last_heard)
                    link.kill()
