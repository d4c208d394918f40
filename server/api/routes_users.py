"""Users and passwords over HTTP: an admin creates users and sets the password policy; anyone
changes his own password. Rules and audit: ``server.services.users``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.deps import AuthUser, current_user, get_db, require_roles
from server.services import users

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")


class NewUser(BaseModel):
    username: str
    password: str
    role: str
    full_name: str = ""
    team: str | None = Field(None, description="team the user belongs to (created if new)")
    supervises: list[str] = Field(default_factory=list, description="teams a supervisor oversees")


class PasswordChange(BaseModel):
    current_password: str
    new_password: str


@router.post("/admin/users", status_code=201)
def create_user(
    body: NewUser,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    row = users.create_user(
        session,
        actor_of(user, request),
        body.username,
        body.password,
        body.role,
        full_name=body.full_name,
        team=body.team,
        supervises=body.supervises,
    )
    return {
        "id": row.id,
        "username": row.username,
        "role": row.role,
        "full_name": row.full_name,
        "team_id": row.team_id,
    }


@router.get("/admin/password-policy")
def get_password_policy(
    _user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> Any:
    return asdict(users.read_policy(session))


@router.put("/admin/password-policy")
def put_password_policy(
    body: dict[str, Any],
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return asdict(users.set_policy(session, actor_of(user, request), body))


@router.post("/me/password", status_code=204)
def change_password(
    body: PasswordChange,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Response:
    users.change_own_password(session, actor_of(user, request), body.current_password, body.new_password)
    return Response(status_code=204)
