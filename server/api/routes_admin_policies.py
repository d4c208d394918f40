"""Admin policies that are one value each (the ACW limit). The rules and the audit records live
in ``server.services``; these routes only translate HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, get_context, get_db, require_roles
from server.services import acw_policy

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
