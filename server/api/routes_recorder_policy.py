"""The admin's recorder policy over HTTP (``GET/PUT /api/admin/recorder-policy``). Rules, role check
and audit live in ``server.services.recorder_policy``; a stored change is pushed at once to the
connected recorders (``RecorderLink.set_policy``, on the event loop)."""

from __future__ import annotations

from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, current_user, get_context, get_db
from server.services import recorder_policy

router = APIRouter(prefix="/api")


@router.get("/admin/recorder-policy")
def get_policy(
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    defaults = recorder_policy.initial(ctx.settings.screen_fps)
    return recorder_policy.read(session, actor_of(user, request), defaults).to_dict()


@router.put("/admin/recorder-policy")
def put_policy(
    request: Request,
    body: dict[str, Any],  # RecorderPolicy as a dict: fields left out take their defaults
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    defaults = recorder_policy.initial(ctx.settings.screen_fps)
    stored = recorder_policy.set_policy(session, actor_of(user, request), body, defaults).to_dict()
    session.commit()  # stored before the recorders are told
    anyio.from_thread.run_sync(ctx.coordinator.recorders.set_policy, stored)
    return stored
