"""The one Qt helper: moves blocking work off the Qt thread and results back onto it.

`TaskRunner` runs callables (REST calls) on a private one-thread QThreadPool, so API calls
stay in order, and posts each result or exception back through a queued signal.
`EventRelay` takes envelopes and status changes from the event channel's thread and re-emits
them on the Qt thread, with a bound on how many may wait in Qt's queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from agent_app.errors import AgentAppError
from agent_app.model import ChannelState
from agent_app.ratelimit import DropCounter
from tandem_protocol import Envelope

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_QUEUED_TASKS = 16
MAX_QUEUED_EVENTS = 500


class _Poster(QObject):
    """Lives on the Qt thread; emitting from a worker queues the call there."""

    deliver = Signal(object, object)  # (task, thunk to run on the Qt thread)


class _Task(QRunnable):
    def __init__(
        self,
        fn: Callable[[], Any],
        on_ok: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        poster: _Poster,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner holds the reference until delivery
        self._fn, self._on_ok, self._on_error, self._poster = fn, on_ok, on_error, poster

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:
            if not isinstance(exc, AgentAppError):
                log.exception("background task failed unexpectedly")
            self._poster.deliver.emit(self, partial(self._on_error, exc))
        else:
            self._poster.deliver.emit(self, partial(self._on_ok, result))


class TaskRunner(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._poster = _Poster(self)
        self._poster.deliver.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._tasks: set[_Task] = set()
        self._closed = False

    def submit(
        self,
        fn: Callable[[], T],
        on_ok: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> bool:
        """Run ``fn`` off the Qt thread; ``on_ok``/``on_error`` later run on the Qt thread.

        Returns False (and runs nothing) when closed or when too much work is queued.
        """
        if self._closed:
            return False
        if len(self._tasks) >= MAX_QUEUED_TASKS:
            log.warning("refusing background task: %d already queued", len(self._tasks))
            return False
        task = _Task(fn, on_ok, on_error, self._poster)
        self._tasks.add(task)
        self._pool.start(task)
        return True

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        """Stop delivering results, wait for running work; True if all finished in time."""
        self._closed = True
        return self._pool.waitForDone(timeout_ms)

    @Slot(object, object)
    def _deliver(self, task: _Task, thunk: Callable[[], None]) -> None:
        self._tasks.discard(task)
        if self._closed:
            return
        try:
            thunk()
        except Exception:
            log.exception("result handler failed")


class EventRelay(QObject):
    """Thread-safe `post_*` methods in, Qt-thread signals out."""

    envelope = Signal(object)  # Envelope
    status = Signal(object, str)  # ChannelState, detail
    overflow = Signal()  # envelopes were dropped: the receiver should resync
    _envelope_posted = Signal(object)
    _status_posted = Signal(object, str)

    def __init__(self, parent: QObject | None = None, *, limit: int = MAX_QUEUED_EVENTS) -> None:
        super().__init__(parent)
        self._limit = limit
        self._lock = threading.Lock()
        self._queued = 0
        self._overflowed = False
        self._closed = False
        self.dropped = DropCounter(log, "events (Qt queue full)")
        self._envelope_posted.connect(self._on_envelope, Qt.ConnectionType.QueuedConnection)
        self._status_posted.connect(self._on_status, Qt.ConnectionType.QueuedConnection)

    def post_envelope(self, envelope: Envelope) -> None:
        with self._lock:
            if self._closed:
                return
            if self._queued >= self._limit:
                self._overflowed = True
                drop = True
            else:
                self._queued += 1
                drop = False
        if drop:
            self.dropped.drop(envelope.type)
            return
        self._envelope_posted.emit(envelope)

    def post_status(self, state: ChannelState, detail: str) -> None:
        # Status changes are few (at most two per reconnect attempt, which backs off).
        if not self._closed:
            self._status_posted.emit(state, detail)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    @Slot(object)
    def _on_envelope(self, envelope: Envelope) -> None:
        with self._lock:
            self._queued -= 1
            closed = self._closed
            overflowed, self._overflowed = self._overflowed, False
        if closed:
            return
        self.envelope.emit(envelope)
        if overflowed:
            self.overflow.emit()

    @Slot(object, str)
    def _on_status(self, state: ChannelState, detail: str) -> None:
        if not self._closed:
            self.status.emit(state, detail)
