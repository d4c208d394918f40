"""Admin policies of a few values each (the ACW limit, which teams may pause). The rules and the
audit records live in ``server.services``; these routes only translate HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, get_context, get_db, require_roles
from server.services import acw_policy, pause_policy, pause_reasons

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")


class AcwLimit(BaseModel):
    seconds: float


@router.get("/admin/acw-limit", response_model=AcwLimit)
def get_acw_limit(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return {"seconds": acw_policy.read(session, ctx.settings.acw_limit_seconds)}


@router.put("/admin/acw-limit", response_model=AcwLimit)
def put_acw_limit(
    body: AcwLimit,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    seconds = acw_policy.set_limit(
        session, actor_of(user, request), body.seconds, ctx.settings.acw_limit_seconds
    )
    return {"seconds": seconds}


class PausePolicy(BaseModel):
    no_pause_teams: list[str]  # team names whose agents may not pause; [] = every team may
    max_seconds: float | None = None  # a pause longer than this is resumed by the server; None: no limit
    # Whether the agent must give a pause reason (a code of kind "pause"): the default and the teams
    # with their own rule. Left out of a PUT: unchanged.
    reason_required: bool | None = None
    reason_required_teams: dict[str, bool] | None = None


def _pause_answer(session: Session) -> dict[str, Any]:
    rule = pause_reasons.rule(session)
    return {
        "no_pause_teams": pause_policy.denied_team_names(session),
        "max_seconds": pause_policy.max_seconds(session),
        "reason_required": rule.default,
        "reason_required_teams": rule.teams,
    }


@router.get("/admin/pause-policy", response_model=PausePolicy)
def get_pause_policy(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return _pause_answer(session)


@router.put("/admin/pause-policy", response_model=PausePolicy)
def put_pause_policy(
    body: PausePolicy,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    actor = actor_of(user, request)
    # The whole policy in one unit of work: a refused part changes nothing.
    pause_policy.set_denied(session, actor, body.no_pause_teams)
    pause_policy.set_max(session, actor, body.max_seconds)
    if body.reason_required is not None or body.reason_required_teams is not None:
        now = pause_reasons.rule(session)
        default = now.default if body.reason_required is None else body.reason_required
        teams = now.teams if body.reason_required_teams is None else body.reason_required_teams
        pause_reasons.set_rule(session, actor, default, teams)
    return _pause_answer(session)
