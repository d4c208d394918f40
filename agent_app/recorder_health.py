"""The paired recorder's state as the agent sees it (health panel and tray icon). Pure.

Input: the server's ``recorder.health`` data (``server.services.recorder_health_event``: is its
channel open, when it last reported, its last heartbeat, the fleet's problem codes) and now on
the server's clock. Output: a level (ok / warning / unknown), a headline and detail lines in
words. A recorder that falls silent sends nothing, so "missing" is decided here: no heartbeat
for three of its own intervals (the fleet's rule), or never one at all. Every problem is a
warning the agent can read, never silence — a stopped recorder used to look like "Connected".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tandem_protocol.recorder_health import Heartbeat

MISSED_BEATS = 3  # as server.services.recorder_fleet: missing after this many silent intervals


class Level(StrEnum):
    UNKNOWN = "unknown"  # not logged in, or no word from the server yet
    OK = "ok"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class RecorderReport:
    connected: bool  # its event channel is open now
    last_seen: float | None  # server time of its last heartbeat
    heartbeat: Heartbeat | None
    problems: tuple[str, ...] = ()  # the fleet's codes, worst first, as the server saw them


def parse_report(data: Any) -> RecorderReport:
    """From the event's data; ``ValueError`` naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("recorder.health: must be an object")
    last_seen = data.get("last_seen")
    if last_seen is not None and (isinstance(last_seen, bool) or not isinstance(last_seen, int | float)):
        raise ValueError("recorder.health.last_seen: a number or null")
    raw_beat = data.get("heartbeat")
    problems = data.get("problems") or []
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        raise ValueError("recorder.health.problems: a list of strings")
    return RecorderReport(
        connected=bool(data.get("connected")),
        last_seen=None if last_seen is None else float(last_seen),
        heartbeat=None if raw_beat is None else Heartbeat.from_dict(raw_beat),
        problems=tuple(problems),
    )


# The fleet's problem codes in the agent's words (server.services.recorder_fleet.PROBLEMS).
PROBLEM_WORDS = {
    "failed": "Screen recorder failed",
    "spool_full": "Recorder storage full — screen capture stopped",
    "low_disk": "This PC's disk is almost full",
    "backlog": "Screen uploads are falling behind",
    "clock": "Recorder clock not synchronised with the server",
    "error": "The recorder reported an error",
}
_STATE_WORDS = {
    "idle": "connected, idle",
    "recording": "recording",
    "paused": "paused",
    "uploading": "uploading",
    "stopping": "finishing the recording",
    "spool_full": "storage full",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class HealthView:
    level: Level
    headline: str
    details: tuple[str, ...]  # one fact per line: uploads, spool, last error
    upload_percent: int | None  # progress of the segment being sent, None when none is
    pending: int  # finished segments not yet on the server

    @property
    def summary(self) -> str:
        """One line (the tray's tooltip)."""
        return self.headline


UNKNOWN = HealthView(Level.UNKNOWN, "Recorder: waiting for the server…", (), None, 0)


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{round(seconds / 60)} min ago"
    return f"{round(seconds / 3600)} h ago"


def is_missing(report: RecorderReport, server_now: float) -> bool:
    """No heartbeat ever, or none for ``MISSED_BEATS`` of its own intervals (hung or gone)."""
    if report.heartbeat is None or report.last_seen is None:
        return True
    return server_now - report.last_seen > MISSED_BEATS * report.heartbeat.interval


def health_view(report: RecorderReport | None, server_now: float) -> HealthView:
    if report is None:
        return UNKNOWN
    beat = report.heartbeat
    if beat is None or report.last_seen is None:
        if report.connected:  # it has just connected; its first heartbeat follows
            return HealthView(Level.UNKNOWN, "Recorder: connected, waiting for its first report", (), None, 0)
        return HealthView(
            Level.WARNING,
            "No screen recorder on this PC has reported — your screen is not being recorded",
            ("Ask IT to check that the Tandem recorder runs on this PC.",),
            None,
            0,
        )
    details = list(_facts(beat))
    ago = format_ago(server_now - report.last_seen)
    if is_missing(report, server_now):
        details.insert(0, f"Last report {ago}.")
        return HealthView(
            Level.WARNING,
            "Screen recorder not responding — your screen may not be recorded",
            tuple(details),
            None,
            beat.segments_pending,
        )
    if not report.connected:
        details.insert(0, f"Last report {ago}.")
        return HealthView(
            Level.WARNING,
            "Screen recorder disconnected — your screen is not being recorded",
            tuple(details),
            None,
            beat.segments_pending,
        )
    percent = _upload_percent(beat)
    problems = [p for p in report.problems if p in PROBLEM_WORDS]
    if beat.state == "failed" and "failed" not in problems:
        problems.insert(0, "failed")
    if beat.state == "spool_full" and "spool_full" not in problems:
        problems.insert(0, "spool_full")
    if problems:
        headline = PROBLEM_WORDS[problems[0]]
        more = [PROBLEM_WORDS[p] + "." for p in problems[1:] if p != "error"]
        return HealthView(Level.WARNING, headline, tuple(more + details), percent, beat.segments_pending)
    return HealthView(
        Level.OK,
        f"Recorder: {_STATE_WORDS.get(beat.state, beat.state)}",
        tuple(details),
        percent,
        beat.segments_pending,
    )


def _upload_percent(beat: Heartbeat) -> int | None:
    if beat.upload is None or beat.upload.length <= 0:
        return None
    return min(100, int(100 * beat.upload.offset / beat.upload.length))


def _facts(beat: Heartbeat) -> tuple[str, ...]:
    lines = []
    if beat.segments_pending:
        lines.append(f"Uploads pending: {beat.segments_pending}")
    percent = _upload_percent(beat)
    if percent is not None:
        lines.append(f"Uploading a screen segment: {percent} %")
    lines.append(f"Spool: {format_bytes(beat.spool_bytes)}")
    if beat.last_error:
        lines.append(f"Last error: {beat.last_error}")
    return tuple(lines)
