"""The seam between the capture side (which finishes segments into the spool) and the uploader
(which sends them with tus, docs/screen-segments.md): what a finished segment is, and what the
uploader may ask of the spool. The spool implements ``SegmentQueue``; the uploader only uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A finished segment waiting in the spool."""

    interaction_id: str
    run: str  # recorder run id, new at every recorder start
    seq: int  # 0, 1, 2… within the run
    path: Path  # the complete fragmented MP4
    started_at: float  # server time of pts 0
    sha256: str  # hex digest of the file at ``path``
    size: int
    final: bool  # the capture ended with this segment (screen.stop, or the last one after a crash)


class SegmentQueue(Protocol):
    def ready(self) -> list[SegmentRef]:
        """Finished segments not yet confirmed by the server, not quarantined nor refused;
        oldest first (by started_at, then run, seq)."""
        ...

    def uploaded(self, ref: SegmentRef, server_sha256: str) -> None:
        """The server confirmed it stores exactly this file (its sha256 equals ``ref.sha256``):
        the local copy may go."""
        ...

    def refused(self, ref: SegmentRef, code: str, message: str) -> None:
        """A final refusal (a 4xx that retrying cannot change): the file is kept, marked with the
        server's reason, and reported; it is never deleted on the server's word alone."""
        ...

    def cut_pauses(self, ref: SegmentRef, spans: list[tuple[float, float | None]]) -> SegmentRef | None:
        """The server refused frames inside these pause spans (server time; ``None`` = still
        open): remove every frame inside them from the segment and return the new segment to
        upload (a new sha256 and size), or ``None`` when nothing is left of it."""
        ...
