"""The segment uploader's figures for the health heartbeat: what is pending, what went, what is
in flight, the last error and the last success. The uploader's worker writes them, any thread
reads a consistent snapshot (``UploaderStats``). No network, no files: tested through the
uploader, whose behaviour they describe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from recorder_service.segment_queue import SegmentRef

Key = tuple[str, str, int, str]  # interaction, run, seq, sha256: a cut segment is another file


def segment_key(ref: SegmentRef) -> Key:
    return (ref.interaction_id, ref.run, ref.seq, ref.sha256)


def segment_name(ref: SegmentRef) -> str:
    return f"{ref.interaction_id}/{ref.run}/{ref.seq}"


@dataclass(frozen=True, slots=True)
class Progress:
    segment: str  # "<interaction>/<run>/<seq>"
    offset: int  # bytes the server holds
    length: int


@dataclass(frozen=True, slots=True)
class UploaderStats:
    """What the health heartbeat reports about uploads."""

    state: str  # idle | uploading | backoff | unauthorized | misconfigured | outside_window | stopped
    pending_segments: int
    pending_bytes: int  # bytes of pending segments the server does not hold yet
    bytes_sent: int  # body bytes handed to the network
    bytes_resent: int  # of those, bytes of a segment that had already been sent once
    segments_uploaded: int
    current: Progress | None
    last_error: str  # what holds uploads back: "" again once a segment goes through
    last_error_at: float | None  # wall clock of the latest error (kept after it cleared)
    last_success_at: float | None  # wall clock: a segment confirmed by the server

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UploadMeter:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._state = "idle"
        self._pending: list[SegmentRef] = []
        self._held: dict[Key, int] = {}  # bytes the server said it holds, per pending segment
        self._bytes_sent = 0
        self._bytes_resent = 0
        self._uploaded = 0
        self._current: Progress | None = None
        self._last_error = ""
        self._last_error_at: float | None = None
        self._last_success_at: float | None = None

    def state(self, state: str, *, only_if: str | None = None) -> None:
        with self._lock:
            if only_if is None or self._state == only_if:
                self._state = state

    def pending(self, refs: Sequence[SegmentRef]) -> None:
        """What the spool hands out now."""
        live = {segment_key(r) for r in refs}
        with self._lock:
            self._pending = list(refs)
            self._held = {k: v for k, v in self._held.items() if k in live}

    def show(self, ref: SegmentRef, offset: int) -> None:
        """The segment in flight and what the server holds of it."""
        with self._lock:
            self._current = Progress(segment_name(ref), offset, ref.size)
            self._held[segment_key(ref)] = offset

    def idle(self) -> None:
        """The attempt is over."""
        with self._lock:
            self._current = None
            if self._state == "uploading":
                self._state = "idle"

    def sent(self, n: int, again: int) -> None:
        with self._lock:
            self._bytes_sent += n
            self._bytes_resent += again

    def error(self, message: str) -> None:
        with self._lock:
            self._last_error = message
            self._last_error_at = self._wall()

    def settled(self, ref: SegmentRef, *, success: bool) -> None:
        """The segment left the queue: uploaded, refused or cut into another."""
        key = segment_key(ref)
        with self._lock:
            self._pending = [r for r in self._pending if segment_key(r) != key]
            self._held.pop(key, None)
            if success:
                self._uploaded += 1
                self._last_success_at = self._wall()
                self._last_error = ""

    def snapshot(self) -> UploaderStats:
        with self._lock:
            pending_bytes = sum(r.size - self._held.get(segment_key(r), 0) for r in self._pending)
            return UploaderStats(
                state=self._state,
                pending_segments=len(self._pending),
                pending_bytes=max(0, pending_bytes),
                bytes_sent=self._bytes_sent,
                bytes_resent=self._bytes_resent,
                segments_uploaded=self._uploaded,
                current=self._current,
                last_error=self._last_error,
                last_error_at=self._last_error_at,
                last_success_at=self._last_success_at,
            )
