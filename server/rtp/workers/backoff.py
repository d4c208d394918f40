"""Restart pacing for a worker that died (pure): never a tight restart loop.

The first restart after a worker that ran a while is quick; each further death soon after its
start doubles the wait up to ``maximum``. A worker that stayed up ``stable_after`` seconds resets it.
"""

from __future__ import annotations


class RestartBackoff:
    def __init__(self, initial: float = 0.5, maximum: float = 30.0, stable_after: float = 60.0) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("need 0 < initial <= maximum")
        self._initial = initial
        self._maximum = maximum
        self._stable_after = stable_after
        self._next = initial

    def delay(self, ran_for: float) -> float:
        """Seconds to wait before restarting a worker that died after running ``ran_for`` seconds."""
        if ran_for >= self._stable_after:
            self._next = self._initial
        delay = self._next
        self._next = min(self._maximum, self._next * 2)
        return delay
