"""Which teams' agents may play their own recordings (issue 14, item 8). Agents always see their
own calls listed; playing them is off unless the admin names their team here. One use case for
the web page, the API and the CLI: validated (teams by name), audited with before/after."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import InvalidInput
from server.policy.access import Viewer, may_play_media
from server.services.actor import Actor, record, refuse
from server.services.team_names import teams_named
from server.store import models

SETTING_KEY = "agent_playback_teams"  # JSON list of team ids
ACTION = "policy.agent_playback"


def team_ids(session: Session) -> frozenset[int]:
    row = session.get(models.Setting, SETTING_KEY)
    try:
        stored = json.loads(row.value) if row else []
    except ValueError:
        stored = []
    return frozenset(int(t) for t in stored if isinstance(t, int))


def team_names(session: Session) -> list[str]:
    ids = team_ids(session)
    if not ids:
        return []
    names = session.execute(select(models.Team.name).where(models.Team.id.in_(ids))).scalars()
    return sorted(names)


def set_teams(session: Session, actor: Actor, names: list[str]) -> list[str]:
    """Let the agents of exactly these teams (by name) play their own recordings; [] for none."""
    try:
        wanted, rows = teams_named(session, names)
    except InvalidInput as error:
        raise refuse(
            session, actor, error, action=ACTION, target_type="policy", target_id="agent_playback"
        ) from None
    before = team_names(session)
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
        target_id="agent_playback",
        detail=json.dumps({"before": before, "after": wanted}),
    )
    return wanted


def play_rule(session: Session) -> Callable[[Viewer, int | None, int | None], bool]:
    """``may_play_media`` under the stored setting, for the routes' visibility check."""
    allowed = team_ids(session)

    def rule(viewer: Viewer, agent_id: int | None, agent_team_id: int | None) -> bool:
        return may_play_media(viewer, agent_id, agent_team_id, allowed)

    return rule
