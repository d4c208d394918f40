"""Which teams' agents may pause a recording (the secure pause). Allowed for every team unless the
admin names the team here; the server refuses a pause from such a team's agent (403, audited),
whatever the desktop shows. One use case for the web page, the API and the CLI: validated (teams
by name), audited with before/after. (A maximum pause length is not there yet: README.)"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import InvalidInput
from server.services.actor import Actor, record, refuse
from server.store import models

SETTING_KEY = "pause_denied_teams"  # JSON list of team ids (ids: a renamed team keeps its rule)
ACTION = "policy.pause"


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
    wanted = sorted({n.strip() for n in names if n.strip()})
    rows = (
        session.execute(select(models.Team).where(models.Team.name.in_(wanted))).scalars().all()
        if wanted
        else []
    )
    unknown = sorted(set(wanted) - {t.name for t in rows})
    if unknown:
        known = ", ".join(sorted(session.execute(select(models.Team.name)).scalars())) or "none yet"
        error = InvalidInput("unknown_team", f'there is no team named "{unknown[0]}" (teams: {known})')
        raise refuse(session, actor, error, action=ACTION, target_type="policy", target_id="pause")
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
