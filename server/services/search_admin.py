"""Around the search: the admin's searchable metadata keys and each user's saved searches. Every
change and refusal is audited (services convention: server/services/__init__.py)."""

from __future__ import annotations

import json
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.services.search import optional_columns, searchable_keys
from server.services.search_query import QueryError, canonical, parse
from server.store import models
from server.store.search_columns import (
    KEY_PATTERN,
    MAX_SEARCH_KEYS,
    SEARCH_KEYS_SETTING,
    number_key,
    reindex_meta,
)

KEYS_ACTION = "policy.search_keys"
SAVED_ACTION = "search.saved"
MAX_SAVED = 100
MAX_NAME = 100


def set_keys(session: Session, actor: Actor, keys: list[str]) -> tuple[list[str], int]:
    """Store the admin's searchable keys (names of recording parameters: X-Recording-<key>
    headers, Request-URI parameters) and re-extract every interaction's values for them.
    Returns the keys as stored and how many values were extracted."""
    cleaned = list(dict.fromkeys(k.strip().lower() for k in keys if k.strip()))
    problem = ""
    if len(cleaned) > MAX_SEARCH_KEYS:
        problem = f"at most {MAX_SEARCH_KEYS} searchable keys (got {len(cleaned)})"
    bad = [k for k in cleaned if not KEY_PATTERN.match(k)]
    if bad:
        problem = f"{bad[0][:70]!r} is not a key name: letters, digits, '_', '.', '-', at most 64 characters"
    if problem:
        error = InvalidInput("invalid_search_keys", problem)
        raise refuse(session, actor, error, action=KEYS_ACTION, target_type="policy", target_id="search_keys")
    before = searchable_keys(session)
    row = session.get(models.Setting, SEARCH_KEYS_SETTING)
    if row is None:
        session.add(models.Setting(key=SEARCH_KEYS_SETTING, value=json.dumps(cleaned)))
    else:
        row.value = json.dumps(cleaned)
    session.flush()
    written = reindex_meta(session.connection(), models.Interaction, models.InteractionMetaValue, cleaned)
    record(
        session,
        actor,
        action=KEYS_ACTION,
        target_type="policy",
        target_id="search_keys",
        detail=json.dumps({"before": before, "after": cleaned, "values_extracted": written}),
    )
    return cleaned, written


def normalised_query(session: Session, query_string: str) -> str:
    """A saved search's query string, checked as the search would check it, in canonical form."""
    from urllib.parse import parse_qsl

    items = [(k, v) for k, v in parse_qsl(query_string.lstrip("?"), keep_blank_values=True) if k != "cursor"]
    query = parse(
        items,
        searchable_keys=searchable_keys(session),
        optional_columns=optional_columns(),
        number_key=number_key,
    )
    return canonical(query)


def list_saved(session: Session, user_id: int) -> list[models.SavedSearch]:
    return list(
        session.execute(
            select(models.SavedSearch)
            .where(models.SavedSearch.user_id == user_id)
            .order_by(models.SavedSearch.name)
        ).scalars()
    )


def save(session: Session, actor: Actor, name: str, query_string: str) -> models.SavedSearch:
    """Save (or replace, by name) one of the actor's searches."""
    assert actor.user_id is not None  # saved searches belong to a signed-in user
    name = name.strip()
    error: InvalidInput | Conflict | None = None
    query = ""
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        error = InvalidInput("invalid_name", f"a saved search needs a name of 1 to {MAX_NAME} characters")
    else:
        try:
            query = normalised_query(session, query_string)
        except QueryError as exc:
            error = InvalidInput("invalid_search", f"the search cannot be saved: {exc.field}: {exc.message}")
    existing = session.execute(
        select(models.SavedSearch).where(
            models.SavedSearch.user_id == actor.user_id, models.SavedSearch.name == name
        )
    ).scalar_one_or_none()
    if error is None and existing is None and len(list_saved(session, actor.user_id)) >= MAX_SAVED:
        error = Conflict("too_many_saved_searches", f"at most {MAX_SAVED} saved searches; delete one first")
    if error is not None:
        raise refuse(
            session, actor, error, action=SAVED_ACTION, target_type="saved_search", target_id=name[:64]
        )
    if existing is None:
        existing = models.SavedSearch(user_id=actor.user_id, name=name, query=query, created_at=time.time())
        session.add(existing)
    else:
        existing.query = query
    session.flush()
    record(
        session,
        actor,
        action=SAVED_ACTION,
        target_type="saved_search",
        target_id=str(existing.id),
        detail=json.dumps({"name": name, "query": query}),
    )
    return existing


def delete(session: Session, actor: Actor, saved_id: int) -> None:
    """Delete one of the actor's saved searches (another user's reads as unknown)."""
    row = session.get(models.SavedSearch, saved_id)
    if row is None or row.user_id != actor.user_id:
        error = NotFound("unknown_saved_search", f"you have no saved search {saved_id}")
        raise refuse(
            session,
            actor,
            error,
            action="search.saved_delete",
            target_type="saved_search",
            target_id=str(saved_id),
        )
    record(
        session,
        actor,
        action="search.saved_delete",
        target_type="saved_search",
        target_id=str(saved_id),
        detail=json.dumps({"name": row.name}),
    )
    session.delete(row)
    session.flush()
