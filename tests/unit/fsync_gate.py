"""Test doubles shared by the WAV syncer and writer tests: a gate on the syncer thread's fsync and
a settable clock."""

from __future__ import annotations

import os
import threading


class FsyncGate:
    """Makes ``os.fsync`` in the syncer thread block until opened, or fail; others pass through."""

    def __init__(self, thread_name: str) -> None:
        self._thread_name = thread_name
        self._real = os.fsync
        self.open = threading.Event()
        self.entered = threading.Event()
        self.error: OSError | None = None
        self.calls: list[str] = []

    def __call__(self, fd: int) -> None:
        name = threading.current_thread().name
        self.calls.append(name)
        if name == self._thread_name:
            self.entered.set()
            assert self.open.wait(10), "test never opened the fsync gate"
            if self.error is not None:
                raise self.error
        self._real(fd)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
