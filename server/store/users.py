"""Creating teams and users: the storage step only. The rules (who may, username and role,
the password policy) and the audit record are ``server.services.users``'s; tests use this
directly to set up their users."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import UserExistsError
from server.security.passwords import hash_password
from server.store import models


def ensure_team(session: Session, name: str) -> models.Team:
    team = session.execute(select(models.Team).where(models.Team.name == name)).scalar()
    if team is None:
        team = models.Team(name=name)
        session.add(team)
        session.flush()
    return team


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    full_name: str = "",
    team: str | None = None,
    supervises: list[str] | None = None,
) -> models.User:
    if role not in models.ROLES:
        raise ValueError(f"role must be one of {', '.join(models.ROLES)}")
    if session.execute(select(models.User).where(models.User.username == username)).scalar() is not None:
        raise UserExistsError(f"user {username!r} already exists")
    team_row = ensure_team(session, team) if team else None
    user = models.User(
        username=username,
        full_name=full_name,
        role=role,
        password_hash=hash_password(password),
        team_id=team_row.id if team_row else None,
        active=True,
        created_at=time.time(),
    )
    session.add(user)
    session.flush()
    for name in supervises or []:
        session.add(models.TeamSupervisor(team_id=ensure_team(session, name).id, user_id=user.id))
    return user
