"""Turns released frames into a sequence of segments in the spool (one encoder per segment).

Used from the capture session's encode thread only. A new segment starts

* ``segment_seconds`` after the current one started (``rotate``: a still screen gets its last
  image again at the boundary, as the new segment's keyframe),
* when the frame size changes (a monitor added, removed or resized),
* after the writer was closed for a pause, a spool-quota stop or a new capture (the next frame).

A segment's pts 0 is its first frame, a keyframe, and its ``started_at`` that frame's server time.
When a segment ends later than its last frame, the last image is written once more just before
the end so the segment's duration reaches its end time (unchanged frames are otherwise never
encoded again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from recorder_service.endpoint_audio import EndpointAudio, feed_segment
from recorder_service.errors import EncoderError, Mp4StructureError, SpoolError
from recorder_service.spool import SegmentManifest, Spool

log = logging.getLogger(__name__)

# The end frame sits 2 ms before the next segment or the pause: with pts rounded to whole ms it
# still lies before a cut made at the pause (cuts round down), never on it.
TAIL_GAP = 0.002


class Encoder(Protocol):
    frames: int

    def encode(self, image: np.ndarray, pts_ms: int) -> None: ...

    def close(self) -> None: ...


EncoderFactory = Callable[[Path], Encoder]


@dataclass(slots=True)
class _Open:
    seq: int
    started_at: float
    encoder: Encoder
    shape: tuple[int, ...]
    last_ts: float
    last_image: np.ndarray


class SegmentWriter:
    def __init__(
        self,
        spool: Spool,
        interaction_id: str,
        run: str,
        *,
        encoder_factory: EncoderFactory,
        segment_seconds: float,
        first_seq: int = 0,
        hold: float = 5.0,
        audio: EndpointAudio | None = None,  # endpoint audio, fed as the video timeline advances
    ) -> None:
        if segment_seconds <= 0:
            raise ValueError("segment_seconds must be > 0")
        self._spool = spool
        self._iid = interaction_id
        self.run = run
        self._factory = encoder_factory
        self._segment_seconds = segment_seconds
        self._hold = hold
        self._audio = audio
        self.next_seq = first_seq
        self._open: _Open | None = None
        self.segments: list[int] = []  # seqs finished by this writer
        self.frames = 0

    @property
    def is_open(self) -> bool:
        return self._open is not None

    @property
    def next_boundary(self) -> float | None:
        """Server time at which the open segment is due to end."""
        return None if self._open is None else self._open.started_at + self._segment_seconds

    def write(self, ts: float, image: np.ndarray) -> None:
        current = self._open
        if current is not None and (image.shape != current.shape or ts >= self.next_boundary_or_inf()):
            why = "frame size changed" if image.shape != current.shape else "segment length reached"
            log.info("new segment for %s at %.3f: %s", self._iid, ts, why)
            self.close(end=ts, final=False)
        if self._open is None:
            self._start(ts, image)
        self._encode(ts, image)

    def next_boundary_or_inf(self) -> float:
        boundary = self.next_boundary
        return float("inf") if boundary is None else boundary

    def advance(self, horizon: float) -> bool:
        """Every frame up to server time ``horizon`` has been written (the screen was still since
        the last one). If the open segment's end lies before it, end it there and start the next
        one with the last image (returns True). Otherwise let the encoder push the still picture
        to disk if it can (``mark_unchanged``), so a crash on a still screen loses little."""
        current = self._open
        boundary = self.next_boundary
        if current is None or boundary is None or horizon <= current.last_ts:
            return False
        if horizon >= boundary and current.last_ts < boundary:
            # A frame grabbed just before the boundary is stored at its pts rounded to the ms,
            # which may be the boundary itself: the new segment's first frame starts after it
            # (the mux drops a frame at or before the last one it kept).
            start = max(boundary, self._stored_at(current, current.last_ts) + TAIL_GAP)
            if horizon < start:
                return False  # the next horizon starts it: never a segment ahead of the horizon
            image = current.last_image
            self.close(end=start, final=False)
            self._start(start, image)
            self._encode(start, image)
            return True
        mark = getattr(current.encoder, "mark_unchanged", None)
        if mark is not None and mark(self._pts(current, horizon)):
            current.last_ts = horizon
        feed_segment(self._audio, current.encoder, current.started_at, horizon)
        return False

    def close(self, *, end: float | None, final: bool, hold: float | None = None) -> SegmentManifest | None:
        """End the open segment (a frame repeated just before ``end`` when the screen was still)
        and finish it in the spool. Held ``hold`` seconds (default: the writer's) before upload."""
        current, self._open = self._open, None
        if current is None:
            return None
        if current.encoder.frames == 0:
            current.encoder.close()
            self._spool.discard(self._iid, self.run, current.seq)
            return None
        try:
            if end is not None and current.last_ts < end - TAIL_GAP * 2:
                tail = end - TAIL_GAP
                current.encoder.encode(current.last_image, self._pts(current, tail))
                current.last_ts = tail
            feed_segment(self._audio, current.encoder, current.started_at, current.last_ts)
            current.encoder.close()
        except EncoderError as exc:
            log.error("closing segment %s/%s.%d failed: %s", self._iid, self.run, current.seq, exc)
        try:
            manifest = self._spool.finish(
                self._iid, self.run, current.seq, final=final, hold=self._hold if hold is None else hold
            )
        except (Mp4StructureError, SpoolError) as exc:
            self._spool.quarantine(self._iid, self.run, current.seq, f"segment unreadable when closed: {exc}")
            return None
        self.segments.append(current.seq)
        return manifest

    def _start(self, ts: float, image: np.ndarray) -> None:
        seq = self.next_seq
        self.next_seq += 1
        path = self._spool.open_segment(self._iid, self.run, seq, ts)
        encoder = self._factory(path)
        self._open = _Open(seq, ts, encoder, image.shape, ts, image)
        if self._audio is not None:
            self._audio.discard_before(ts)

    def _encode(self, ts: float, image: np.ndarray) -> None:
        current = self._open
        assert current is not None
        current.encoder.encode(image, self._pts(current, ts))
        feed_segment(self._audio, current.encoder, current.started_at, ts)
        current.last_ts = max(current.last_ts, ts)
        current.last_image = image
        self.frames += 1

    @staticmethod
    def _pts(current: _Open, ts: float) -> int:
        return round((ts - current.started_at) * 1000)

    @classmethod
    def _stored_at(cls, current: _Open, ts: float) -> float:
        """The server time a frame stamped ``ts`` has in the file (its pts is in whole ms)."""
        return current.started_at + cls._pts(current, ts) / 1000
