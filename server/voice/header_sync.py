"""``HeaderSync``: one crash-safe WAV writer's sync timing, on top of the process's ``Syncer``.

When a sync is due, in the background or now; its errors, raised by the writer's next call.
``SyncedWriter`` gives both writers the same read-outs of it.

**Durability interval.** The header is rewritten every ``sync_interval`` (0.5 s), but the data is
fsync'ed before it only every ``durable_interval`` (5 s) and on close. Against a crashed or killed
*process* the page cache is enough: what was written survives it, so the header alone keeps the
file playable to within ``sync_interval``. fsync guards against a crash of the *machine* (power
loss), and at 2,000 fsyncs a second (1,000 calls, 0.5 s) the disk's journal could not keep up:
file creation for new calls stalled behind it for seconds (benchmarks/RESULTS.md). So after a
power loss up to ``durable_interval`` of audio may be missing, and the header may then claim
more data than the file holds (the file size, journalled after the data, is what a reader
trusts).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from server.errors import WavWriterError
from server.ratelog import RateLimitedLog
from server.voice.syncer import SETTLE_TIMEOUT, Syncer, SyncSlot, default_syncer

DURABLE_INTERVAL = 5.0  # data fsync'ed at least this often (module docstring)

_ratelog = RateLimitedLog(logging.getLogger(__name__))


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


class SyncedWriter:
    """The sync read-outs both WAV writers offer, over their ``_sync`` (a ``HeaderSync``)."""

    _sync: HeaderSync

    @property
    def sync_interval(self) -> float:
        return self._sync.sync_interval

    @sync_interval.setter
    def sync_interval(self, value: float) -> None:
        self._sync.sync_interval = value

    @property
    def syncs_skipped(self) -> int:
        """Due syncs put off because the previous background one was still pending (or no room)."""
        return self._sync.skipped

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Wait for a background sync in flight; False if one is still running after ``timeout``."""
        return self._sync.wait(timeout)
