"""One capture: a grab thread and an encode thread joined by a bounded queue.

The grab thread takes a screenshot every 1/fps seconds on a monotonic schedule (missed ticks are
skipped, not caught up), stamps it in server time and passes it through the ``FrameGate``; what
the gate releases goes into the queue. The encode thread writes queue items into segments in the
spool (``SegmentWriter``). A full queue means the encoder cannot keep up: the frame is dropped,
counted, and logged at most every few seconds.

Control travels through the same queue as frames, so it is applied in order with them
(``capture_items``: still-screen horizons, late-pause cuts, suspensions).

The grab thread checks the pause flag before every grab and is woken at once by a pause, so no
grab starts later than the command (plus one grab in flight).

What the encode thread does with each queue item is ``capture_encode.EncodePath``, a base class
this session inherits (both threads share the capture's error, queue and writer). What needs no
threads is apart already: ``frame_gate``, ``capture_items``, ``frame_pipeline``, ``quota``,
``segment_writer``.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable

import numpy as np

from recorder_service.capture import Grabber, frame_digest
from recorder_service.capture_encode import EncodePath
from recorder_service.capture_items import Item, PauseCut, StillUpTo, Suspend, describe_cut
from recorder_service.endpoint_audio import EndpointAudio
from recorder_service.errors import CaptureError
from recorder_service.frame_gate import FrameGate, Released
from recorder_service.frame_pipeline import auto_pause_of
from recorder_service.masking import AutoPauseTracker
from recorder_service.quota import DiskUsage, quota_problem
from recorder_service.segment_writer import EncoderFactory, SegmentWriter
from recorder_service.spool import Spool
from tandem_protocol.events import ScreenAutoPause
from tandem_protocol.recorder_policy import RecorderPolicy

log = logging.getLogger(__name__)

QUEUE_FRAMES = 16
_LOG_EVERY = 5.0
QUOTA_EVERY = 1.0  # seconds between spool quota checks
HORIZON_EVERY = 0.5  # seconds between "still screen" markers to the encode thread
PAUSE_GRACE = 5.0  # finished segments wait this long for a late pause before upload

StatusListener = Callable[[bool, str], None]  # (capturing, detail): quota stops and restarts


class CaptureSession(EncodePath):
    def __init__(
        self,
        interaction_id: str,
        *,
        spool: Spool,
        server_now: Callable[[], float],
        grabber: Grabber,
        encoder_factory: EncoderFactory,
        run: str,
        policy: RecorderPolicy | None = None,
        fps: float | None = None,
        first_seq: int = 0,
        holdback: float = 0.3,  # a pause arriving later than this is cut from the encoded segment
        hold: float = PAUSE_GRACE,
        on_status: StatusListener | None = None,
        disk_usage: Callable[[], DiskUsage] | None = None,
        on_auto_pause: Callable[[list[ScreenAutoPause]], None] | None = None,
        audio: EndpointAudio | None = None,  # endpoint audio (policy.endpoint_audio): started here
    ) -> None:
        self.policy = policy or RecorderPolicy()
        fps = fps or self.policy.fps
        if not 0 < fps <= 60:
            raise ValueError("fps must be in (0, 60]")
        self.interaction_id = interaction_id
        self._fps = fps
        self._spool = spool
        self._server_now = server_now
        self._grabber = grabber
        self._on_status = on_status
        self._disk_usage = disk_usage or self._measure_disk
        self._on_auto_pause = on_auto_pause
        self._auto = AutoPauseTracker(interaction_id)
        self._gate: FrameGate[np.ndarray] = FrameGate(holdback=holdback, max_held=max(8, int(fps * 4)))
        self._writer = SegmentWriter(
            spool,
            interaction_id,
            run,
            encoder_factory=encoder_factory,
            segment_seconds=self.policy.segment_seconds,
            first_seq=first_seq,
            hold=hold,
            audio=audio,
        )
        self._audio = audio
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._horizon_sent: float | None = None
        self.started_at: float | None = None
        self.error: str = ""
        self.quota_error: str = ""  # non-empty while capture is stopped by the spool quota
        self.queue_drops = 0
        self.missed_ticks = 0
        self.last_grab: float | None = None  # monotonic time the latest grab ended
        self.idle = threading.Event()  # set while the grab thread sits paused/suspended
        self._last_drop_log = 0.0
        self._grab_thread = threading.Thread(
            target=self._grab_loop, name=f"grab-{interaction_id}", daemon=True
        )
        self._encode_thread = threading.Thread(
            target=self._encode_loop, name=f"encode-{interaction_id}", daemon=True
        )

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._gate.paused

    @property
    def next_seq(self) -> int:
        return self._writer.next_seq

    @property
    def segments(self) -> list[int]:
        return list(self._writer.segments)

    def auto_pause_spans(self) -> list[ScreenAutoPause]:
        return self._auto.spans()

    def start(self, *, paused_at: float | None = None) -> None:
        if paused_at is not None:
            self._gate.pause(paused_at)
        if self._audio is not None:
            if paused_at is not None:
                self._audio.pause(paused_at)
            self._audio.start()
        self._encode_thread.start()
        self._grab_thread.start()

    def pause(self, at: float, timeout: float = 10.0) -> str:
        """Stop grabbing now; no frame stamped at/after ``at`` reaches the uploader. Returns what
        had to be cut (empty when nothing past ``at`` had been encoded)."""
        with self._lock:
            self.idle.clear()
            self._gate.pause(at)
            if self._audio is not None:
                self._audio.pause(at)  # silence from the pause on, whatever is still buffered
            # Held frames before ``at`` belong to the segment the pause closes: in the queue
            # ahead of the cut, never after it.
            held = self._gate.release_all()
        self._wake.set()  # the grab thread must not wait out its tick
        cut = PauseCut(at)
        items: list[Item] = [*held, cut]
        try:
            for item in items:
                self._queue.put(item, timeout=timeout)
        except queue.Full:
            return "encoder stalled: could not check for frames after the pause"
        if not cut.done.wait(timeout):
            return "encoder stalled: frames after the pause may not have been cut"
        if cut.report.frames or cut.report.unreachable:
            log.warning("pause of %s arrived late: %s", self.interaction_id, describe_cut(cut.report))
        return describe_cut(cut.report)

    def resume(self, at: float) -> None:
        with self._lock:
            self._gate.resume(at)
            if self._audio is not None:
                self._audio.resume(at)
        self._wake.set()
        self._spool.release(self.interaction_id)  # the segment the pause closed may go now

    def stop(self, at: float, timeout: float = 10.0) -> str:
        """Finalise: flush held frames, close the last segment (final). Returns "" or why the
        capture failed."""
        self._stop.set()
        self._wake.set()
        self._grab_thread.join(timeout)
        with self._lock:
            # Stopped while a pause rule's window is on screen (no tail frame inside its span) or
            # while the spool is full (nothing more written): no repeat of the last picture.
            if self._auto.active is None and not self.quota_error:
                tail = self._gate.flush(at)
            else:
                tail = self._gate.release_all()
        self._send_auto_pause(self._auto.close(at))
        for item in [*tail, None]:
            try:
                # The tail must not be dropped: wait for room rather than discard.
                self._queue.put(item, timeout=timeout)
            except queue.Full:
                self.error = self.error or "encoder stalled while finalising"
                break
        self._encode_thread.join(timeout)
        if self._audio is not None:
            self._audio.close()
        stats = self._gate.stats
        log.info(
            "capture %s stopped: %d frames encoded in %d segment(s), %d unchanged skipped, "
            "%d dropped (paused), %d queue drops, %d missed ticks",
            self.interaction_id,
            self._writer.frames,
            len(self._writer.segments),
            stats.duplicates,
            stats.dropped_paused + stats.dropped_on_pause,
            self.queue_drops,
            self.missed_ticks,
        )
        if self._encode_thread.is_alive():
            self.error = self.error or "encoder thread did not finish"
        if self._writer.frames == 0 and not self.error and not self.quota_error:
            self.error = "no frame was captured"
        return self.error

    # -- grab thread --------------------------------------------------------------------------

    def _grabber_close(self) -> None:
        try:
            self._grabber.close()
        except Exception:  # closing a display handle must never mask the capture's outcome
            log.exception("closing the screen grabber failed")

    def _grab_loop(self) -> None:
        # The grabber is used and closed only in this thread: mss handles are thread-bound.
        try:
            self._grab_until_stopped()
        finally:
            self._grabber_close()

    def _grab_until_stopped(self) -> None:
        period = 1.0 / self._fps
        next_tick = time.monotonic()
        next_quota = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_quota:
                next_quota = time.monotonic() + QUOTA_EVERY
                self._check_quota()
            if self.paused or self.quota_error:
                # Still release held frames so a crash during a long pause loses little.
                with self._lock:
                    self._enqueue(self._gate.release_due(self._server_now()))
                self.idle.set()
                self._wake.wait(0.2)
                self._wake.clear()
                next_tick = time.monotonic()
                continue
            try:
                image = self._grabber.grab()
            except CaptureError as exc:
                self.error = str(exc)
                log.error("capture %s: %s", self.interaction_id, exc)
                return
            finally:
                self.last_grab = time.monotonic()
            # Stamped when the grab returns, not before it: the first grab opens the display and a
            # grab may re-read the layout or list windows before the pixels (tens to hundreds of
            # ms); after it, the picture is at most the pixel read itself old (a few ms).
            ts = self._server_now()
            self._auto_pause_changed(ts)
            # While a pause rule's window is on screen the recording pauses itself (the grab goes
            # on, to see the window go): no frame of that span reaches a segment.
            if self._auto.active is None:
                digest = frame_digest(image)
                with self._lock:
                    self._enqueue(self._gate.offer(ts, digest, image))
                    self._send_horizon(self._server_now() - self._gate.holdback)
            next_tick += period
            now = time.monotonic()
            if now > next_tick:
                missed = int((now - next_tick) / period) + 1
                self.missed_ticks += missed
                next_tick += missed * period
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            self._wake.clear()

    def _auto_pause_changed(self, ts: float) -> None:
        """Follow the grabber's ``auto_pause`` (masking pause rules): when a rule's window
        appears the open segment ends at ``ts``; when it goes the next frame opens a new one.
        Each change goes to the server (``screen.auto_pause``, a pause span on the timeline)."""
        rule = auto_pause_of(self._grabber)
        if rule == self._auto.active:
            return
        messages = self._auto.update(rule, ts)
        if rule is not None:
            log.info("capture %s paused itself: window of rule %r on screen", self.interaction_id, rule)
            with self._lock:
                held = self._gate.release_all()
            pending: list[Item] = [*held, Suspend(ts)]
            for item in pending:
                try:
                    self._queue.put(item, timeout=5.0)
                except queue.Full:
                    break
        else:
            log.info("capture %s resumes: no pause rule's window on screen", self.interaction_id)
            with self._lock:
                self._gate.force_next()
            self._spool.release(self.interaction_id)
        self._send_auto_pause(messages)

    def _send_auto_pause(self, messages: list[ScreenAutoPause]) -> None:
        if messages and self._on_auto_pause is not None:
            try:
                self._on_auto_pause(messages)
            except Exception:  # telling the server must never stop the capture
                log.exception("auto-pause listener failed")

    def _send_horizon(self, horizon: float) -> None:
        """Tell the encode thread how far the released timeline reaches (a still screen sends
        no frames): at a segment boundary, and every ``HORIZON_EVERY`` seconds otherwise."""
        boundary = self._writer.next_boundary
        if boundary is None:
            return
        last = self._horizon_sent
        due = horizon >= boundary > (last or float("-inf")) or last is None or horizon - last >= HORIZON_EVERY
        if not due:
            return
        try:
            self._queue.put_nowait(StillUpTo(horizon))
            self._horizon_sent = horizon
        except queue.Full:
            pass  # the next tick sends it

    def _check_quota(self) -> None:
        try:
            usage = self._disk_usage()
        except OSError as exc:
            log.warning("cannot measure the spool's disk: %s", exc)
            return
        problem = quota_problem(
            usage,
            min_free_percent=self.policy.spool_min_free_percent,
            max_mb=self.policy.spool_max_mb,
            stopped=bool(self.quota_error),
        )
        if problem and not self.quota_error:
            log.error("capture %s: %s", self.interaction_id, problem)
            now = self._server_now()
            with self._lock:
                self.quota_error = problem
                held = self._gate.release_all()
            pending: list[Item] = [*held, Suspend(now)]
            for item in pending:
                try:
                    self._queue.put(item, timeout=5.0)
                except queue.Full:
                    break
            self._status(False, problem)
        elif not problem and self.quota_error:
            log.info("capture %s: spool space available again, capture resumes", self.interaction_id)
            self._spool.release(self.interaction_id)
            with self._lock:
                self.quota_error = ""
                self._gate.force_next()  # the new segment starts with the current screen
            self._status(True, "spool space available again: screen capture resumed (new segment)")

    def _measure_disk(self) -> DiskUsage:
        disk = shutil.disk_usage(self._spool.root)
        return DiskUsage(disk.free, disk.total, self._spool.size_bytes())

    def _status(self, capturing: bool, detail: str) -> None:
        if self._on_status is not None:
            try:
                self._on_status(capturing, detail)
            except Exception:  # a status report must never stop the capture
                log.exception("status listener failed")

    def _enqueue(self, frames: list[Released[np.ndarray]]) -> None:
        for frame in frames:
            try:
                self._queue.put_nowait(frame)
            except queue.Full:
                self.queue_drops += 1
                now = time.monotonic()
                if now - self._last_drop_log >= _LOG_EVERY:
                    self._last_drop_log = now
                    log.warning("encoder behind: %d frames dropped so far", self.queue_drops)
