"""Read what the server recorded for a SIPp run: interactions, RTP statistics, stored WAVs.

SIPp's Call-IDs are ``<call number>-<sipp pid>@<local ip>``, so one run's calls are the
interactions whose Call-ID carries that SIPp process id.
"""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from benchmarks.voice_load.verify import HOLE_SAMPLES, CallRecord, WavFacts
from server.settings import Settings
from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope


def wav_facts(path: Path) -> WavFacts:
    with wave.open(str(path), "rb") as wav:
        channels, rate, frames = wav.getnchannels(), wav.getframerate(), wav.getnframes()
        samples = np.frombuffer(wav.readframes(frames), dtype="<i2").reshape(-1, channels)
    firsts, lasts, holes = [], [], []
    for channel in range(channels):
        nonzero = np.flatnonzero(samples[:, channel])
        firsts.append(int(nonzero[0]) if len(nonzero) else 0)
        lasts.append(int(nonzero[-1]) + 1 if len(nonzero) else 0)
        # Silence inside the audio: gaps between consecutive non-zero samples longer than any a
        # tone has at its zero crossings (a packet replaced by silence, a channel filled).
        gaps = np.diff(nonzero) - 1 if len(nonzero) > 1 else np.zeros(0, dtype=np.int64)
        holes.append(int(gaps[gaps >= HOLE_SAMPLES].sum()))
    return WavFacts(len(samples), rate, channels, tuple(firsts), tuple(lasts), tuple(holes))


class Recordings:
    def __init__(self, settings: Settings) -> None:
        self._engine = make_engine(settings.resolved_database_url)
        self._sessions = make_session_factory(self._engine)
        self._storage = settings.resolved_storage_dir

    def close(self) -> None:
        self._engine.dispose()

    def _pattern(self, sipp_pid: int) -> str:
        return f"%-{sipp_pid}@%"

    def stored_voice_count(self, sipp_pid: int) -> int:
        with session_scope(self._sessions) as s:
            return int(
                s.execute(
                    select(func.count(models.MediaFile.id))
                    .join(models.Interaction, models.Interaction.id == models.MediaFile.interaction_id)
                    .where(
                        models.Interaction.call_id.like(self._pattern(sipp_pid)),
                        models.MediaFile.kind == "voice",
                    )
                ).scalar_one()
            )

    def ended_count(self, sipp_pid: int) -> int:
        with session_scope(self._sessions) as s:
            return int(
                s.execute(
                    select(func.count(models.Interaction.id)).where(
                        models.Interaction.call_id.like(self._pattern(sipp_pid)),
                        models.Interaction.ended_at.is_not(None),
                        models.Interaction.answered_at.is_not(None),
                    )
                ).scalar_one()
            )

    def wait_stored(self, sipp_pid: int, timeout: float) -> float:
        """Wait until every answered call of the run has its voice file stored (or the timeout);
        return how long the wait was."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.stored_voice_count(sipp_pid) >= self.ended_count(sipp_pid):
                break
            time.sleep(1.0)
        return time.monotonic() - start

    def records(self, sipp_pid: int) -> list[CallRecord]:
        with session_scope(self._sessions) as s:
            rows = s.execute(
                select(models.Interaction).where(models.Interaction.call_id.like(self._pattern(sipp_pid)))
            ).scalars()
            raw = []
            for row in rows:
                voice = next((m.storage_key for m in row.media if m.kind == "voice"), None)
                meta = json.loads(row.recording_meta or "{}")
                rtp = meta.get("rtp") or {}
                raw.append((row.call_id, row.started_at, row.answered_at, row.ended_at, rtp, voice))
        out = []
        for call_id, started_at, answered_at, ended_at, rtp, key in raw:
            path = self._storage / key if key else None
            facts = wav_facts(path) if path is not None and path.exists() else None
            out.append(CallRecord(call_id, started_at, answered_at, ended_at, rtp, facts))
        return out
