"""What travels from the capture session's grab thread (and its pause) to its encode thread,
in one queue with the frames.

Control travels through the same queue as frames, so it is applied in order with them:

* ``StillUpTo``: every frame up to this server time is released — a still screen's segment can end
  at its boundary even though no frame came.
* ``PauseCut``: a pause at ``at``. Frames released before the pause arrived (it came late) are
  already encoded; the encode thread closes the open segment and cuts every frame at/after ``at``
  from it and from finished segments the uploader does not have yet (held back for
  ``hold`` seconds for exactly this), then says what it did.
* ``Suspend``: the spool quota is exceeded, or a masking pause rule's window appeared
  (``auto_pause`` of the grabber, reported as ``screen.auto_pause``); the open segment ends now.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from recorder_service.frame_gate import Released
from recorder_service.spool import CutReport


@dataclass(frozen=True, slots=True)
class StillUpTo:
    ts: float


@dataclass(slots=True)
class PauseCut:
    at: float
    done: threading.Event = field(default_factory=threading.Event)
    report: CutReport = field(default_factory=CutReport)


@dataclass(frozen=True, slots=True)
class Suspend:
    at: float


Item = Released[np.ndarray] | StillUpTo | PauseCut | Suspend | None  # None: the capture stops


def describe_cut(report: CutReport) -> str:
    """The pause ack's truthful account of what was removed."""
    parts = []
    if report.frames:
        parts.append(f"cut {report.frames} frame(s) encoded after the pause")
    if report.segments_removed:
        parts.append(f"removed {report.segments_removed} segment(s) lying wholly inside it")
    if report.unreachable:
        parts.append(
            f"{report.unreachable} segment(s) with frames after the pause were already with the "
            "uploader: the server refuses them (frames_in_pause) and they are cut then"
        )
    return "; ".join(parts)
