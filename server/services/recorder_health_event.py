"""What an agent's desktop is told about his own recorder (``recorder.health`` on his channel).

The desktop's health panel and tray icon need the latest heartbeat of the agent's recorder, and
whether its channel is open now — sent when a heartbeat arrives, when the recorder connects or
drops, and to a desktop right after it connects (so a desktop started after the recorder does not
wait a heartbeat interval in the dark). The problems are the fleet's rules (``recorder_fleet``)
as the server sees them at send time; "offline" is worked out again by the desktop against its
own clock, because a recorder that falls silent sends no event saying so.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.services import recorder_fleet, recorder_policy
from server.store import models

# Problems the desktop works out itself from last_seen (a silent recorder sends nothing).
_TIME_BASED = {"offline", "never_seen"}


def latest_status(session: Session, user_id: int, now: float) -> models.RecorderStatus | None:
    """The agent's most recently heard recorder whose credential is still valid (a PC he used
    to work on, since revoked, is not his recorder any more)."""
    row = session.execute(
        select(models.RecorderStatus)
        .join(models.ApiToken, models.ApiToken.id == models.RecorderStatus.token_id)
        .where(models.RecorderStatus.user_id == user_id)
        .where(models.ApiToken.revoked_at.is_(None), models.ApiToken.expires_at > now)
        .order_by(models.RecorderStatus.last_seen.desc())
        .limit(1)
    ).scalar()
    return row


def summary(
    session: Session, user_id: int, connected: bool, screen_fps: float | None, now: float
) -> dict[str, Any]:
    """The ``recorder.health`` event's data: ``connected`` (its channel is open now),
    ``last_seen`` (server time of its last heartbeat, None if never), ``heartbeat`` (that
    heartbeat as sent, None if never), ``problems`` (fleet problem codes, worst first)."""
    row = latest_status(session, user_id, now)
    if row is None:
        return {"connected": connected, "last_seen": None, "heartbeat": None, "problems": []}
    policy = recorder_policy.load(session, recorder_policy.initial(screen_fps))
    problems = recorder_fleet.problems_of(
        state=row.state,
        last_seen=row.last_seen,
        interval=row.interval,
        segments_pending=row.segments_pending,
        spool_bytes=row.spool_bytes,
        free_disk_percent=row.free_disk_percent,
        clock_accuracy=row.clock_accuracy,
        last_error=row.last_error,
        credential_valid=True,
        policy=policy,
        now=now,
    )
    heartbeat = {
        "version": row.version,
        "state": row.state,
        "host": row.host,
        "interaction_id": row.interaction_id,
        "spool_bytes": row.spool_bytes,
        "segments_pending": row.segments_pending,
        "upload": json.loads(row.upload) if row.upload else None,
        "last_error": row.last_error,
        "free_disk_bytes": row.free_disk_bytes,
        "free_disk_percent": row.free_disk_percent,
        "clock_offset": row.clock_offset,
        "clock_accuracy": row.clock_accuracy,
        "interval": row.interval,
    }
    return {
        "connected": connected,
        "last_seen": row.last_seen,
        "heartbeat": heartbeat,
        "problems": [p for p in problems if p not in _TIME_BASED],
    }
