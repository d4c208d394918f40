"""A spool segment's manifest and the small helpers around it (pure, no spool state).

The manifest is the truth about one segment on disk: see ``recorder_service.spool``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from recorder_service.errors import ManifestError, SpoolError

# Interaction and run ids become file names: only allow what cannot escape the spool directory.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SAFE_RUN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


LEGACY_RUN = "legacy"  # captures left by the single-file recorder (before segments)


class SegmentState(StrEnum):
    CAPTURING = "capturing"
    FINISHED = "finished"
    REFUSED = "refused"  # a final refusal by the server; the file is kept
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class SegmentManifest:
    interaction_id: str
    run: str
    seq: int
    state: SegmentState
    started_at: float  # server time of pts 0
    last_frame_at: float | None = None  # server time of the last frame, once finished
    frames: int = 0
    sha256: str | None = None
    size: int | None = None
    final: bool = False  # the capture (or the run, after a crash) ended with this segment
    attempts: int = 0
    error: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.interaction_id, self.run, self.seq)

    def to_json(self) -> str:
        raw = asdict(self)
        raw["state"] = self.state.value
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SegmentManifest:
        try:
            raw: Any = json.loads(text)
            if not isinstance(raw, dict):
                raise ManifestError("manifest is not a JSON object")
            last = raw.get("last_frame_at")
            sha = raw.get("sha256")
            size = raw.get("size")
            return cls(
                interaction_id=check_interaction_id(str(raw["interaction_id"])),
                run=check_run(str(raw["run"])),
                seq=int(raw["seq"]),
                state=SegmentState(raw["state"]),
                started_at=float(raw["started_at"]),
                last_frame_at=None if last is None else float(last),
                frames=int(raw.get("frames", 0)),
                sha256=None if sha is None else str(sha),
                size=None if size is None else int(size),
                final=bool(raw.get("final", False)),
                attempts=int(raw.get("attempts", 0)),
                error=str(raw.get("error", "")),
            )
        except ManifestError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, SpoolError) as exc:
            raise ManifestError(f"malformed manifest: {exc}") from exc


def check_interaction_id(interaction_id: str) -> str:
    if not _SAFE_ID.match(interaction_id):
        raise SpoolError(f"interaction id {interaction_id!r} is not safe as a file name")
    return interaction_id


def check_run(run: str) -> str:
    if not _SAFE_RUN.match(run):
        raise SpoolError(f"run id {run!r} is not [A-Za-z0-9._-]{{1,64}}")
    return run


def to_ms_floor(seconds: float) -> int:
    """Segment milliseconds from which frames go: rounded down, so a frame whose stored
    (millisecond) pts lies a fraction before the cut time still goes — never one too few."""
    return max(0, math.floor(seconds * 1000))


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # directories cannot be opened for fsync on Windows; rename is durable there
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class CutReport:
    frames: int = 0  # frames removed from segments not yet handed out
    segments_removed: int = 0  # segments that lay wholly inside the cut
    unreachable: int = 0  # segments with frames past the cut already with the uploader

    def __add__(self, other: CutReport) -> CutReport:
        return CutReport(
            self.frames + other.frames,
            self.segments_removed + other.segments_removed,
            self.unreachable + other.unreachable,
        )
