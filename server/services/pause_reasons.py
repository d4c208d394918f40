"""Why an agent paused a recording (issue 13 item 2, issue 14 item 2): the admin's rule whether a
reason is required (a default and per-team exceptions) and the agent's reason stored on his pause
span, where the supervisor's timeline shows it beside who paused.

The reasons are admin codes of kind ``pause`` (``server.services.dispositions``). The rule never
holds a pause up: a secure pause keeps a card number out of the recording, so the server pauses
whatever reason came (or none) and takes the reason on the same request or afterwards, on the
agent's latest pause of that call (``set_reason``). "Required" refuses a reason-less *reason*
request and makes the desktop ask until one is given. Since the reason comes after the pause, an
agent may never give it (he closed the chooser, or paused through another client): such a span is
"reason required, not given" (``missing_reasons``, ``missing_reason_condition``) on the player's
timeline and in search. The rule at pause time is not stored, so it is judged by the pausing agent's
team's rule now. One use case for the web page, the API and the CLI; audited with before/after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from server.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.services.dispositions import find_code
from server.services.team_names import teams_named
from server.store import models

REQUIRED_KEY = "pause_reason_required"  # JSON {"default": bool, "teams": {"<team id>": bool}}
POLICY_ACTION = "policy.pause"
REASON_ACTION = "call.pause_reason"
AGENT_PAUSE = "agent"  # PauseSpan.reason of the agent's own (secure) pause


@dataclass(frozen=True, slots=True)
class RequiredRule:
    default: bool
    teams: dict[str, bool]  # team name -> required: the teams the admin named (others: default)


@dataclass(frozen=True, slots=True)
class PauseReason:
    interaction_id: str
    started_at: float
    code: str
    label: str


def _stored(session: Session) -> tuple[bool, dict[int, bool]]:
    row = session.get(models.Setting, REQUIRED_KEY)
    try:
        raw = json.loads(row.value) if row else {}
    except ValueError:
        raw = {}
    default = bool(raw.get("default", False)) if isinstance(raw, dict) else False
    teams = raw.get("teams", {}) if isinstance(raw, dict) else {}
    out: dict[int, bool] = {}
    if isinstance(teams, dict):
        for key, value in teams.items():
            if str(key).isdigit() and isinstance(value, bool):
                out[int(key)] = value
    return default, out


def rule(session: Session) -> RequiredRule:
    default, by_id = _stored(session)
    names: dict[int, str] = {
        row.id: row.name for row in session.execute(select(models.Team.id, models.Team.name))
    }
    teams = {names[i]: v for i, v in by_id.items() if i in names}  # a deleted team's rule is gone
    return RequiredRule(default, dict(sorted(teams.items())))


def required_for(session: Session, team_id: int | None) -> bool:
    """The team's own rule, else the default (an agent without a team gets the default)."""
    default, by_id = _stored(session)
    return by_id.get(team_id, default) if team_id is not None else default


def reason_missing(span: models.PauseSpan, required: bool) -> bool:
    """Whether ``span`` is the agent's own pause whose required reason never came (an API pause,
    a hold or an auto-pause has no agent to ask)."""
    return required and span.reason == AGENT_PAUSE and span.reason_code is None


def missing_reasons(session: Session, spans: list[models.PauseSpan]) -> set[int]:
    """Ids of the ``spans`` whose reason was required (by the pausing agent's team's rule) and
    never given."""
    agents = {s.by_user_id for s in spans if s.reason == AGENT_PAUSE and s.reason_code is None}
    agents.discard(None)
    if not agents:
        return set()
    query = select(models.User.id, models.User.team_id).where(models.User.id.in_(agents))
    teams: dict[int, int | None] = {user_id: team_id for user_id, team_id in session.execute(query)}
    default, by_id = _stored(session)

    def required(user_id: int | None) -> bool:
        if user_id is None:  # not an agent's own pause (see missing_reason_condition)
            return False
        team = teams.get(user_id)
        return by_id.get(team, default) if team is not None else default

    return {s.id for s in spans if reason_missing(s, required(s.by_user_id))}


def missing_reason_condition(session: Session, interaction_id: Any) -> ColumnElement[bool]:
    """SQL: the interaction has a pause of its agent's whose required reason was never given (the
    rule resolved to team ids first, so the query stays one EXISTS on pause_spans)."""
    default, by_id = _stored(session)
    exceptions = sorted(t for t, required in by_id.items() if required != default)
    users = select(models.User.id)
    if default:  # everyone but the teams exempted
        users = users.where(or_(models.User.team_id.is_(None), models.User.team_id.not_in(exceptions)))
    elif exceptions:  # only the teams named as required
        users = users.where(models.User.team_id.in_(exceptions))
    else:
        return false()
    span = models.PauseSpan
    return exists().where(
        and_(
            span.interaction_id == interaction_id,
            span.reason == AGENT_PAUSE,
            span.reason_code.is_(None),
            span.by_user_id.in_(users),
        )
    )


def set_rule(session: Session, actor: Actor, default: bool, teams: dict[str, bool]) -> RequiredRule:
    """Whether a pause reason is required: ``default`` for every team not named in ``teams``."""
    try:
        if not all(isinstance(v, bool) for v in teams.values()):
            raise InvalidInput("invalid_rule", "each team's rule must be true or false")
        _, rows = teams_named(session, teams)
    except InvalidInput as error:
        raise refuse(
            session, actor, error, action=POLICY_ACTION, target_type="policy", target_id="pause"
        ) from None
    before = rule(session)
    by_name = {n.strip(): v for n, v in teams.items()}
    value = json.dumps({"default": default, "teams": {str(t.id): by_name[t.name] for t in rows}})
    row = session.get(models.Setting, REQUIRED_KEY)
    if row is None:
        session.add(models.Setting(key=REQUIRED_KEY, value=value))
    else:
        row.value = value
    session.flush()
    after = rule(session)
    if after != before:
        record(
            session,
            actor,
            action=POLICY_ACTION,
            target_type="policy",
            target_id="pause",
            detail=json.dumps(
                {
                    "before": {"reason_required": before.default, "reason_required_teams": before.teams},
                    "after": {"reason_required": after.default, "reason_required_teams": after.teams},
                }
            ),
        )
    return after


def set_reason(
    session: Session, actor: Actor, team_id: int | None, interaction_id: str, code: str
) -> PauseReason:
    """The agent's reason for his latest pause of his call (open or already resumed: the hotkey
    pauses first and asks afterwards). Refusals (another's call, no pause, an unknown or inactive
    code, none when required) are audited; the change is audited with before/after."""
    code = code.strip()
    try:
        row = session.get(models.Interaction, interaction_id)
        if row is None:
            raise NotFound("unknown_interaction", "no interaction with that id")
        if row.agent_id != actor.user_id:
            raise Forbidden("forbidden", "that call belongs to another agent")
        if not code:
            why = "the admin requires a reason for every pause" if required_for(session, team_id) else ""
            raise InvalidInput("pause_reason_required", f"choose a pause reason{': ' + why if why else ''}")
        found = find_code(session, "pause", code)
        if found is None or not found.active:
            raise InvalidInput("unknown_pause_reason", f"{code!r} is not a pause reason in use")
        span = session.execute(
            select(models.PauseSpan)
            .where(
                models.PauseSpan.interaction_id == interaction_id,
                models.PauseSpan.reason == AGENT_PAUSE,
                models.PauseSpan.by_user_id == actor.user_id,
            )
            .order_by(models.PauseSpan.started_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        if span is None:
            raise Conflict("no_pause", "this call has no pause of yours to give a reason for")
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=REASON_ACTION, target_type="interaction", target_id=interaction_id
        ) from None
    before = {"code": span.reason_code, "label": span.reason_label}
    span.reason_code, span.reason_label = found.code, found.label
    record(
        session,
        actor,
        action=REASON_ACTION,
        target_type="interaction",
        target_id=interaction_id,
        detail=json.dumps(
            {
                "pause_started_at": span.started_at,
                "before": before,
                "after": {"code": found.code, "label": found.label},
            }
        ),
    )
    session.flush()
    return PauseReason(interaction_id, span.started_at, found.code, found.label)
