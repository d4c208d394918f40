"""Interaction search: a ``SearchQuery`` (server/services/search_query.py) as SQL, with who may
see what in the WHERE clause (server/policy/access.py's rules, resolved to the agents whose calls
may match) — never filtered after the query, so pages and counts hold only visible rows — and
keyset paging on (sort value, id).

Counting stops at ``COUNT_CAP`` + 1 rows: an exact count of a million-row match reads every
matching row (hundreds of milliseconds on SQLite) on every page turn, and "more than 10,000"
tells a supervisor all he needs — narrow the search.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from server.policy.access import SEE_ALL_ROLES, TEAM_ROLES, Viewer
from server.services import pause_reasons
from server.services.search_query import OPTIONAL_FILTERS, SearchQuery, encode_cursor
from server.store import models
from server.store.search_columns import SEARCH_KEYS_SETTING, parse_keys

COUNT_CAP = 10_000

Ix = models.Interaction


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: list[models.Interaction]
    count: int  # exact when not capped
    capped: bool  # more than COUNT_CAP rows match
    next_cursor: str | None
    scope: str  # whose interactions the user may see: "all", "own", "teams 1,2"


def searchable_keys(session: Session) -> list[str]:
    row = session.get(models.Setting, SEARCH_KEYS_SETTING)
    return parse_keys(row.value if row else None)


def optional_columns() -> list[str]:
    """Which OPTIONAL_FILTERS the interactions table has columns for (revision 0013 added the
    ACW wrap-up: disposition_code and notes)."""
    return [name for name in OPTIONAL_FILTERS if hasattr(Ix, _OPTIONAL_COLUMN[name])]


_OPTIONAL_COLUMN = {"disposition": "disposition_code", "notes": "notes"}


def scope_label(viewer: Viewer) -> str:
    """Whose interactions ``viewer`` searches, for the audit record."""
    if viewer.role in SEE_ALL_ROLES:
        return "all"
    if viewer.role == "agent":
        return "own"
    if viewer.role in TEAM_ROLES:
        return "teams " + ",".join(str(t) for t in sorted(viewer.supervised_team_ids))
    return "none"


def agent_ids(session: Session, query: SearchQuery, viewer: Viewer) -> list[int] | None:
    """The agents whose calls may match — visibility, agent and team filters resolved to ids
    first (a few hundred at most), so SQLite gets one ``agent_id IN (…)`` list (or an equality,
    which reads the (agent, time) index in order) instead of subqueries. None: no restriction."""
    if viewer.role in SEE_ALL_ROLES and not query.agents and not query.teams:
        return None
    stmt = select(models.User.id)
    if viewer.role == "agent":
        stmt = stmt.where(models.User.id == viewer.user_id)
    elif viewer.role in TEAM_ROLES:
        stmt = stmt.where(models.User.team_id.in_(sorted(viewer.supervised_team_ids)))
    elif viewer.role not in SEE_ALL_ROLES:
        return []
    if query.agents:
        stmt = stmt.where(models.User.username.in_(query.agents))
    if query.teams:
        teams = select(models.Team.id).where(models.Team.name.in_(query.teams))
        stmt = stmt.where(models.User.team_id.in_(teams))
    return sorted(session.execute(stmt).scalars())


def sort_expression(sort: str) -> Any:
    """The sort's SQL value; NULLs read as -1 / "" so that keyset comparisons stay total."""
    if sort == "started_at":
        return Ix.started_at
    if sort == "duration":
        return func.coalesce(Ix.duration, -1.0)
    if sort == "agent":
        return func.coalesce(models.User.username, "")
    if sort == "caller":
        return Ix.caller_number
    if sort == "callee":
        return Ix.callee_number
    if sort == "direction":
        return Ix.direction
    return Ix.end_reason


def conditions(query: SearchQuery, agents: list[int] | None) -> list[ColumnElement[bool]]:
    """The WHERE clause; ``agents`` from ``agent_ids`` (who may and should match)."""
    out: list[ColumnElement[bool]] = []
    if agents is not None:
        # With a number prefix the number index is the one to read: "+ 0" keeps SQLite from
        # choosing the agent index instead (it would read all of a team's calls ever).
        agent = Ix.agent_id + 0 if query.caller or query.callee else Ix.agent_id
        out.append(agent.in_(agents) if agents else false())
    if query.since is not None:
        out.append(Ix.started_at >= query.since)
    if query.until is not None:
        out.append(Ix.started_at < query.until)
    for column, prefix in ((Ix.caller_number, query.caller), (Ix.callee_number, query.callee)):
        if prefix:
            # A range, not LIKE: SQLite's LIKE is case-insensitive and so cannot use the index.
            out.append(and_(column >= prefix, column < prefix + "\uffff"))
    if query.min_duration is not None:
        out.append(Ix.duration >= query.min_duration)
    if query.max_duration is not None:
        out.append(Ix.duration <= query.max_duration)
    if query.has_screen is not None:
        out.append(Ix.has_screen.is_(query.has_screen))
    if query.paused is not None:
        out.append(Ix.was_paused.is_(query.paused))
    if query.end_reason:
        out.append(Ix.end_reason == query.end_reason)
    if query.direction:
        # Only a search over everyone's calls reads the (direction, time) index; with agents or a
        # number prefix, "|| ''" keeps SQLite on the agent or number index (a direction is a third
        # of all calls, an agent's calls are a few), where direction is a covering column.
        broad = agents is None and not query.caller and not query.callee
        direction = Ix.direction if broad else Ix.direction.concat("")
        out.append(direction == ("" if query.direction == "unknown" else query.direction))
    if query.disposition:
        out.append(Ix.disposition_code == query.disposition)
    if query.notes:
        # icontains: case-insensitive on PostgreSQL too (its LIKE is not; SQLite's is, for ASCII).
        out.append(Ix.notes.icontains(query.notes, autoescape=True))
    for key, value in query.meta:
        # IN, not EXISTS: a selective value (an account, a ticket) drives from its own index.
        # The time range is repeated on the value's own start: only that slice of the index is read.
        meta = models.InteractionMetaValue
        ids = select(meta.interaction_id).where(meta.key == key, meta.value == value)
        if query.since is not None:
            ids = ids.where(meta.started_at >= query.since)
        if query.until is not None:
            ids = ids.where(meta.started_at < query.until)
        out.append(Ix.id.in_(ids))
    return out


def policy_conditions(session: Session, query: SearchQuery) -> list[ColumnElement[bool]]:
    """Filters that need an admin rule read first: a pause whose required reason never came."""
    if query.pause_reason_missing is None:
        return []
    missing = pause_reasons.missing_reason_condition(session, Ix.id)
    return [missing if query.pause_reason_missing else ~missing]


def page_statement(
    query: SearchQuery, agents: list[int] | None, extra: Sequence[ColumnElement[bool]] = ()
) -> Select[Any]:
    """Ids and sort values of one page (limit + 1 rows: the extra one says a next page exists).
    ``extra``: ``policy_conditions``."""
    where = [*conditions(query, agents), *extra]
    key = sort_expression(query.sort)
    stmt = select(Ix.id, key.label("sort_value")).where(*where)
    if query.sort == "agent":
        stmt = stmt.outerjoin(models.User, models.User.id == Ix.agent_id)
    if query.cursor is not None:
        after = tuple_(key, Ix.id)
        mark = tuple_(query.cursor.value, query.cursor.id)
        stmt = stmt.where(after < mark if query.order == "desc" else after > mark)
    if query.order == "desc":
        stmt = stmt.order_by(key.desc(), Ix.id.desc())
    else:
        stmt = stmt.order_by(key.asc(), Ix.id.asc())
    return stmt.limit(query.limit + 1)


def count_statement(
    query: SearchQuery, agents: list[int] | None, extra: Sequence[ColumnElement[bool]] = ()
) -> Select[Any]:
    where = [*conditions(query, agents), *extra]
    capped = select(Ix.id).where(*where).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(capped)


def run(session: Session, query: SearchQuery, viewer: Viewer) -> SearchPage:
    agents = agent_ids(session, query, viewer)
    extra = policy_conditions(session, query)
    found = session.execute(page_statement(query, agents, extra)).all()
    more = len(found) > query.limit
    found = found[: query.limit]
    ids = [row.id for row in found]
    loaded = {
        row.id: row
        for row in session.execute(
            select(Ix)
            .options(selectinload(Ix.media), selectinload(Ix.pauses), selectinload(Ix.agent))
            .where(Ix.id.in_(ids))
        ).scalars()
    }
    rows = [loaded[i] for i in ids if i in loaded]
    next_cursor = encode_cursor(query, found[-1].sort_value, found[-1].id) if more and found else None
    total = int(session.execute(count_statement(query, agents, extra)).scalar_one())
    return SearchPage(rows, min(total, COUNT_CAP), total > COUNT_CAP, next_cursor, scope_label(viewer))


def audit_detail(query: SearchQuery, page: SearchPage) -> str:
    """One audit record per search: what was asked, over whose calls, and how much came back."""
    return json.dumps(
        {
            "filters": query.filters(),
            "sort": f"{query.sort} {query.order}",
            "page": "next" if query.cursor is not None else "first",
            "scope": page.scope,
            "count": f"{COUNT_CAP}+" if page.capped else page.count,
            "returned": len(page.rows),
        },
        sort_keys=True,
        default=str,
    )
