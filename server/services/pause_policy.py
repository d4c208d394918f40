"""Which teams' agents may pause a recording (the secure pause). Allowed for every team unless the
admin names the team here; the server refuses a pause from such a team's agent (403, audited),
whatever the desktop shows. One use case for the web page, the API and the CLI: validated (teams
by name), audited with before/after. A maximum pause length (none by default): when a pause lasts
that long the server resumes the recording itself (``AgentActions._pause_limit_timer``)."""

from __future__ import annotations

import json
import math

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.errors import InvalidInput
from server.services.actor import Actor, record, refuse
from server.services.team_names import teams_named
from server.store import models
from server.store.db import session_scope

SETTING_KEY = "pause_denied_teams"  # JSON list of team ids (ids: a renamed team keeps its rule)
ACTION = "policy.pause"
MAX_KEY = "pause_max_seconds"  # JSON number, or absent: pauses last until the agent resumes
MIN_MAX_SECONDS = 5.0  # shorter resumes before the card number is read out
MAX_MAX_SECONDS = 3600.0


def denied_team_ids(session: Session) -> frozenset[int]:
    row = session.get(models.Setting, SETTING_KEY)
    try:
        stored = json.loads(row.value) if row else []
    except ValueError:
        stored = []
    return frozenset(int(t) for t in stored if isinstance(t, int))


def denied_team_names(session: Session) -> list[str]:
    ids = denied_team_ids(session)
    if not ids:
        return []
    return sorted(session.execute(select(models.Team.name).where(models.Team.id.in_(ids))).scalars())


def may_pause(session: Session, team_id: int | None) -> bool:
    """An agent without a team may pause: the rule is per team, and no team named him."""
    return team_id is None or team_id not in denied_team_ids(session)


def set_denied(session: Session, actor: Actor, names: list[str]) -> list[str]:
    """Refuse the pause to the agents of exactly these teams (by name); [] lets every team pause."""
    try:
        wanted, rows = teams_named(session, names)
    except InvalidInput as error:
        raise refuse(session, actor, error, action=ACTION, target_type="policy", target_id="pause") from None
    before = denied_team_names(session)
    value = json.dumps(sorted(t.id for t in rows))
    row = session.get(models.Setting, SETTING_KEY)
    if row is None:
        session.add(models.Setting(key=SETTING_KEY, value=value))
    else:
        row.value = value
    record(
        session,
        actor,
        action=ACTION,
        target_type="policy",
        target_id="pause",
        detail=json.dumps({"before": {"no_pause_teams": before}, "after": {"no_pause_teams": wanted}}),
    )
    session.flush()
    return wanted


def max_seconds(session: Session) -> float | None:
    row = session.get(models.Setting, MAX_KEY)
    value = json.loads(row.value) if row else None
    return float(value) if isinstance(value, int | float) else None


def current_max(factory: sessionmaker[Session]) -> float | None:
    """The limit for a pause starting now (the coordinator's view; its own short session)."""
    with session_scope(factory) as s:
        return max_seconds(s)


def set_max(session: Session, actor: Actor, seconds: float | None) -> float | None:
    """The longest a pause may last before the server resumes the recording; None: no limit."""
    if seconds is not None and not (math.isfinite(seconds) and MIN_MAX_SECONDS <= seconds <= MAX_MAX_SECONDS):
        error = InvalidInput(
            "invalid_pause_limit",
            f"the maximum pause length must be from {MIN_MAX_SECONDS:g} to {MAX_MAX_SECONDS:g} seconds,"
            f" or empty for no limit; got {seconds:g}",
        )
        raise refuse(session, actor, error, action=ACTION, target_type="policy", target_id="pause")
    before = max_seconds(session)
    if before == seconds:
        return seconds
    row = session.get(models.Setting, MAX_KEY)
    if seconds is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(models.Setting(key=MAX_KEY, value=json.dumps(seconds)))
    else:
        row.value = json.dumps(seconds)
    record(
        session,
        actor,
        action=ACTION,
        target_type="policy",
        target_id="pause",
        detail=json.dumps({"before": {"max_seconds": before}, "after": {"max_seconds": seconds}}),
    )
    session.flush()
    return seconds
