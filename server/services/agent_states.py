"""Agent states (issue 13 item 3): Logged out, Ready, Not Ready (with an admin-defined reason
code), On call, ACW.

The agent chooses only Ready or Not Ready ▸ reason; that choice is stored (``agent_state_changes``)
and audited. The other states are facts the server already has: logged out = no live desktop DN
binding; On call and ACW = the live call the coordinator shows on his desktop. The effective
state is derived here by one pure function (``effective``), used for the agent's own desktop and
for the supervisors' list alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import DomainError, InvalidInput
from server.policy.access import Viewer, may_see_interaction
from server.services import dispositions
from server.services.actor import Actor, record, refuse
from server.store import models
from tandem_protocol.events import CallInfo, Phase

ACTION = "agent.state"
CHOSEN = ("ready", "not_ready")  # what an agent may choose; the rest is derived


@dataclass(frozen=True, slots=True)
class Choice:
    """The agent's last own choice since his login."""

    state: str  # ready, not_ready
    reason_code: str | None
    at: float


@dataclass(frozen=True, slots=True)
class AgentStatus:
    user_id: int
    username: str
    full_name: str
    team: str | None
    state: str  # logged_out, ready, not_ready, on_call, acw
    since: float | None
    reason_code: str | None = None
    reason_label: str = ""
    dn: str | None = None
    interaction_id: str | None = None


def effective(
    logged_in_at: float | None, choice: Choice | None, call: CallInfo | None
) -> tuple[str, float | None, str | None]:
    """(state, since, reason code) from the facts. Pure.

    A call outranks the choice (an agent Not Ready who still takes a call is On call); a choice
    made before the current login is forgotten (a new login starts Ready, as the desktop
    always did)."""
    if logged_in_at is None:
        return "logged_out", None, None
    if call is not None and call.phase in (Phase.RINGING, Phase.ACTIVE):
        return "on_call", call.answered_at or call.started_at, None
    if call is not None and call.phase is Phase.ACW:
        return "acw", call.ended_at or call.started_at, None
    if choice is None or choice.at < logged_in_at:
        return "ready", logged_in_at, None
    return choice.state, choice.at, choice.reason_code


def last_choice(session: Session, user_id: int) -> Choice | None:
    row = session.execute(
        select(models.AgentStateChange)
        .where(models.AgentStateChange.user_id == user_id)
        .order_by(models.AgentStateChange.at.desc(), models.AgentStateChange.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if row is None else Choice(row.state, row.reason_code, row.at)


def _logins(session: Session, now: float) -> dict[int, tuple[float, str]]:
    """user id -> (bound at, DN) of every live desktop login."""
    rows = session.execute(
        select(models.DnBinding.user_id, models.DnBinding.bound_at, models.DnBinding.dn)
        .join(models.ApiToken, models.ApiToken.id == models.DnBinding.token_id)
        .where(
            models.DnBinding.released_at.is_(None),
            models.ApiToken.revoked_at.is_(None),
            models.ApiToken.expires_at > now,
        )
    ).all()
    return {user_id: (bound_at, dn) for user_id, bound_at, dn in rows}


def set_state(session: Session, actor: Actor, state: str, reason_code: str | None) -> Choice:
    """The agent (``actor``) chooses Ready, or Not Ready with an active reason code."""
    reason_code = (reason_code or "").strip() or None
    before = last_choice(session, actor.user_id) if actor.user_id is not None else None
    try:
        if actor.user_id is None or actor.role != "agent":
            raise InvalidInput("not_an_agent", "only an agent has an agent state")
        if state not in CHOSEN:
            raise InvalidInput("invalid_state", f"an agent chooses ready or not_ready, not {state!r}")
        if state == "ready" and reason_code is not None:
            raise InvalidInput("reason_not_allowed", "Ready takes no reason code")
        if state == "not_ready":
            if reason_code is None:
                raise InvalidInput("reason_required", "Not Ready needs a reason code")
            code = dispositions.find_code(session, "reason", reason_code)
            if code is None or not code.active:
                raise InvalidInput("unknown_reason", f"{reason_code!r} is not a reason code in use")
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=ACTION, target_type="user", target_id=str(actor.user_id)
        ) from None
    assert actor.user_id is not None
    choice = Choice(state, reason_code, time.time())
    session.add(
        models.AgentStateChange(user_id=actor.user_id, state=state, reason_code=reason_code, at=choice.at)
    )
    record(
        session,
        actor,
        action=ACTION,
        target_type="user",
        target_id=str(actor.user_id),
        detail=json.dumps(
            {
                "before": None if before is None else {"state": before.state, "reason": before.reason_code},
                "after": {"state": state, "reason": reason_code},
            }
        ),
    )
    session.flush()
    return choice


def list_agents(
    session: Session, viewer: Viewer, live_call: Callable[[int], CallInfo | None]
) -> list[AgentStatus]:
    """Every agent ``viewer`` may see (supervisors: their teams'), with state, since and reason."""
    now = time.time()
    logins = _logins(session, now)
    labels = {c.code: c.label for c in dispositions.list_codes(session, "reason")}
    agents = session.execute(
        select(models.User, models.Team.name)
        .outerjoin(models.Team, models.Team.id == models.User.team_id)
        .where(models.User.role == "agent", models.User.active.is_(True))
        .order_by(models.User.username)
    ).all()
    out = []
    for user, team in agents:
        if not may_see_interaction(viewer, user.id, user.team_id):
            continue
        login = logins.get(user.id)
        call = live_call(user.id) if login is not None else None
        state, since, reason = effective(
            None if login is None else login[0], last_choice(session, user.id), call
        )
        out.append(
            AgentStatus(
                user.id,
                user.username,
                user.full_name,
                team,
                state,
                since,
                reason,
                labels.get(reason or "", ""),
                None if login is None else login[1],
                None if call is None else call.interaction_id,
            )
        )
    return out


def status_of(
    session: Session, user_id: int, live_call: Callable[[int], CallInfo | None]
) -> AgentStatus | None:
    user = session.get(models.User, user_id)
    if user is None:
        return None
    viewer = Viewer(user_id, "agent", frozenset())
    found = [s for s in list_agents(session, viewer, live_call) if s.user_id == user_id]
    return found[0] if found else None
