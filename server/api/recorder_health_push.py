"""Telling the agent's desktop about his recorder (``recorder.health``), from the event channel's
loop. The data is read off the loop (``asyncio.to_thread``); a database too busy to answer skips
one event — the next heartbeat brings the desktop up to date, and the desktop turns a silent
recorder into a warning on its own clock."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from server.api.context import ServerContext
from server.services import recorder_health_event
from server.store.db import session_scope
from tandem_protocol.events import EventType

log = logging.getLogger(__name__)


async def health_data(ctx: ServerContext, user_id: int) -> dict[str, Any] | None:
    connected = ctx.coordinator.recorders.connected(user_id)

    def read() -> dict[str, Any]:
        with session_scope(ctx.sessions) as s:
            return recorder_health_event.summary(s, user_id, connected, ctx.settings.screen_fps, time.time())

    try:
        return await asyncio.to_thread(read)
    except SQLAlchemyError as exc:
        log.warning("recorder health of agent %s not read: %s", user_id, str(exc).splitlines()[0])
        return None


async def publish(ctx: ServerContext, user_id: int) -> None:
    """To every subscriber of the agent's channel (the recorder ignores it)."""
    data = await health_data(ctx, user_id)
    if data is not None:
        ctx.hub.publish(user_id, EventType.RECORDER_HEALTH, data)
