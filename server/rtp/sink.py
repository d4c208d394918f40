"""What an ``RtpSession`` writes its samples into.

Exactly the operations the session uses. ``WavWriter`` (one mono file per stream) and
``StereoWavWriter.channel(...)`` (one channel of a call's two-channel file) both satisfy it; the
sink must run at the session's output sample rate. Writer failures are ``WavWriterError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt


class VoiceSink(Protocol):
    @property
    def path(self) -> Path: ...

    @property
    def samples_written(self) -> int: ...

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        """Append samples at the end."""

    def zero(self, start: int, end: int) -> None:
        """Silence already written samples ``[start, end)`` (a pause that began in the past)."""

    def truncate(self, samples: int) -> None:
        """The stream's final length: drop anything written beyond it."""

    def maybe_sync(self) -> None:
        """Make written samples durable if it is time to (called from the session's tick)."""

    def close(self) -> None:
        """Finalise; called once, when the session closes, from a thread (it may block on the
        disk) while the event loop goes on with other sessions."""


if TYPE_CHECKING:  # mypy proves both writers fit; nothing runs
    from server.voice.stereo_writer import ChannelWriter
    from server.voice.wav_writer import WavWriter

    def _writers_are_sinks(mono: WavWriter, channel: ChannelWriter) -> tuple[VoiceSink, VoiceSink]:
        return mono, channel
