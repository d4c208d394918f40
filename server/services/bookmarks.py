"""Bookmarks and comments at a moment of a recording: private (its author's) or shared with the
team (everyone who may play the recording). The caller has already checked that the actor may
play the interaction; this module decides which bookmarks the actor sees and may change, and
audits every read and write (services convention: server/services/__init__.py).

``at`` is server time (Unix seconds): the player converts it to the played file's time with that
file's ``started_at``, so a bookmark stays on its moment whichever file is played."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.errors import Forbidden, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.store import models

ACTION_READ = "bookmark.read"
ACTION_CREATE = "bookmark.create"
ACTION_DELETE = "bookmark.delete"
ACTION_UPDATE = "bookmark.update"
MAX_TEXT = 2000
# A bookmark may sit a little outside the call's own times: the muxed file can start before the
# answer (screen first) and voice runs to the hang-up.
SLACK_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class BookmarkView:
    id: int
    interaction_id: str
    username: str
    at: float
    text: str
    shared: bool
    created_at: float
    mine: bool


def _view(row: models.Bookmark, actor: Actor) -> BookmarkView:
    return BookmarkView(
        row.id,
        row.interaction_id,
        row.username,
        row.at,
        row.text,
        row.shared,
        row.created_at,
        row.user_id == actor.user_id,
    )


def visible(session: Session, actor: Actor, interaction_id: str) -> list[BookmarkView]:
    """The actor's own bookmarks of the interaction and every shared one, by time; audited."""
    rows = (
        session.execute(
            select(models.Bookmark)
            .where(
                models.Bookmark.interaction_id == interaction_id,
                or_(models.Bookmark.shared.is_(True), models.Bookmark.user_id == actor.user_id),
            )
            .order_by(models.Bookmark.at, models.Bookmark.id)
        )
        .scalars()
        .all()
    )
    record(
        session,
        actor,
        action=ACTION_READ,
        target_type="interaction",
        target_id=interaction_id,
        detail=json.dumps({"count": len(rows)}),
    )
    return [_view(r, actor) for r in rows]


def create(
    session: Session, actor: Actor, interaction: models.Interaction, at: float, text: str, shared: bool
) -> BookmarkView:
    """A bookmark of ``actor`` at server time ``at``; refused (audited) when the text is empty or
    too long or the time is not within the recording."""
    cleaned = text.strip()
    problem = ""
    if not cleaned:
        problem = "write a few words: a bookmark needs a text"
    elif len(cleaned) > MAX_TEXT:
        problem = f"a bookmark's text is at most {MAX_TEXT} characters (got {len(cleaned)})"
    else:
        first = min(t for t in (interaction.media_started_at, interaction.started_at) if t is not None)
        last = interaction.acw_ended_at or interaction.ended_at or time.time()
        if not math.isfinite(at) or not first - SLACK_SECONDS <= at <= last + SLACK_SECONDS:
            problem = "the bookmark's time is not within this recording"
    if problem:
        error = InvalidInput("invalid_bookmark", problem)
        raise refuse(
            session, actor, error, action=ACTION_CREATE, target_type="interaction", target_id=interaction.id
        )
    if actor.user_id is None:
        refused = Forbidden("bookmark_needs_user", "bookmarks belong to a user; sign in to add one")
        raise refuse(
            session, actor, refused, action=ACTION_CREATE, target_type="interaction", target_id=interaction.id
        )
    row = models.Bookmark(
        interaction_id=interaction.id,
        user_id=actor.user_id,
        username=actor.username,
        at=at,
        text=cleaned,
        shared=shared,
        created_at=time.time(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        action=ACTION_CREATE,
        target_type="interaction",
        target_id=interaction.id,
        detail=json.dumps({"bookmark": row.id, "at": at, "shared": shared, "chars": len(cleaned)}),
    )
    return _view(row, actor)


def _own(
    session: Session, actor: Actor, interaction_id: str, bookmark_id: int, action: str
) -> models.Bookmark:
    """The actor's bookmark; a refusal (audited) otherwise: 404 when the actor cannot see it,
    403 when it is someone else's shared one (a shared comment stays its author's words)."""
    row = session.get(models.Bookmark, bookmark_id)
    if (
        row is None
        or row.interaction_id != interaction_id
        or (not row.shared and row.user_id != actor.user_id)
    ):
        error = NotFound("unknown_bookmark", f"no bookmark {bookmark_id} on this recording")
        raise refuse(
            session, actor, error, action=action, target_type="interaction", target_id=interaction_id
        )
    if row.user_id != actor.user_id:
        refused = Forbidden("not_your_bookmark", f"only {row.username} can change this bookmark")
        raise refuse(
            session, actor, refused, action=action, target_type="interaction", target_id=interaction_id
        )
    return row


def update(
    session: Session,
    actor: Actor,
    interaction_id: str,
    bookmark_id: int,
    text: str | None,
    shared: bool | None,
) -> BookmarkView:
    """Change the text and/or the sharing of one's own bookmark (its time stays)."""
    row = _own(session, actor, interaction_id, bookmark_id, ACTION_UPDATE)
    before = {"chars": len(row.text), "shared": row.shared}
    if text is not None:
        cleaned = text.strip()
        if not cleaned or len(cleaned) > MAX_TEXT:
            error = InvalidInput("invalid_bookmark", f"a bookmark's text is 1 to {MAX_TEXT} characters")
            raise refuse(
                session,
                actor,
                error,
                action=ACTION_UPDATE,
                target_type="interaction",
                target_id=interaction_id,
            )
        row.text = cleaned
    if shared is not None:
        row.shared = shared
    record(
        session,
        actor,
        action=ACTION_UPDATE,
        target_type="interaction",
        target_id=interaction_id,
        detail=json.dumps(
            {
                "bookmark": bookmark_id,
                "before": before,
                "after": {"chars": len(row.text), "shared": row.shared},
            }
        ),
    )
    return _view(row, actor)


def delete(session: Session, actor: Actor, interaction_id: str, bookmark_id: int) -> None:
    """Only its author deletes a bookmark."""
    row = _own(session, actor, interaction_id, bookmark_id, ACTION_DELETE)
    session.delete(row)
    record(
        session,
        actor,
        action=ACTION_DELETE,
        target_type="interaction",
        target_id=interaction_id,
        detail=json.dumps({"bookmark": bookmark_id, "at": row.at, "shared": row.shared}),
    )
