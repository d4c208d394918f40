"""Users and passwords: creating a user, the password policy, changing and resetting a
password. The same rules whether the admin uses the web page, the API or ``tandem-server``."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, PolicyError
from server.policy import password_rules
from server.policy.password_rules import PasswordPolicy
from server.security.passwords import hash_password, verify_password
from server.services.actor import Actor, record, refuse
from server.store import models
from server.store import users as user_store

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


def read_policy(session: Session) -> PasswordPolicy:
    row = session.get(models.Setting, password_rules.PASSWORD_POLICY_KEY)
    return password_rules.load(row.value if row else None)


def _require_admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise Forbidden("forbidden", "only an admin may do this")


def set_policy(session: Session, actor: Actor, data: object) -> PasswordPolicy:
    """Store a new policy (a JSON-like mapping; missing fields keep the defaults) and audit it."""
    try:
        _require_admin(actor)
        try:
            policy = password_rules.parse(data)
        except PolicyError as exc:
            raise InvalidInput("invalid_password_policy", str(exc)) from exc
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action="policy.password", target_type="policy", target_id="password"
        ) from None
    before = asdict(read_policy(session))  # the audit keeps the values before and after
    value = password_rules.dump(policy)
    row = session.get(models.Setting, password_rules.PASSWORD_POLICY_KEY)
    if row is None:
        session.add(models.Setting(key=password_rules.PASSWORD_POLICY_KEY, value=value))
    else:
        row.value = value
    detail = json.dumps({"before": before, "after": asdict(policy)})
    record(
        session, actor, action="policy.password", target_type="policy", target_id="password", detail=detail
    )
    session.flush()
    return policy


def _check_password(session: Session, password: str, username: str) -> None:
    policy = read_policy(session)
    missing = password_rules.problems(password, policy, username)
    if missing:
        rules = password_rules.describe(policy)
        whole = f" (policy: {rules})" if "," in rules else ""  # worth saying when there is more to it
        raise InvalidInput("weak_password", f"the password needs {', '.join(missing)}{whole}")


def create_user(
    session: Session,
    actor: Actor,
    username: str,
    password: str,
    role: str,
    *,
    full_name: str = "",
    team: str | None = None,
    supervises: list[str] | None = None,
) -> models.User:
    try:
        _require_admin(actor)
        if not _USERNAME.match(username):
            raise InvalidInput(
                "invalid_username",
                "a username is 1-100 characters: letters, digits, . _ @ - (starting with a letter or digit)",
            )
        if role not in models.ROLES:
            raise InvalidInput("invalid_role", f"role must be one of {', '.join(models.ROLES)}")
        if (
            session.execute(select(models.User.id).where(models.User.username == username)).scalar()
            is not None
        ):
            raise Conflict("user_exists", f"user {username!r} already exists")
        _check_password(session, password, username)
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action="user.create", target_type="user", target_id=username
        ) from None
    user = user_store.create_user(
        session, username, password, role, full_name=full_name, team=team, supervises=supervises
    )
    detail = (
        f"role={role}"
        + (f" team={team}" if team else "")
        + "".join(f" supervises={t}" for t in supervises or [])
    )
    record(session, actor, action="user.create", target_type="user", target_id=username, detail=detail)
    session.flush()
    return user


def change_own_password(session: Session, actor: Actor, current: str, new: str) -> None:
    """A user changes his own password: the current one proves it is him."""
    user = session.get(models.User, actor.user_id) if actor.user_id is not None else None
    try:
        if user is None or not verify_password(user.password_hash, current):
            raise Forbidden("wrong_password", "the current password is wrong")
        _check_password(session, new, user.username)
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action="user.password", target_type="user", target_id=actor.username
        ) from None
    user.password_hash = hash_password(new)
    record(
        session, actor, action="user.password", target_type="user", target_id=user.username, detail="changed"
    )
    session.flush()


def reset_password(session: Session, actor: Actor, username: str, new: str) -> None:
    """An admin (or the CLI) sets someone's password."""
    try:
        _require_admin(actor)
        user = session.execute(select(models.User).where(models.User.username == username)).scalar()
        if user is None:
            raise NotFound("unknown_user", f"no user named {username!r}")
        _check_password(session, new, username)
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action="user.password", target_type="user", target_id=username
        ) from None
    user.password_hash = hash_password(new)
    record(session, actor, action="user.password", target_type="user", target_id=username, detail="reset")
    session.flush()


def policy_dict(policy: PasswordPolicy) -> dict[str, object]:
    return asdict(policy)
