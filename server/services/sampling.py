"""Screen sampling policy: the share of calls that also get a screen recording, globally and
per team. Read by the web admin page and the API; changed by them and by ``set-sampling``."""

from __future__ import annotations

import json
from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.calls.repository import SCREEN_PERCENTAGE_KEY
from server.errors import DomainError, InvalidInput
from server.services.actor import Actor, record, refuse
from server.store import models
from tandem_protocol.payloads import SamplingPolicy

ACTION = "policy.sampling"


def read_policy(session: Session, default: float) -> SamplingPolicy:
    row = session.get(models.Setting, SCREEN_PERCENTAGE_KEY)
    pct = float(json.loads(row.value)) if row else default
    overrides = {
        str(t.id): t.screen_percentage
        for t in session.execute(
            select(models.Team).where(models.Team.screen_percentage.is_not(None))
        ).scalars()
        if t.screen_percentage is not None
    }
    return SamplingPolicy(pct, overrides)


def _check(value: float, what: str) -> None:
    # NaN fails both comparisons, so it is refused too
    if not 0.0 <= value <= 100.0:
        raise InvalidInput("invalid_percentage", f"{what} must be between 0 and 100, got {value:g}")


def set_policy(session: Session, actor: Actor, policy: SamplingPolicy) -> None:
    """Store the whole policy (global percentage and every team's override) and audit it."""
    teams = {t.id: t for t in session.execute(select(models.Team)).scalars()}
    try:
        _check(policy.percentage, "percentage")
        for key, value in policy.team_overrides.items():
            if not key.isdigit() or int(key) not in teams:
                raise InvalidInput("unknown_team", f"no team with id {key}")
            _check(value, f"team {key} percentage")
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=ACTION, target_type="policy", target_id="screen_sampling"
        ) from None
    row = session.get(models.Setting, SCREEN_PERCENTAGE_KEY)
    if row is None:
        session.add(models.Setting(key=SCREEN_PERCENTAGE_KEY, value=json.dumps(policy.percentage)))
    else:
        row.value = json.dumps(policy.percentage)
    for team_id, team in teams.items():
        team.screen_percentage = policy.team_overrides.get(str(team_id))
    record(
        session,
        actor,
        action=ACTION,
        target_type="policy",
        target_id="screen_sampling",
        detail=json.dumps(asdict(policy)),
    )
    session.flush()


def set_percentage(session: Session, actor: Actor, percentage: float, default: float) -> SamplingPolicy:
    """Change the global percentage only; the teams' overrides stay as they are."""
    policy = read_policy(session, default)
    policy.percentage = percentage
    set_policy(session, actor, policy)
    return policy
