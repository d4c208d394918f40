"""Password hashing (argon2id). Unknown users cost the same time as wrong passwords, so login
timing does not tell which usernames exist.

Each argon2 computation takes 64 MiB and several threads for tens of milliseconds; unbounded,
32 parallel wrong-password logins pushed the server to 1.1 GiB and its SIP answers from
1.6 ms to 306 ms. So at most ``MAX_CONCURRENT`` run at once, at most ``MAX_WAITING`` more wait
for a turn, and anything beyond is refused at once with ``PasswordCheckBusy`` (the login
answers 503 with Retry-After) instead of queueing without end."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.errors import PasswordCheckBusy

MAX_CONCURRENT = 2
MAX_WAITING = 8
WAIT_SECONDS = 10.0  # a waiter that still has no turn after this long is refused too

_hasher = PasswordHasher()
T = TypeVar("T")


class Gate:
    """A semaphore with a bounded waiting room."""

    def __init__(self, concurrent: int, waiting: int, wait_seconds: float) -> None:
        self._slots = threading.BoundedSemaphore(concurrent)
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._limit = concurrent + waiting
        self._wait_seconds = wait_seconds

    @contextmanager
    def turn(self, refuse_when_full: bool = True) -> Iterator[None]:
        """One turn; ``refuse_when_full=False`` waits however long it takes (admin work)."""
        with self._lock:
            if refuse_when_full and self._admitted >= self._limit:
                raise PasswordCheckBusy("too many password checks in progress")
            self._admitted += 1
        try:
            if not self._slots.acquire(timeout=self._wait_seconds if refuse_when_full else None):
                raise PasswordCheckBusy("no turn for a password check in time")
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._admitted -= 1


_gate = Gate(MAX_CONCURRENT, MAX_WAITING, WAIT_SECONDS)


def _bounded(work: Callable[[], T], refuse_when_full: bool = True) -> T:
    with _gate.turn(refuse_when_full):
        return work()


_DUMMY_HASH = _hasher.hash("tandem-timing-equaliser")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    # Setting a password (admin, CLI) waits for a turn rather than failing: it is rare and trusted.
    return _bounded(lambda: _hasher.hash(password), refuse_when_full=False)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; raises ``PasswordCheckBusy`` when no turn is free."""

    def check() -> bool:
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return _bounded(check)
