"""An agent's recording settings, set by an admin: the full-time recording DN (Genesys GIR's
"record this DN always" — calls on it are recorded even while no desktop is logged in)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.api.deps import AuthUser, client_addr, get_db, require_roles
from server.api.errors import ApiError
from server.store import audit, models

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")
_DN = re.compile(r"^\+?[0-9A-Za-z*#._-]{1,64}$")


class AgentRecording(BaseModel):
    full_time_dn: str | None = Field(None, description="DN recorded full-time for this agent; null: none")


@router.get("/admin/agents/{username}/recording")
def get_agent_recording(
    username: str, _user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> Any:
    agent = _agent(session, username)
    return {"username": agent.username, "full_time_dn": agent.full_time_dn}


@router.put("/admin/agents/{username}/recording")
def put_agent_recording(
    username: str,
    body: AgentRecording,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    agent = _agent(session, username)
    dn = body.full_time_dn.strip() if body.full_time_dn else None
    if dn is not None and not _DN.match(dn):
        raise ApiError(422, "invalid_dn", "a DN is 1-64 characters: digits, letters, + * # . _ -")
    if dn is not None:
        other = session.execute(
            select(models.User).where(models.User.full_time_dn == dn, models.User.id != agent.id)
        ).scalar_one_or_none()
        if other is not None:
            raise ApiError(409, "dn_taken", f"DN {dn} is already recorded full-time for {other.username}")
    agent.full_time_dn = dn
    audit.record(
        session,
        action="policy.full_time_dn",
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        target_type="user",
        target_id=agent.username,
        detail=f"full_time_dn={dn}",
        remote_addr=client_addr(request),
    )
    return {"username": agent.username, "full_time_dn": dn}


def _agent(session: Session, username: str) -> models.User:
    agent = session.execute(select(models.User).where(models.User.username == username)).scalar_one_or_none()
    if agent is None or agent.role != "agent":
        raise ApiError(404, "unknown_agent", f"no agent named {username!r}")
    return agent
