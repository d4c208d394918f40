"""Free space on the disks recordings go to, checked before they are full.

A full disk used to fail late and badly: the call that hit it stayed ``active``, new calls got
SIP 500 and ``/healthz`` still said ok. The guard reads ``statvfs`` of the live directory (voice
files while calls last) and the storage directory (finished recordings) every few seconds; below
the threshold — ``min_free_bytes`` or ``min_free_percent`` of the disk, whichever is larger — new
calls are refused with SIP 503 + Retry-After (the SRC retries later or fails over to another
recorder) while the calls in progress go on with the space that is left. ``/healthz`` reports the
readings and answers 503 while space is low; the change is written to the audit log for admins.

``evaluate`` is the pure policy; ``DiskGuard`` adds the readings and the periodic check.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 300  # what a refused SRC is told: space does not come back in seconds


@dataclass(frozen=True, slots=True)
class DiskReading:
    path: Path
    free: int  # bytes available to this (unprivileged-equivalent) process
    total: int
    inodes_free: int | None = None  # None: the filesystem has no inode limit (or says none)


@dataclass(frozen=True, slots=True)
class DiskStatus:
    ok: bool
    readings: tuple[DiskReading, ...] = ()
    problem: str = ""  # why not ok, for people

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "problem": self.problem,
            "paths": [{"path": str(r.path), "free": r.free, "total": r.total} for r in self.readings],
        }


def threshold(total: int, min_free_bytes: int, min_free_percent: float) -> int:
    """Free bytes below which a disk of ``total`` bytes counts as low."""
    return max(min_free_bytes, int(total * min_free_percent / 100))


def evaluate(
    readings: Sequence[DiskReading],
    min_free_bytes: int,
    min_free_percent: float,
    enospc: str | None = None,
) -> DiskStatus:
    """Low if any path is below its threshold, or if a write already failed for lack of space
    (``enospc``: what failed) and no reading since shows that space has come back."""
    # No free space at all — or no free inode, where a new file fails as surely — is low whatever
    # the threshold (even 0: the guard switched off).
    low = [
        r
        for r in readings
        if r.free == 0 or r.inodes_free == 0 or r.free < threshold(r.total, min_free_bytes, min_free_percent)
    ]
    if low:
        parts = [
            f"{r.path}: no free inodes"
            if r.inodes_free == 0
            else f"{r.path}: {r.free / 1024**2:.0f} MiB free, needs "
            f"{threshold(r.total, min_free_bytes, min_free_percent) / 1024**2:.0f} MiB"
            for r in low
        ]
        return DiskStatus(False, tuple(readings), "disk space low — " + "; ".join(parts))
    if enospc is not None:
        return DiskStatus(False, tuple(readings), f"disk full: {enospc}")
    return DiskStatus(True, tuple(readings))


def read_disk(path: Path) -> DiskReading:
    st = os.statvfs(path)
    inodes = st.f_favail if st.f_files > 0 else None  # btrfs and others report no inode limit
    return DiskReading(path, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, inodes)


class DiskGuard:
    """The current disk status, refreshed by ``run`` (a task) and by ``note_enospc``."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        min_free_bytes: int,
        min_free_percent: float,
        interval: float = 5.0,
        reader: Callable[[Path], DiskReading] = read_disk,
        on_change: Callable[[DiskStatus], object] | None = None,
    ) -> None:
        self._paths = tuple(dict.fromkeys(paths))  # live and storage are often one disk
        self._min_bytes = min_free_bytes
        self._min_percent = min_free_percent
        self._interval = interval
        self._reader = reader
        self.on_change = on_change
        self.status = DiskStatus(True)

    @property
    def ok(self) -> bool:
        return self.status.ok

    def check(self) -> DiskStatus:
        """Read every path now (a ``statvfs`` each: fast, but a disk call — not on the loop)."""
        readings = []
        for path in self._paths:
            try:
                readings.append(self._reader(path))
            except OSError as exc:  # a missing or dead mount is no space at all
                log.error("cannot read the free space of %s: %s", path, exc)
                readings.append(DiskReading(path, 0, 0))
        # Fresh readings decide: an earlier ENOSPC counts only until space is seen again.
        status = evaluate(readings, self._min_bytes, self._min_percent)
        self._set(status)
        return status

    def note_enospc(self, what: str) -> None:
        """A write failed with ENOSPC: low at once, not at the next periodic check."""
        self._set(evaluate(self.status.readings, self._min_bytes, self._min_percent, what))

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.check)
            await asyncio.sleep(self._interval)

    def _set(self, status: DiskStatus) -> None:
        changed = status.ok != self.status.ok
        self.status = status
        if changed:
            if status.ok:
                log.warning("disk space is back: new calls are accepted again")
            else:
                log.error("%s: new calls are refused until space is freed", status.problem)
            if self.on_change is not None:
                self.on_change(status)
