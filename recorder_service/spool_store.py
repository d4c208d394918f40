"""The spool's storage: segment files and their manifests on disk, and the start-up recovery.

Layout (``root`` is private to the user, 0700)::

    segments/<interaction>/<run>.<seq>.mp4    the fragmented MP4 of one segment
    segments/<interaction>/<run>.<seq>.json   its manifest (SegmentManifest)
    quarantine/<interaction>.<run>.<seq>.*    unreadable segments, kept for an administrator

A manifest says whether its segment is still being written (``capturing``), complete and waiting
(``finished``), refused by the server for good (``refused``, file kept) or ``quarantined``. It is
written before the media file exists and atomically (tmp file, fsync, rename, fsync of the
directory), so a crash leaves either the old or the new manifest, never half of one.

At start-up ``recover`` closes out segments a crash left open (cut to their last complete
fragment, final for that run), quarantines what cannot be read, and adopts captures left by the
single-file recorder of earlier versions. ``recorder_service.spool.Spool`` adds the queue between
capture and uploader on top.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from recorder_service.errors import ManifestError, Mp4StructureError, SpoolError
from recorder_service.fmp4 import playable_length
from recorder_service.spool_manifest import (
    LEGACY_RUN,
    SegmentManifest,
    SegmentState,
    check_interaction_id,
    check_run,
    fsync_dir,
    sha256_of,
)
from recorder_service.trim import read_frames

log = logging.getLogger("recorder_service.spool")

Key = tuple[str, str, int]


class SpoolStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.segments_dir = root / "segments"
        self.quarantine_dir = root / "quarantine"
        try:
            for directory in (root, self.segments_dir, self.quarantine_dir):
                directory.mkdir(parents=True, exist_ok=True)
                os.chmod(directory, 0o700)  # screen captures are personal data
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {root}: {exc}") from exc
        self._lock = threading.RLock()

    def _forget(self, key: Key) -> None:
        """A segment's files are gone: drop what is remembered about it (see Spool)."""

    def media_path(self, iid: str, run: str, seq: int) -> Path:
        return self.segments_dir / check_interaction_id(iid) / f"{check_run(run)}.{int(seq):06d}.mp4"

    def manifest_path(self, iid: str, run: str, seq: int) -> Path:
        return self.media_path(iid, run, seq).with_suffix(".json")

    def write(self, manifest: SegmentManifest) -> None:
        path = self.manifest_path(*manifest.key)
        tmp = path.with_suffix(".json.tmp")
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(manifest.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except OSError as exc:
            raise SpoolError(f"cannot write manifest {path}: {exc}") from exc

    def read(self, iid: str, run: str, seq: int) -> SegmentManifest | None:
        path = self.manifest_path(iid, run, seq)
        try:
            return SegmentManifest.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SpoolError(f"cannot read manifest {path}: {exc}") from exc

    def manifests(self) -> list[SegmentManifest]:
        """Every readable segment manifest, oldest first; unreadable ones are quarantined by
        ``recover`` and skipped here."""
        out: list[SegmentManifest] = []
        for path in self.segments_dir.glob("*/*.json"):
            try:
                out.append(SegmentManifest.from_json(path.read_text(encoding="utf-8")))
            except (OSError, ManifestError):
                continue
        return sorted(out, key=lambda m: (m.started_at, m.run, m.seq))

    def _update(self, key: Key, **changes: Any) -> SegmentManifest:
        current = self.read(*key)
        if current is None:
            raise SpoolError(f"no manifest for segment {key}")
        updated = replace(current, **changes)
        self.write(updated)
        return updated

    def _delete(self, key: Key) -> None:
        media = self.media_path(*key)
        media.unlink(missing_ok=True)
        self.manifest_path(*key).unlink(missing_ok=True)
        self._forget(key)
        try:
            media.parent.rmdir()  # the interaction's directory, once empty
        except OSError:
            pass

    def open_segment(self, iid: str, run: str, seq: int, started_at: float) -> Path:
        """Record a new segment as ``capturing`` (before its file exists); returns the path the
        encoder writes."""
        with self._lock:
            self.write(SegmentManifest(iid, run, seq, SegmentState.CAPTURING, started_at))
            return self.media_path(iid, run, seq)

    def _finish(self, key: Key, *, final: bool) -> SegmentManifest:
        manifest = self.read(*key)
        if manifest is None:
            raise SpoolError(f"no manifest for segment {key}")
        media = self.media_path(*key)
        frames = read_frames(media)
        return self._update(
            key,
            state=SegmentState.FINISHED,
            final=final,
            frames=len(frames),
            last_frame_at=manifest.started_at + frames[-1].pts / 1000,
            sha256=sha256_of(media),
            size=media.stat().st_size,
        )

    def recover(self) -> list[tuple[str, str]]:
        """After a crash: close segments cut short, quarantine what cannot be read. Returns
        (interaction, line) per quarantined segment (logged, and said in its next status)."""
        problems: list[tuple[str, str]] = []
        with self._lock:
            self._adopt_legacy()
            for tmp in self.segments_dir.glob("*/*.tmp"):
                tmp.unlink(missing_ok=True)  # a cut or manifest write the crash interrupted
            for path in sorted(self.segments_dir.glob("*/*.json")):
                try:
                    manifest = SegmentManifest.from_json(path.read_text(encoding="utf-8"))
                except (OSError, ManifestError) as exc:
                    line = self._quarantine_paths(path, path.with_suffix(".mp4"), str(exc))
                    problems.append((path.parent.name, line))
                    continue
                if manifest.state == SegmentState.CAPTURING:
                    problem = self._close_out(manifest)
                elif manifest.state == SegmentState.FINISHED:
                    problem = self._check_finished(manifest)
                else:
                    continue
                if problem:
                    problems.append((manifest.interaction_id, problem))
            self._mark_runs_final()
            for media in self.segments_dir.glob("*/*.mp4"):
                if not media.with_suffix(".json").exists():
                    line = self._quarantine_paths(None, media, "media file without a manifest")
                    problems.append((media.parent.name, line))
        for _, line in problems:
            log.error("spool: %s", line)
        return problems

    def _adopt_legacy(self) -> None:
        """A spool of the single-file recorder (``<interaction>.json`` + ``.mp4`` at the root):
        a capture it had not uploaded becomes run ``legacy``'s only segment, closed out like an
        interrupted one. Failed or conflicting files stay where they are, for an administrator."""
        for path in self.root.glob("*.json"):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                iid = check_interaction_id(str(raw["interaction_id"]))
                state, started = raw.get("state"), raw.get("started_at")
            except (OSError, ValueError, KeyError, TypeError, SpoolError):
                continue
            media = self.root / f"{iid}.mp4"
            if state not in ("capturing", "finished") or started is None or not media.exists():
                continue
            target = self.open_segment(iid, LEGACY_RUN, 0, float(started))
            os.replace(media, target)
            path.unlink()
            log.warning("adopted %s from the single-file spool as segment %s", media.name, target)

    def _mark_runs_final(self) -> None:
        """Every run found at start-up is over: its latest segment is final for that run."""
        runs: dict[tuple[str, str], list[SegmentManifest]] = {}
        for m in self.manifests():
            if m.state == SegmentState.FINISHED:
                runs.setdefault((m.interaction_id, m.run), []).append(m)
        for segments in runs.values():
            if not any(m.final for m in segments):
                self._update(max(segments, key=lambda m: m.seq).key, final=True)

    def _close_out(self, manifest: SegmentManifest) -> str:
        media = self.media_path(*manifest.key)
        try:
            total = media.stat().st_size
        except FileNotFoundError:
            self._delete(manifest.key)  # opened, no frame ever written: nothing was lost
            return ""
        try:
            with media.open("r+b") as fh:
                keep = playable_length(fh, total)
                if keep < total:
                    fh.truncate(keep)
                    fh.flush()
                    os.fsync(fh.fileno())
            finished = self._finish(manifest.key, final=True)
        except (Mp4StructureError, OSError) as exc:
            return self._quarantine(manifest, f"interrupted segment unreadable: {exc}")
        log.warning(
            "recovered interrupted segment %s: %d frames up to %.3f",
            media,
            finished.frames,
            finished.last_frame_at or 0.0,
        )
        return ""

    def _check_finished(self, manifest: SegmentManifest) -> str:
        media = self.media_path(*manifest.key)
        try:
            if sha256_of(media) != manifest.sha256:
                return self._quarantine(manifest, "file changed since it was finished (checksum differs)")
        except OSError as exc:
            return self._quarantine(manifest, f"segment file unreadable: {exc}")
        return ""

    def _quarantine(self, manifest: SegmentManifest, reason: str) -> str:
        self.write(replace(manifest, state=SegmentState.QUARANTINED, error=reason))
        return self._quarantine_paths(
            self.manifest_path(*manifest.key), self.media_path(*manifest.key), reason
        )

    def _quarantine_paths(self, manifest: Path | None, media: Path, reason: str) -> str:
        """Move a segment's files aside; never deleted by the recorder."""
        prefix = f"{media.parent.name}.{media.stem}"
        for path in (manifest, media):
            if path is not None and path.exists():
                shutil.move(str(path), self.quarantine_dir / f"{prefix}{path.suffix}")
        return f"segment {media.parent.name}/{media.name} quarantined: {reason}"

    def quarantined(self) -> list[str]:
        return sorted(p.name for p in self.quarantine_dir.glob("*.mp4"))

    def size_bytes(self) -> int:
        total = 0
        for path in self.root.rglob("*"):
            try:
                if path.is_file():
                    total += path.stat().st_size
            except OSError:
                continue  # deleted meanwhile
        return total
