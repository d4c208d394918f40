"""The per-agent event channel over WebSocket (see tandem_protocol.events)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from server.api.context import ServerContext
from server.api.deps import AuthUser, extract_token, resolve_token
from server.api.routes_auth import user_info
from server.events.hub import Subscription
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


def _authenticate(ctx: ServerContext, websocket: WebSocket) -> tuple[AuthUser, dict[str, object]] | None:
    with session_scope(ctx.sessions) as s:
        user = resolve_token(s, extract_token(websocket))  # type: ignore[arg-type]
        if user is None:
            audit.record(
                s,
                action="auth.rejected",
                outcome="denied",
                target_type="endpoint",
                target_id="/api/events",
                detail="websocket: invalid, revoked or expired token",
                remote_addr=websocket.client.host if websocket.client else "",
            )
            return None
        row = s.get(models.User, user.user_id)
        assert row is not None
        return user, asdict(user_info(s, row))


@router.websocket("/api/events")
async def events(websocket: WebSocket) -> None:
    ctx: ServerContext = websocket.app.state.ctx
    client = websocket.query_params.get("client", "desktop")
    auth = await asyncio.to_thread(_authenticate, ctx, websocket)
    if auth is None:
        await websocket.close(code=4401, reason="invalid, revoked or expired token")
        return
    if client not in CLIENTS:
        await websocket.close(code=4400, reason=f"client must be one of {', '.join(CLIENTS)}")
        return
    user, agent = auth
    if user.role != "agent":
        await websocket.close(code=4403, reason="the event channel is for agents")
        return
    await websocket.accept()
    sub = ctx.hub.subscribe(user.user_id, client)
    try:
        call = ctx.coordinator.current_call(user.user_id)
        state = Envelope(
            type=EventType.STATE,
            seq=ctx.hub.current_seq(user.user_id),
            at=time.time(),
            data={"agent": agent, "call": asdict(call) if call else None},
        )
        await websocket.send_text(state.to_json())
        sender = asyncio.create_task(_forward(websocket, sub))
        try:
            await _receive(websocket, ctx, user)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    except WebSocketDisconnect:
        pass
    finally:
        ctx.hub.unsubscribe(sub)
        if websocket.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


async def _forward(websocket: WebSocket, sub: Subscription) -> None:
    while True:
        env = await sub.queue.get()
        if env is None:  # the hub dropped a subscriber that fell behind
            await websocket.close(code=4008, reason="too slow; reconnect to resync")
            return
        await websocket.send_text(env.to_json())


async def _receive(websocket: WebSocket, ctx: ServerContext, user: AuthUser) -> None:
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
            else:
                raise ValueError(f"unknown message type {env.type!r}")
        except (ValueError, KeyError, TypeError) as exc:
            log.info("bad message from %s: %s", user.username, exc)
            err = Envelope(type=EventType.ERROR, data={"message": str(exc)}, at=time.time())
            await websocket.send_text(err.to_json())
