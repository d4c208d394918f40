"""``GET /api/interactions/search``: the search page's query over every interaction the user may
see (server/services/search.py), one audit record per search; saved searches
(``/api/searches``) and the admin's searchable metadata keys (``/api/admin/search-keys``).

The older ``GET /api/interactions`` (newest 200, no filters) stays for existing clients."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, current_user, get_context, get_db, require_roles
from server.api.errors import ApiError
from server.api.routes_recordings import _allowed, _refuse, _visible, summary
from server.media.thumbnail import ThumbnailError
from server.services import agent_playback, pause_reasons, search, search_admin, thumbnails
from server.services.search_query import MULTI, SINGLE, QueryError, canonical, parse
from server.store import audit, models
from server.store.search_columns import number_key

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")

_DESCRIPTIONS = {
    "from": "Start at or after (ISO 8601; no offset means UTC; or Unix seconds)",
    "to": "Start before (same forms as from)",
    "agent": "Agent username (repeat or comma-separate for several)",
    "team": "Team name (repeat or comma-separate)",
    "caller": "Start of the caller's number (separators and a leading + are ignored)",
    "callee": "Start of the called number",
    "min_duration": "Talk time at least this many seconds",
    "max_duration": "Talk time at most this many seconds",
    "has_screen": "true: with a screen recording; false: without",
    "paused": "true: recording was paused (holds do not count); false: never paused",
    "pause_reason_missing": "true: a pause whose reason the admin requires for the agent's team was "
    "never given; false: none such",
    "end_reason": "Exact end reason (e.g. bye, timeout)",
    "direction": "inbound, outbound or unknown (the SIP side did not say; every call before revision 0017)",
    "disposition": "ACW disposition code (only once interactions record one)",
    "notes": "Text in the ACW notes (only once interactions record them)",
    "sort": "started_at (default), duration, agent, caller, callee, end_reason or direction",
    "order": "desc (default) or asc",
    "limit": "Rows per page, 1-200 (default 50)",
    "cursor": "next_cursor of the previous page",
}
_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
    for name, text in _DESCRIPTIONS.items()
    if name in SINGLE or name in MULTI
] + [
    {
        "name": "meta.<key>",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Value of an admin-named searchable metadata key (GET /api/admin/search-keys)",
    }
]


def _row(row: models.Interaction, missing_reasons: set[int]) -> dict[str, Any]:
    out = asdict(summary(row))
    out["duration"] = row.duration
    out["has_screen"] = row.has_screen
    out["paused"] = row.was_paused
    # A pause whose required reason never came (pause_reasons.missing_reasons of the page's spans).
    out["pause_reason_missing"] = any(p.id in missing_reasons for p in row.pauses)
    return out


@router.get("/interactions/search", openapi_extra={"parameters": _PARAMETERS})
def search_interactions(
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    """Interactions the caller may see that match every given filter, one page at a time (keyset:
    pass ``next_cursor`` back as ``cursor``). ``count`` is exact up to 10,000 (``count_capped``
    says there are more). Audited once per request, with its filters."""
    try:
        query = parse(
            request.query_params.multi_items(),
            searchable_keys=search.searchable_keys(session),
            optional_columns=search.optional_columns(),
            number_key=number_key,
        )
    except QueryError as exc:
        _audit(session, user, request, "denied", f"422 {exc.field}: {exc.message}")
        session.commit()  # the request's transaction is rolled back when the error leaves
        raise ApiError(422, "invalid_search", f"{exc.field}: {exc.message}") from exc
    page = search.run(session, query, user.viewer)
    _audit(session, user, request, "allowed", search.audit_detail(query, page))
    missing = pause_reasons.missing_reasons(session, [p for r in page.rows for p in r.pauses])
    return {
        "items": [_row(r, missing) for r in page.rows],
        "count": page.count,
        "count_capped": page.capped,
        "next_cursor": page.next_cursor,
        "query": canonical(query),
        "sort": query.sort,
        "order": query.order,
    }


def _audit(session: Session, user: AuthUser, request: Request, outcome: str, detail: str) -> None:
    audit.record(
        session,
        action="interaction.search",
        outcome=outcome,
        user_id=user.user_id,
        username=user.username,
        target_type="interactions",
        detail=detail,
        remote_addr=client_addr(request),
    )


@router.get("/interactions/search/options")
def search_options(
    _user: AuthUser = Depends(current_user), session: Session = Depends(get_db, scope="function")
) -> Any:
    """What the search form offers: searchable metadata keys, and which optional filters exist."""
    return {
        "metadata_keys": search.searchable_keys(session),
        "optional_filters": search.optional_columns(),
        "count_cap": search.COUNT_CAP,
    }


@router.get("/interactions/{interaction_id}/thumbnail")
def thumbnail(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Response:
    """A small JPEG of the first keyframe of the interaction's screen recording (made once, then
    kept as a derived file under the data directory). It shows the screen, so it is a recording
    read: the same roles as the media, and every request and refusal is audited."""
    action = "recording.thumbnail"
    row = _visible(session, user, interaction_id, request, action, agent_playback.play_rule(session))
    key = _screen_key(session, row)
    if key is None:
        error = ApiError(404, "no_screen", "this interaction has no screen recording")
        raise _refuse(session, user, interaction_id, action, request, error, "no screen")
    try:
        jpeg = thumbnails.thumbnail(ctx.settings.data_dir, ctx.storage, interaction_id, key)
    except ThumbnailError as exc:
        error = ApiError(404, "thumbnail_unavailable", f"no picture could be taken from the screen: {exc}")
        raise _refuse(session, user, interaction_id, action, request, error, str(exc)[:200]) from exc
    _allowed(session, user, interaction_id, request, action, f"{len(jpeg)} bytes")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _screen_key(session: Session, row: models.Interaction) -> str | None:
    """The screen file (else the muxed file, else the first stored segment) to take it from."""
    by_kind = {m.kind: m.storage_key for m in row.media}
    if "screen" in by_kind or "muxed" in by_kind:
        return by_kind.get("screen") or by_kind["muxed"]
    segment = session.execute(
        select(models.ScreenSegment.storage_key)
        .where(models.ScreenSegment.interaction_id == row.id)
        .order_by(models.ScreenSegment.started_at)
        .limit(1)
    ).scalar()
    return segment


# -- saved searches ----------------------------------------------------------------------------


@dataclass
class SavedSearchBody:
    """A name and the search's query string (as in the search page's URL; the cursor is dropped).
    Saving under an existing name replaces that search."""

    name: str
    query: str = ""


def _saved(row: models.SavedSearch) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "query": row.query, "created_at": row.created_at}


@router.get("/searches")
def list_saved_searches(
    user: AuthUser = Depends(current_user), session: Session = Depends(get_db, scope="function")
) -> Any:
    """The caller's saved searches, by name."""
    return [_saved(r) for r in search_admin.list_saved(session, user.user_id)]


@router.post("/searches", status_code=201)
def save_search(
    body: SavedSearchBody,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return _saved(search_admin.save(session, actor_of(user, request), body.name, body.query))


@router.delete("/searches/{saved_id}", status_code=204)
def delete_saved_search(
    saved_id: int,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> None:
    search_admin.delete(session, actor_of(user, request), saved_id)


# -- the admin's searchable metadata keys ------------------------------------------------------


@dataclass
class SearchKeysBody:
    """Names of recording parameters to make searchable (at most 20): an X-Recording-<key> header
    or a Request-URI parameter of the call's INVITE, e.g. "queue", "account"."""

    keys: list[str] = field(default_factory=list)


@router.get("/admin/search-keys")
def get_search_keys(
    _user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> Any:
    return {"keys": search.searchable_keys(session)}


@router.put("/admin/search-keys")
def put_search_keys(
    body: SearchKeysBody,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    """Store the keys and extract every stored interaction's values for them (audited, before and
    after)."""
    keys, written = search_admin.set_keys(session, actor_of(user, request), body.keys)
    return {"keys": keys, "values_extracted": written}
