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
from server.services import acw_policy, pause_policy

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


@router.get("/admin/pause-policy", response_model=PausePolicy)
def get_pause_policy(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return {
        "no_pause_teams": pause_policy.denied_team_names(session),
        "max_seconds": pause_policy.max_seconds(session),
    }


@router.put("/admin/pause-policy", response_model=PausePolicy)
def put_pause_policy(
    body: PausePolicy,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    actor = actor_of(user, request)
    # The whole policy in one unit of work: a refused part changes nothing.
    teams = pause_policy.set_denied(session, actor, body.no_pause_teams)
    return {"no_pause_teams": teams, "max_seconds": pause_policy.set_max(session, actor, body.max_seconds)}
