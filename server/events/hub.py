"""Per-agent event channels.

Each agent has one channel with its own sequence numbers; the desktop and the recorder service
each hold a subscription on it. Queues are bounded: a subscriber that cannot keep up is
disconnected (and counted) rather than letting memory grow — on reconnect it is sent the
current state, so nothing is lost but the stale backlog.

Single-node for now (in process, on the event loop). Across nodes this becomes PostgreSQL
LISTEN/NOTIFY behind the same ``publish``/``subscribe`` interface.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tandem_protocol.events import Envelope

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256


# WebSocket close codes the socket loop sends when the hub ends a subscription.
CLOSE_TOO_SLOW = (4008, "too slow; reconnect to resync")
CLOSE_LOGGED_OUT = (4401, "logged out")


@dataclass(eq=False)
class Subscription:
    agent_id: int
    client: str
    token_id: int | None = None  # the API token the socket authenticated with
    queue: asyncio.Queue[Envelope | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False
    close: tuple[int, str] = CLOSE_TOO_SLOW  # why, once the None sentinel is queued


@dataclass
class _Channel:
    seq: int = 0
    subscribers: set[Subscription] = field(default_factory=set)


class EventHub:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._channels: dict[int, _Channel] = {}
        self._clock = clock
        self.dropped_subscribers = 0

    def subscribe(self, agent_id: int, client: str, token_id: int | None = None) -> Subscription:
        sub = Subscription(agent_id, client, token_id)
        self._channels.setdefault(agent_id, _Channel()).subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        channel = self._channels.get(sub.agent_id)
        if channel is not None:
            channel.subscribers.discard(sub)

    def close_token(self, token_id: int) -> int:
        """End every subscription made with this token (logout, revocation); the sockets close
        with 4401 "logged out". Returns how many. Call on the event loop."""
        closed = 0
        for channel in self._channels.values():
            for sub in [s for s in channel.subscribers if s.token_id == token_id]:
                channel.subscribers.discard(sub)
                sub.close = CLOSE_LOGGED_OUT
                _drain_and_close(sub)
                closed += 1
        return closed

    def current_seq(self, agent_id: int) -> int:
        channel = self._channels.get(agent_id)
        return channel.seq if channel else 0

    def connected_clients(self, agent_id: int) -> set[str]:
        channel = self._channels.get(agent_id)
        return {s.client for s in channel.subscribers} if channel else set()

    def publish(self, agent_id: int, event_type: str, data: dict[str, Any]) -> Envelope:
        channel = self._channels.setdefault(agent_id, _Channel())
        channel.seq += 1
        env = Envelope(type=event_type, data=data, seq=channel.seq, at=self._clock())
        for sub in list(channel.subscribers):
            try:
                sub.queue.put_nowait(env)
            except asyncio.QueueFull:
                # Disconnect the laggard; it resyncs from `state` when it reconnects.
                sub.overflowed = True
                channel.subscribers.discard(sub)
                self.dropped_subscribers += 1
                log.warning("agent %s %s channel overflowed; disconnecting it", agent_id, sub.client)
                _drain_and_close(sub)
        return env


def _drain_and_close(sub: Subscription) -> None:
    while not sub.queue.empty():
        sub.queue.get_nowait()
    sub.queue.put_nowait(None)  # the sentinel tells the socket loop to close
