"""Binding an agent to the DN he logs in on at the desktop, until logout.

One binding per DN at a time: the login checks first (a clear ``dn_in_use``; a binding whose
desktop token has expired or been revoked without a logout is released instead), and the partial
unique index ``uq_dn_bindings_active_dn`` (``dn_bindings(dn) WHERE released_at IS NULL``) is the
last line of defence when two logins race past the check — the loser's insert fails and is
answered with the same ``dn_in_use``. DNs are normalised (``server.services.dn``) before both.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import Conflict, DomainError, InvalidInput
from server.services import dn as dn_rules
from server.services.actor import Actor, record, refuse
from server.store import models

ACTION = "auth.login"


def claim(session: Session, actor: Actor, user_id: int, raw: str | None) -> str:
    """The normalised DN this agent may bind, or a refusal (audited): no DN, not a DN, held by
    another agent's desktop, or another agent's full-time DN."""
    try:
        if raw is None or not raw.strip():
            raise InvalidInput("dn_required", "an agent logging in on the desktop must give his DN")
        dn = dn_rules.normalise(raw)
        held = session.execute(
            select(
                models.DnBinding, models.User.username, models.ApiToken.expires_at, models.ApiToken.revoked_at
            )
            .join(models.User, models.DnBinding.user_id == models.User.id)
            .join(models.ApiToken, models.ApiToken.id == models.DnBinding.token_id)
            .where(models.DnBinding.dn == dn, models.DnBinding.released_at.is_(None))
            .where(models.DnBinding.user_id != user_id)
        ).first()
        if held is not None:
            binding, holder, expires_at, revoked_at = held
            now = time.time()
            if revoked_at is None and expires_at > now:
                raise Conflict("dn_in_use", f"DN {dn} is in use by another agent")
            _release_stale(session, actor, binding, holder, now)
        owner = session.execute(
            select(models.User.username).where(models.User.full_time_dn == dn, models.User.id != user_id)
        ).scalar()
        if owner is not None:
            raise Conflict("dn_in_use", f"DN {dn} is recorded full-time for another agent ({owner})")
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=ACTION, target_type="dn", target_id=(raw or "")[:64]
        ) from None
    return dn


def _release_stale(
    session: Session, actor: Actor, binding: models.DnBinding, holder: str, now: float
) -> None:
    """A binding whose desktop session is over (token expired or revoked) without a logout — the
    desktop crashed or the PC was switched off. Left alone it would keep the DN from every
    other agent for good; it is released, on the record, and the new login proceeds."""
    binding.released_at = now
    record(
        session,
        actor,
        action="dn.released",
        target_type="dn",
        target_id=binding.dn,
        detail=f"stale binding of {holder} released: its desktop session ended without logout",
    )
    session.flush()


def bind(session: Session, actor: Actor, user_id: int, dn: str, token_id: int, now: float) -> None:
    """Release the agent's earlier binding and bind ``dn`` (from ``claim``) to this token."""
    for old in session.execute(
        select(models.DnBinding).where(
            models.DnBinding.user_id == user_id, models.DnBinding.released_at.is_(None)
        )
    ).scalars():
        old.released_at = now
    session.flush()  # the release first: re-binding the same DN must not meet the old row
    session.add(models.DnBinding(dn=dn, user_id=user_id, token_id=token_id, bound_at=now))
    try:
        session.flush()
    except IntegrityError:
        error = Conflict("dn_in_use", f"DN {dn} is in use by another agent")
        raise refuse(session, actor, error, action=ACTION, target_type="dn", target_id=dn) from None
