"""Capped exponential back-off: the one implementation every program uses.

The recorder's event channel and uploader, the desktop's event channel, the server's login
throttle and its RTP worker restarts all wait ``base * 2**attempt`` capped, some spread by a
jitter. Pure (the random source is injected so tests can pin it) and stdlib only, which is why it
lives in the one package all programs share.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_EXPONENT = 60  # 2**attempt for a huge attempt count would overflow a float


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    jitter: float = 0.25,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (0 = first retry).

    ``base * 2**attempt`` capped at ``cap``, then spread by ±``jitter`` (a fraction) so that
    many clients reconnecting after a server restart do not hammer it in lock step; never more
    than ``cap``.
    """
    return max(0.0, min(cap, spread(doubling(attempt, base=base, cap=cap), jitter, rand)))


def doubling(attempt: int, *, base: float, cap: float) -> float:
    """``base * 2**attempt``, at most ``cap`` (``attempt`` 0 = ``base``)."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    return min(cap, base * float(2 ** min(attempt, _MAX_EXPONENT)))  # int ** int is typed Any


def spread(delay: float, jitter: float, rand: Callable[[], float]) -> float:
    """``delay`` moved by up to ±``jitter`` of itself, uniformly (``rand`` in [0, 1))."""
    return delay * (1.0 + jitter * (2.0 * rand() - 1.0)) if jitter else delay


class Backoff:
    """Successive delays: ``initial`` doubling up to ``cap``, ±``jitter``; ``reset`` after a
    success starts over. Unlike ``backoff_delay`` the spread reaches past the cap, so clients
    that all reached it still spread out."""

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 10.0,
        *,
        jitter: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError("need 0 < initial <= cap")
        self._initial = initial
        self._cap = cap
        self._jitter = jitter
        self._rng = rng
        self._attempt = 0

    def next(self) -> float:
        delay = doubling(self._attempt, base=self._initial, cap=self._cap)
        self._attempt = min(self._attempt + 1, _MAX_EXPONENT)
        return spread(delay, self._jitter, self._rng)

    def reset(self) -> None:
        self._attempt = 0


class RestartBackoff:
    """Restart pacing for a process that died: never a tight restart loop.

    The first restart after a process that ran a while is quick; each further death soon after
    its start doubles the wait up to ``maximum``. One that stayed up ``stable_after`` seconds
    resets it.
    """

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, stable_after: float = 60.0) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("need 0 < initial <= maximum")
        self._stable_after = stable_after
        self._backoff = Backoff(initial, maximum, jitter=0.0)

    def delay(self, ran_for: float) -> float:
        """Seconds to wait before restarting a process that died after running ``ran_for`` seconds."""
        if ran_for >= self._stable_after:
            self._backoff.reset()
        return self._backoff.next()
