"""Missed recordings: calls that reached the recorder and were refused, with the reason; and the
SIP engine's counters (refusals by reason, untrusted sources, digest challenges).

Who sees what: admin and compliance see every row. A supervisor sees the rows whose DN belongs to
an agent of a team they supervise (a DN any such agent has logged in on, or their full-time
recording DN); refusals with no agent behind the DN (untrusted sources, misrouted calls, unknown
DNs) are an operator's matter and stay with admin and compliance. Every list read is audited.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import CompoundSelect, or_, select
from sqlalchemy.orm import Session

from server.api.deps import AuthUser, client_addr, get_db, require_roles
from server.store import audit, models

router = APIRouter(prefix="/api/admin")
readers = require_roles("admin", "supervisor", "compliance")
admins = require_roles("admin", "compliance")
MAX_LIMIT = 1000


def _row(m: models.MissedCall) -> dict[str, Any]:
    return {
        "id": m.id,
        "at": m.at,
        "last_at": m.last_at,
        "count": m.count,
        "call_id": m.call_id,
        "source": m.source,
        "from": m.from_uri,
        "to": m.to_uri,
        "request_uri": m.request_uri,
        "dn": m.dn,
        "reason": m.reason,
        "status": m.status,
        "kind": m.kind,
        "detail": m.detail,
    }


def _team_dns(team_ids: frozenset[int]) -> CompoundSelect[str]:
    """DNs of agents of ``team_ids``: logged in on at any time, or full-time recording DNs."""
    agents = select(models.User.id).where(models.User.team_id.in_(team_ids))
    bound = select(models.DnBinding.dn).where(models.DnBinding.user_id.in_(agents))
    full_time = select(models.User.full_time_dn).where(
        models.User.team_id.in_(team_ids), models.User.full_time_dn.is_not(None)
    )
    return bound.union(full_time)


@router.get("/missed-calls")
def missed_calls(
    request: Request,
    since: float | None = Query(None, description="Unix seconds; default: the last 7 days"),
    reason: str | None = Query(None, max_length=40),
    limit: int = Query(200, ge=1, le=MAX_LIMIT),
    user: AuthUser = Depends(readers),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    start = since if since is not None else time.time() - 7 * 86400
    query = select(models.MissedCall).where(
        or_(models.MissedCall.last_at >= start, models.MissedCall.at >= start)
    )
    if reason:
        query = query.where(models.MissedCall.reason == reason)
    if user.role == "supervisor":
        query = query.where(models.MissedCall.dn.in_(_team_dns(user.supervised_team_ids)))
    rows = session.execute(query.order_by(models.MissedCall.at.desc()).limit(limit)).scalars().all()
    audit.record(
        session,
        action="missed_calls.list",
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        target_type="missed_calls",
        detail=f"since={start:.0f} reason={reason or '*'} limit={limit}: {len(rows)} row(s)",
        remote_addr=client_addr(request),
    )
    return {"items": [_row(m) for m in rows], "since": start}


@router.get("/sip/stats")
def sip_stats(request: Request, user: AuthUser = Depends(admins)) -> Any:
    """The SIP engine's counters since start-up (empty when SIP is disabled)."""
    sip = getattr(request.app.state, "sip_service", None)
    missed = getattr(request.app.state, "missed_calls", None)
    return {
        "sip": sip.stats.as_dict() if sip is not None else None,
        "missed_calls": missed.stats.as_dict() if missed is not None else None,
    }
