"""The admin's people page over HTTP: list and change users, list, create and rename teams.
Rules and audit: ``server.services.user_admin`` and ``server.services.teams`` (the same as
``tandem-server user-update`` / ``team-create`` / ``team-rename``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.deps import AuthUser, get_db, require_roles
from server.services import teams, user_admin

router = APIRouter(prefix="/api/admin")
admin_only = require_roles("admin")


class UserPatch(BaseModel):
    """Only the fields given change."""

    full_name: str | None = None
    role: str | None = None
    team: str | None = Field(None, description='an existing team\'s name; "" for no team')
    supervises: list[str] | None = Field(
        None, description="existing teams (supervisor, evaluator, compliance)"
    )
    active: bool | None = Field(None, description="false: cannot log in, tokens revoked, DN released")
    full_time_dn: str | None = Field(None, description='agents only; "" clears it')


class TeamName(BaseModel):
    name: str


@router.get("/users")
def list_users(
    role: str | None = None,
    team: str | None = None,
    q: str | None = Query(None, description="part of the username or full name"),
    active: bool | None = None,
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return [asdict(u) for u in user_admin.list_users(session, role=role, team=team, text=q, active=active)]


@router.patch("/users/{username}")
def update_user(
    username: str,
    body: UserPatch,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    changes = user_admin.UserChanges(**body.model_dump(exclude_unset=True))
    return asdict(user_admin.update_user(session, actor_of(user, request), username, changes))


@router.get("/teams")
def list_teams(
    _user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> Any:
    return [asdict(t) for t in teams.list_teams(session)]


@router.post("/teams", status_code=201)
def create_team(
    body: TeamName,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return {"name": teams.create_team(session, actor_of(user, request), body.name).name}


@router.patch("/teams/{name}")
def rename_team(
    name: str,
    body: TeamName,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return {"name": teams.rename_team(session, actor_of(user, request), name, body.name).name}
