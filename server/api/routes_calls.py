"""The agent's call actions (desktop). The screen upload is in routes_screen_upload."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import OperationalError

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, require_roles
from server.api.errors import ApiError
from server.errors import CallActionError
from server.services import pause_policy
from server.store import audit
from server.store.db import session_scope

router = APIRouter(prefix="/api")
PAUSE_POLICY_READ_SECONDS = 0.5  # well inside the pause's own time bound (test_db_locked)
log = logging.getLogger(__name__)
agent_only = require_roles("agent")


@router.get("/agent/call")
def agent_call(user: AuthUser = Depends(agent_only), ctx: ServerContext = Depends(get_context)) -> Any:
    info = ctx.coordinator.current_call(user.user_id)
    return None if info is None else asdict(info)


async def _act(action: str, interaction_id: str, user: AuthUser, ctx: ServerContext, addr: str) -> Any:
    coord = ctx.coordinator
    try:
        if action == "pause":
            if not await _may_pause_now(ctx, user.team_id):
                raise CallActionError(
                    403, "pause_not_allowed", "your team may not pause recordings (the admin's pause policy)"
                )
            info = await coord.pause(interaction_id, user.user_id, user.username)
        elif action == "resume":
            info = await coord.resume(interaction_id, user.user_id, user.username)
        elif action == "stop":
            info = await coord.stop(interaction_id, user.user_id, user.username)
        else:
            info = await coord.done(interaction_id, user.user_id)
    except CallActionError as exc:
        # Refused (another agent's call, an unknown one, the wrong phase): audited like the rest.
        await coord.backlog.write(
            f"audit call.{action} for {interaction_id}",
            functools.partial(
                _audit_action, ctx, user, action, interaction_id, addr, "denied", f"{exc.code}: {exc}"
            ),
        )
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    # Done is done (a pause: voice and screen paused): a busy database queues the audit record
    # (retried until written) rather than turn the agent's answer into a 500.
    await coord.backlog.write(
        f"audit call.{action} for {interaction_id}",
        functools.partial(_audit_action, ctx, user, action, interaction_id, addr),
    )
    return asdict(info)


def _may_pause(ctx: ServerContext, team_id: int | None) -> bool:
    with session_scope(ctx.sessions) as s:
        return pause_policy.may_pause(s, team_id)


async def _may_pause_now(ctx: ServerContext, team_id: int | None) -> bool:
    """The admin's pause policy, read with a short bound. A database that cannot answer (locked,
    busy) lets the pause through: the pause keeps a card number out of the recording, and
    refusing it because of a slow database would record what the agent meant to protect."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(_may_pause, ctx, team_id), PAUSE_POLICY_READ_SECONDS)
    except (TimeoutError, OperationalError) as exc:
        log.warning("pause policy unreadable (%s): the pause goes ahead", type(exc).__name__)
        return True


def _audit_action(
    ctx: ServerContext,
    user: AuthUser,
    action: str,
    interaction_id: str,
    addr: str,
    outcome: str = "allowed",
    detail: str = "",
) -> None:
    with session_scope(ctx.sessions) as s:
        audit.record(
            s,
            action=f"call.{action}",
            outcome=outcome,
            user_id=user.user_id,
            username=user.username,
            target_type="interaction",
            target_id=interaction_id,
            detail=detail,
            remote_addr=addr,
        )


@router.post("/interactions/{interaction_id}/pause")
async def pause(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return await _act("pause", interaction_id, user, ctx, client_addr(request))


@router.post("/interactions/{interaction_id}/resume")
async def resume(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return await _act("resume", interaction_id, user, ctx, client_addr(request))


@router.post("/interactions/{interaction_id}/stop")
async def stop(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """No more recording (voice and screen) for the rest of this call."""
    return await _act("stop", interaction_id, user, ctx, client_addr(request))


@router.post("/interactions/{interaction_id}/done")
async def done(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return await _act("done", interaction_id, user, ctx, client_addr(request))
