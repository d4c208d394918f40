"""Crash-safe incremental dual-channel WAV writer: a SIPREC call's caller (left) and agent (right).

Each channel is fed by its own ``VoiceTimeline`` with ``(position, samples)`` chunks; a
``ChannelAligner`` interleaves them with bounded buffering (a lagging channel is filled with
silence once it is ``max_lag`` seconds behind). The file follows ``WavWriter``'s crash-safety
rule, for 16-bit stereo: a valid 44-byte header with zero sizes goes first, frames are appended,
and at most every ``sync_interval`` seconds the RIFF and data sizes are rewritten to cover them
(the data fsync'ed first every 5 s and on close, see ``syncer``), so a SIGKILL leaves a readable
WAV at most that much short of what was written. ``close(end_position)`` pads both channels to
the call's end and writes exact sizes. As in ``WavWriter``, ``maybe_sync`` leaves the fsync and
the header to a background thread.
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from server.errors import WavSizeLimitError, WavWriterError
from server.voice.header_sync import HeaderSync, SyncedWriter
from server.voice.mixdown import AlignStats, ChannelAligner
from server.voice.timeline import Chunk

log = logging.getLogger(__name__)

HEADER_SIZE = 44
CHANNELS = 2
SAMPLE_WIDTH = 2
FRAME_BYTES = CHANNELS * SAMPLE_WIDTH
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_SIZE - 8)  # both size fields are unsigned 32-bit
_ZERO_BLOCK_FRAMES = 16 * 1024


class Channel(IntEnum):
    CALLER = 0  # left
    AGENT = 1  # right


def stereo_wav_header(sample_rate: int, data_bytes: int) -> bytes:
    """The canonical 44-byte header of a 16-bit stereo PCM WAV holding ``data_bytes`` of frames."""
    return (
        b"RIFF"
        + struct.pack("<I", HEADER_SIZE - 8 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, CHANNELS, sample_rate, sample_rate * FRAME_BYTES, FRAME_BYTES, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class StereoWavWriter(SyncedWriter):
    """Append-only writer of one two-channel voice file; not thread-safe (one call, one loop).

    After any ``WavWriterError`` the writer is broken (frame positions would no longer match the
    file) and every further write raises; ``close`` still tries to leave exact sizes.
    """

    def __init__(
        self,
        path: Path,
        sample_rate: int = 8000,
        sync_interval: float = 0.5,  # with the reorder window, keeps a crash ≤ 1 s short
        # Longer than a busy process's batches of reads (after a loop iteration of ~0.6 s one
        # channel's socket is read, and its runs placed, before the other's): a shorter bound
        # replaced live audio of the channel read second with silence. Real lag (a stalled
        # channel) is filled by its own timeline's flush long before this.
        max_lag: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self._data_bytes = 0
        self._broken: str | None = None
        self._open_channels = CHANNELS  # ``ChannelWriter.close`` calls still to come
        # Channel writers are closed from threads (their close may finalise the file): one at a time.
        self._channels_lock = threading.Lock()
        self._lengths: dict[Channel, int] = {}
        self._aligner = ChannelAligner(
            self._append_frames, CHANNELS, max_lag=round(max_lag * sample_rate), block=sample_rate
        )
        try:
            # Exclusive create: a recording must never silently replace another one.
            self._file: BinaryIO | None = open(path, "x+b")  # read too: a late pause rewrites one channel
            self._file.write(stereo_wav_header(sample_rate, 0))
            self._file.flush()  # a crash right after the answer still leaves a readable, empty WAV
        except OSError as exc:
            raise WavWriterError(f"cannot create voice file {path}: {exc}") from exc
        self._sync = HeaderSync(path, sync_interval, clock)

    @property
    def frames_written(self) -> int:
        return self._data_bytes // FRAME_BYTES

    @property
    def frames_synced(self) -> int:
        """Frames the on-disk header currently covers (what survives a crash)."""
        return self._sync.synced_bytes // FRAME_BYTES

    @property
    def stats(self) -> AlignStats:
        return self._aligner.stats

    @property
    def closed(self) -> bool:
        return self._file is None

    def channel_end(self, channel: Channel) -> int:
        """The position the channel's next sample goes to (written plus buffered)."""
        return self._aligner.end(channel)

    def write(self, channel: Channel, position: int, samples: npt.NDArray[np.int16]) -> None:
        """Add one channel's samples at sample ``position``; frames complete in both go to disk."""
        if samples.dtype != np.int16:
            raise TypeError(f"the voice file holds int16 samples, got {samples.dtype}")
        self._check_writable()
        self._aligner.push(channel, position, samples)
        self.maybe_sync()

    def zero(self, channel: Channel, start: int, end: int) -> None:
        """Silence one channel's samples ``[start, end)``, buffered or already on disk (late pause)."""
        handle = self._check_writable()
        start, end = self._aligner.zero(channel, start, end)
        end = min(end, self.frames_written)
        try:
            position = start
            while position < end:
                count = min(_ZERO_BLOCK_FRAMES, end - position)
                handle.seek(HEADER_SIZE + position * FRAME_BYTES)
                block = np.frombuffer(handle.read(count * FRAME_BYTES), dtype="<i2").reshape(-1, CHANNELS)
                block = block.copy()
                block[:, int(channel)] = 0
                handle.seek(HEADER_SIZE + position * FRAME_BYTES)
                handle.write(block.tobytes())
                position += count
            handle.seek(0, os.SEEK_END)
        except (OSError, ValueError) as exc:
            self._broken = str(exc)
            raise WavWriterError(f"cannot silence samples in {self.path}: {exc}") from exc

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

    def close(
        self, end_position: int | None = None, tails: Mapping[Channel, Iterable[Chunk]] | None = None
    ) -> None:
        """Pad both channels to ``end_position`` (or to the longer one), write exact sizes, close.

        ``tails`` are the chunks of each channel's ``VoiceTimeline.finish``: they are buffered
        without the lag window, since one timeline's padding to the end must not push the other
        channel's last (reorder-window) audio out as "lagging". Audio beyond ``end_position`` is
        dropped; calling ``close`` again does nothing.
        """
        if self._file is None:
            return
        try:
            self._sync.settle()
            # An earlier background failure is raised, but only after trying for exact sizes.
            failure = self._sync.take_failure()
            if failure is not None:
                self._broken = str(failure)
            if self._broken is None:
                self.end_of_call()
                for channel, chunks in (tails or {}).items():
                    for chunk in chunks:
                        self._aligner.push(channel, chunk.position, chunk.samples)
                if end_position is None:
                    end_position = max(self._aligner.end(c) for c in Channel)
                self._aligner.finish(end_position)
                if self.frames_written > end_position:
                    self._truncate(end_position)
                self._log_alignment()
            self._sync.sync(self._file, self._data_bytes, durable_header=True)
            if failure is not None:
                raise failure
        finally:
            self._file.close()
            self._file = None

    def _log_alignment(self) -> None:
        """Say so when a channel was filled or had audio dropped: the file is not what arrived."""
        stats = self._aligner.stats
        if any(stats.filled) or any(stats.dropped) or any(stats.discarded_at_end):
            log.warning(
                "voice file %s: silence filled for a lagging channel %s samples, audio dropped %s, "
                "cut at the end %s (caller, agent)",
                self.path,
                stats.filled,
                stats.dropped,
                stats.discarded_at_end,
            )

    def end_of_call(self) -> None:
        """The call is over: stop filling a lagging channel, since each timeline's ``finish`` pads
        its channel to the end and must not push the other channel's last audio out as late."""
        self._aligner.max_lag = sys.maxsize

    def channel(self, channel: Channel) -> ChannelWriter:
        """A ``WavWriter``-shaped view of one channel, for code written against the mono writer."""
        return ChannelWriter(self, channel)

    def _channel_closed(self, channel: Channel, length: int) -> None:
        with self._channels_lock:
            self._lengths.setdefault(channel, length)
            self._open_channels -= 1
            if self._open_channels == 0:
                self.close(max(self._lengths.values(), default=None))

    def _append_frames(self, frames: npt.NDArray[np.int16]) -> None:
        handle = self._open_file()
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

    def _truncate(self, frames: int) -> None:
        handle = self._open_file()
        new_bytes = max(0, frames) * FRAME_BYTES
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

    def _check_writable(self) -> BinaryIO:
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

    def __enter__(self) -> StereoWavWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ChannelWriter:
    """One channel of a ``StereoWavWriter`` with the interface ``RtpSession`` uses on ``WavWriter``.

    Positions are the channel's own (its timeline's), not the aligner's, which may be ahead after
    a lag fill. The stereo file is closed when every channel's writer has been closed, at the
    longest length given to ``truncate`` (or written).
    """

    def __init__(self, stereo: StereoWavWriter, channel: Channel) -> None:
        self._stereo = stereo
        self._channel = channel
        self._position = 0
        self._closed = False

    @property
    def path(self) -> Path:
        return self._stereo.path

    @property
    def samples_written(self) -> int:
        return self._position

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        if self._closed:
            raise WavWriterError(f"channel {self._channel.name} of {self.path} is already closed")
        self._stereo.write(self._channel, self._position, samples)
        self._position += len(samples)

    def zero(self, start: int, end: int) -> None:
        self._stereo.zero(self._channel, start, end)

    def truncate(self, samples: int) -> None:
        """Record the channel's final length; the stereo file is cut to it at close."""
        self._position = min(self._position, max(0, samples))
        self._stereo._lengths[self._channel] = self._position

    def maybe_sync(self) -> None:
        self._stereo.maybe_sync()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stereo._channel_closed(self._channel, self._position)
