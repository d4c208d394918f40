"""Capped exponential backoff with jitter, shared by the event channel and the uploader.

Pure: the random source is injected so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable


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
    many recorders reconnecting after a server restart do not hammer it in lock step.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # Cap the exponent too: 2**attempt for a huge attempt count would overflow a float.
    raw = min(cap, base * float(2 ** min(attempt, 30)))  # int ** int is typed Any
    spread = raw * jitter * (2.0 * rand() - 1.0)
    return max(0.0, min(cap, raw + spread))
