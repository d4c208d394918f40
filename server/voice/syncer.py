"""Background fsync for the crash-safe WAV writers: keeps the event loop out of the kernel.

The writers' rule (see ``wav_writer``): frames are appended, and at most every ``sync_interval``
the RIFF and data sizes are rewritten to cover them, the data fsync'ed first on a *durable*
request (when and why: ``header_sync``). An fsync blocks its caller for about a millisecond, so
one daemon thread per process does the work. The writer flushes its Python buffer and hands over
an ``os.dup`` of its fd (a writer closed meanwhile cannot make the thread fsync a reused fd number)
and the byte count to cover; the thread fsyncs (if durable), then ``os.pwrite``s both sizes
(pwrite leaves the offset the writer appends at alone) and publishes the count the header now
covers. The per-writer timing on top of this is ``header_sync.HeaderSync``.

Each writer has at most one request in flight: one whose previous request is still pending skips
the round (counted), so the bounded queue never holds more than one request per open writer.
Synchronous operations (explicit sync, truncate, close) first settle the pending request: a
queued one is cancelled, a running one waited for (bounded), and one outliving the wait is barred
from writing its by then stale sizes. Errors in the thread are kept and raised as
``WavWriterError`` by the writer's next call.
"""

from __future__ import annotations

import atexit
import enum
import errno
import logging
import os
import queue
import struct
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

HEADER_SIZE = 44
_RIFF_SIZE_OFFSET = 4
_DATA_SIZE_OFFSET = 40
QUEUE_CAPACITY = 8192
# A running request is one fsync; waiting longer than this means the disk hangs, and the writer's
# own fsync will then block as long anyway.
SETTLE_TIMEOUT = 5.0
EXIT_DRAIN_TIMEOUT = 10.0


def write_sizes(fd: int, data_bytes: int) -> None:
    """Rewrite the RIFF and data sizes of a canonical 44-byte WAV header, leaving the offset alone."""
    for offset, value in ((_RIFF_SIZE_OFFSET, HEADER_SIZE - 8 + data_bytes), (_DATA_SIZE_OFFSET, data_bytes)):
        if os.pwrite(fd, struct.pack("<I", value), offset) != 4:
            raise OSError(errno.EIO, "short write of the WAV header")


class _State(enum.Enum):
    QUEUED = enum.auto()
    RUNNING = enum.auto()
    DONE = enum.auto()
    CANCELLED = enum.auto()


class _Request:
    __slots__ = ("data_bytes", "durable", "fd", "slot", "stale", "state")

    def __init__(self, slot: SyncSlot, fd: int, data_bytes: int, durable: bool = True) -> None:
        self.slot = slot
        self.fd = fd
        self.data_bytes = data_bytes
        self.durable = durable  # fsync the data before the sizes are written
        self.state = _State.QUEUED
        self.stale = False  # set when a synchronous sync stopped waiting for it: no pwrite then


class SyncSlot:
    """One writer's side of the syncer: its request in flight and what finished requests left.

    Everything the thread touches is guarded by ``lock``; the writer reads ``pending`` and
    ``error`` without it as cheap hints and takes the lock to act on them.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.synced_bytes = 0
        self.error: OSError | None = None
        self.request: _Request | None = None
        self._idle = threading.Event()
        self._idle.set()

    @property
    def pending(self) -> bool:
        return self.request is not None

    def take_error(self) -> OSError | None:
        with self.lock:
            error, self.error = self.error, None
        return error

    def wait(self, timeout: float) -> bool:
        """Wait for the request in flight to finish (without cancelling it); False on timeout."""
        return self._idle.wait(timeout)

    def settle(self, timeout: float | None = None) -> bool:
        """Leave nothing that could still write sizes: cancel a queued request, wait for a running
        one; False if it outlived ``timeout`` (it is then barred from writing sizes)."""
        timeout = SETTLE_TIMEOUT if timeout is None else timeout
        with self.lock:
            request = self.request
            if request is None:
                return True
            if request.state is _State.QUEUED:
                request.state = _State.CANCELLED
                os.close(request.fd)  # the thread drops a cancelled request without touching it
                self._release(request)
                return True
        if self._idle.wait(timeout):
            return True
        with self.lock:
            request.stale = True
            self._release(request)
        return False

    def write_sizes(self, fd: int, data_bytes: int) -> None:
        """Rewrite the sizes now, from the writer's thread (its own data already fsync'ed)."""
        with self.lock:
            write_sizes(fd, data_bytes)
            self.synced_bytes = data_bytes

    def lower(self, data_bytes: int) -> None:
        """The file was cut: it covers at most ``data_bytes`` whatever the header says."""
        with self.lock:
            self.synced_bytes = min(self.synced_bytes, data_bytes)

    def _claim(self, request: _Request) -> None:
        with self.lock:
            self.request = request
            self._idle.clear()

    def _release(self, request: _Request) -> None:
        # Caller holds ``lock``.
        if self.request is request:
            self.request = None
            self._idle.set()


@dataclass
class SyncerStats:
    queued: int = 0
    synced: int = 0
    failed: int = 0
    skipped_pending: int = 0  # a writer's previous request was still in flight
    skipped_full: int = 0  # the queue was full
    skipped_dup: int = 0  # no fd left to dup


class Syncer:
    """The background thread (started on first use) and its bounded queue of requests."""

    def __init__(self, capacity: int = QUEUE_CAPACITY, name: str = "wav-syncer") -> None:
        self._queue: queue.Queue[_Request | None] = queue.Queue(capacity)
        self._name = name
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.closed = False
        self.stats = SyncerStats()

    def submit(self, slot: SyncSlot, fd: int, data_bytes: int, durable: bool = True) -> bool:
        """Queue (fsync +) sizes for ``fd`` (owned from now on); False if the queue is full or shut."""
        request = _Request(slot, fd, data_bytes, durable)
        slot._claim(request)
        if self._ensure_thread():
            try:
                self._queue.put_nowait(request)
                self.stats.queued += 1
                return True
            except queue.Full:
                self.stats.skipped_full += 1
        with slot.lock:
            slot._release(request)
        os.close(fd)
        return False

    def shutdown(self, timeout: float = EXIT_DRAIN_TIMEOUT) -> None:
        """Finish what is queued, then stop the thread (bounded); later submits are refused."""
        with self._start_lock:
            self.closed = True
            thread = self._thread
        if thread is None or not thread.is_alive():
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("WAV syncer: queue still full at shutdown; headers may lag behind the data")
            return
        thread.join(max(0.0, deadline - time.monotonic()))

    def _ensure_thread(self) -> bool:
        if self._thread is not None and self._thread.is_alive():
            return True
        with self._start_lock:
            if self.closed:
                return False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return True

    def _run(self) -> None:
        while True:
            request = self._queue.get()
            if request is None:
                return
            try:
                self._execute(request)
            except Exception:  # a bug must not stop every other call's syncs
                log.exception("WAV syncer: unexpected error")
                with request.slot.lock:
                    request.slot._release(request)

    def _execute(self, request: _Request) -> None:
        slot = request.slot
        with slot.lock:
            if request.state is _State.CANCELLED:
                return  # the writer closed the fd already
            request.state = _State.RUNNING
        error: OSError | None = None
        try:
            if request.durable:
                os.fsync(request.fd)
        except OSError as exc:
            error = exc
        with slot.lock:
            try:
                if error is None and not request.stale:
                    write_sizes(request.fd, request.data_bytes)
                    slot.synced_bytes = request.data_bytes
            except OSError as exc:
                error = exc
            try:
                os.close(request.fd)
            except OSError as exc:
                error = error or exc
            # Kept even when stale: the dup shares the file description, so this fsync consumed the
            # kernel's writeback error and the writer's own fsync would no longer see it.
            if error is not None and slot.error is None:
                slot.error = error
            request.state = _State.DONE
            slot._release(request)
        if error is None:
            self.stats.synced += 1
        else:
            self.stats.failed += 1


_default: Syncer | None = None
_default_lock = threading.Lock()


def default_syncer() -> Syncer:
    """The process-wide syncer; drained and stopped at interpreter exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Syncer()
            atexit.register(_default.shutdown)
        return _default


def _forget_default_in_child() -> None:
    # A forked child has no syncer thread and possibly a queue locked mid-put: start afresh.
    global _default, _default_lock
    _default = None
    _default_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_default_in_child)
