"""The local spool: one ``<interaction_id>.mp4`` per capture plus a JSON manifest.

The spool is what makes a capture survive the recorder: the manifest says whether the file is
still being written (``capturing``), complete and awaiting upload (``finished``), done
(``uploaded``, the media file is then deleted — only once the server confirmed it stores this very
file), given up on (``failed``) or refused because the server stores a different file for the
interaction (``conflict``). Failed and conflicting files are never deleted by the recorder.
Manifests are written atomically (tmp file, fsync, rename, fsync of the directory) so a crash
leaves either the old or the new manifest, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from recorder_service.errors import ManifestError, Mp4StructureError, SpoolError
from recorder_service.fmp4 import playable_length

# Interaction ids become file names: only allow what cannot escape the spool directory.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SpoolState(StrEnum):
    CAPTURING = "capturing"
    FINISHED = "finished"
    UPLOADED = "uploaded"
    FAILED = "failed"
    CONFLICT = "conflict"  # the server holds another file for this interaction; ours is kept


@dataclass(frozen=True, slots=True)
class Manifest:
    interaction_id: str
    state: SpoolState
    started_at: float | None = None  # server time of pts 0; None until the first frame
    attempts: int = 0
    sha256: str | None = None
    size: int | None = None
    error: str = ""

    def to_json(self) -> str:
        raw = asdict(self)
        raw["state"] = self.state.value
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            raw: Any = json.loads(text)
            if not isinstance(raw, dict):
                raise ManifestError("manifest is not a JSON object")
            started = raw.get("started_at")
            size = raw.get("size")
            sha = raw.get("sha256")
            return cls(
                interaction_id=str(raw["interaction_id"]),
                state=SpoolState(raw["state"]),
                started_at=None if started is None else float(started),
                attempts=int(raw.get("attempts", 0)),
                sha256=None if sha is None else str(sha),
                size=None if size is None else int(size),
                error=str(raw.get("error", "")),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"malformed manifest: {exc}") from exc


def check_interaction_id(interaction_id: str) -> str:
    if not _SAFE_ID.match(interaction_id):
        raise SpoolError(f"interaction id {interaction_id!r} is not safe as a file name")
    return interaction_id


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True)
            os.chmod(root, 0o700)  # screen captures are personal data
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {root}: {exc}") from exc

    def media_path(self, interaction_id: str) -> Path:
        return self.root / f"{check_interaction_id(interaction_id)}.mp4"

    def manifest_path(self, interaction_id: str) -> Path:
        return self.root / f"{check_interaction_id(interaction_id)}.json"

    def write(self, manifest: Manifest) -> None:
        path = self.manifest_path(manifest.interaction_id)
        tmp = path.with_suffix(".json.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(manifest.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            self._fsync_dir()
        except OSError as exc:
            raise SpoolError(f"cannot write manifest {path}: {exc}") from exc

    def _fsync_dir(self) -> None:
        if os.name != "posix":
            return  # directories cannot be opened for fsync on Windows; rename is durable there
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, interaction_id: str) -> Manifest | None:
        path = self.manifest_path(interaction_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SpoolError(f"cannot read manifest {path}: {exc}") from exc
        return Manifest.from_json(text)

    def update(self, interaction_id: str, **changes: Any) -> Manifest:
        current = self.read(interaction_id)
        if current is None:
            raise SpoolError(f"no manifest for {interaction_id}")
        updated = replace(current, **changes)
        self.write(updated)
        return updated

    def manifests(self) -> list[Manifest]:
        """Every readable manifest; unreadable ones are skipped (the caller logs the count)."""
        out: list[Manifest] = []
        for path in sorted(self.root.glob("*.json")):
            try:
                out.append(Manifest.from_json(path.read_text(encoding="utf-8")))
            except (OSError, ManifestError):
                continue
        return out

    def finish(self, interaction_id: str) -> Manifest:
        """Mark a closed capture ready for upload: checksum and size recorded once, here."""
        media = self.media_path(interaction_id)
        return self.update(
            interaction_id, state=SpoolState.FINISHED, sha256=sha256_of(media), size=media.stat().st_size
        )

    def close_out_crashed(self, interaction_id: str) -> Manifest:
        """A manifest still says ``capturing``: the process died. Cut the file to its last complete
        fragment and mark it finished, or failed if nothing usable was written."""
        media = self.media_path(interaction_id)
        try:
            total = media.stat().st_size
            with media.open("r+b") as fh:
                keep = playable_length(fh, total)
                if keep < total:
                    fh.truncate(keep)
                    fh.flush()
                    os.fsync(fh.fileno())
        except FileNotFoundError:
            return self.update(interaction_id, state=SpoolState.FAILED, error="media file missing")
        except Mp4StructureError as exc:
            return self.update(interaction_id, state=SpoolState.FAILED, error=str(exc))
        except OSError as exc:
            raise SpoolError(f"cannot close out {media}: {exc}") from exc
        manifest = self.read(interaction_id)
        if manifest is None or manifest.started_at is None:
            return self.update(interaction_id, state=SpoolState.FAILED, error="start time never recorded")
        return self.finish(interaction_id)

    def mark_uploaded(self, interaction_id: str) -> Manifest:
        manifest = self.update(interaction_id, state=SpoolState.UPLOADED, error="")
        self.media_path(interaction_id).unlink(missing_ok=True)
        return manifest
