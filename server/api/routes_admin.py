"""Admin policy (screen sampling, voice formats) and the audit trail."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, get_db, require_roles
from server.api.errors import ApiError
from server.calls.repository import SCREEN_PERCENTAGE_KEY
from server.policy import voice_formats
from server.store import audit, models
from tandem_protocol.payloads import SamplingPolicy, VoiceFormatOption, VoiceFormatsPolicy

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")
auditors = require_roles("admin", "compliance")


def read_policy(session: Session, default: float) -> SamplingPolicy:
    row = session.get(models.Setting, SCREEN_PERCENTAGE_KEY)
    pct = float(json.loads(row.value)) if row else default
    overrides = {
        str(t.id): t.screen_percentage
        for t in session.execute(
            select(models.Team).where(models.Team.screen_percentage.is_not(None))
        ).scalars()
        if t.screen_percentage is not None
    }
    return SamplingPolicy(pct, overrides)


def write_policy(session: Session, policy: SamplingPolicy) -> None:
    def check(value: float, what: str) -> None:
        if not 0.0 <= value <= 100.0:
            raise ApiError(422, "invalid_percentage", f"{what} must be between 0 and 100, got {value}")

    check(policy.percentage, "percentage")
    teams = {t.id: t for t in session.execute(select(models.Team)).scalars()}
    for key, value in policy.team_overrides.items():
        if not key.isdigit() or int(key) not in teams:
            raise ApiError(422, "unknown_team", f"no team with id {key}")
        check(value, f"team {key} percentage")
    row = session.get(models.Setting, SCREEN_PERCENTAGE_KEY)
    if row is None:
        session.add(models.Setting(key=SCREEN_PERCENTAGE_KEY, value=json.dumps(policy.percentage)))
    else:
        row.value = json.dumps(policy.percentage)
    for team_id, team in teams.items():
        team.screen_percentage = policy.team_overrides.get(str(team_id))


@router.get("/admin/sampling", response_model=SamplingPolicy)
def get_sampling(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return asdict(read_policy(session, ctx.settings.screen_percentage))


@router.put("/admin/sampling", response_model=SamplingPolicy)
def put_sampling(
    body: SamplingPolicy,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    write_policy(session, body)
    audit.record(
        session,
        action="policy.sampling",
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        target_type="policy",
        target_id="screen_sampling",
        detail=json.dumps(asdict(body)),
        remote_addr=client_addr(request),
    )
    return asdict(read_policy(session, ctx.settings.screen_percentage))


def read_voice_formats(session: Session) -> VoiceFormatsPolicy:
    from server.calls.voice_encodings import format_available, supported_formats  # loads PyAV

    row = session.get(models.Setting, voice_formats.VOICE_FORMATS_KEY)
    options = [
        VoiceFormatOption(fmt, voice_formats.LABELS[fmt], format_available(fmt))
        for fmt in supported_formats()
    ]
    return VoiceFormatsPolicy(voice_formats.parse_stored(row.value if row else None), options)


def write_voice_formats(session: Session, policy: VoiceFormatsPolicy) -> list[str]:
    from server.calls.voice_encodings import format_available, supported_formats

    supported = set(supported_formats())

    def available(fmt: str) -> bool:
        return fmt in supported and format_available(fmt)

    try:
        chosen = voice_formats.validate(policy.formats, available)
    except voice_formats.VoiceFormatsPolicyError as exc:
        raise ApiError(422, exc.code, str(exc)) from exc
    value = voice_formats.dump(chosen)
    row = session.get(models.Setting, voice_formats.VOICE_FORMATS_KEY)
    if row is None:
        session.add(models.Setting(key=voice_formats.VOICE_FORMATS_KEY, value=value))
    else:
        row.value = value
    return chosen


@router.get("/admin/voice-formats", response_model=VoiceFormatsPolicy)
def get_voice_formats(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return asdict(read_voice_formats(session))


@router.put("/admin/voice-formats", response_model=VoiceFormatsPolicy)
def put_voice_formats(
    body: VoiceFormatsPolicy,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    chosen = write_voice_formats(session, body)
    audit.record(
        session,
        action="policy.voice_formats",
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        target_type="policy",
        target_id="voice_formats",
        detail=json.dumps({"formats": chosen}),
        remote_addr=client_addr(request),
    )
    session.flush()
    return asdict(read_voice_formats(session))


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
