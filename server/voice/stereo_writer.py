"""The dual-channel voice file of a SIPREC call: the caller on the left, the agent on the right.

Each channel is fed by its own ``VoiceTimeline`` with ``(position, samples)`` chunks; a
``ChannelAligner`` interleaves them with bounded buffering (a lagging channel is filled with
silence once it is ``max_lag`` seconds behind) and the frames go into a two-channel ``WavWriter``,
which keeps the file crash-safe exactly as it does a mono one (valid header first, sizes
rewritten at most every ``sync_interval``, fsync'ed every 5 s and on close, see ``syncer``).
``close(end_position)`` pads both channels to the call's end and writes exact sizes.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from server.errors import WavWriterError
from server.voice.header_sync import SyncedWriter
from server.voice.mixdown import AlignStats, ChannelAligner
from server.voice.timeline import Chunk
from server.voice.wav_writer import WavWriter, wav_header

log = logging.getLogger(__name__)

CHANNELS = 2


class Channel(IntEnum):
    CALLER = 0  # left
    AGENT = 1  # right


def stereo_wav_header(sample_rate: int, data_bytes: int) -> bytes:
    """The canonical 44-byte header of a 16-bit stereo PCM WAV holding ``data_bytes`` of frames."""
    return wav_header(sample_rate, data_bytes, CHANNELS)


class StereoWavWriter(SyncedWriter):
    """The two channels of one voice file; not thread-safe (one call, one loop).

    After any ``WavWriterError`` the file is broken (frame positions would no longer match it)
    and every further write raises; ``close`` still tries to leave exact sizes.
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
        self._open_channels = CHANNELS  # ``ChannelWriter.close`` calls still to come
        # Channel writers are closed from threads (their close may finalise the file): one at a time.
        self._channels_lock = threading.Lock()
        self._lengths: dict[Channel, int] = {}
        self._aligner = ChannelAligner(
            self._append_frames, CHANNELS, max_lag=round(max_lag * sample_rate), block=sample_rate
        )
        self._wav = WavWriter(path, sample_rate, sync_interval, clock, channels=CHANNELS)
        self._sync = self._wav._sync  # the read-outs of SyncedWriter: one file, one sync

    @property
    def frames_written(self) -> int:
        return self._wav.frames_written

    @property
    def frames_synced(self) -> int:
        """Frames the on-disk header currently covers (what survives a crash)."""
        return self._wav.frames_synced

    @property
    def stats(self) -> AlignStats:
        return self._aligner.stats

    @property
    def closed(self) -> bool:
        return self._wav.closed

    def channel_end(self, channel: Channel) -> int:
        """The position the channel's next sample goes to (written plus buffered)."""
        return self._aligner.end(channel)

    def write(self, channel: Channel, position: int, samples: npt.NDArray[np.int16]) -> None:
        """Add one channel's samples at sample ``position``; frames complete in both go to disk."""
        if samples.dtype != np.int16:
            raise TypeError(f"the voice file holds int16 samples, got {samples.dtype}")
        self._wav.check_writable()
        self._aligner.push(channel, position, samples)
        self.maybe_sync()

    def zero(self, channel: Channel, start: int, end: int) -> None:
        """Silence one channel's samples ``[start, end)``, buffered or already on disk (late pause)."""
        self._wav.check_writable()
        start, end = self._aligner.zero(channel, start, end)
        self._wav.zero(start, end, int(channel))

    def maybe_sync(self) -> None:
        """Sync in the background if the interval has passed; cheap enough for a periodic timer.

        Raises a failure of an earlier background sync."""
        self._wav.maybe_sync()

    def sync(self) -> None:
        """Make the frames written so far durable, then let the header cover them (now)."""
        self._wav.sync()

    def close(
        self, end_position: int | None = None, tails: Mapping[Channel, Iterable[Chunk]] | None = None
    ) -> None:
        """Pad both channels to ``end_position`` (or to the longer one), write exact sizes, close.

        ``tails`` are the chunks of each channel's ``VoiceTimeline.finish``: they are buffered
        without the lag window, since one timeline's padding to the end must not push the other
        channel's last (reorder-window) audio out as "lagging". Audio beyond ``end_position`` is
        dropped; calling ``close`` again does nothing.
        """

        def pad_to_the_end() -> None:
            self.end_of_call()
            for channel, chunks in (tails or {}).items():
                for chunk in chunks:
                    self._aligner.push(channel, chunk.position, chunk.samples)
            end = max(self._aligner.end(c) for c in Channel) if end_position is None else end_position
            self._aligner.finish(end)
            if self.frames_written > end:
                self._wav.truncate(end, sync=False)  # the close's own sync writes the sizes
            self._log_alignment()

        self._wav.close_after(pad_to_the_end)

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
        self._wav.append(frames)

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
