"""When the spool must stop taking screen frames: too little free disk, or a spool too big.

Pure: the caller measures (``shutil.disk_usage`` and the spool's size) and asks. Capture stops
*before* the disk fills (the admin's free-space threshold), so a full disk never tears a segment;
it resumes only with a margin above the thresholds so it does not flap on and off at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

RESUME_MARGIN_PERCENT = 1.0  # free space must be this much above the minimum to resume
RESUME_MARGIN_FRACTION = 0.05  # and the spool this fraction below its maximum

SPOOL_FULL = "spool_full"


@dataclass(frozen=True, slots=True)
class DiskUsage:
    free_bytes: int
    total_bytes: int
    spool_bytes: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes > 0 else 0.0


def quota_problem(usage: DiskUsage, *, min_free_percent: float, max_mb: float, stopped: bool = False) -> str:
    """ "" when capture may go on (or, if ``stopped``, resume); else the reason, starting with
    ``spool_full:`` so the server and the desktop can recognise it."""
    free_needed = min_free_percent + (RESUME_MARGIN_PERCENT if stopped else 0.0)
    max_bytes = max_mb * 1024 * 1024 * ((1.0 - RESUME_MARGIN_FRACTION) if stopped else 1.0)
    if usage.free_percent < free_needed:
        return (
            f"{SPOOL_FULL}: free disk {usage.free_percent:.1f} % is below the "
            f"{min_free_percent:g} % minimum; screen capture stopped until space returns"
        )
    if usage.spool_bytes > max_bytes:
        return (
            f"{SPOOL_FULL}: spool holds {usage.spool_bytes / 1048576:.0f} MB, more than the "
            f"{max_mb:g} MB maximum; screen capture stopped until segments are uploaded"
        )
    return ""
