"""Graceful restart: on SIGTERM stop taking calls and let the running ones finish.

A plain uvicorn server stops at once on SIGTERM, and the SIP engine then hangs up every call in
progress, so each restart (a deploy, a package upgrade) cut every recorded call short. With
``DrainingServer`` the first SIGTERM only starts a drain: the coordinator refuses new INVITEs
(SIP 503 with Retry-After, so the SRC tries again or fails over to another recorder) while HTTP
and the agents' event channels keep serving; once no call is ringing or active, or after
``drain_seconds``, the normal shutdown runs and ends whatever is left as before. A second
SIGTERM, or SIGINT (Ctrl-C), during the drain stops at once.

The drain runs before uvicorn's own shutdown, not inside the lifespan's: by then uvicorn has
closed the listening sockets and the WebSockets, and the agents of the draining calls could no
longer pause or see their calls.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Protocol

import uvicorn

log = logging.getLogger(__name__)


class Drainable(Protocol):
    """What the drain needs of the call coordinator."""

    def start_drain(self) -> None: ...

    @property
    def calls_in_progress(self) -> int: ...


def drain_done(calls_in_progress: int, now: float, deadline: float) -> bool:
    """The drain ends when no call is left or the time is up."""
    return calls_in_progress == 0 or now >= deadline


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, calls: Drainable, drain_seconds: float) -> None:
        super().__init__(config)
        self._calls = calls
        self._drain_seconds = drain_seconds
        self._drain_deadline: float | None = None
        self._drain_logged = False

    @property
    def draining(self) -> bool:
        return self._drain_deadline is not None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: only flags here (no logging, whose locks the interrupted code may hold).
        if sig == signal.SIGTERM and self._drain_seconds > 0 and not self.draining and not self.should_exit:
            self._captured_signals.append(sig)  # re-raised after shutdown, as uvicorn does
            self._drain_deadline = time.monotonic() + self._drain_seconds
            self._calls.start_drain()
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        deadline = self._drain_deadline
        if deadline is not None and not self.should_exit:
            busy = self._calls.calls_in_progress
            if not self._drain_logged:
                self._drain_logged = True
                log.warning(
                    "SIGTERM: draining — new calls are refused; waiting up to %g s for %d call(s)",
                    self._drain_seconds,
                    busy,
                )
            if drain_done(busy, time.monotonic(), deadline):
                if busy:
                    log.warning("drain time is up: %d call(s) still in progress are ended now", busy)
                else:
                    log.info("drain complete: no call in progress; shutting down")
                self.should_exit = True
        return await super().on_tick(counter)
