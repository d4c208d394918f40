"""Why an agent paused a recording (issue 13 item 2, issue 14 item 2): the admin's rule whether a
reason is required (a default and per-team exceptions) and the agent's reason stored on his pause
span, where the supervisor's timeline shows it beside who paused.

The reasons are admin codes of kind ``pause`` (``server.services.dispositions``). The rule never
holds a pause up: a secure pause keeps a card number out of the recording, so the server pauses
whatever reason came (or none) and takes the reason on the same request or afterwards, on the
agent's latest pause of that call (``set_reason``). "Required" refuses a reason-less *reason*
request and makes the desktop ask until one is given; the timeline shows a span without one as
"no reason given". One use case for the web page, the API and the CLI; audited with before/after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
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
