"""The mux job of an interaction whose screen is stored as segments (run by MediaJobs in its
worker thread; docs/screen-segments.md, Muxing).

- Only once the interaction is over (Done or interrupted): before, the screen is still recording.
- The muxed file is named after the set of segments it was made from (``muxed-<digest>.mp4``): a
  mux asked for while the stored one has that name does nothing; with a segment added (a late
  upload) it is made again and replaces the derived file. Segments and voice are only read.
- The voice's AAC is encoded while the agent is in after-call work (:meth:`prepare_voice`, when
  the voice is stored at the hang-up), into ``<tmp_dir>/voice-aac/<interaction>.m4a``; the mux
  after Done copies it instead of encoding, so the supervisor waits for the screen's copy only.
  The file is a cache: removed after the mux, or after a day unused; without it the mux encodes.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path, PurePosixPath

from server.calls.endpoint_audio_job import store_endpoint_audio
from server.calls.repository import CallRepository
from server.store.storage import Storage

log = logging.getLogger(__name__)

VOICE_CACHE_DIR = "voice-aac"
VOICE_CACHE_MAX_AGE = 24 * 3600.0  # seconds: a cache not used by then is removed


class SegmentMuxer:
    def __init__(self, repo: CallRepository, storage: Storage, tmp_dir: Path) -> None:
        self._repo = repo
        self._storage = storage
        self._tmp_dir = tmp_dir
        self._cache_dir = tmp_dir / VOICE_CACHE_DIR

    def voice_cache(self, interaction_id: str) -> Path:
        return self._cache_dir / f"{interaction_id}.m4a"

    def pause_markers(self, interaction_id: str) -> list[tuple[float, str]]:
        markers = []
        for start, end in self._repo.pause_spans(interaction_id):
            markers.append((start, "pause"))
            if end is not None:
                markers.append((end, "resume"))
        return markers

    def prepare_voice(self, interaction_id: str) -> None:
        """The voice was just stored: encode its AAC now if a segment mux will follow (the call
        has screen segments and is still in after-call work). Failures only cost the speed-up."""
        from server.media.voice_aac import encode_voice_file

        if self._repo.interaction_over(interaction_id) or not self._repo.screen_segments(interaction_id):
            return  # muxed right away (or never): encoding twice would only add work
        voice = self._repo.media(interaction_id).get("voice")
        path = self._storage.local_path(voice.key) if voice is not None else None
        if path is None:
            return
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            encode_voice_file(path, self.voice_cache(interaction_id))
        except Exception:
            log.exception(
                "voice of %s: AAC not prepared for the mux (it will encode instead)", interaction_id
            )

    def drop_stale_caches(self, now: float) -> int:
        """Remove voice caches unused for a day (a call whose mux never came). Returns how many."""
        removed = 0
        if not self._cache_dir.is_dir():
            return 0
        for path in self._cache_dir.iterdir():
            try:
                if now - path.stat().st_mtime > VOICE_CACHE_MAX_AGE:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # gone meanwhile
        return removed

    def mux(self, interaction_id: str, live_voice: tuple[Path, float] | None = None) -> None:
        """Mux the stored segments with the voice, unless the stored mux was made from exactly
        these segments; storing it replaces the ``muxed`` row and removes the old derived file.
        ``live_voice``: the finished WAV (and its start) of a call whose voice job is still
        encoding the admin's formats, used while the voice is not stored yet."""
        from server.media.mux import mux_segments_and_voice
        from server.media.segment_join import muxed_name
        from server.media.segment_stream import SegmentInput

        if not self._repo.interaction_over(interaction_id):
            # Still recording (the voice is stored at the hang-up, the screen goes on through
            # after-call work): a mux now would be outdated by the next segment and delay the
            # one after Done, which a supervisor waits for.
            return
        segments = self._repo.screen_segments(interaction_id)
        media = self._repo.media(interaction_id)
        voice = media.get("voice")
        if voice is None and live_voice is None:
            return  # the voice job muxes once the voice is stored
        name = muxed_name(segments)
        muxed = media.get("muxed")
        if muxed is not None and PurePosixPath(muxed.key).name == name:
            return  # made from these very segments
        if voice is not None:
            voice_path, voice_started = self._storage.local_path(voice.key), voice.started_at
        else:
            assert live_voice is not None
            voice_path, voice_started = live_voice
        inputs = []
        for ref in segments:
            path = self._storage.local_path(ref.key)
            if path is None or voice_path is None:
                log.error("storage backend has no local paths; cannot mux %s", interaction_id)
                return
            inputs.append(SegmentInput(ref, path))
        assert voice_path is not None
        cache = self.voice_cache(interaction_id)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=self._tmp_dir) as tmp:
            out = Path(tmp) / name
            result = mux_segments_and_voice(
                inputs,
                self._repo.pause_spans(interaction_id),
                voice_path,
                voice_started,
                out,
                markers=self.pause_markers(interaction_id),
                voice_aac=cache if cache.is_file() else None,
            )
            self._repo.store_media(
                interaction_id, "muxed", out, name, "video/mp4", result.origin, result.duration
            )
        cache.unlink(missing_ok=True)
        # The segments' endpoint audio (if any) beside it, from the same t=0 (endpoint_audio_job).
        store_endpoint_audio(
            self._repo,
            interaction_id,
            [(i.path, i.ref.started_at) for i in inputs],
            origin=result.origin,
            duration=result.duration,
            muxed_name=name,
            tmp_dir=self._tmp_dir,
        )
        log.info(
            "interaction %s muxed from %d segments in %.1f s (voice %s)%s",
            interaction_id,
            len(segments),
            time.monotonic() - started,
            "copied" if result.audio_copied else "encoded",
            f", replacing {PurePosixPath(muxed.key).name}" if muxed is not None else "",
        )
