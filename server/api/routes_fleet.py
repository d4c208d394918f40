"""The recorder fleet (``GET /api/admin/fleet``) and where the recorders' heartbeats arrive (from the
event channel, ``server.api.routes_events``). The rules are in ``server.services.recorder_fleet``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server.api import recorder_health_push
from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, current_user, get_context, get_db
from server.services import recorder_fleet, recorder_policy
from server.store.db import session_scope
from tandem_protocol.recorder_health import Heartbeat

router = APIRouter(prefix="/api")
log = logging.getLogger(__name__)


@router.get("/admin/fleet")
def fleet(
    request: Request,
    status: str = Query("", description="comma-separated statuses to keep, e.g. offline,failed"),
    problems: bool = Query(False, description="only recorders with a problem"),
    q: str = Query("", max_length=100, description="part of the host, agent, team or version"),
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """Every recorder the caller may see (admins: all; supervisors: their teams' agents'),
    problems first, with the counts before filtering."""
    now = time.time()
    policy = recorder_policy.load(session, recorder_policy.initial(ctx.settings.screen_fps))
    entries = recorder_fleet.fleet(session, actor_of(user, request), user.supervised_team_ids, policy, now)
    counts = Counter(e.status for e in entries)
    wanted = {s.strip() for s in status.split(",") if s.strip()}
    needle = q.strip().lower()
    shown = [
        e
        for e in entries
        if (not wanted or e.status in wanted)
        and (not problems or e.problems)
        and (
            not needle or any(needle in v.lower() for v in (e.host, e.agent, e.full_name, e.team, e.version))
        )
    ]
    return {
        "now": now,
        "total": len(entries),
        "with_problems": sum(1 for e in entries if e.problems),
        "by_status": dict(sorted(counts.items())),
        "problem_labels": recorder_fleet.PROBLEMS,
        "recorders": [e.as_dict() for e in shown],
    }


async def recorder_heartbeat(ctx: ServerContext, user: AuthUser, data: dict[str, Any], now: float) -> None:
    """A ``recorder.heartbeat`` from a recorder's event channel: validated (``ValueError`` goes
    back to the recorder as an ``error`` message) and stored as its latest, off the loop."""
    beat = Heartbeat.from_dict(data)

    def store() -> None:
        with session_scope(ctx.sessions) as s:
            recorder_fleet.store_heartbeat(s, user.token_id, user.user_id, beat, now)

    try:
        await asyncio.to_thread(store)
    except SQLAlchemyError as exc:  # a busy database: the next heartbeat brings it up to date
        log.warning("heartbeat of %s's recorder not stored: %s", user.username, str(exc).splitlines()[0])
        return
    await recorder_health_push.publish(ctx, user.user_id)  # the agent's desktop shows it
