"""The local spool: every screen segment on disk until the server confirms it, crash-proof.

Files, manifests and start-up recovery are ``SpoolStore``'s (recorder_service/spool_store.py);
this is the queue between capture and uploader on top of it. An uploaded segment's files are
deleted only once the server confirmed its very checksum.

The spool implements ``SegmentQueue`` for the uploader. A finished segment may be *held* for a few
seconds before ``ready`` hands it out: a pause command that arrives late can then still cut frames
stamped inside the pause from it (``cut_from``). Once handed out, a segment is never altered under
the uploader's feet; only the uploader's own ``cut_pauses`` changes it then. A segment closed by a
pause waits until the resume or the stop (it may yet be the capture's final one).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from recorder_service.segment_queue import SegmentRef
from recorder_service.spool_manifest import (
    LEGACY_RUN,
    CutReport,
    SegmentManifest,
    SegmentState,
    fsync_dir,
    sha256_of,
    to_ms_floor,
)
from recorder_service.spool_store import Key, SpoolStore
from recorder_service.trim import trim

__all__ = ["LEGACY_RUN", "CutReport", "SegmentManifest", "SegmentState", "Spool"]

log = logging.getLogger(__name__)


class Spool(SpoolStore):
    def __init__(self, root: Path, *, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(root)
        self.on_ready = on_ready
        self._holds: dict[Key, float] = {}  # key -> monotonic release time
        self._handed: set[Key] = set()

    def _forget(self, key: Key) -> None:
        self._holds.pop(key, None)
        self._handed.discard(key)

    def finish(self, iid: str, run: str, seq: int, *, final: bool, hold: float = 0.0) -> SegmentManifest:
        """A closed segment: checksum, size and frame times recorded once, here. ``hold``
        seconds pass before ``ready`` hands it out (a late pause may still cut it); ``math.inf``:
        until ``release`` (a segment closed by a pause may yet become the capture's final one)."""
        key = (iid, run, seq)
        with self._lock:
            manifest = self._finish(key, final=final)
            if math.isinf(hold):
                self._holds[key] = math.inf
            elif hold > 0:
                self._holds[key] = time.monotonic() + hold
                timer = threading.Timer(hold, self._notify)
                timer.daemon = True
                timer.start()
            else:
                self._notify()
            return manifest

    def discard(self, iid: str, run: str, seq: int) -> None:
        """A segment that never got a frame."""
        with self._lock:
            self._delete((iid, run, seq))

    def quarantine(self, iid: str, run: str, seq: int, reason: str) -> str:
        """A segment the encoder could not finish readably: set aside, never deleted."""
        with self._lock:
            manifest = self.read(iid, run, seq)
            if manifest is None:
                return self._quarantine_paths(None, self.media_path(iid, run, seq), reason)
            return self._quarantine(manifest, reason)

    def mark_final(self, iid: str, run: str) -> SegmentManifest | None:
        """The capture ended while no segment was open (stopped during a pause): its latest
        segment becomes the final one, unless the uploader has it already."""
        with self._lock:
            mine = [m for m in self.manifests() if m.interaction_id == iid and m.run == run]
            if not mine:
                return None
            last = max(mine, key=lambda m: m.seq)
            if last.final or last.state != SegmentState.FINISHED or last.key in self._handed:
                return None
            return self._update(last.key, final=True)

    def release(self, iid: str) -> None:
        """Hand out the interaction's held segments now (the pause or stop is known)."""
        with self._lock:
            for key in [k for k in self._holds if k[0] == iid]:
                del self._holds[key]
        self._notify()

    def cut_from(self, iid: str, at: float) -> CutReport:
        """Remove every frame stamped at or after ``at`` (server time) from the interaction's
        finished segments that the uploader does not have yet (a pause that arrived late)."""
        report = CutReport()
        with self._lock:
            for manifest in self.manifests():
                if manifest.interaction_id != iid or manifest.state != SegmentState.FINISHED:
                    continue
                if manifest.last_frame_at is None or manifest.last_frame_at < at:
                    continue
                if manifest.key in self._handed:
                    report += CutReport(unreachable=1)
                    continue
                _, result = self._cut(manifest, [(to_ms_floor(at - manifest.started_at), None)])
                report += CutReport(frames=result[0], segments_removed=int(result[1]))
        return report

    def ready(self) -> list[SegmentRef]:
        now = time.monotonic()
        out: list[SegmentRef] = []
        with self._lock:
            for m in self.manifests():
                if m.state != SegmentState.FINISHED or self._holds.get(m.key, 0.0) > now:
                    continue
                if m.sha256 is None or m.size is None:
                    continue
                self._holds.pop(m.key, None)
                self._handed.add(m.key)
                out.append(self._ref(m))
        return out

    def uploaded(self, ref: SegmentRef, server_sha256: str) -> None:
        key = (ref.interaction_id, ref.run, ref.seq)
        with self._lock:
            manifest = self.read(*key)
            if manifest is None:
                return
            if server_sha256.lower() != (manifest.sha256 or "").lower():
                # Never delete on the server's word alone: it must hold exactly our bytes.
                log.error(
                    "server confirmed %s with sha256 %s but ours is %s: segment kept",
                    ref.path.name,
                    server_sha256,
                    manifest.sha256,
                )
                self._update(key, state=SegmentState.REFUSED, error="server holds a different file")
                return
            self._delete(key)

    def refused(self, ref: SegmentRef, code: str, message: str) -> None:
        key = (ref.interaction_id, ref.run, ref.seq)
        with self._lock:
            log.error("segment %s refused by the server (%s: %s); file kept", ref.path, code, message)
            self._handed.discard(key)
            if self.read(*key) is not None:
                self._update(key, state=SegmentState.REFUSED, error=f"{code}: {message}")

    def cut_pauses(self, ref: SegmentRef, spans: list[tuple[float, float | None]]) -> SegmentRef | None:
        key = (ref.interaction_id, ref.run, ref.seq)
        with self._lock:
            manifest = self.read(*key)
            if manifest is None:
                return None
            ms: list[tuple[int, int | None]] = []
            for start, end in spans:
                s = to_ms_floor(start - manifest.started_at)
                e = None if end is None else math.ceil((end - manifest.started_at) * 1000)
                if e is None or e > s:
                    ms.append((s, e))
            updated, (frames, removed) = self._cut(manifest, ms)
            log.warning("cut %d frame(s) inside pauses from %s at the server's request", frames, ref.path)
            if removed or updated is None:
                return None
            self._handed.add(key)
            return self._ref(updated)

    def _cut(
        self, manifest: SegmentManifest, spans: list[tuple[int, int | None]]
    ) -> tuple[SegmentManifest | None, tuple[int, bool]]:
        """Trim a finished segment in place (new file renamed over the old one)."""
        media = self.media_path(*manifest.key)
        tmp = media.with_suffix(".cut.tmp")
        result = trim(media, tmp, spans)
        if result.dropped == 0:
            tmp.unlink(missing_ok=True)
            return manifest, (0, False)
        if result.kept == 0:
            self._delete(manifest.key)
            return None, (result.dropped, True)
        os.replace(tmp, media)
        fsync_dir(media.parent)
        started = manifest.started_at + result.shift_ms / 1000
        last = started + (result.last_pts or 0) / 1000
        updated = self._update(
            manifest.key,
            started_at=started,
            last_frame_at=last,
            frames=result.kept,
            sha256=sha256_of(media),
            size=media.stat().st_size,
        )
        return updated, (result.dropped, False)

    def _ref(self, m: SegmentManifest) -> SegmentRef:
        assert m.sha256 is not None and m.size is not None
        return SegmentRef(
            m.interaction_id, m.run, m.seq, self.media_path(*m.key), m.started_at, m.sha256, m.size, m.final
        )

    def _notify(self) -> None:
        if self.on_ready is not None:
            self.on_ready()
