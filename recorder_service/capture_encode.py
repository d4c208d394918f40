"""The capture's encode thread: what it does with each item of the queue the grab thread (and a
pause) fill. ``recorder_service.session.CaptureSession`` inherits it; the grab thread, the pause,
resume and stop stay in ``recorder_service.session``.

A released frame goes to the ``SegmentWriter`` (the first one stamps ``started_at``); control
items (``recorder_service.capture_items``) are applied in order with the frames: ``StillUpTo``
lets a still screen's segment end at its boundary, ``Suspend`` ends the open segment and holds it,
``PauseCut`` closes the open segment and cuts every frame at/after the pause from the spool, then
tells the waiting ``pause()`` what it cut. ``None`` ends the loop: the last segment is closed as
the capture's final one.

An encoder error (e.g. a full disk) salvages what is readable of the open segment and keeps
draining the queue without encoding, so the grab thread never blocks on a dead consumer; the
capture's ``error`` says why.

It is a base class, not an object of its own, because both threads share the capture's state:
``error`` (the grab thread and ``stop()`` write it too), ``started_at``, the queue and the writer.
"""

from __future__ import annotations

import logging
import math
import queue

from recorder_service.capture_items import Item, PauseCut, StillUpTo, Suspend
from recorder_service.errors import EncoderError, RecorderError, SpoolError
from recorder_service.segment_writer import SegmentWriter
from recorder_service.spool import CutReport, Spool

log = logging.getLogger("recorder_service.session")  # the capture's log, as before the split


class EncodePath:
    # Set by CaptureSession.__init__.
    interaction_id: str
    started_at: float | None
    error: str
    _queue: queue.Queue[Item]
    _writer: SegmentWriter
    _spool: Spool

    def _encode_loop(self) -> None:
        failed = False
        while True:
            item = self._queue.get()
            if item is None:
                break
            if isinstance(item, PauseCut):
                item.report = self._pause_cut(item.at)
                item.done.set()
                continue
            if failed:
                continue  # keep draining so producers never block on a dead consumer
            try:
                if isinstance(item, StillUpTo):
                    self._writer.advance(item.ts)
                elif isinstance(item, Suspend):
                    self._writer.close(end=item.at, final=False, hold=math.inf)
                else:
                    if self.started_at is None:
                        self.started_at = item.ts
                    self._writer.write(item.ts, item.image)
            except (RecorderError, OSError) as exc:
                failed = True
                self.error = f"encoding failed: {exc}"
                log.error("capture %s: %s", self.interaction_id, self.error)
                self._salvage()
        try:
            if not failed and self._writer.is_open:
                # The held segments go first: the server muxes when the final one is stored, so
                # the final one (handed out at once, hold 0) must not overtake them.
                self._spool.release(self.interaction_id)
            if not failed and self._writer.close(end=None, final=True, hold=0.0) is None:
                # Stopped during a pause (or a quota stop): the segment that ended then is the
                # capture's last one; the server makes the mux when the final one arrives.
                self._spool.mark_final(self.interaction_id, self._writer.run)
        except (RecorderError, OSError) as exc:
            self.error = self.error or f"closing the last segment failed: {exc}"
            log.error("capture %s: %s", self.interaction_id, self.error)
        self._spool.release(self.interaction_id)

    def _pause_cut(self, at: float) -> CutReport:
        try:
            # Held until the resume or the stop: if the capture ends during this pause, this
            # segment becomes its final one.
            self._writer.close(end=at, final=False, hold=math.inf)
            return self._spool.cut_from(self.interaction_id, at)
        except (RecorderError, OSError) as exc:
            self.error = self.error or f"cutting frames after the pause failed: {exc}"
            log.error("capture %s: %s", self.interaction_id, self.error)
            return CutReport()

    def _salvage(self) -> None:
        """An encoder error mid-segment (e.g. the disk): keep what is readable of the segment."""
        try:
            self._writer.close(end=None, final=True, hold=0.0)
        except (EncoderError, SpoolError, OSError) as exc:
            log.error("capture %s: segment could not be closed after the error: %s", self.interaction_id, exc)
