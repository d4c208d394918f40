"""Agent states, admin-defined codes and the ACW wrap-up (issue 13 items 3 and 5; issue 14 item 6).

- ``GET/PUT /api/agent/state``: the agent's own state; he chooses Ready or Not Ready ▸ reason.
- ``GET /api/agent/codes``: what his desktop offers (active codes, whether a disposition is
  required, the ACW limit, whether he may play his own recordings).
- ``POST /api/interactions/{id}/wrapup``: disposition and notes stored with the interaction, then
  (``done``) the after-call work ends as with ``/done``.
- ``GET /api/agent-states``: supervisors' list (their teams; admin and compliance: all).
- ``GET /api/admin/codes``, ``PUT /api/admin/codes/{kind}/{code}``,
  ``PUT /api/admin/codes/disposition-required``: the admin's codes.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, get_db, require_roles
from server.api.routes_calls import _act
from server.services import acw_policy, agent_playback, agent_states, dispositions, pause_reasons
from server.store.db import session_scope

router = APIRouter(prefix="/api")
agent_only = require_roles("agent")
admin_only = require_roles("admin")
overseers = require_roles("supervisor", "evaluator", "compliance", "admin")


class StateIn(BaseModel):
    state: str
    reason_code: str | None = None


class WrapupIn(BaseModel):
    disposition: str | None = None
    notes: str = ""
    done: bool = True  # end the after-call work too (the desktop's Done)


class CodeIn(BaseModel):
    label: str
    active: bool = True


class RequiredIn(BaseModel):
    required: bool


def _status(session: Session, user: AuthUser, ctx: ServerContext) -> dict[str, Any]:
    status = agent_states.status_of(session, user.user_id, ctx.coordinator.current_call)
    return {} if status is None else asdict(status)


@router.get("/agent/state")
def get_state(
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return _status(session, user, ctx)


@router.put("/agent/state")
def put_state(
    body: StateIn,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    agent_states.set_state(session, actor_of(user, request), body.state, body.reason_code)
    return _status(session, user, ctx)


@router.get("/agent/codes")
def agent_codes(
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return {
        "reason_codes": [asdict(c) for c in dispositions.list_codes(session, "reason", active_only=True)],
        "disposition_codes": [
            asdict(c) for c in dispositions.list_codes(session, "disposition", active_only=True)
        ],
        "disposition_required": dispositions.disposition_required(session),
        # What the desktop's pause reason chooser offers, and whether it may be left empty.
        "pause_codes": [asdict(c) for c in dispositions.list_codes(session, "pause", active_only=True)],
        "pause_reason_required": pause_reasons.required_for(session, user.team_id),
        "acw_limit_seconds": acw_policy.read(session, ctx.settings.acw_limit_seconds),
        # The admin lets this agent's team play its own recordings (the desktop's My recordings).
        "may_play_own_recordings": user.team_id is not None
        and user.team_id in agent_playback.team_ids(session),
    }


@router.post("/interactions/{interaction_id}/wrapup")
async def wrapup(
    interaction_id: str,
    body: WrapupIn,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """Store the wrap-up (refused, and audited, if invalid) and then, with ``done``, end the ACW.
    A call whose ACW limit already ended it still takes its wrap-up: the answer's call is None."""
    actor = actor_of(user, request)

    def save() -> dispositions.Wrapup:
        with session_scope(ctx.sessions) as s:
            return dispositions.save_wrapup(s, actor, interaction_id, body.disposition, body.notes)

    saved = await asyncio.to_thread(save)
    call = None
    current = ctx.coordinator.current_call(user.user_id) if body.done else None
    if current is not None and current.interaction_id == interaction_id:
        call = await _act("done", interaction_id, user, ctx, client_addr(request))
    return {"wrapup": asdict(saved), "call": call}


@router.get("/agent-states")
def list_states(
    user: AuthUser = Depends(overseers),
    ctx: ServerContext = Depends(get_context),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    """The agents this user oversees, with state, since when and the Not Ready reason."""
    return [asdict(s) for s in agent_states.list_agents(session, user.viewer, ctx.coordinator.current_call)]


@router.get("/admin/codes")
def get_codes(
    _user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> Any:
    return {
        "codes": [asdict(c) for c in dispositions.list_codes(session)],
        "disposition_required": dispositions.disposition_required(session),
    }


@router.put("/admin/codes/disposition-required")
def put_required(
    body: RequiredIn,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return {
        "disposition_required": dispositions.set_disposition_required(
            session, actor_of(user, request), body.required
        )
    }


@router.put("/admin/codes/{kind}/{code}")
def put_code(
    kind: str,
    code: str,
    body: CodeIn,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return asdict(
        dispositions.set_code(session, actor_of(user, request), kind, code, body.label, body.active)
    )
