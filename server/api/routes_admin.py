"""Admin policy (screen sampling, voice formats) and the audit trail. The rules and the audit
records of each change live in ``server.services``; these routes only translate HTTP."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, get_context, get_db, require_roles
from server.services import sampling, voice_formats
from server.store import models
from tandem_protocol.payloads import SamplingPolicy, VoiceFormatsPolicy

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")
auditors = require_roles("admin", "compliance")


@router.get("/admin/sampling", response_model=SamplingPolicy)
def get_sampling(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return asdict(sampling.read_policy(session, ctx.settings.screen_percentage))


@router.put("/admin/sampling", response_model=SamplingPolicy)
def put_sampling(
    body: SamplingPolicy,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    sampling.set_policy(session, actor_of(user, request), body)
    return asdict(sampling.read_policy(session, ctx.settings.screen_percentage))


@router.get("/admin/voice-formats", response_model=VoiceFormatsPolicy)
def get_voice_formats(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return asdict(voice_formats.read(session))


@router.put("/admin/voice-formats", response_model=VoiceFormatsPolicy)
def put_voice_formats(
    body: VoiceFormatsPolicy,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    voice_formats.set_formats(session, actor_of(user, request), body.formats)
    return asdict(voice_formats.read(session))


@router.get("/teams")
def teams(_user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")) -> Any:
    return [
        {"id": t.id, "name": t.name, "screen_percentage": t.screen_percentage}
        for t in session.execute(select(models.Team).order_by(models.Team.name)).scalars()
    ]


@router.get("/audit")
def audit_log(
    limit: int = 200,
    target_id: str | None = None,
    _user: AuthUser = Depends(auditors),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    query = select(models.AuditRecord).order_by(models.AuditRecord.id.desc()).limit(max(1, min(limit, 5000)))
    if target_id:
        query = query.where(models.AuditRecord.target_id == target_id)
    return [
        {
            "id": r.id,
            "at": r.at,
            "user_id": r.user_id,
            "username": r.username,
            "action": r.action,
            "target_type": r.target_type,
            "target_id": r.target_id,
            "outcome": r.outcome,
            "detail": r.detail,
            "remote_addr": r.remote_addr,
        }
        for r in session.execute(query).scalars()
    ]


supervisors = require_roles("admin", "supervisor")


@router.get("/agents")
def agents(
    user: AuthUser = Depends(supervisors),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """Agents (of the caller's teams), the DN each is logged in on and which clients are connected."""
    query = select(models.User).where(models.User.role == "agent").order_by(models.User.username)
    if user.role != "admin":
        query = query.where(models.User.team_id.in_(user.supervised_team_ids or {-1}))
    bound = dict(
        session.execute(
            select(models.DnBinding.user_id, models.DnBinding.dn).where(
                models.DnBinding.released_at.is_(None)
            )
        ).all()
    )
    return [
        {
            "id": a.id,
            "username": a.username,
            "full_name": a.full_name,
            "team_id": a.team_id,
            "dn": bound.get(a.id),
            "connected": sorted(ctx.hub.connected_clients(a.id)),
        }
        for a in session.execute(query).scalars()
    ]
