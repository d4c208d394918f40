"""Screen sampling policy: the share of calls that also get a screen recording, globally and
per team. Read by the web admin page and the API; changed by them and by ``set-sampling``.

Team overrides are keyed by team NAME (what an admin knows); a numeric key that is a team's id
is still accepted from older API clients, and is stored and shown as that team's name."""

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
        t.name: t.screen_percentage
        for t in session.execute(
            select(models.Team).where(models.Team.screen_percentage.is_not(None)).order_by(models.Team.name)
        ).scalars()
        if t.screen_percentage is not None
    }
    return SamplingPolicy(pct, overrides)


def _check(value: float, what: str) -> None:
    # NaN fails both comparisons, so it is refused too
    if not 0.0 <= value <= 100.0:
        raise InvalidInput("invalid_percentage", f"{what} must be between 0 and 100, got {value:g}")


def _team_for(key: str, by_name: dict[str, models.Team], by_id: dict[int, models.Team]) -> models.Team:
    name = key.strip()
    if name in by_name:
        return by_name[name]
    if name.isdigit() and int(name) in by_id:  # an older client's team id
        return by_id[int(name)]
    known = ", ".join(sorted(by_name)) or "none yet"
    raise InvalidInput("unknown_team", f'there is no team named "{name}" (teams: {known})')


def set_policy(session: Session, actor: Actor, policy: SamplingPolicy) -> None:
    """Store the whole policy (global percentage and every team's override) and audit it with
    the values before and after."""
    row = session.get(models.Setting, SCREEN_PERCENTAGE_KEY)
    # No stored value yet means the configured initial value, which this service is not told.
    before = _auditable(read_policy(session, float("nan")))
    teams = list(session.execute(select(models.Team)).scalars())
    by_name = {t.name: t for t in teams}
    by_id = {t.id: t for t in teams}
    wanted: dict[int, float] = {}
    try:
        _check(policy.percentage, "percentage")
        for key, value in policy.team_overrides.items():
            team = _team_for(key, by_name, by_id)
            if team.id in wanted:
                raise InvalidInput("duplicate_team", f'team "{team.name}" has two overrides')
            _check(value, f'Team "{team.name}"\'s percentage')
            wanted[team.id] = value
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=ACTION, target_type="policy", target_id="screen_sampling"
        ) from None
    if row is None:
        session.add(models.Setting(key=SCREEN_PERCENTAGE_KEY, value=json.dumps(policy.percentage)))
    else:
        row.value = json.dumps(policy.percentage)
    for team in teams:
        team.screen_percentage = wanted.get(team.id)
    session.flush()
    after = _auditable(read_policy(session, float(policy.percentage)))
    record(
        session,
        actor,
        action=ACTION,
        target_type="policy",
        target_id="screen_sampling",
        detail=json.dumps({"before": before, "after": after}),
    )
    session.flush()


def _auditable(policy: SamplingPolicy) -> dict[str, object]:
    out = asdict(policy)
    if out["percentage"] != out["percentage"]:  # NaN: not stored yet (see set_policy)
        out["percentage"] = None
    return out


def set_percentage(session: Session, actor: Actor, percentage: float, default: float) -> SamplingPolicy:
    """Change the global percentage only; the teams' overrides stay as they are."""
    policy = read_policy(session, default)
    policy.percentage = percentage
    set_policy(session, actor, policy)
    return policy


def set_team_percentage(
    session: Session, actor: Actor, team: str, percentage: float | None, default: float
) -> SamplingPolicy:
    """Set (or, with None, remove) one team's override, named by the team's name; the global
    percentage and the other teams stay as they are."""
    policy = read_policy(session, default)
    if percentage is None:
        policy.team_overrides.pop(team.strip(), None)
    else:
        policy.team_overrides[team.strip()] = percentage
    set_policy(session, actor, policy)
    return read_policy(session, default)
