"""Sends the spool's finished segments to the server with tus (docs/screen-segments.md), one at a
time, oldest first, on one worker thread.

Per segment: ``POST`` creates the upload (metadata run, seq, started_at, sha256, final), ``PATCH``
sends 256 KiB chunks each with its sha256. After any cut the server is asked how much it holds
(``HEAD``) and the upload continues from there — from 0 only when the server lost the upload
(404: ``POST`` again). ``409 offset_mismatch``: take the server's offset; ``460``: send that chunk
again. Network errors, 5xx, 408, 429 and ``409 upload_in_progress`` are retried with capped
exponential backoff with jitter, both for the segment and for the server as a whole (so one
segment the server chokes on cannot starve the others, and a server that is down is not
hammered); 401 slowly, since only a renewed token helps. ``409 already_uploaded`` carries the
sha256 the server stores: ours means an earlier answer was lost (done); another is a conflict, and
the file is kept. ``422 frames_in_pause``: the spool cuts the paused frames and the new segment is
uploaded. Every other 4xx is final: ``queue.refused``, file kept. The local copy goes only through
``queue.uploaded`` once the server's ``X-Tandem-Sha256`` equals ours.

The admin's bandwidth cap and upload window come from ``policy_provider()``, read before every
chunk, so a changed policy applies within one chunk; the body is paced to the cap by
`recorder_service.upload_pacing`. What each answer means and when the next try comes are pure
rules of their own (`recorder_service.upload_rules`); this module acts on them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import quote

import httpx

from recorder_service.bandwidth import SLICE, seconds_until_open, window_open
from recorder_service.segment_queue import SegmentQueue, SegmentRef
from recorder_service.tus_client import TusClient, TusError, pause_spans
from recorder_service.upload_meter import Key, Progress, UploaderStats, UploadMeter, segment_key, segment_name
from recorder_service.upload_pacing import BodyPacer, Stopping
from recorder_service.upload_rules import Answer, PatchFix, RetrySchedule, Track, classify, patch_fix
from tandem_protocol.recorder_policy import RecorderPolicy

__all__ = ["CHUNK", "Progress", "SegmentUploader", "UploaderStats"]  # the stats types come with it

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
IDLE_POLL = 5.0  # look at the spool this often even without wake()
WINDOW_RECHECK = 30.0  # outside the upload window: re-read the policy at least this often


class _Retry(Exception):
    """A transient failure that is neither an HTTP status nor a network error."""


class SegmentUploader:
    def __init__(
        self,
        queue: SegmentQueue,
        server_url: str,
        token: Callable[[], str],
        policy_provider: Callable[[], RecorderPolicy],
        *,
        transport: httpx.BaseTransport | None = None,
        chunk_size: int = CHUNK,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        local_now: Callable[[], datetime] = datetime.now,
        sleep: Callable[[float], None] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._queue = queue
        self._policy = policy_provider
        self._client = TusClient(server_url, token, transport=transport)
        self._chunk = chunk_size
        self._clock = clock
        self._local_now = local_now
        self._stop_event = threading.Event()
        self._pacer = BodyPacer(self._stop_event, clock=clock, sleep=sleep)  # the bandwidth cap
        self._tracks: dict[Key, Track] = {}
        self._schedule = RetrySchedule(rand)  # the server's backoff and each segment's
        self._meter = UploadMeter(wall)  # the figures stats() reports, readable from any thread
        self._cond = threading.Condition()
        self._woken = False
        self._thread = threading.Thread(target=self._run, name="segment-uploader", daemon=True)

    # -- public API ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the request in flight (a paced body stops at its next slice); what the
        server holds of a partial upload stays there for the next start to resume."""
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._client.close()
        self._meter.state("stopped")

    def wake(self) -> None:
        """A segment was finished (or the token renewed): look at the spool now, not at the next
        poll. Does not cut a backoff short."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def stats(self) -> UploaderStats:
        return self._meter.snapshot()

    # -- scheduling ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop_event.is_set():
            try:
                delay = self.step()
            except Exception:  # the worker must outlive any bug in one round
                log.exception("segment uploader: unexpected error")
                delay = IDLE_POLL
            with self._cond:
                if delay > 0 and not self._woken and not self._stop_event.is_set():
                    self._cond.wait(delay)
                self._woken = False

    def step(self) -> float:
        """One round: upload the oldest segment that is due. Returns the seconds until another
        round is worth it (0: at once). The worker thread calls it in a loop; tests call it with
        an injected clock."""
        policy = self._policy()
        refs = self._queue.ready()
        live = {segment_key(r) for r in refs}
        self._tracks = {k: t for k, t in self._tracks.items() if k in live}
        self._meter.pending(refs)
        if not window_open(policy.upload_window, self._local_now()):
            self._set_state("outside_window")
            return min(WINDOW_RECHECK, max(1.0, seconds_until_open(policy.upload_window, self._local_now())))
        if not refs:
            self._set_state("idle")
            return IDLE_POLL
        now = self._clock()
        if now < self._schedule.not_before:
            return self._schedule.not_before - now
        due = [r for r in refs if self._track(r).due <= now]
        if not due:
            return min(IDLE_POLL, min(self._track(r).due for r in refs) - now)
        # Oldest first, but a segment that failed waits behind those that did not: one segment
        # the server chokes on must not hold back the rest of the recording.
        self._attempt(min(due, key=lambda r: self._track(r).failures > 0))
        # Straight on to the next segment, unless this attempt put the server in backoff.
        return max(0.0, self._schedule.not_before - self._clock())

    def _track(self, ref: SegmentRef) -> Track:
        return self._tracks.setdefault(segment_key(ref), Track())

    def _set_state(self, state: str) -> None:
        self._meter.state(state)

    # -- one attempt --------------------------------------------------------------------------
    def _attempt(self, ref: SegmentRef, cuts: int = 0) -> None:
        track = self._track(ref)
        self._set_state("uploading")
        try:
            self._upload(ref, track)
        except Stopping:
            return
        except TusError as exc:
            self._failed(ref, track, exc, cuts)
        except _Retry as exc:
            self._retry_later(ref, track, str(exc))
        except OSError as exc:  # the local file: the spool's business, not the server's
            self._final(ref, "file_unreadable", f"cannot read {ref.path}: {exc}")
        finally:
            self._meter.idle()

    def _upload(self, ref: SegmentRef, track: Track) -> None:
        offset = self._open(ref, track)
        recreates = resends = 0
        store_asked = False
        while offset is not None:
            self._show(ref, min(offset, ref.size))
            policy = self._policy()
            if not window_open(policy.upload_window, self._local_now()):
                return  # the window closed: the server keeps what it has
            self._pacer.apply_cap(policy)
            if offset >= ref.size:
                # Every byte is there but the segment is not confirmed (the last PATCH's answer
                # was lost, or the server's store step failed): an empty PATCH at the end asks
                # the server to store it now and answers with the verdict. Once per attempt.
                if store_asked:
                    raise _Retry("the server holds every byte but has not confirmed the segment yet")
                store_asked = True
                data = b""
            else:
                data = _read(ref, offset, self._chunk)
            location = track.location
            assert location is not None
            try:
                done = self._client.patch(
                    location,
                    offset,
                    data,
                    pace=self._pacer.pace,
                    sent=self._counter(track, offset),
                    slice_size=SLICE,
                )
            except TusError as exc:
                fix = patch_fix(
                    exc.status,
                    exc.code,
                    has_offset=exc.offset is not None,
                    resends=resends,
                    recreates=recreates,
                )
                if fix == PatchFix.TAKE_OFFSET and exc.offset is not None:
                    log.info(
                        "segment %s: server holds %d bytes, not %d", segment_name(ref), exc.offset, offset
                    )
                    offset = exc.offset
                    continue
                if fix == PatchFix.RESEND:
                    resends += 1
                    log.warning(
                        "segment %s: chunk at %d damaged on the way, sending it again",
                        segment_name(ref),
                        offset,
                    )
                    continue
                if fix == PatchFix.DAMAGED:
                    raise _Retry(f"chunks damaged on the way {resends + 1} times in a row") from exc
                if fix == PatchFix.RECREATE:
                    recreates += 1
                    log.warning(
                        "segment %s: the server lost the upload; starting it again", segment_name(ref)
                    )
                    track.location = None
                    offset = self._open(ref, track)
                    continue
                raise
            resends = 0
            self._progressed(track)
            offset = done.offset
            if done.server_sha256 is not None:
                self._confirmed(ref, done.server_sha256)
                return

    def _open(self, ref: SegmentRef, track: Track) -> int | None:
        """The server's offset for this segment's upload, creating the upload when it has none;
        None when the server already stores the segment (settled here)."""
        if track.location is not None:
            try:
                return self._client.head(track.location)
            except TusError as exc:
                if exc.status != 404:
                    raise
                log.warning("segment %s: the server no longer has the partial upload", segment_name(ref))
                track.location = None
        metadata = {
            "run": ref.run,
            "seq": str(ref.seq),
            "started_at": repr(ref.started_at),
            "sha256": ref.sha256,
        }
        if ref.final:
            metadata["final"] = "1"
        path = f"/api/interactions/{quote(ref.interaction_id, safe='')}/screen/segments"
        try:
            created = self._client.create(path, ref.size, metadata)
        except TusError as exc:
            if exc.status == 409 and exc.code == "already_uploaded":
                self._already_uploaded(ref, exc)
                return None
            raise
        track.location = created.location
        return created.offset

    # -- outcomes -----------------------------------------------------------------------------
    def _confirmed(self, ref: SegmentRef, server_sha: str) -> None:
        if server_sha.lower() != ref.sha256.lower():
            self._final(
                ref,
                "checksum_mismatch",
                f"the server stored sha256 {server_sha}, ours is {ref.sha256}; our file is kept",
            )
            return
        self._queue.uploaded(ref, server_sha.lower())
        log.info("segment %s uploaded (%d bytes)", segment_name(ref), ref.size)
        self._settled(ref, success=True)

    def _already_uploaded(self, ref: SegmentRef, exc: TusError) -> None:
        stored = str(exc.body.get("sha256", "")).lower()
        if stored and stored == ref.sha256.lower():
            log.info(
                "segment %s: the server already stores it (an earlier answer was lost)", segment_name(ref)
            )
            self._confirmed(ref, stored)
            return
        message = (
            f"the server stores a different segment {segment_name(ref)} (sha256 {stored or 'not given'}, "
            f"ours {ref.sha256}); our file is kept for an administrator"
        )
        log.error("UPLOAD CONFLICT: %s", message)
        self._final(ref, "conflict", message)

    def _failed(self, ref: SegmentRef, track: Track, exc: TusError, cuts: int) -> None:
        answer = classify(exc.status, exc.code, cuts=cuts)
        if answer == Answer.NETWORK:  # the network, not this segment: the server's backoff only
            self._retry_later(ref, None, str(exc))
        elif answer == Answer.TRANSIENT:
            self._retry_later(ref, track, str(exc), retry_after=exc.retry_after)
        elif answer == Answer.UNAUTHORIZED:
            self._note_error(
                "token rejected (HTTP 401): enrol again with `tandem-recorder login --enroll-code`"
            )
            self._schedule.hold(self._clock())
            self._set_state("unauthorized")
        elif answer == Answer.REDIRECTED:  # a proxy or a moved server: configuration, not the segment
            self._note_error(f"{exc} — the server URL redirects; set the recorder's server URL to the target")
            self._schedule.hold(self._clock())
            self._set_state("misconfigured")
        elif answer == Answer.ALREADY_UPLOADED:
            self._already_uploaded(ref, exc)
        elif answer == Answer.FRAMES_IN_PAUSE:
            track.location = None  # the server dropped the refused upload
            self._cut_and_retry(ref, pause_spans(exc.body), str(exc), cuts)
        else:
            track.location = None
            self._final(ref, exc.code or f"http_{exc.status}", str(exc))

    def _cut_and_retry(
        self, ref: SegmentRef, spans: Sequence[tuple[float, float | None]], why: str, cuts: int
    ) -> None:
        if not spans:
            self._final(ref, "frames_in_pause", f"{why} (the answer names no pause span to cut)")
            return
        log.warning("segment %s has frames inside pause spans %s: cutting them", segment_name(ref), spans)
        new = self._queue.cut_pauses(ref, list(spans))
        self._settled(ref, success=False)
        if new is None:
            log.info("segment %s: nothing left after cutting the pause", segment_name(ref))
            return
        self._attempt(new, cuts + 1)

    def _retry_later(
        self, ref: SegmentRef, track: Track | None, message: str, retry_after: float | None = None
    ) -> None:
        """Back off the server, and the segment too when the answer was about it (``track``)."""
        wait = self._schedule.back_off(self._clock(), track, retry_after)
        self._note_error(message)
        self._set_state("backoff")
        log.warning("segment %s: %s; next try in %.1f s", segment_name(ref), message, wait)

    def _final(self, ref: SegmentRef, code: str, message: str) -> None:
        log.error("segment %s refused (file kept): %s", segment_name(ref), message)
        self._queue.refused(ref, code, message)
        self._note_error(message)
        self._settled(ref, success=False)

    def _settled(self, ref: SegmentRef, *, success: bool) -> None:
        self._tracks.pop(segment_key(ref), None)
        self._meter.settled(ref, success=success)
        if success:
            self._schedule.succeeded()

    def _note_error(self, message: str) -> None:
        self._meter.error(message)

    # -- bytes --------------------------------------------------------------------------------
    def _progressed(self, track: Track) -> None:
        self._schedule.progressed(track)

    def _show(self, ref: SegmentRef, offset: int) -> None:
        self._meter.show(ref, offset)

    def _counter(self, track: Track, start: int) -> Callable[[int], None]:
        position = start

        def sent(n: int) -> None:
            nonlocal position
            again = max(0, min(position + n, track.sent_high) - position)
            position += n
            track.sent_high = max(track.sent_high, position)
            self._meter.sent(n, again)

        return sent


def _read(ref: SegmentRef, offset: int, size: int) -> bytes:
    """One chunk of the segment file: the body is read a chunk at a time, never whole."""
    with ref.path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(min(size, ref.size - offset))
    if not data:
        raise OSError(f"the file is shorter ({offset} bytes) than its manifest says ({ref.size})")
    return data
