"""Crash-safe incremental WAV writer for call recordings (16-bit PCM, mono or more channels).

A call can last hours and the server can die at any moment, so the file is never held in memory
and is always a valid WAV: the 44-byte header goes first with sizes of zero, samples are
appended, and at most every ``sync_interval`` seconds the data is flushed and the RIFF and data
sizes are rewritten to cover it (fsync'ed first every ``syncer.DURABLE_INTERVAL``, 5 s, and on
close: see ``syncer`` for why not every time). A SIGKILL therefore leaves a file whose header
describes only samples that reached the kernel, at most ``sync_interval`` older than the kill,
which ``wave`` and ffmpeg read like any other WAV. ``close`` writes the exact final sizes.
``maybe_sync`` leaves the fsync and the header to a background thread (``syncer``), so the header
lags by that fsync too; a failure there is raised by the writer's next call.

One class for every voice file: ``channels=1`` is a plain call's stream, ``channels=2`` the file
under ``stereo_writer.StereoWavWriter``, which interleaves a SIPREC call's two legs (its aligner)
and writes the frames here.

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
_ZERO_BLOCK_FRAMES = 16 * 1024


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM WAV holding ``data_bytes`` of frames."""
    frame_bytes = channels * SAMPLE_WIDTH
    return (
        b"RIFF"
        + struct.pack("<I", HEADER_SIZE - 8 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * frame_bytes, frame_bytes, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavWriter(SyncedWriter):
    """Append-only writer of one voice file; not thread-safe (one call, one event loop).

    After any ``WavWriterError`` the writer is broken (frame positions would no longer match the
    file) and every further write raises; ``close`` still tries to leave exact sizes.
    """

    def __init__(
        self,
        path: Path,
        sample_rate: int = 8000,
        sync_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        *,
        channels: int = 1,
    ) -> None:
        if channels < 1:
            raise ValueError("a voice file has at least one channel")
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_bytes = channels * SAMPLE_WIDTH
        self._data_bytes = 0
        self._broken: str | None = None
        try:
            # Exclusive create: a recording must never silently replace another one. Read too:
            # silencing one channel of a multi-channel file rewrites the frames it is in.
            self._file: BinaryIO | None = open(path, "x+b")
            self._file.write(wav_header(sample_rate, 0, channels))
            # Even a crash right after the answer must leave a readable (empty) WAV.
            self._file.flush()
        except OSError as exc:
            raise WavWriterError(f"cannot create voice file {path}: {exc}") from exc
        self._sync = HeaderSync(path, sync_interval, clock)

    @property
    def frames_written(self) -> int:
        return self._data_bytes // self.frame_bytes

    @property
    def frames_synced(self) -> int:
        """Frames the on-disk header currently covers (what survives a crash)."""
        return self._sync.synced_bytes // self.frame_bytes

    @property
    def samples_written(self) -> int:
        """Per channel: ``frames_written`` (the name the mono file's users know it by)."""
        return self.frames_written

    @property
    def samples_synced(self) -> int:
        return self.frames_synced

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, frames: npt.NDArray[np.int16]) -> None:
        """Append frames; sync the header if ``sync_interval`` has passed since the last sync."""
        self.append(frames)
        self.maybe_sync()

    def append(self, frames: npt.NDArray[np.int16]) -> None:
        """Append frames (samples for mono; ``(n, channels)`` or interleaved otherwise), no sync."""
        if frames.dtype != np.int16:
            raise TypeError(f"the voice file holds int16 samples, got {frames.dtype}")
        if frames.size % self.channels:
            raise ValueError(f"{frames.size} samples are no whole frames of {self.channels} channels")
        handle = self.check_writable()
        data = frames.astype("<i2", copy=False).tobytes()
        if self._data_bytes + len(data) > MAX_DATA_BYTES:
            self._broken = "size limit"
            raise WavSizeLimitError(f"{self.path} would exceed the 4 GiB WAV limit")
        try:
            handle.write(data)
        except OSError as exc:
            self._broken = str(exc)
            raise WavWriterError(f"cannot write voice file {self.path}: {exc}") from exc
        self._data_bytes += len(data)

    def zero(self, start: int, end: int, channel: int | None = None) -> None:
        """Overwrite already written frames ``[start, end)`` with silence (a late pause): every
        channel, or only ``channel``."""
        handle = self.check_writable()
        start = max(0, start)
        end = min(end, self.frames_written)
        if start >= end:
            return
        try:
            if channel is None or self.channels == 1:
                handle.seek(HEADER_SIZE + start * self.frame_bytes)
                remaining = (end - start) * self.frame_bytes
                block = bytes(min(remaining, 64 * 1024))
                while remaining > 0:
                    handle.write(block[:remaining])
                    remaining -= len(block)
            else:
                position = start
                while position < end:
                    count = min(_ZERO_BLOCK_FRAMES, end - position)
                    handle.seek(HEADER_SIZE + position * self.frame_bytes)
                    raw = handle.read(count * self.frame_bytes)
                    frames = np.frombuffer(raw, dtype="<i2").reshape(-1, self.channels).copy()
                    frames[:, channel] = 0
                    handle.seek(HEADER_SIZE + position * self.frame_bytes)
                    handle.write(frames.tobytes())
                    position += count
            handle.seek(0, os.SEEK_END)
        except (OSError, ValueError) as exc:
            self._broken = str(exc)
            raise WavWriterError(f"cannot silence samples in {self.path}: {exc}") from exc

    def truncate(self, samples: int, *, sync: bool = True) -> None:
        """Cut the file to ``samples`` per channel (frames) if it holds more (audio beyond the
        call's end); ``sync``: let the header follow at once (``close`` does it anyway)."""
        handle = self.check_writable()
        if samples >= self.frames_written:
            return
        new_bytes = max(0, samples) * self.frame_bytes
        self._sync.settle()  # no background pwrite of the old sizes after the cut
        try:
            handle.flush()
            handle.truncate(HEADER_SIZE + new_bytes)
            handle.seek(0, os.SEEK_END)
        except OSError as exc:
            self._broken = str(exc)
            raise WavWriterError(f"cannot truncate voice file {self.path}: {exc}") from exc
        self._data_bytes = new_bytes
        self._sync.lower(new_bytes)
        if sync:
            self.sync()

    def maybe_sync(self) -> None:
        """Sync in the background if the interval has passed; cheap enough for a periodic timer.

        Raises a failure of an earlier background sync."""
        if self._file is None:
            return
        try:
            self._sync.maybe_sync(self._file, self._data_bytes)
        except WavWriterError as exc:
            self._broken = str(exc)
            raise

    def sync(self) -> None:
        """Make the frames written so far durable, then let the header cover them (now)."""
        handle = self._open_file()
        try:
            self._sync.sync(handle, self._data_bytes)
        except WavWriterError as exc:
            self._broken = str(exc)
            raise

    def close(self) -> None:
        """Write the final sizes and close; calling it again does nothing."""
        self.close_after(None)

    def close_after(self, before_final_sizes: Callable[[], None] | None) -> None:
        """``close``, running ``before_final_sizes`` first unless the writer is broken (the stereo
        writer pads its channels there), once no background sync can write sizes any more."""
        if self._file is None:
            return
        try:
            self._sync.settle()
            # An earlier background failure is raised, but only after trying for exact sizes.
            failure = self._sync.take_failure()
            if failure is not None:
                self._broken = str(failure)
            if self._broken is None and before_final_sizes is not None:
                before_final_sizes()
            self._sync.sync(self._file, self._data_bytes, durable_header=True)
            if failure is not None:
                raise failure
        finally:
            self._file.close()
            self._file = None

    def check_writable(self) -> BinaryIO:
        """The open file, or the error that stops writing (closed, broken, a background failure)."""
        handle = self._open_file()
        failure = self._sync.take_failure()
        if failure is not None:
            self._broken = str(failure)
            raise failure
        if self._broken is not None:
            raise WavWriterError(f"voice file {self.path} failed earlier ({self._broken}); not writing")
        return handle

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise WavWriterError(f"voice file {self.path} is already closed")
        return self._file

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
