"""Telling a failed voice recording from the call's media, and naming why it failed (pure).

A call's voice can stop being recorded while the call goes on: the RTP worker process that
carried it died (or was killed as hung), or the voice file could not be written (the disk is
full). Both show in the media's per-stream stats — ``error`` (set by the worker proxy when its
worker is gone) and ``voice_error`` (set when a write of the file failed) — which the coordinator
reads; a worker's death is also reported at once by the pool.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping

WORKER_DIED = "rtp worker died"
DISK_FULL = "disk full"
WRITE_FAILED = "voice write failed"
UNDECODABLE = "voice undecodable"  # packets arrive, none in a payload type we can decode
_NO_SPACE = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT), "ENOSPC")


def media_error(stats: Mapping[str, object]) -> str | None:
    """The first stream's error in a call's media stats (``RecordedCall.media_stats()``)."""
    for value in stats.values():
        if isinstance(value, Mapping):
            error = value.get("voice_error") or value.get("error") or value.get("media_error")
            if error:
                return str(error)
    return None


def is_disk_full(error: str) -> bool:
    return any(marker in error for marker in _NO_SPACE)


def end_reason(error: str, *, worker_died: bool = False) -> str:
    """The stored end reason for a voice failure described by ``error``."""
    if is_disk_full(error):
        return DISK_FULL
    if worker_died or "RTP worker" in error:
        return WORKER_DIED
    if error.startswith("undecodable audio"):  # server.rtp.session's stats.media_error
        return UNDECODABLE
    return WRITE_FAILED
