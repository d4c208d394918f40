"""An agent's full-time recording DN (Genesys GIR's "record this DN always": calls on it are
recorded for the agent even while no desktop is logged in).

Rules, the same from the API and ``tandem-server set-full-time-dn``:

- the DN follows the grammar of ``server.services.dn`` and is stored normalised;
- one agent per full-time DN (also a unique index on ``users.full_time_dn``, the last line of
  defence against two admins at once);
- a DN another agent is logged in on (a live desktop binding) cannot become someone's full-time
  DN, and the desktop login refuses another agent's full-time DN (``server.services.desktop_dn``):
  either way a call on that DN would have two candidate agents, and the recording would be filed
  under whichever the lookup happens to prefer. The agent himself may log in on his own
  full-time DN.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import Conflict, DomainError, NotFound
from server.services import dn as dn_rules
from server.services.actor import Actor, record, refuse
from server.store import models

ACTION = "policy.full_time_dn"


def find_agent(session: Session, username: str) -> models.User:
    agent = session.execute(select(models.User).where(models.User.username == username)).scalar_one_or_none()
    if agent is None or agent.role != "agent":
        raise NotFound("unknown_agent", f"no agent named {username!r}")
    return agent


def get(session: Session, username: str) -> str | None:
    return find_agent(session, username).full_time_dn


def _check(session: Session, agent: models.User, dn: str) -> None:
    other = session.execute(
        select(models.User).where(models.User.full_time_dn == dn, models.User.id != agent.id)
    ).scalar_one_or_none()
    if other is not None:
        raise Conflict("dn_taken", f"DN {dn} is already recorded full-time for {other.username}")
    holder = session.execute(
        select(models.User.username)
        .join(models.DnBinding, models.DnBinding.user_id == models.User.id)
        .where(
            models.DnBinding.dn == dn,
            models.DnBinding.released_at.is_(None),
            models.DnBinding.user_id != agent.id,
        )
    ).scalar()
    if holder is not None:
        raise Conflict("dn_taken", f"DN {dn} is in use: agent {holder} is logged in on it")


def checked(session: Session, agent: models.User, raw: str | None) -> str | None:
    """The DN ``raw`` would be stored as (None for blank), or the ``DomainError`` of these rules;
    the user admin service (``server.services.user_admin``) applies the same ones."""
    dn = dn_rules.normalise(raw) if raw is not None and raw.strip() else None
    if dn is not None:
        _check(session, agent, dn)
    return dn


def set_dn(session: Session, actor: Actor, username: str, raw: str | None) -> str | None:
    """Set (or, with None or blank, clear) the agent's full-time DN; returns what is stored."""
    try:
        agent = find_agent(session, username)
        dn = checked(session, agent, raw)
        agent.full_time_dn = dn
        try:
            session.flush()
        except IntegrityError as exc:  # another admin set the same DN between check and write
            raise Conflict("dn_taken", f"DN {dn} was just made another agent's full-time DN") from exc
    except DomainError as exc:
        raise refuse(session, actor, exc, action=ACTION, target_type="user", target_id=username) from None
    record(
        session,
        actor,
        action=ACTION,
        target_type="user",
        target_id=agent.username,
        detail=f"full_time_dn={dn}",
    )
    session.flush()
    return dn
