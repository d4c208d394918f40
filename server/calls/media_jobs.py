"""Background media work: moving finished voice files (and the encodings the admin selected) into
storage and muxing screen + voice.

Two supervised workers on the event loop hand each job to a thread (media work is blocking): one
for voice jobs (the mux's AAC, the admin's formats, the master), one for muxes. A mux never waits
behind another call's format encoding: a 30-min call's formats took two minutes on a loaded
machine, and the supervisor's mux after Done queued behind them (129 s Done → playable). A call
whose voice is still being encoded is muxed from its finished live WAV and the AAC already made
for it (``_live_voice``); the lock keeps the master from moving away under a mux reading it.
The queues are bounded; a job that does not fit is logged and left on disk, where start-up
recovery finds it again — nothing is deleted to make room.

The mux runs when the recorder says its screen is complete (``screen_uploaded``) and after the
voice is stored. A recorder that never says so (it crashed before its final segment) or that
uploads a segment late (after an outage) is covered by a sweep in this same supervisor: every
``sweep_interval`` s it asks for interactions with segments that are Done (or interrupted) and
quiet — no segment stored, no upload touched, not ended — for ``quiet_seconds`` (30), and queues
a mux for each whose set of segments changed since it last looked (interactions started in the
last 24 h, and older ones a segment arrived for since the server started). The mux is named after the set
of segments it was made from, so ``_mux`` knows whether the stored one is current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from server.calls.repository import CallRepository
from server.calls.screen_mux import SegmentMuxer
from server.errors import StorageError
from server.policy.voice_formats import media_kind
from server.store.storage import Storage

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
SWEEP_INTERVAL = 10.0  # seconds between looks for segment muxes nobody asked for
QUIET_SECONDS = 30.0  # Done and no segment upload for this long: the screen is as complete as it gets
SWEEP_HORIZON = 24 * 3600.0  # interactions started earlier are not swept (partial uploads expire then)
SWEEP_BATCH = 100  # muxes queued per sweep at most: a restart must not flood the queue
MUX_RETRIES = 3  # a failed mux is queued again by the sweep this many times


@dataclass(frozen=True, slots=True)
class _VoiceJob:
    interaction_id: str
    path: Path
    started_at: float


@dataclass(frozen=True, slots=True)
class _MuxJob:
    interaction_id: str


def _encoder_init() -> None:
    """Encoder process initialiser: compressing finished calls must never take CPU from live RTP,
    and the encoder must not outlive a server that was killed (Linux: parent-death signal)."""
    with contextlib.suppress(OSError):
        os.nice(10)
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


class MediaJobs:
    def __init__(
        self,
        repo: CallRepository,
        storage: Storage,
        tmp_dir: Path,
        *,
        encoder_process: bool = False,
        sweep_interval: float = SWEEP_INTERVAL,
        quiet_seconds: float = QUIET_SECONDS,
    ) -> None:
        """``encoder_process``: encode voice formats in a separate, lower-priority process (the
        server's choice) instead of a thread of this one, which would compete with the event
        loop for the GIL."""
        self._repo = repo
        self._segments = SegmentMuxer(repo, storage, tmp_dir)
        self._encoder_process = encoder_process
        self._encoder: ProcessPoolExecutor | None = None  # started with the first encoding
        self._storage = storage
        self._tmp_dir = tmp_dir
        self._queue: asyncio.Queue[_VoiceJob] = asyncio.Queue(QUEUE_LIMIT)
        self._mux_queue: asyncio.Queue[_MuxJob] = asyncio.Queue(QUEUE_LIMIT)
        self._worker: asyncio.Task[None] | None = None
        self._mux_worker: asyncio.Task[None] | None = None
        # interaction -> (finished live WAV, its start) while its voice job encodes the formats,
        # once the mux's AAC is ready: a mux after Done need not wait for the formats.
        self._live_voice: dict[str, tuple[Path, float]] = {}
        self._voice_lock = threading.Lock()  # the master's move vs a mux reading the live WAV
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_interval = sweep_interval
        self._quiet_seconds = quiet_seconds
        self._swept: dict[str, tuple[int, int]] = {}  # interaction -> (segments, last row id) queued
        self._segment_mark: int | None = None  # highest segment row id seen (None: not looked yet)
        self._late: set[str] = set()  # interactions with segments stored since, not yet due
        self._mux_failures: dict[str, int] = {}  # interaction -> failed muxes in a row
        self.failures = 0
        self.format_failures = 0  # voice encodings that could not be made or stored
        self.dropped = 0

    def start(self) -> None:
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        self._worker = asyncio.create_task(self._run(), name="media-jobs")
        self._mux_worker = asyncio.create_task(self._run_mux(), name="media-mux")
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="media-mux-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.drain()
        for worker in (self._worker, self._mux_worker):
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        if self._encoder is not None:
            self._encoder.shutdown(wait=True, cancel_futures=True)

    async def drain(self) -> None:
        await self._queue.join()  # voice jobs first: each queues a mux when it ends
        await self._mux_queue.join()

    def submit_voice(self, interaction_id: str, path: Path, started_at: float) -> None:
        self._put(_VoiceJob(interaction_id, path, started_at))

    def submit_mux(self, interaction_id: str) -> None:
        self._put(_MuxJob(interaction_id))

    async def _sweep_loop(self) -> None:
        # At once first: what a stopped server left unmuxed is found now, and segments stored from
        # here on are noted from the first one.
        while True:
            try:
                await self.sweep()
            except Exception:  # a busy or broken database: look again next time
                log.exception("looking for screen muxes to make failed")
            await asyncio.sleep(self._sweep_interval)

    async def sweep(self, now: float | None = None) -> int:
        """Queue a mux for each quiet, finished interaction whose segments changed since the last
        sweep queued one. Returns how many were queued."""
        at = time.time() if now is None else now
        # Segments stored since the last sweep: their interactions are looked at however long ago
        # they started (a recorder back after a weekend off), until they are muxed.
        mark, arrived = await asyncio.to_thread(self._repo.segments_after, self._segment_mark)
        self._segment_mark = mark
        self._late.update(arrived)
        due = await asyncio.to_thread(
            self._repo.screen_mux_due, at, self._quiet_seconds, SWEEP_HORIZON, sorted(self._late)
        )
        queued = 0
        seen: dict[str, tuple[int, int]] = {}
        for interaction_id, count, last_id in due:
            state = (count, last_id)
            if self._swept.get(interaction_id) != state:
                if queued >= SWEEP_BATCH:
                    continue  # the next sweep queues it
                self.submit_mux(interaction_id)
                queued += 1
            seen[interaction_id] = state
            self._late.discard(interaction_id)
        self._swept = seen  # only what is still within the horizon: bounded
        await asyncio.to_thread(self._segments.drop_stale_caches, at)
        return queued

    def _mux_failed(self, interaction_id: str) -> None:
        """Let the sweep try a failed mux again (a busy database, a full disk), a few times: a
        mux that can never succeed must not be retried every sweep for ever."""
        failures = self._mux_failures.get(interaction_id, 0) + 1
        self._mux_failures[interaction_id] = failures
        if failures <= MUX_RETRIES:
            self._swept.pop(interaction_id, None)
        else:
            log.error(
                "the mux of %s failed %d times; not tried again until a segment arrives",
                interaction_id,
                failures,
            )
            self._mux_failures.pop(interaction_id)

    def _put(self, job: _VoiceJob | _MuxJob) -> None:
        try:
            if isinstance(job, _VoiceJob):
                self._queue.put_nowait(job)
            else:
                self._mux_queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("media queue full; %s left on disk for recovery", job)

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await asyncio.to_thread(self._store_voice, job)
            except Exception:
                self.failures += 1
                log.exception("media job %s failed", job)
            finally:
                # A screen-only or legacy call is muxed once its voice is stored; a no-op when
                # the mux was already made from the live WAV.
                self.submit_mux(job.interaction_id)
                self._queue.task_done()

    async def _run_mux(self) -> None:
        while True:
            job = await self._mux_queue.get()
            try:
                await asyncio.to_thread(self._mux, job.interaction_id)
                self._mux_failures.pop(job.interaction_id, None)
            except Exception:
                self.failures += 1
                log.exception("media job %s failed", job)
                self._mux_failed(job.interaction_id)
            finally:
                self._mux_queue.task_done()

    def _store_voice(self, job: _VoiceJob) -> None:
        """Encode the selected formats, store them, then the WAV master.

        The master moves out of the live directory last: until it has, start-up recovery finds it
        there and does the whole job again (storing a kind again replaces it), so a crash never
        leaves a call without the formats the admin asked for.
        """
        from server.errors import ProbeError
        from server.media.probe import wav_info

        if not job.path.exists():
            log.error("voice file of %s is missing at %s", job.interaction_id, job.path)
            return
        duration: float | None
        try:
            # Tolerates the sizes a crashed writer leaves in the header.
            duration = wav_info(job.path).duration
        except ProbeError as exc:
            log.warning("voice file of %s is not a readable WAV (%s); stored as is", job.interaction_id, exc)
            duration = None
        # The mux's AAC first, before the admin's formats: the supervisor waits for the mux after
        # Done, and a 5-s ACW used to end while the formats were still encoding (the AAC was then
        # skipped as "interaction over" and the mux encoded the voice itself: 25 s for 30 min).
        prepared = duration is not None and self._prepare_mux_voice(job)
        if prepared:
            with self._voice_lock:
                self._live_voice[job.interaction_id] = (job.path, job.started_at)
        try:
            if duration is not None:
                try:
                    with tempfile.TemporaryDirectory(dir=self._tmp_dir) as tmp:
                        self._store_encodings(job, Path(tmp), duration)
                except Exception:  # the master is stored whatever went wrong with the encodings
                    self.format_failures += 1
                    log.exception("voice of %s: encoding failed", job.interaction_id)
            with self._voice_lock:  # not while a mux reads the live WAV
                self._repo.store_media(
                    job.interaction_id, "voice", job.path, "voice.wav", "audio/wav", job.started_at, duration
                )
        finally:
            with self._voice_lock:
                self._live_voice.pop(job.interaction_id, None)
        with contextlib.suppress(OSError):
            job.path.parent.rmdir()
        if not prepared:
            self._segments.prepare_voice(job.interaction_id)

    def _prepare_mux_voice(self, job: _VoiceJob) -> bool:
        """Encode the voice's AAC for the segment mux (``SegmentMuxer.voice_cache``) from the WAV
        before it is stored, whether or not the call is over yet: the mux that follows copies it
        either way. False when the call has no screen segments or the encoding failed (the mux
        then encodes the voice itself)."""
        from server.media.voice_aac import encode_voice_file

        if not self._repo.screen_segments(job.interaction_id):
            return False
        cache = self._segments.voice_cache(job.interaction_id)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            encode_voice_file(job.path, cache)
        except Exception:
            log.exception(
                "voice of %s: AAC not prepared for the mux (it will encode instead)", job.interaction_id
            )
            return False
        return True

    def _store_encodings(self, job: _VoiceJob, out_dir: Path, duration: float) -> None:
        from server.calls.voice_encodings import encode_selected

        formats = self._repo.voice_formats()
        if self._encoder_process:
            if self._encoder is None:
                self._encoder = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_encoder_init
                )
            try:
                result = self._encoder.submit(encode_selected, job.path, out_dir, formats, duration).result()
            except BrokenProcessPool:
                self._encoder = None  # the encoder died (killed, out of memory): a new one next time
                raise
        else:
            result = encode_selected(job.path, out_dir, formats, duration)
        if result.empty:
            log.info("voice of %s holds no audio; only its WAV is kept", job.interaction_id)
        for fmt, reason in result.failed.items():
            self.format_failures += 1
            log.error("voice of %s not encoded as %s: %s", job.interaction_id, fmt, reason)
        for enc in result.encoded:
            try:
                self._repo.store_media(
                    job.interaction_id,
                    media_kind(enc.fmt),
                    enc.path,
                    enc.name,
                    enc.content_type,
                    job.started_at,
                    enc.duration,
                )
            except (StorageError, OSError) as exc:
                self.format_failures += 1
                log.error("voice of %s as %s not stored: %s", job.interaction_id, enc.fmt, exc)

    def _mux(self, interaction_id: str) -> None:
        if self._repo.screen_segments(interaction_id):
            with self._voice_lock:
                self._segments.mux(interaction_id, live_voice=self._live_voice.get(interaction_id))
            return
        from server.media.mux import mux_screen_and_voice  # PyAV loads only when media work starts

        media = self._repo.media(interaction_id)
        voice, screen = media.get("voice"), media.get("screen")
        if voice is None or screen is None or "muxed" in media:
            return
        voice_path = self._storage.local_path(voice.key)
        screen_path = self._storage.local_path(screen.key)
        if voice_path is None or screen_path is None:
            log.error("storage backend has no local paths; cannot mux %s", interaction_id)
            return
        markers = self._segments.pause_markers(interaction_id)
        with tempfile.TemporaryDirectory(dir=self._tmp_dir) as tmp:
            out = Path(tmp) / "muxed.mp4"
            result = mux_screen_and_voice(
                screen_path, screen.started_at, voice_path, voice.started_at, out, markers=markers
            )
            started = min(screen.started_at, voice.started_at)
            self._repo.store_media(
                interaction_id,
                "muxed",
                out,
                "muxed.mp4",
                "video/mp4",
                started,
                getattr(result, "duration", None),
            )
        log.info("interaction %s muxed", interaction_id)
