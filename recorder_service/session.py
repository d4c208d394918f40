"""One capture: a grab thread and an encode thread joined by a bounded queue.

The grab thread takes a screenshot every 1/fps seconds on a monotonic schedule (missed ticks are
skipped, not caught up), stamps it in server time and passes it through the ``FrameGate``; what
the gate releases goes into the queue. The encode thread turns queue items into the fragmented
MP4 in the spool. A full queue means the encoder cannot keep up: the frame is dropped, counted,
and logged at most every few seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from recorder_service.capture import Grabber, frame_digest
from recorder_service.encoder import ScreenEncoder
from recorder_service.errors import CaptureError, EncoderError, RecorderError, SpoolError
from recorder_service.frame_gate import FrameGate, Released
from recorder_service.spool import Manifest, Spool, SpoolState

log = logging.getLogger(__name__)

QUEUE_FRAMES = 16
_LOG_EVERY = 5.0


class CaptureSession:
    def __init__(
        self,
        interaction_id: str,
        *,
        fps: float,
        spool: Spool,
        server_now: Callable[[], float],
        grabber: Grabber,
        holdback: float = 1.0,
    ) -> None:
        if not 0 < fps <= 60:
            raise ValueError("fps must be in (0, 60]")
        self.interaction_id = interaction_id
        self._fps = fps
        self._spool = spool
        self._server_now = server_now
        self._grabber = grabber
        self._gate: FrameGate[np.ndarray] = FrameGate(holdback=holdback, max_held=max(8, int(fps * 4)))
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue: queue.Queue[Released[np.ndarray] | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._encoder = ScreenEncoder(spool.media_path(interaction_id), fps=fps)
        self.started_at: float | None = None
        self.error: str = ""
        self.queue_drops = 0
        self.missed_ticks = 0
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

    def start(self, *, paused_at: float | None = None) -> None:
        self._spool.write(Manifest(self.interaction_id, SpoolState.CAPTURING))
        if paused_at is not None:
            self._gate.pause(paused_at)
        self._encode_thread.start()
        self._grab_thread.start()

    def pause(self, at: float) -> int:
        """Returns the number of frames already encoded past ``at`` (see FrameGate.pause)."""
        with self._lock:
            late = self._gate.pause(at)
        if late:
            log.warning("pause for %s arrived after frames past it were encoded", self.interaction_id)
        return late

    def resume(self, at: float) -> None:
        with self._lock:
            self._gate.resume(at)
        self._wake.set()

    def stop(self, at: float, timeout: float = 10.0) -> Manifest:
        """Finalise: flush held frames, close the MP4, checksum it. Returns the manifest
        (``finished``, or ``failed`` with the reason)."""
        self._stop.set()
        self._wake.set()
        self._grab_thread.join(timeout)
        with self._lock:
            tail = self._gate.flush(at)
        for item in [*tail, None]:
            try:
                # The tail must not be dropped: wait for room rather than discard.
                self._queue.put(item, timeout=timeout)
            except queue.Full:
                self.error = self.error or "encoder stalled while finalising"
                break
        self._encode_thread.join(timeout)
        stats = self._gate.stats
        log.info(
            "capture %s stopped: %d frames encoded, %d duplicates skipped, %d dropped (paused), "
            "%d queue drops, %d missed ticks",
            self.interaction_id,
            self._encoder.frames,
            stats.duplicates,
            stats.dropped_paused + stats.dropped_on_pause,
            self.queue_drops,
            self.missed_ticks,
        )
        try:
            if self._encode_thread.is_alive():
                self.error = self.error or "encoder thread did not finish"
            if self._encoder.frames == 0 and not self.error:
                self.error = "no frame was captured"
            if self.error:
                return self._spool.update(self.interaction_id, state=SpoolState.FAILED, error=self.error)
            return self._spool.finish(self.interaction_id)
        except (OSError, SpoolError) as exc:
            raise SpoolError(f"cannot finalise spool entry {self.interaction_id}: {exc}") from exc

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
        while not self._stop.is_set():
            if self.paused:
                # Still release held frames so a crash during a long pause loses little.
                with self._lock:
                    self._enqueue(self._gate.release_due(self._server_now()))
                self._wake.wait(0.2)
                self._wake.clear()
                next_tick = time.monotonic()
                continue
            ts = self._server_now()
            try:
                image = self._grabber.grab()
            except CaptureError as exc:
                self.error = str(exc)
                log.error("capture %s: %s", self.interaction_id, exc)
                return
            digest = frame_digest(image)
            with self._lock:
                self._enqueue(self._gate.offer(ts, digest, image))
            next_tick += period
            now = time.monotonic()
            if now > next_tick:
                missed = int((now - next_tick) / period) + 1
                self.missed_ticks += missed
                next_tick += missed * period
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

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

    def _encode_loop(self) -> None:
        failed = False
        while True:
            item = self._queue.get()
            if item is None:
                break
            if failed:
                continue  # keep draining so producers never block on a dead consumer
            try:
                if self.started_at is None:
                    self.started_at = item.ts
                    self._spool.update(self.interaction_id, started_at=item.ts)
                pts = round((item.ts - self.started_at) * 1000)
                self._encoder.encode(item.image, pts)
            except (RecorderError, OSError) as exc:
                failed = True
                self.error = f"encoding failed: {exc}"
                log.error("capture %s: %s", self.interaction_id, self.error)
        try:
            self._encoder.close()
        except EncoderError as exc:
            self.error = self.error or str(exc)
            log.error("capture %s: %s", self.interaction_id, exc)
