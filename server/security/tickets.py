"""One-time WebSocket tickets: for a client that cannot set an ``Authorization`` header on a
WebSocket handshake and has no session cookie. ``POST /api/events/ticket`` (itself
authenticated) trades the caller's token for a ticket that opens one event-channel connection
within ``TTL_SECONDS``. The ticket stands for the token's id, never the token itself, so a
ticket that leaks into a log is worthless a moment later, and logging out the token ends
what the ticket opened.

Kept in memory (single node, like the event hub): a restart only costs an outstanding ticket.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

TTL_SECONDS = 30.0
MAX_OUTSTANDING = 10_000


class TicketBook:
    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_outstanding: int = MAX_OUTSTANDING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_outstanding
        self._clock = clock
        self._tickets: OrderedDict[str, tuple[int, float]] = OrderedDict()  # ticket -> token id, expiry
        self._lock = threading.Lock()  # issued from the thread pool, redeemed on the event loop

    def issue(self, token_id: int) -> str:
        ticket = "tkt_" + secrets.token_urlsafe(24)
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._tickets[ticket] = (token_id, now + self._ttl)
            while len(self._tickets) > self._max:  # oldest first: they are the nearest to expiry
                self._tickets.popitem(last=False)
        return ticket

    def redeem(self, ticket: str) -> int | None:
        """The token id the ticket stands for, once; None if unknown, used or expired."""
        with self._lock:
            entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def outstanding(self) -> int:
        with self._lock:
            return len(self._tickets)

    def _expire(self, now: float) -> None:
        while self._tickets:
            ticket, (_, expires) = next(iter(self._tickets.items()))
            if expires > now:
                return
            del self._tickets[ticket]
