"""The per-agent event channel over WebSocket (see tandem_protocol.events)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketState

from server.api import recorder_health_push
from server.api.context import ServerContext
from server.api.csrf import cross_site_refusal
from server.api.deps import (
    SESSION_COOKIE,
    AuthUser,
    bearer_token,
    current_user,
    extract_token,
    resolve_token,
    resolve_token_id,
)
from server.api.errors import error_response
from server.api.routes_auth import user_info
from server.api.routes_fleet import recorder_heartbeat
from server.events.hub import Subscription
from server.security.tickets import TTL_SECONDS, TicketBook
from server.security.tokens import RECORDER_SCOPE, channel_scope_refusal
from server.services import devices
from server.store import audit, models
from server.store.db import session_scope
from tandem_protocol.events import (
    ClientMessageType,
    Envelope,
    EventType,
    ScreenStatus,
    TimePong,
    parse_envelope,
)

router = APIRouter()
log = logging.getLogger(__name__)
CLIENTS = ("desktop", "recorder")


TOKEN_IN_QUERY = (
    "?token= is not accepted (query strings end up in logs): send Authorization: Bearer, "
    "the session cookie, or a one-time ticket from POST /api/events/ticket as ?ticket="
)


def _authenticate(ctx: ServerContext, websocket: WebSocket) -> tuple[AuthUser, dict[str, object]] | str:
    """The user and his agent info, or why the handshake is refused (audited)."""
    with session_scope(ctx.sessions) as s:
        user, reason = _credentials(s, websocket)
        if user is None:
            audit.record(
                s,
                action="auth.rejected",
                outcome="denied",
                target_type="endpoint",
                target_id="/api/events",
                detail=f"websocket: {reason}",
                remote_addr=websocket.client.host if websocket.client else "",
            )
            return reason
        row = s.get(models.User, user.user_id)
        assert row is not None
        return user, asdict(user_info(s, row))


def _credentials(s: Session, websocket: WebSocket) -> tuple[AuthUser | None, str]:
    """Authorization header (desktop, recorder), session cookie (browser) or one-time ticket."""
    if "token" in websocket.query_params:
        return None, TOKEN_IN_QUERY
    ticket = websocket.query_params.get("ticket")
    if ticket is not None:
        book: TicketBook = websocket.app.state.ws_tickets
        token_id = book.redeem(ticket)
        user = resolve_token_id(s, token_id) if token_id is not None else None
        return user, "unknown, used or expired ticket"
    if bearer_token(websocket) is None and websocket.cookies.get(SESSION_COOKIE):
        # A cookie rides along with any page's request: the same origin check as for CSRF
        # keeps another site's page from opening the agent's channel (cross-site hijacking).
        refusal = cross_site_refusal(websocket.headers, ctx_public_url(websocket))
        if refusal is not None:
            return None, refusal
    return resolve_token(s, extract_token(websocket)), "invalid, revoked or expired token"


def _audit_scope_refusal(ctx: ServerContext, websocket: WebSocket, user: AuthUser, reason: str) -> None:
    with session_scope(ctx.sessions) as s:
        audit.record(
            s,
            action="auth.rejected",
            outcome="denied",
            user_id=user.user_id,
            username=user.username,
            target_type="endpoint",
            target_id="/api/events",
            detail=f"websocket: {user.client} token: {reason}",
            remote_addr=websocket.client.host if websocket.client else "",
        )


def ctx_public_url(websocket: WebSocket) -> str | None:
    ctx: ServerContext = websocket.app.state.ctx
    return ctx.settings.public_url


@router.post("/api/events/ticket")
def ticket(request: Request, user: AuthUser = Depends(current_user)) -> dict[str, object]:
    """A one-time ticket for ``/api/events?ticket=``: valid once, for ``TTL_SECONDS``."""
    book: TicketBook = request.app.state.ws_tickets
    return {"ticket": book.issue(user.token_id), "expires_in": TTL_SECONDS}


@router.websocket("/api/events")
async def events(websocket: WebSocket) -> None:
    ctx: ServerContext = websocket.app.state.ctx
    client = websocket.query_params.get("client", "desktop")
    auth = await asyncio.to_thread(_authenticate, ctx, websocket)
    if isinstance(auth, str):
        await _refuse_credentials(websocket, auth)
        return
    if client not in CLIENTS:
        await websocket.close(code=4400, reason=f"client must be one of {', '.join(CLIENTS)}")
        return
    user, agent = auth
    if user.role != "agent":
        await websocket.close(code=4403, reason="the event channel is for agents")
        return
    scope_refusal = channel_scope_refusal(client, user.client)
    if scope_refusal is not None:  # e.g. a web login posing as the recorder
        await asyncio.to_thread(_audit_scope_refusal, ctx, websocket, user, scope_refusal)
        await websocket.close(code=4403, reason=scope_refusal)
        return
    bound_through = None
    if client == "recorder":
        bound_through, refusal = await asyncio.to_thread(_device_refusal, ctx, websocket, user)
        if refusal is not None:  # a device not (or no longer) bound to this agent's login
            await _refuse_credentials(websocket, refusal)  # 401: the recorder retries slowly
            return
    await websocket.accept()
    # A device's channel is subscribed under the agent's login token: the agent's logout
    # (hub.close_token) ends it too, so his calls elsewhere never reach this PC afterwards.
    sub = ctx.hub.subscribe(user.user_id, client, bound_through or user.token_id)
    if bound_through is not None:
        _device_subs.setdefault((id(ctx.hub), user.token_id), set()).add(sub)
    try:
        if client == "recorder":  # before the state is built: a missing screen is requested again
            await ctx.coordinator.recorders.recorder_connected(user.user_id)
        call = ctx.coordinator.current_call(user.user_id)
        data: dict[str, object] = {"agent": agent, "call": asdict(call) if call else None}
        if client == "desktop":  # the recorder's health panel filled at once, not a heartbeat later
            data["recorder"] = await recorder_health_push.health_data(ctx, user.user_id)
        state = Envelope(
            type=EventType.STATE, seq=ctx.hub.current_seq(user.user_id), at=time.time(), data=data
        )
        await websocket.send_text(state.to_json())
        if client == "recorder":  # its desktop shows "connected" at once
            await recorder_health_push.publish(ctx, user.user_id)
        sender = asyncio.create_task(_forward(websocket, sub))
        try:
            await _receive(websocket, ctx, user, client)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    except WebSocketDisconnect:
        pass
    finally:
        ctx.hub.unsubscribe(sub)
        if bound_through is not None:
            key = (id(ctx.hub), user.token_id)
            _device_subs.get(key, set()).discard(sub)
            if not _device_subs.get(key, True):
                del _device_subs[key]
        if client == "recorder":
            ctx.coordinator.recorders.recorder_disconnected(user.user_id)
            # The desktop sees "not connected" at once, not three heartbeat intervals later.
            with contextlib.suppress(Exception):
                await recorder_health_push.publish(ctx, user.user_id)
        if websocket.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


# The live channels of paired devices, by their recorder token: unpairing or revoking a device
# ends its channel (the agent's logout ends it through the hub's close_token).
# Keyed by (the app's hub, token id): token ids of two servers in one process (tests) may match.
_device_subs: dict[tuple[int, int], set[Subscription]] = {}  # a reconnect may overlap the old socket


def _device_refusal(
    ctx: ServerContext, websocket: WebSocket, user: AuthUser
) -> tuple[int | None, str | None]:
    """For a recorder: the agent login its device is bound through (None for an old per-agent
    recorder token) and why it is refused (audited), or None."""
    if user.client != RECORDER_SCOPE:
        return None, None
    with session_scope(ctx.sessions) as s:
        bound_through, refusal = devices.channel_refusal(s, user.token_id)
        if refusal is not None:
            audit.record(
                s,
                action="auth.rejected",
                outcome="denied",
                user_id=user.user_id,
                username=user.username,
                target_type="endpoint",
                target_id="/api/events",
                detail=f"websocket: device recorder: {refusal}",
                remote_addr=websocket.client.host if websocket.client else "",
            )
        return bound_through, refusal


def end_device_channels(ctx: ServerContext, recorder_token_ids: list[int], reason: str) -> None:
    """Close the channels of these device recorder tokens with 4401 (call on the event loop)."""
    subs = [sub for t in recorder_token_ids for sub in _device_subs.pop((id(ctx.hub), t), set())]
    for sub in subs:
        ctx.hub.unsubscribe(sub)
        sub.close = (4401, reason[:120])
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)  # the sentinel: the socket loop closes


async def _refuse_credentials(websocket: WebSocket, reason: str) -> None:
    """HTTP 401 with the reason in the body where the server can send one (uvicorn can): a
    close before the handshake would reach the client as a bare 403, its reason lost."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(401, "invalid_token", reason))
    else:
        await websocket.close(code=4401, reason=reason)


async def _forward(websocket: WebSocket, sub: Subscription) -> None:
    while True:
        env = await sub.queue.get()
        if env is None:  # the hub ended it: fell behind (4008) or logged out (4401)
            code, reason = sub.close
            await websocket.close(code=code, reason=reason)
            return
        await websocket.send_text(env.to_json())


async def _receive(websocket: WebSocket, ctx: ServerContext, user: AuthUser, client: str) -> None:
    while True:
        text = await websocket.receive_text()
        t1 = time.time()
        try:
            env = parse_envelope(text)
            if env.type == ClientMessageType.TIME_PING:
                pong = TimePong(t0=float(env.data["t0"]), t1=t1, t2=time.time())
                reply = Envelope(type=EventType.TIME_PONG, data=asdict(pong), at=pong.t2)
                await websocket.send_text(reply.to_json())
            elif env.type == ClientMessageType.SCREEN_STATUS:
                await ctx.coordinator.screen_status(user.user_id, ScreenStatus.from_dict(env.data))
            elif env.type == ClientMessageType.SCREEN_AUTO_PAUSE:
                await ctx.coordinator.screen_auto_pause(user.user_id, user.username, env.data)
            elif env.type == ClientMessageType.RECORDER_HEARTBEAT and client == "recorder":
                await recorder_heartbeat(ctx, user, env.data, t1)
            else:
                raise ValueError(f"unknown message type {env.type!r}")
        except (ValueError, KeyError, TypeError) as exc:
            log.info("bad message from %s: %s", user.username, exc)
            err = Envelope(type=EventType.ERROR, data={"message": str(exc)}, at=time.time())
            await websocket.send_text(err.to_json())
