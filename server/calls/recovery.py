"""When a call a dead server left behind really ended: the last audio in its live voice file.

After kill -9 (or a power cut) start-up recovery marks the calls in progress ``interrupted``. Their
end used to be stored as the restart time, seconds too late (6.5–8.6 s in the issue's test): the
recording stops where the server died, and sample 0 of the live WAV is the call's answer time,
so the last sample frame on disk is when the recording — and, as far as we know, the call —
ended. The bytes on disk count, not the header's size, which lags by up to one sync interval.
"""

from __future__ import annotations

import logging
from pathlib import Path

from server.media.errors import ProbeError
from server.media.riff import parse_wav

log = logging.getLogger(__name__)


def last_audio_time(voice: Path, sample0_at: float) -> float | None:
    """Server time of the end of the last whole sample frame in ``voice``; None if unreadable."""
    try:
        with open(voice, "rb") as fp:
            size = voice.stat().st_size
            info = parse_wav(fp, size)
    except (OSError, ProbeError) as exc:
        log.warning("cannot read %s for the call's end time: %s", voice, exc)
        return None
    frames = max(0, size - info.data_offset) // info.block_align
    return sample0_at + frames / info.rate


def recovered_end(voice: Path, answered_at: float | None, fallback: float) -> float:
    """The stored end of an interrupted call: its last audio, else ``fallback`` (the restart)."""
    if answered_at is None or not voice.exists():
        return fallback
    end = last_audio_time(voice, answered_at)
    return fallback if end is None else min(end, fallback)
