"""Background fsync for the crash-safe WAV writers: keeps the event loop out of the kernel.

The writers' rule (see ``wav_writer``): frames are appended, and at most every ``sync_interval``
they are fsync'ed *before* the RIFF and data sizes are rewritten to cover them. With a thousand
calls that is ~2,000 fsyncs a second, each blocking its caller for about a millisecond, so one
daemon thread per process does them. The writer flushes its Python buffer and hands over an
``os.dup`` of its fd (a writer closed meanwhile cannot make the thread fsync a reused fd number)
and the byte count to cover; the thread fsyncs, then ``os.pwrite``s both sizes (pwrite leaves the
offset the writer appends at alone) and publishes the count the header now covers.

**Durability interval.** The header is rewritten every ``sync_interval`` (0.5 s), but the data is
fsync'ed before it only every ``durable_interval`` (5 s) and on close. Against a crashed or killed
*process* the page cache is enough: what was written survives it, so the header alone keeps the
file playable to within ``sync_interval``. fsync guards against a crash of the *machine* (power
loss), and at 2,000 fsyncs a second (1,000 calls, 0.5 s) the disk's journal could not keep up:
file creation for new calls stalled behind it for seconds (benchmarks/RESULTS.md). So after a
power loss up to ``durable_interval`` of audio may be missing, and the header may then claim
more data than the file holds (the file size, journalled after the data, is what a reader
trusts).

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
import math
import os
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from server.rtp.ratelog import RateLimitedLog
from server.voice.errors import WavWriterError

log = logging.getLogger(__name__)
_ratelog = RateLimitedLog(log)

HEADER_SIZE = 44
_RIFF_SIZE_OFFSET = 4
_DATA_SIZE_OFFSET = 40
QUEUE_CAPACITY = 8192
# A running request is one fsync; waiting longer than this means the disk hangs, and the writer's
# own fsync will then block as long anyway.
SETTLE_TIMEOUT = 5.0
EXIT_DRAIN_TIMEOUT = 10.0
DURABLE_INTERVAL = 5.0  # data fsync'ed at least this often (module docstring)


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


class HeaderSync:
    """One writer's crash-safety timing: when to sync, in the background or now, and its errors.

    Not thread-safe itself (one writer, one event loop); only the slot is shared with the thread.
    """

    def __init__(
        self,
        path: Path,
        sync_interval: float,
        clock: Callable[[], float] = time.monotonic,
        syncer: Syncer | None = None,
        durable_interval: float = DURABLE_INTERVAL,
    ) -> None:
        self._path = path
        self.sync_interval = sync_interval
        self.durable_interval = durable_interval
        self._last_durable = -math.inf  # the first background sync is a durable one
        self._clock = clock
        self._syncer = syncer  # None: the process-wide one, looked up on first use
        self._slot = SyncSlot()
        self._last_sync = clock()
        self._deferred = False  # this round was skipped already (count it once)
        self.skipped = 0

    @property
    def synced_bytes(self) -> int:
        """Bytes of data the on-disk header covers."""
        return self._slot.synced_bytes

    @property
    def pending(self) -> bool:
        return self._slot.pending

    def wait(self, timeout: float = 5.0) -> bool:
        """Wait for a background sync in flight to finish; False if one is still running."""
        return self._slot.wait(timeout)

    def take_failure(self) -> WavWriterError | None:
        """A background failure not reported yet, as the error a synchronous sync would raise."""
        if self._slot.error is None:
            return None
        error = self._slot.take_error()
        if error is None:
            return None
        failure = WavWriterError(f"cannot sync voice file {self._path}: {error}")
        failure.__cause__ = error
        return failure

    def check(self) -> None:
        """Raise a background failure not reported yet (once)."""
        failure = self.take_failure()
        if failure is not None:
            raise failure

    def settle(self) -> None:
        """Make sure no background request can write sizes any more (before cutting or closing)."""
        if self._slot.pending and not self._slot.settle():
            _ratelog.warning(
                "settle", "WAV syncer: fsync of %s still running after %.0f s", self._path, SETTLE_TIMEOUT
            )

    def maybe_sync(self, handle: BinaryIO, data_bytes: int) -> None:
        """If due, flush here and hand fsync + header to the syncer; never waits for the disk."""
        self.check()
        now = self._clock()
        if now - self._last_sync < self.sync_interval:
            return
        syncer = self._syncer or default_syncer()
        if syncer.closed:  # interpreter exit: nobody left to do it in the background
            self.sync(handle, data_bytes)
            return
        if self._slot.pending:
            self._skip(syncer, "pending", "previous fsync still pending")
            return
        try:
            handle.flush()  # the thread's fsync must see every byte the header will cover
            fd = os.dup(handle.fileno())
        except OSError as exc:
            if exc.errno != errno.EMFILE:
                raise WavWriterError(f"cannot sync voice file {self._path}: {exc}") from exc
            syncer.stats.skipped_dup += 1
            self._skip(syncer, "dup", "no fd to dup")
            return
        durable = now - self._last_durable >= self.durable_interval
        if not syncer.submit(self._slot, fd, data_bytes, durable):
            self._skip(syncer, "full", "syncer queue full")
            return
        if durable:
            self._last_durable = now
        self._last_sync = now
        self._deferred = False

    def sync(self, handle: BinaryIO, data_bytes: int, durable_header: bool = False) -> None:
        """Sync now on the caller's thread: data fsync'ed, then the sizes (then the header too)."""
        self.settle()
        self.check()
        try:
            handle.flush()
            fd = handle.fileno()
            os.fsync(fd)
            self._slot.write_sizes(fd, data_bytes)
            if durable_header:
                os.fsync(fd)
        except OSError as exc:
            raise WavWriterError(f"cannot sync voice file {self._path}: {exc}") from exc
        self._last_sync = self._last_durable = self._clock()
        self._deferred = False

    def lower(self, data_bytes: int) -> None:
        self._slot.lower(data_bytes)

    def _skip(self, syncer: Syncer, reason: str, what: str) -> None:
        # Retried on the next call; counted once per round so per-packet calls do not inflate it.
        if self._deferred:
            return
        self._deferred = True
        self.skipped += 1
        if reason == "pending":
            syncer.stats.skipped_pending += 1
        _ratelog.warning(reason, "WAV syncer: %s for %s; header sync deferred", what, self._path)
