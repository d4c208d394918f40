"""Calls a dead server left behind: when they really ended (the last audio in the live voice
file), marking them at start-up, and the caller's BYE that comes after the restart.

After kill -9 (or a power cut) start-up recovery marks the calls in progress ``interrupted``. Their
end used to be stored as the restart time, seconds too late (6.5–8.6 s in the issue's test): the
recording stops where the server died, and sample 0 of the live WAV is the call's answer time,
so the last sample frame on disk is when the recording — and, as far as we know, the call —
ended. The bytes on disk count, not the header's size, which lags by up to one sync interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import ProbeError
from server.media.riff import parse_wav

if TYPE_CHECKING:
    from server.calls.control import RecordingControl
    from server.calls.media_jobs import MediaJobs
    from server.calls.repository import CallRepository

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


async def recover_interrupted(repo: CallRepository, media: MediaJobs, live_dir: Path) -> None:
    """A previous process died mid-call: keep what it recorded, mark it interrupted, ended at its
    last audio (not at this restart); one that died in after-call work is done."""
    for interaction_id, state, answered_at, _ended in await asyncio.to_thread(repo.unfinished):
        now = time.time()
        if state == "acw":
            await asyncio.to_thread(repo.mark, interaction_id, "done", "server restart in ACW", now)
            continue
        voice = live_dir / interaction_id / "voice.wav"
        ended = await asyncio.to_thread(recovered_end, voice, answered_at, now)
        await asyncio.to_thread(repo.mark, interaction_id, "interrupted", "server stopped mid-call", ended)
        if voice.exists():
            media.submit_voice(interaction_id, voice, answered_at or now)
        log.warning(
            "interaction %s was interrupted by a server stop; its recording is kept (ended %.1f s "
            "before this restart)",
            interaction_id,
            now - ended,
        )


async def interrupted_call_bye(repo: CallRepository, control: RecordingControl, call_id: str) -> bool:
    """A BYE for a dialog this process does not know: True (answer 200) if it ends a call a server
    stop interrupted — the caller's hang-up is accepted, the stored end stays the last audio;
    False (481) otherwise."""
    try:
        known = await asyncio.to_thread(repo.interrupted_call, call_id)
    except Exception:
        log.exception("looking up call %s for a BYE failed", call_id)
        return False
    if known:
        await control.audit(
            "recording.end", "", f"BYE for call {call_id}, interrupted by a server stop, answered 200"
        )
    return known
