"""Recorder problems reported by the agent's desktop, for the fleet page.

A recorder that cannot start — a config file with an unknown key, a wrong server URL, a refused or
lost credential, a crash — never reaches the server, so the fleet would not show that PC at all.
The agent's desktop on the same PC does reach the server (the agent logs in there): it reads the
recorder's last problem and reports it (``POST /api/agent/recorder-problems``), and reports
"cleared" once it sees the recorder running again.

One row per (host, OS user), the latest report wins. Bounded: a row not reported again within
``MAX_AGE`` drops off (the desktop reports again while the problem lasts), at most ``MAX_ROWS`` in
all, and ``ReportLimiter`` turns away a login that reports too often (a desktop stuck in a loop).
Every report and clear is audited; a rate-limited login once per window.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.services.actor import Actor
from server.store import audit, models

MAX_AGE = 7 * 86400  # a problem nobody re-reported in a week is no longer news
MAX_ROWS = 2000
LIMIT_REPORTS = 20  # reports (and clears) from one login ...
LIMIT_WINDOW = 600.0  # ... within this many seconds, then 429 until the window has room

Kind = Literal["config", "unreachable", "enrolment", "credential", "crashed", "other"]
# The kind in the fleet row's words ("recorder not running: configuration error").
KINDS: dict[str, str] = {
    "config": "configuration error",
    "unreachable": "cannot reach the server",
    "enrolment": "enrolment failed",
    "credential": "credential refused or missing",
    "crashed": "crashed",
    "other": "stopped",
}


@dataclass(frozen=True, slots=True)
class ReportedProblem:
    """One PC's latest reported recorder problem, with the reporter's name and team."""

    hostname: str
    os_user: str
    kind: str
    kind_text: str
    message: str
    occurred_at: float
    reported_at: float
    reported_by: str
    reported_by_id: int | None
    full_name: str
    team: str
    recorder_version: str
    remote_addr: str


class ReportLimiter:
    """Reports per login in a sliding window (pure: the caller passes the time). ``check`` says
    "ok" (counted), "limited" or "limited_first" — the first refusal of a window, the one that is
    audited, so a desktop stuck in a loop does not grow the audit log either."""

    def __init__(self, limit: int = LIMIT_REPORTS, window: float = LIMIT_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._announced: dict[str, float] = {}

    def check(self, key: str, now: float) -> Literal["ok", "limited", "limited_first"]:
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            return "ok"
        if now - self._announced.get(key, float("-inf")) < self.window:
            return "limited"
        self._announced[key] = now
        return "limited_first"


def report(
    session: Session,
    actor: Actor,
    *,
    hostname: str,
    os_user: str,
    kind: str,
    message: str,
    occurred_at: float,
    recorder_version: str,
    now: float | None = None,
) -> None:
    """Keep this PC's latest problem (replacing an earlier one), prune, audit. The caller commits."""
    now = time.time() if now is None else now
    table = models.RecorderProblem
    row = session.execute(select(table).where(table.hostname == hostname, table.os_user == os_user)).scalar()
    if row is None:
        row = table(hostname=hostname, os_user=os_user)
        session.add(row)
    row.kind = kind
    row.message = message
    row.occurred_at = occurred_at
    row.reported_at = now
    row.reported_by_id = actor.user_id
    row.reported_by = actor.username[:100]
    row.recorder_version = recorder_version[:50]
    row.remote_addr = actor.remote_addr[:64]
    session.flush()
    _prune(session, now)
    audit.record(
        session,
        action="recorder.problem_reported",
        outcome="allowed",
        user_id=actor.user_id,
        username=actor.username,
        target_type="host",
        target_id=hostname[:64],
        detail=f"{kind} on {hostname} (OS user {os_user or '?'}): {message[:200]}",
        remote_addr=actor.remote_addr,
    )


def clear(session: Session, actor: Actor, *, hostname: str, os_user: str) -> bool:
    """The desktop sees the recorder running again: the PC leaves the problem list. Audited (also
    when there was nothing to clear: the desktop said so). The caller commits."""
    table = models.RecorderProblem
    gone = session.execute(delete(table).where(table.hostname == hostname, table.os_user == os_user))
    found = int(getattr(gone, "rowcount", 0)) > 0
    audit.record(
        session,
        action="recorder.problem_cleared",
        outcome="allowed",
        user_id=actor.user_id,
        username=actor.username,
        target_type="host",
        target_id=hostname[:64],
        detail=f"recorder running again on {hostname} (OS user {os_user or '?'})"
        + ("" if found else "; no problem was open"),
        remote_addr=actor.remote_addr,
    )
    return found


def _prune(session: Session, now: float) -> None:
    table = models.RecorderProblem
    session.execute(delete(table).where(table.reported_at < now - MAX_AGE))
    total = session.execute(select(func.count()).select_from(table)).scalar_one()
    if total > MAX_ROWS:
        keep = select(table.id).order_by(table.reported_at.desc()).limit(MAX_ROWS)
        session.execute(delete(table).where(table.id.not_in(keep)))


def reported(session: Session, team_ids: list[int] | None, now: float | None = None) -> list[ReportedProblem]:
    """Open problems, newest first: all (``team_ids`` None, admins) or those reported by users of
    ``team_ids`` (a supervisor's teams)."""
    now = time.time() if now is None else now
    table = models.RecorderProblem
    query = (
        select(table, models.User, models.Team)
        .outerjoin(models.User, models.User.id == table.reported_by_id)
        .outerjoin(models.Team, models.Team.id == models.User.team_id)
        .where(table.reported_at >= now - MAX_AGE)
        .order_by(table.reported_at.desc())
    )
    if team_ids is not None:
        query = query.where(models.User.team_id.in_(team_ids or [-1]))
    return [
        ReportedProblem(
            hostname=row.hostname,
            os_user=row.os_user,
            kind=row.kind,
            kind_text=KINDS.get(row.kind, row.kind),
            message=row.message,
            occurred_at=row.occurred_at,
            reported_at=row.reported_at,
            reported_by=row.reported_by,
            reported_by_id=row.reported_by_id,
            full_name=user.full_name if user is not None else "",
            team=team.name if team is not None else "",
            recorder_version=row.recorder_version,
            remote_addr=row.remote_addr,
        )
        for row, user, team in session.execute(query).all()
    ]
