"""Managing users: list them, change a user's role, team, supervised teams, full name, active
flag and full-time DN. One use case for the admin page, ``PATCH /api/admin/users/{username}``
and ``tandem-server user-update``: all of a request is checked before anything is written, a
refusal is audited and changes nothing, a change is audited with the fields' before and after.

Decisions:

- A user's team, and the teams he supervises, must exist: a typo must not create a team (teams
  are created on purpose, ``server.services.teams``). Creating a user keeps its old "created if
  new" team (``server.services.users.create_user``).
- Only supervisors, evaluators and compliance officers supervise teams; a user moved to another
  role loses his supervised teams (shown in the audit record).
- Only agents have a full-time DN (``server.services.full_time_dn``'s rules); an agent moved to
  another role loses it, and his live desktop DN binding is released.
- Deactivating a user: he can no longer log in, his tokens are revoked and his live DN binding
  released. An admin can neither deactivate nor demote himself, nor the last active admin.
"""

from __future__ import annotations

import json
import time
import unicodedata
from dataclasses import asdict, dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import Conflict, DomainError, InvalidInput, NotFound
from server.services import full_time_dn
from server.services.actor import Actor, record, refuse
from server.services.team_names import teams_named
from server.services.teams import require_admin
from server.store import models

ACTION = "user.update"
SUPERVISING_ROLES = ("supervisor", "evaluator", "compliance")
MAX_FULL_NAME = 200  # users.full_name is String(200)


@dataclass(frozen=True, slots=True)
class UserView:
    username: str
    full_name: str
    role: str
    team: str | None
    supervises: list[str]
    active: bool
    full_time_dn: str | None


@dataclass(frozen=True, slots=True)
class UserChanges:
    """What to change; None leaves a field as it is. ``team=""`` removes the user from his team,
    ``full_time_dn=""`` clears the DN, ``supervises=[]`` clears the supervised teams."""

    full_name: str | None = None
    role: str | None = None
    team: str | None = None
    supervises: list[str] | None = None
    active: bool | None = None
    full_time_dn: str | None = None


def admin_guard(
    *,
    is_self: bool,
    was_admin: bool,
    stays_admin: bool,
    was_active: bool,
    stays_active: bool,
    active_admins: int,
) -> str | None:
    """Why this change would lock admins out (None if it would not). Pure: the caller counts."""
    loses_admin = was_admin and was_active and not (stays_admin and stays_active)
    if not loses_admin:
        return None
    if is_self:
        return "you cannot deactivate yourself or take away your own admin role (another admin can)"
    if active_admins <= 1:
        return "this is the last active admin: make another user an admin first"
    return None


def _supervised(session: Session, user_id: int) -> list[str]:
    return sorted(
        session.execute(
            select(models.Team.name)
            .join(models.TeamSupervisor, models.TeamSupervisor.team_id == models.Team.id)
            .where(models.TeamSupervisor.user_id == user_id)
        ).scalars()
    )


def view(session: Session, user: models.User) -> UserView:
    return UserView(
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        team=user.team.name if user.team else None,
        supervises=_supervised(session, user.id),
        active=user.active,
        full_time_dn=user.full_time_dn,
    )


def list_users(
    session: Session,
    *,
    role: str | None = None,
    team: str | None = None,
    text: str | None = None,
    active: bool | None = None,
) -> list[UserView]:
    """Users by username; ``text`` matches the username or the full name (any case)."""
    if role and role not in models.ROLES:
        raise InvalidInput("invalid_role", f"role must be one of {', '.join(models.ROLES)}")
    query = select(models.User).order_by(models.User.username)
    if role:
        query = query.where(models.User.role == role)
    if team:
        query = query.join(models.Team, models.Team.id == models.User.team_id).where(
            func.lower(models.Team.name) == team.strip().lower()
        )
    if text and text.strip():
        like = f"%{text.strip().lower()}%"
        query = query.where(
            or_(func.lower(models.User.username).like(like), func.lower(models.User.full_name).like(like))
        )
    if active is not None:
        query = query.where(models.User.active.is_(active))
    return [view(session, u) for u in session.execute(query).scalars()]


def _clean_full_name(raw: str) -> str:
    name = raw.strip()
    if len(name) > MAX_FULL_NAME:
        raise InvalidInput("invalid_full_name", f"a full name is at most {MAX_FULL_NAME} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidInput("invalid_full_name", "a full name cannot contain control characters")
    return name


@dataclass(slots=True)
class _Plan:
    """The checked new state of every field; written only once all of them passed."""

    full_name: str
    role: str
    team: models.Team | None
    supervises: list[models.Team]
    active: bool
    full_time_dn: str | None


def _plan(session: Session, actor: Actor, user: models.User, old: UserView, c: UserChanges) -> _Plan:
    role = old.role if c.role is None else c.role
    if role not in models.ROLES:
        raise InvalidInput("invalid_role", f"role must be one of {', '.join(models.ROLES)}")
    active = old.active if c.active is None else c.active
    active_admins = session.execute(
        select(func.count()).where(models.User.role == "admin", models.User.active.is_(True))
    ).scalar_one()
    why = admin_guard(
        is_self=actor.user_id == user.id,
        was_admin=old.role == "admin",
        stays_admin=role == "admin",
        was_active=old.active,
        stays_active=active,
        active_admins=active_admins,
    )
    if why:
        raise Conflict("last_admin" if "last" in why else "own_admin", why)
    team: models.Team | None = user.team
    if c.team is not None:
        team = teams_named(session, [c.team])[1][0] if c.team.strip() else None
    if c.supervises is not None:
        _names, supervises = teams_named(session, c.supervises)
    else:
        supervises = teams_named(session, old.supervises)[1] if role in SUPERVISING_ROLES else []
    if supervises and role not in SUPERVISING_ROLES:
        raise InvalidInput(
            "cannot_supervise",
            f"only a supervisor, evaluator or compliance officer supervises teams, not an {role}",
        )
    if c.full_time_dn is not None and c.full_time_dn.strip() and role != "agent":
        raise InvalidInput("not_an_agent", f"only an agent has a full-time DN, not a {role}")
    dn = old.full_time_dn if c.full_time_dn is None else full_time_dn.checked(session, user, c.full_time_dn)
    return _Plan(
        full_name=old.full_name if c.full_name is None else _clean_full_name(c.full_name),
        role=role,
        team=team,
        supervises=supervises,
        active=active,
        full_time_dn=dn if role == "agent" else None,
    )


def _end_sessions(session: Session, user: models.User, *, tokens: bool) -> None:
    """Release the user's live DN binding (and revoke his tokens): a deactivated user or an
    ex-agent must not keep a DN that calls are filed under."""
    now = time.time()
    session.execute(
        update(models.DnBinding)
        .where(models.DnBinding.user_id == user.id, models.DnBinding.released_at.is_(None))
        .values(released_at=now)
    )
    if tokens:
        session.execute(
            update(models.ApiToken)
            .where(models.ApiToken.user_id == user.id, models.ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def _apply(session: Session, user: models.User, plan: _Plan) -> None:
    if user.role == "agent" and plan.role != "agent":
        _end_sessions(session, user, tokens=False)
    if user.active and not plan.active:
        _end_sessions(session, user, tokens=True)
    user.full_name = plan.full_name
    user.role = plan.role
    user.team_id = plan.team.id if plan.team else None
    user.active = plan.active
    user.full_time_dn = plan.full_time_dn
    wanted = {t.id for t in plan.supervises}
    for row in session.execute(
        select(models.TeamSupervisor).where(models.TeamSupervisor.user_id == user.id)
    ).scalars():
        if row.team_id not in wanted:
            session.delete(row)
        wanted.discard(row.team_id)
    for team_id in sorted(wanted):
        session.add(models.TeamSupervisor(team_id=team_id, user_id=user.id))
    try:
        session.flush()
    except IntegrityError as exc:  # another admin set the same full-time DN between check and write
        raise Conflict(
            "dn_taken", f"DN {plan.full_time_dn} was just made another agent's full-time DN"
        ) from exc


def update_user(session: Session, actor: Actor, username: str, changes: UserChanges) -> UserView:
    """Apply ``changes`` to the user (all or nothing); returns the user as stored."""
    try:
        require_admin(actor)
        user = session.execute(
            select(models.User).where(models.User.username == username)
        ).scalar_one_or_none()
        if user is None:
            raise NotFound("unknown_user", f"no user named {username!r}")
        old = view(session, user)
        _apply(session, user, _plan(session, actor, user, old, changes))
        session.refresh(user)
        new = view(session, user)
    except DomainError as exc:
        raise refuse(session, actor, exc, action=ACTION, target_type="user", target_id=username) from None
    before, after = asdict(old), asdict(new)
    changed = sorted(k for k in before if before[k] != after[k])
    if changed:
        detail = {"before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}}
        record(
            session, actor, action=ACTION, target_type="user", target_id=username, detail=json.dumps(detail)
        )
        session.flush()
    return new
