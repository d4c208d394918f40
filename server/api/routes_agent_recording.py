"""An agent's recording settings, set by an admin: the full-time recording DN (Genesys GIR's
"record this DN always" — calls on it are recorded even while no desktop is logged in). The
rules are ``server.services.full_time_dn``'s, shared with ``tandem-server set-full-time-dn``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.deps import AuthUser, get_db, require_roles
from server.services import full_time_dn

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")


class AgentRecording(BaseModel):
    full_time_dn: str | None = Field(None, description="DN recorded full-time for this agent; null: none")


@router.get("/admin/agents/{username}/recording")
def get_agent_recording(
    username: str, _user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> Any:
    return {"username": username, "full_time_dn": full_time_dn.get(session, username)}


@router.put("/admin/agents/{username}/recording")
def put_agent_recording(
    username: str,
    body: AgentRecording,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    dn = full_time_dn.set_dn(session, actor_of(user, request), username, body.full_time_dn)
    return {"username": username, "full_time_dn": dn}
