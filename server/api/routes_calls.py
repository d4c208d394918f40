"""The agent's call actions (desktop). The screen upload is in routes_screen_upload."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, require_roles
from server.api.errors import ApiError
from server.errors import CallActionError, DomainError
from server.services import pause_policy, pause_reasons
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


class PauseReasonIn(BaseModel):
    reason: str = ""  # a code of kind "pause" (GET /api/agent/codes: pause_codes)


@router.post("/interactions/{interaction_id}/pause")
async def pause(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """The secure pause, with an optional JSON body ``{"reason": "<pause code>"}``. The body is
    read only after the pause is in effect: no reason, a wrong one, a malformed body or a busy
    database never holds the pause up (a card number read out meanwhile would be recorded). The
    answer says whether the reason was taken (``pause_reason``) or why not
    (``pause_reason_error``; send it again to ``/pause-reason``)."""
    answer: dict[str, Any] = await _act("pause", interaction_id, user, ctx, client_addr(request))
    reason = await _body_reason(request)
    if reason is None:
        return answer
    busy = {
        "code": "database_busy",
        "message": "paused; the reason was not saved (the database is busy): send it again",
    }
    if ctx.coordinator.backlog.pending:  # the pause's own span may still wait in the queue
        answer["pause_reason_error"] = busy
        return answer
    try:
        saved = await asyncio.to_thread(_set_reason, ctx, user, request, interaction_id, reason)
        answer["pause_reason"] = asdict(saved)
    except DomainError as exc:
        answer["pause_reason_error"] = {"code": exc.code, "message": f"paused; {exc.message}"}
    except SQLAlchemyError as exc:
        log.warning("pause reason not saved (%s): the pause stands", type(exc).__name__)
        answer["pause_reason_error"] = busy
    return answer


async def _body_reason(request: Request) -> str | None:
    """The pause body's reason; None without one. Anything malformed is a reason-less pause."""
    try:
        raw = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    reason = raw.get("reason") if isinstance(raw, dict) else None
    return reason.strip() or None if isinstance(reason, str) else None


def _set_reason(
    ctx: ServerContext, user: AuthUser, request: Request, interaction_id: str, code: str
) -> pause_reasons.PauseReason:
    with session_scope(ctx.sessions) as s:
        return pause_reasons.set_reason(s, actor_of(user, request), user.team_id, interaction_id, code)


@router.post("/interactions/{interaction_id}/pause-reason")
async def pause_reason(
    interaction_id: str,
    body: PauseReasonIn,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """The reason for the agent's latest pause of this call, given after the pause (the hotkey
    and the tray pause at once and ask afterwards). Refused, and audited, when invalid."""
    saved = await asyncio.to_thread(_set_reason, ctx, user, request, interaction_id, body.reason)
    return asdict(saved)


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
