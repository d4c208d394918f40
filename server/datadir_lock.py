"""One server per data directory: an exclusive ``flock`` on ``<data_dir>/server.lock``.

Two servers on one data directory corrupt each other's work: the second one's start-up recovery
marks the first one's live calls interrupted and moves their audio away mid-call. The lock is
taken before anything else touches the directory (recovery, migrations, the live dir) and held
for the life of the process; the kernel drops it when the process dies, however it dies (kill -9
included), so a stale lock file never keeps a restarted server out. The holder's pid is written
into the file, for the refusal message only — the lock, not the pid, is what counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from server.errors import DataDirInUseError

LOCK_NAME = "server.lock"


class DataDirLock:
    """Held while the object lives (or until ``release``); one per process and data directory."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire(data_dir: Path) -> DataDirLock:
    """Lock ``data_dir`` (created if missing) or raise ``DataDirInUseError`` at once."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    # O_CLOEXEC: RTP workers and encoders must not inherit (and so outlive us holding) the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise DataDirInUseError(data_dir, pid) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(path, fd)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None
