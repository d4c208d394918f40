"""Time-limited share links: one media file of one interaction, usable without login by whoever
holds the link (that is its purpose), until it expires or is revoked.

The token is 32 random bytes; only its SHA-256 is stored, so a copy of the database does not
give anyone a working link. The link carries the token in its query string (``?token=``), which
the server's log filter already redacts (server/api/log_redaction.py), so the token does not end
up in the access log either. Every create, use, refusal and revoke is audited (services
convention: server/services/__init__.py). Who may create a link: ``SHARE_ROLES`` and only for a
recording they may play themselves (the caller checks that before ``create``)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Forbidden, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.store import audit, models

SHARE_ROLES = frozenset({"admin", "compliance", "supervisor"})  # docs/role-matrix.md
MIN_MINUTES = 2
MAX_MINUTES = 60
ACTION_CREATE = "share.create"
ACTION_LIST = "share.list"
ACTION_REVOKE = "share.revoke"
ACTION_USE = "share.use"


@dataclass(frozen=True, slots=True)
class ShareView:
    id: int
    interaction_id: str
    kind: str
    created_by: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    uses: int
    state: str  # active, expired, revoked


@dataclass(frozen=True, slots=True)
class NewShare:
    view: ShareView
    token: str  # shown once: only its hash is stored


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def validity_problem(minutes: object) -> str:
    """Why ``minutes`` is not a valid validity, or "" (pure)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        return f"a share link is valid for a whole number of minutes ({MIN_MINUTES}–{MAX_MINUTES})"
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        return f"a share link is valid for {MIN_MINUTES} to {MAX_MINUTES} minutes (got {minutes})"
    return ""


def state_of(expires_at: float, revoked_at: float | None, now: float) -> str:
    """active, expired or revoked (pure); a revoked link stays revoked after it would expire."""
    if revoked_at is not None:
        return "revoked"
    return "active" if now < expires_at else "expired"


def _view(row: models.ShareLink, now: float) -> ShareView:
    return ShareView(
        row.id,
        row.interaction_id,
        row.kind,
        row.created_by_username,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.uses,
        state_of(row.expires_at, row.revoked_at, now),
    )


def create(
    session: Session, actor: Actor, interaction: models.Interaction, kind: str, minutes: object
) -> NewShare:
    """A new link to ``interaction``'s ``kind`` media for ``minutes``; refused (audited) for a role
    outside ``SHARE_ROLES``, a bad validity or a media kind the interaction does not have."""
    target = interaction.id
    if actor.role not in SHARE_ROLES:
        error: Forbidden | InvalidInput | NotFound = Forbidden(
            "share_not_allowed", f"only the roles {', '.join(sorted(SHARE_ROLES))} may share recordings"
        )
        raise refuse(session, actor, error, action=ACTION_CREATE, target_type="interaction", target_id=target)
    problem = validity_problem(minutes)
    if problem:
        error = InvalidInput("invalid_share", problem)
        raise refuse(session, actor, error, action=ACTION_CREATE, target_type="interaction", target_id=target)
    if not any(m.kind == kind for m in interaction.media):
        error = NotFound("media_not_ready", f"this interaction has no {kind[:40]} recording to share")
        raise refuse(session, actor, error, action=ACTION_CREATE, target_type="interaction", target_id=target)
    assert isinstance(minutes, int)
    token = secrets.token_urlsafe(32)
    now = time.time()
    row = models.ShareLink(
        token_hash=token_hash(token),
        interaction_id=target,
        kind=kind,
        created_by=actor.user_id,
        created_by_username=actor.username,
        created_at=now,
        expires_at=now + minutes * 60,
        revoked_at=None,
        uses=0,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        action=ACTION_CREATE,
        target_type="interaction",
        target_id=target,
        detail=json.dumps({"share_id": row.id, "kind": kind, "minutes": minutes}),
    )
    return NewShare(_view(row, now), token)


def listed(session: Session, actor: Actor, interaction_id: str) -> list[ShareView]:
    """The interaction's links, newest first (no tokens: they are not stored); audited."""
    rows = (
        session.execute(
            select(models.ShareLink)
            .where(models.ShareLink.interaction_id == interaction_id)
            .order_by(models.ShareLink.id.desc())
        )
        .scalars()
        .all()
    )
    record(
        session,
        actor,
        action=ACTION_LIST,
        target_type="interaction",
        target_id=interaction_id,
        detail=json.dumps({"count": len(rows)}),
    )
    now = time.time()
    return [_view(r, now) for r in rows]


def find(session: Session, share_id: int) -> models.ShareLink | None:
    return session.get(models.ShareLink, share_id)


def revoke(session: Session, actor: Actor, row: models.ShareLink) -> ShareView:
    """Revoke ``row`` at once (the caller checked the actor may play its interaction). Revoking a
    revoked link is a no-op that keeps the first revocation's time."""
    if actor.role not in SHARE_ROLES:
        error = Forbidden(
            "share_not_allowed", f"only the roles {', '.join(sorted(SHARE_ROLES))} may revoke share links"
        )
        raise refuse(
            session,
            actor,
            error,
            action=ACTION_REVOKE,
            target_type="interaction",
            target_id=row.interaction_id,
        )
    now = time.time()
    if row.revoked_at is None:
        row.revoked_at = now
    record(
        session,
        actor,
        action=ACTION_REVOKE,
        target_type="interaction",
        target_id=row.interaction_id,
        detail=json.dumps({"share_id": row.id, "kind": row.kind}),
    )
    return _view(row, now)


@dataclass(frozen=True, slots=True)
class UseResult:
    link: models.ShareLink | None
    refusal: str  # "" when the link may be used


def use(session: Session, token: str, remote_addr: str, detail: str = "") -> UseResult:
    """Look up ``token`` for one request on the link. A use counts and is audited as allowed; an
    unknown, expired or revoked token is audited as denied (and committed: the caller refuses
    and its transaction is rolled back). No user: the holder of the link is anonymous."""
    row = session.execute(
        select(models.ShareLink).where(models.ShareLink.token_hash == token_hash(token))
    ).scalar_one_or_none()
    now = time.time()
    if row is None:
        refusal = "unknown share link"
    else:
        state = state_of(row.expires_at, row.revoked_at, now)
        refusal = "" if state == "active" else f"share link {state}"
    info = {"share_id": row.id if row else None, "kind": row.kind if row else None}
    if detail:
        info["request"] = detail
    audit.record(
        session,
        action=ACTION_USE,
        outcome="denied" if refusal else "allowed",
        username="(share link)",
        target_type="interaction" if row else "share",
        target_id=row.interaction_id if row else "",
        detail=json.dumps({**info, "refused": refusal} if refusal else info),
        remote_addr=remote_addr,
    )
    if refusal:
        session.commit()
        return UseResult(None, refusal)
    assert row is not None
    row.uses += 1
    return UseResult(row, "")
