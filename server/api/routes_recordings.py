"""Searching interactions and reading their media. Every media read is audited, and so is every
refusal; visibility follows ``server.policy.access``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, current_user, get_context, get_db
from server.api.errors import ApiError
from server.api.ranges import parse_range
from server.errors import RangeNotSatisfiable
from server.policy.access import SEE_ALL_ROLES, Viewer, may_see_interaction
from server.policy.voice_formats import format_of_kind, ordered
from server.services import agent_playback
from server.store import audit, models
from tandem_protocol.payloads import InteractionSummary, PauseSpan

router = APIRouter(prefix="/api")
MEDIA_KINDS = ("voice", "screen", "muxed", "endpoint_audio")  # endpoint_audio: derived, see docs
CHUNK = 256 * 1024


def summary(row: models.Interaction) -> InteractionSummary:
    return InteractionSummary(
        id=row.id,
        call_id=row.call_id,
        dn=row.dn,
        agent=row.agent.username if row.agent else "",
        caller=row.caller,
        callee=row.callee,
        state=row.state,
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        acw_ended_at=row.acw_ended_at,
        screen_decision=row.screen_decision,
        media_started_at=row.media_started_at,
        media=sorted(m.kind for m in row.media if m.kind in MEDIA_KINDS),
        pauses=[
            PauseSpan(p.started_at, p.ended_at, p.by_username, _pause_warning(row, p.started_at))
            for p in row.pauses
        ],
        voice_formats=ordered(fmt for m in row.media if (fmt := format_of_kind(m.kind)) is not None),
        voice_state=row.voice_state,
        end_reason=row.end_reason or "",
        linked_to=row.parent_interaction_id,
        unassigned=row.agent_id is None,
        screen_state=row.screen_state,
        direction=row.direction,
    )


def _pause_warning(row: models.Interaction, started_at: float) -> str:
    """The warning of a pause leg that was not confirmed (server.calls.secure_pause), stored in
    recording_meta["pause_warnings"] by the pause's start."""
    try:
        warnings = json.loads(row.recording_meta or "{}").get("pause_warnings", [])
    except (ValueError, AttributeError):
        return ""
    found = [
        str(w.get("warning", ""))
        for w in warnings
        if isinstance(w, dict) and round(float(w.get("started_at", -1)), 6) == round(started_at, 6)
    ]
    return "; ".join(found)


def _load(session: Session, interaction_id: str) -> models.Interaction | None:
    return session.execute(
        select(models.Interaction)
        .options(
            selectinload(models.Interaction.media),
            selectinload(models.Interaction.pauses),
            selectinload(models.Interaction.agent),
        )
        .where(models.Interaction.id == interaction_id)
    ).scalar_one_or_none()


def _refuse(
    session: Session,
    user: AuthUser,
    interaction_id: str,
    action: str,
    request: Request,
    error: ApiError,
    detail: str,
) -> ApiError:
    """``error``, once its refusal is in the audit log: committed here, because the request's
    transaction is rolled back when the error leaves the route. A 404 is audited as well as a
    403 — probing for interaction ids is an access attempt too."""
    audit.record(
        session,
        action=action,
        outcome="denied",
        user_id=user.user_id,
        username=user.username,
        target_type="interaction",
        target_id=interaction_id[:64],
        detail=f"{error.status} {error.code}: {detail}",
        remote_addr=client_addr(request),
    )
    session.commit()
    return error


def _visible(
    session: Session,
    user: AuthUser,
    interaction_id: str,
    request: Request,
    action: str,
    rule: Callable[[Viewer, int | None, int | None], bool],
) -> models.Interaction:
    """The interaction if ``rule`` lets this user at it; 404 or an audited 403 otherwise."""
    row = _load(session, interaction_id)
    if row is None:
        error = ApiError(404, "unknown_interaction", f"no interaction {interaction_id}")
        raise _refuse(session, user, interaction_id, action, request, error, "no such interaction")
    if not rule(user.viewer, row.agent_id, row.agent.team_id if row.agent else None):
        error = ApiError(403, "forbidden", "you are not allowed to see this recording")
        raise _refuse(session, user, interaction_id, action, request, error, "not visible to this user")
    return row


def _allowed(
    session: Session, user: AuthUser, interaction_id: str, request: Request, action: str, detail: str = ""
) -> None:
    audit.record(
        session,
        action=action,
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        target_type="interaction",
        target_id=interaction_id,
        detail=detail,
        remote_addr=client_addr(request),
    )


@router.get("/interactions")
def list_interactions(
    request: Request,
    limit: int = 200,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    query = (
        select(models.Interaction)
        .options(
            selectinload(models.Interaction.media),
            selectinload(models.Interaction.pauses),
            selectinload(models.Interaction.agent),
        )
        .order_by(models.Interaction.started_at.desc())
        .limit(max(1, min(limit, 1000)))
    )
    scope = "all"
    if user.role == "agent":
        query = query.where(models.Interaction.agent_id == user.user_id)
        scope = "own"
    elif user.role not in SEE_ALL_ROLES:
        agent_ids = select(models.User.id).where(models.User.team_id.in_(user.supervised_team_ids or {-1}))
        query = query.where(models.Interaction.agent_id.in_(agent_ids))
        scope = "teams " + ",".join(str(t) for t in sorted(user.supervised_team_ids))
    rows = [asdict(summary(row)) for row in session.execute(query).scalars()]
    # A list read shows who was called when: audited with its filter and what it returned.
    audit.record(
        session,
        action="interaction.list",
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        target_type="interactions",
        detail=json.dumps({"limit": limit, "scope": scope, "count": len(rows)}, sort_keys=True),
        remote_addr=client_addr(request),
    )
    return rows


@router.get("/interactions/{interaction_id}")
def get_interaction(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    row = _visible(session, user, interaction_id, request, "interaction.read", may_see_interaction)
    _allowed(session, user, interaction_id, request, "interaction.read")
    return asdict(summary(row))


@router.get("/interactions/{interaction_id}/media/{kind}")
def get_media(
    interaction_id: str,
    kind: str,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    if kind not in MEDIA_KINDS and format_of_kind(kind) is None:
        error = ApiError(
            404, "unknown_media", f"media kind must be one of {', '.join(MEDIA_KINDS)} or voice:<format>"
        )
        raise _refuse(session, user, interaction_id, "recording.read", request, error, f"kind {kind[:100]}")
    rule = agent_playback.play_rule(session)
    row = _visible(session, user, interaction_id, request, "recording.read", rule)
    media = next((m for m in row.media if m.kind == kind), None)
    if media is None:
        error = ApiError(404, "media_not_ready", f"no {kind} recording for this interaction (yet)")
        raise _refuse(session, user, interaction_id, "recording.read", request, error, f"kind {kind}")
    size = ctx.storage.size(media.storage_key)
    try:
        rng = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable as exc:
        error = ApiError(
            416,
            "range_not_satisfiable",
            f"range outside the {size}-byte file",
            {"Content-Range": f"bytes */{size}"},
        )
        detail = f"{kind} range {request.headers.get('range', '')[:100]!r} of {size} bytes"
        raise _refuse(session, user, interaction_id, "recording.read", request, error, detail) from exc
    start, end = rng if rng else (0, size - 1)
    _allowed(session, user, interaction_id, request, "recording.read", f"{kind} bytes {start}-{end}/{size}")
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1), "Cache-Control": "private"}
    if rng:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        _read(ctx, media.storage_key, start, end),
        status_code=206 if rng else 200,
        media_type=media.content_type,
        headers=headers,
    )


def _read(ctx: ServerContext, key: str, start: int, end: int) -> Iterator[bytes]:
    with ctx.storage.open_read(key) as fh:
        fh.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            block = fh.read(min(CHUNK, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block
