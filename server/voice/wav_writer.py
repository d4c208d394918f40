"""Crash-safe incremental WAV writer for call recordings (16-bit mono PCM).

A call can last hours and the server can die at any moment, so the file is never held in memory
and is always a valid WAV: the 44-byte header goes first with sizes of zero, samples are
appended, and at most every ``sync_interval`` seconds the data is flushed and the RIFF and data
sizes are rewritten to cover it (fsync'ed first every ``syncer.DURABLE_INTERVAL``, 5 s, and on
close: see ``syncer`` for why not every time). A SIGKILL therefore leaves a file whose header
describes only samples that reached the kernel, at most ``sync_interval`` older than the kill,
which ``wave`` and ffmpeg read like any other WAV. ``close`` writes the exact final sizes.
``maybe_sync`` leaves the fsync and the header to a background thread (``syncer``), so the header
lags by that fsync too; a failure there is raised by the writer's next call.

The default interval is 0.5 s, not 1 s: samples reach the writer up to ~0.1 s after they were
spoken (RTP packetisation plus the timeline's reorder window), and a recording must survive a kill
up to at most 1 s before it (tests/e2e/test_server_kill.py); 1 s syncs missed that by 20-50 ms.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from server.errors import WavSizeLimitError, WavWriterError
from server.voice.header_sync import HeaderSync, SyncedWriter

HEADER_SIZE = 44
SAMPLE_WIDTH = 2
# Both size fields are unsigned 32-bit; the RIFF one counts 36 header bytes on top of the data.
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_SIZE - 8)


def wav_header(sample_rate: int, data_bytes: int) -> bytes:
    """The canonical 44-byte header of a 16-bit mono PCM WAV holding ``data_bytes`` of samples."""
    byte_rate = sample_rate * SAMPLE_WIDTH
    return (
        b"RIFF"
        + struct.pack("<I", HEADER_SIZE - 8 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, SAMPLE_WIDTH, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavWriter(SyncedWriter):
    """Append-only writer of one voice file; not thread-safe (one call, one event loop)."""

    def __init__(
        self,
        path: Path,
        sample_rate: int = 8000,
        sync_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self._data_bytes = 0
        try:
            # Exclusive create: a recording must never silently replace another one.
            self._file: BinaryIO | None = open(path, "xb")
            self._file.write(wav_header(sample_rate, 0))
            # Even a crash right after the answer must leave a readable (empty) WAV.
            self._file.flush()
        except OSError as exc:
            raise WavWriterError(f"cannot create voice file {path}: {exc}") from exc
        self._sync = HeaderSync(path, sync_interval, clock)

    @property
    def samples_written(self) -> int:
        return self._data_bytes // SAMPLE_WIDTH

    @property
    def samples_synced(self) -> int:
        """Samples the on-disk header currently covers (what survives a crash)."""
        return self._sync.synced_bytes // SAMPLE_WIDTH

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        """Append samples; sync the header if ``sync_interval`` has passed since the last sync."""
        if samples.dtype != np.int16:
            raise TypeError(f"the voice file holds int16 samples, got {samples.dtype}")
        handle = self._open_file()
        self._sync.check()
        data = samples.astype("<i2", copy=False).tobytes()
        if self._data_bytes + len(data) > MAX_DATA_BYTES:
            raise WavSizeLimitError(f"{self.path} would exceed the 4 GiB WAV limit")
        try:
            handle.write(data)
        except OSError as exc:
            raise WavWriterError(f"cannot write voice file {self.path}: {exc}") from exc
        self._data_bytes += len(data)
        self.maybe_sync()

    def zero(self, start: int, end: int) -> None:
        """Overwrite already written samples ``[start, end)`` with silence (a late pause)."""
        handle = self._open_file()
        self._sync.check()
        start = max(0, start)
        end = min(end, self.samples_written)
        if start >= end:
            return
        try:
            handle.seek(HEADER_SIZE + start * SAMPLE_WIDTH)
            remaining = (end - start) * SAMPLE_WIDTH
            block = bytes(min(remaining, 64 * 1024))
            while remaining > 0:
                handle.write(block[:remaining])
                remaining -= len(block)
            handle.seek(0, os.SEEK_END)
        except OSError as exc:
            raise WavWriterError(f"cannot silence samples in {self.path}: {exc}") from exc

    def truncate(self, samples: int) -> None:
        """Cut the file to ``samples`` samples if it holds more (audio beyond the call's end)."""
        handle = self._open_file()
        self._sync.check()
        if samples >= self.samples_written:
            return
        new_bytes = max(0, samples) * SAMPLE_WIDTH
        self._sync.settle()  # no background pwrite of the old sizes after the cut
        try:
            handle.flush()
            handle.truncate(HEADER_SIZE + new_bytes)
            handle.seek(0, os.SEEK_END)
        except OSError as exc:
            raise WavWriterError(f"cannot truncate voice file {self.path}: {exc}") from exc
        self._data_bytes = new_bytes
        self._sync.lower(new_bytes)
        self.sync()

    def maybe_sync(self) -> None:
        """Sync in the background if the interval has passed; cheap enough for a periodic timer.

        Raises a failure of an earlier background sync."""
        if self._file is not None:
            self._sync.maybe_sync(self._file, self._data_bytes)

    def sync(self) -> None:
        """Make the samples written so far durable, then let the header cover them (now)."""
        self._sync.sync(self._open_file(), self._data_bytes)

    def close(self) -> None:
        """Write the final sizes and close; calling it again does nothing."""
        if self._file is None:
            return
        try:
            self._sync.settle()
            # An earlier background failure is raised, but only after trying for exact sizes.
            failure = self._sync.take_failure()
            self._sync.sync(self._file, self._data_bytes, durable_header=True)
            if failure is not None:
                raise failure
        finally:
            self._file.close()
            self._file = None

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise WavWriterError(f"voice file {self.path} is already closed")
        return self._file

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
