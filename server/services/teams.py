"""Teams: list, create, rename. The same rules from the admin page, the API and ``tandem-server
team-create`` / ``team-rename``; every change and every refusal audited.

Names are unique regardless of case ("Blue" and "blue" would look like one team in every list
and filter). Per-team settings (playback, pause, sampling) hold team ids, so a rename keeps
them; recorder enrolment tokens and devices name their team in their scope (``team:NAME``), so
a rename rewrites those scopes in the same transaction.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.store import models

MAX_NAME = 100  # teams.name is String(100)


@dataclass(frozen=True, slots=True)
class TeamView:
    name: str
    members: int  # users whose team this is
    supervisors: list[str]  # usernames that supervise it


def require_admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise Forbidden("forbidden", "only an admin may do this")


def clean_name(raw: str) -> str:
    """The name as stored, or ``InvalidInput`` saying what is wrong with it."""
    name = raw.strip()
    if not name:
        raise InvalidInput("invalid_team_name", "a team name cannot be empty")
    if len(name) > MAX_NAME:
        raise InvalidInput("invalid_team_name", f"a team name is at most {MAX_NAME} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name) or "," in name:
        # Commas separate team names in the search filter and the pause-policy CLI.
        raise InvalidInput("invalid_team_name", "a team name cannot contain commas or control characters")
    return name


def find(session: Session, name: str) -> models.Team | None:
    """The team called ``name``, compared regardless of case."""
    return session.execute(
        select(models.Team).where(func.lower(models.Team.name) == name.strip().lower())
    ).scalar_one_or_none()


def _clash(session: Session, name: str, keep: models.Team | None = None) -> None:
    other = find(session, name)
    if other is not None and other is not keep:
        raise Conflict("team_exists", f'there is already a team named "{other.name}"')


def list_teams(session: Session) -> list[TeamView]:
    members: dict[int, int] = {
        team_id: count
        for team_id, count in session.execute(
            select(models.User.team_id, func.count())
            .where(models.User.team_id.is_not(None))
            .group_by(models.User.team_id)
        )
        if team_id is not None
    }
    supervisors: dict[int, list[str]] = {}
    for team_id, username in session.execute(
        select(models.TeamSupervisor.team_id, models.User.username)
        .join(models.User, models.User.id == models.TeamSupervisor.user_id)
        .order_by(models.User.username)
    ):
        supervisors.setdefault(team_id, []).append(username)
    return [
        TeamView(t.name, members.get(t.id, 0), supervisors.get(t.id, []))
        for t in session.execute(select(models.Team).order_by(func.lower(models.Team.name))).scalars()
    ]


def create_team(session: Session, actor: Actor, raw: str) -> models.Team:
    try:
        require_admin(actor)
        name = clean_name(raw)
        _clash(session, name)
    except DomainError as exc:
        raise refuse(session, actor, exc, action="team.create", target_type="team", target_id=raw) from None
    team = models.Team(name=name)
    session.add(team)
    session.flush()
    record(
        session,
        actor,
        action="team.create",
        target_type="team",
        target_id=name,
        detail=json.dumps({"after": name}),
    )
    session.flush()
    return team


def rename_team(session: Session, actor: Actor, old: str, raw: str) -> models.Team:
    try:
        require_admin(actor)
        team = find(session, old)
        if team is None:
            raise NotFound("unknown_team", f'there is no team named "{old}"')
        name = clean_name(raw)
        _clash(session, name, keep=team)
    except DomainError as exc:
        raise refuse(session, actor, exc, action="team.rename", target_type="team", target_id=old) from None
    before = team.name
    if name == before:
        return team
    team.name = name
    scopes = 0
    for table in (models.EnrolmentToken, models.Device):
        result = session.execute(
            update(table).where(table.scope == f"team:{before}").values(scope=f"team:{name}")
        )
        scopes += int(getattr(result, "rowcount", 0) or 0)
    record(
        session,
        actor,
        action="team.rename",
        target_type="team",
        target_id=name,
        detail=json.dumps({"before": before, "after": name, "recorder_scopes_renamed": scopes}),
    )
    session.flush()
    return team
