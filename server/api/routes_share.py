"""Share links over HTTP: create, list and revoke them (logged-in, ``SHARE_ROLES``, for a
recording the user may play), and ``GET /share?token=…`` — the link itself, which needs no login
and serves exactly one media file (with Range, so a browser can seek) until it expires or is
revoked. The rules and the audit records are in server/services/share_links.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, get_db, require_roles
from server.api.errors import ApiError
from server.api.ranges import parse_range
from server.api.routes_recordings import _read, _visible
from server.errors import RangeNotSatisfiable
from server.services import agent_playback, share_links
from server.store import audit, models

router = APIRouter()
sharers = require_roles(*sorted(share_links.SHARE_ROLES))
SHARE_PATH = "/share"


class ShareBody(BaseModel):
    kind: str = "muxed"
    minutes: int = 15


def _link(request: Request, token: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{SHARE_PATH}?token={token}"


@router.post("/api/interactions/{interaction_id}/shares", status_code=201)
def create_share(
    interaction_id: str,
    body: ShareBody,
    request: Request,
    user: AuthUser = Depends(sharers),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    """A link to one media file of the interaction for ``minutes`` (2–60). The token is in the
    answer only: it is stored hashed and cannot be shown again."""
    row = _visible(
        session, user, interaction_id, request, share_links.ACTION_CREATE, agent_playback.play_rule(session)
    )
    new = share_links.create(session, actor_of(user, request), row, body.kind, body.minutes)
    return {**asdict(new.view), "token": new.token, "url": _link(request, new.token)}


@router.get("/api/interactions/{interaction_id}/shares")
def list_shares(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(sharers),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    _visible(
        session, user, interaction_id, request, share_links.ACTION_LIST, agent_playback.play_rule(session)
    )
    return [asdict(v) for v in share_links.listed(session, actor_of(user, request), interaction_id)]


@router.delete("/api/shares/{share_id}")
def revoke_share(
    share_id: int,
    request: Request,
    user: AuthUser = Depends(sharers),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    row = share_links.find(session, share_id)
    if row is None:
        error = ApiError(404, "unknown_share", f"no share link {share_id}")
        audit.record(
            session,
            action=share_links.ACTION_REVOKE,
            outcome="denied",
            user_id=user.user_id,
            username=user.username,
            target_type="share",
            target_id=str(share_id),
            detail="404 unknown_share",
            remote_addr=client_addr(request),
        )
        session.commit()
        raise error
    # Whoever may play the recording (and may share) may revoke its links, not only their author:
    # a supervisor must be able to stop a colleague's link to their team's call.
    _visible(
        session,
        user,
        row.interaction_id,
        request,
        share_links.ACTION_REVOKE,
        agent_playback.play_rule(session),
    )
    return asdict(share_links.revoke(session, actor_of(user, request), row))


@router.get(SHARE_PATH)
def use_share(
    request: Request,
    token: str = "",
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """The shared media, for whoever holds the link: no login, one file, until expiry/revoke."""
    result = share_links.use(session, token, client_addr(request), request.headers.get("range", "")[:100])
    if result.link is None:
        gone = result.refusal.endswith(("expired", "revoked"))
        raise ApiError(
            410 if gone else 404,
            "share_link_refused",
            f"this share link cannot be used: {result.refusal}; ask the sender for a new one",
        )
    link = result.link
    media = session.execute(
        select(models.MediaFile).where(
            models.MediaFile.interaction_id == link.interaction_id, models.MediaFile.kind == link.kind
        )
    ).scalar_one_or_none()
    if media is None:  # only if the media was removed by retention after the link was made
        raise _share_refused(session, link.interaction_id, "media no longer stored")
    size = ctx.storage.size(media.storage_key)
    try:
        rng = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable as exc:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"range outside the {size}-byte file",
            {"Content-Range": f"bytes */{size}"},
        ) from exc
    start, end = rng if rng else (0, size - 1)
    suffix = media.content_type.split("/")[-1].replace("x-", "")
    filename = f"{link.interaction_id}-{link.kind.replace(':', '-')}.{suffix}"
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "Cache-Control": "no-store",  # a revoked link must not play from a shared cache
        "Content-Disposition": f'inline; filename="{filename}"',
        "Referrer-Policy": "no-referrer",
    }
    if rng:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        _read(ctx, media.storage_key, start, end),
        status_code=206 if rng else 200,
        media_type=media.content_type,
        headers=headers,
    )


def _share_refused(session: Session, interaction_id: str, why: str) -> ApiError:
    session.rollback()
    audit.record(
        session,
        action=share_links.ACTION_USE,
        outcome="failed",
        username="(share link)",
        target_type="interaction",
        target_id=interaction_id,
        detail=why,
    )
    session.commit()
    return ApiError(410, "share_link_refused", f"this share link cannot be used: {why}")
