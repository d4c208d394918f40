"""Login throttling: failed attempts counted per username and per source address, with a
back-off that doubles after a few free failures.

A throttled attempt is refused before any password hashing, so guessing costs the guesser a
wait and the server nothing. The two counters catch different attacks: per username, one
account guessed from many addresses; per source, many accounts guessed from one address.
A source gets more free failures than a user because a whole contact-centre floor can sit
behind one NAT address, and one agent's typos must not lock out the floor.

Memory is bounded: each table keeps at most ``max_entries`` keys and forgets the least
recently failed one first (an attacker cycling names evicts other strangers, not the
back-off of the key he is hammering, which he keeps fresh). A key's failures are forgotten
after ``forget_after`` seconds without a failure. The clock is injected for the tests.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tandem_protocol.backoff import backoff_delay


@dataclass
class _Entry:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


class _Table:
    """Failures per key, least recently failed first."""

    def __init__(self, free: int, base: float, cap: float, forget_after: float, max_entries: int) -> None:
        self.free, self.base, self.cap = free, base, cap
        self.forget_after, self.max_entries = forget_after, max_entries
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self.entries.get(key)
        if entry is not None and now - entry.last_failure >= self.forget_after:
            del self.entries[key]
            return None
        return entry

    def wait(self, key: str, now: float) -> float:
        entry = self._live(key, now)
        return max(0.0, entry.blocked_until - now) if entry else 0.0

    def fail(self, key: str, now: float) -> None:
        entry = self._live(key, now) or _Entry()
        entry.failures += 1
        entry.last_failure = now
        beyond = entry.failures - self.free
        if beyond > 0:  # 1 s, 2 s, 4 s, ... up to the cap
            entry.blocked_until = now + backoff_delay(beyond - 1, base=self.base, cap=self.cap, jitter=0.0)
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def reset(self, key: str) -> None:
        self.entries.pop(key, None)


class LoginThrottle:
    def __init__(
        self,
        *,
        user_free_failures: int = 5,
        source_free_failures: int = 20,
        base_delay: float = 1.0,
        max_delay: float = 15 * 60.0,
        forget_after: float = 60 * 60.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = _Table(user_free_failures, base_delay, max_delay, forget_after, max_entries)
        self._sources = _Table(source_free_failures, base_delay, max_delay, forget_after, max_entries)
        self._clock = clock
        self._lock = threading.Lock()  # logins run in the server's thread pool

    def retry_after(self, username: str, source: str) -> float:
        """Seconds until this user may try again from this source; 0 when he may now."""
        now = self._clock()
        with self._lock:
            return max(self._users.wait(_user_key(username), now), self._sources.wait(source, now))

    def failed(self, username: str, source: str) -> None:
        now = self._clock()
        with self._lock:
            self._users.fail(_user_key(username), now)
            self._sources.fail(source, now)

    def succeeded(self, username: str) -> None:
        """The user's counter starts again; the source's does not (one valid account must not
        buy a guesser a fresh allowance for every other name)."""
        with self._lock:
            self._users.reset(_user_key(username))

    def tracked(self) -> tuple[int, int]:
        """How many usernames and sources are remembered (for the memory-bound test)."""
        with self._lock:
            return len(self._users.entries), len(self._sources.entries)


def _user_key(username: str) -> str:
    # Usernames are matched exactly at login; the key is capped so a megabyte name costs nothing.
    return username[:200]
