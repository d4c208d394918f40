"""Screen sampling by quota: of every block of consecutive calls of one team, as near to the
admin's percentage as the block allows get a screen recording, at random places in the block.

Why not a coin per call: at 30 %, 200 independent draws land outside 25–35 % about one time in
eight, so an admin checking "30 % of today's 200 calls" would often see a policy that looks
broken. A quota per block keeps every team's share on target over any few blocks, while which
calls are recorded stays unpredictable to the agent (the places are drawn at random per block).
The fraction a block cannot hold (30 % of 20 = 6, but 33 % of 20 = 6.6) carries into the next.
Pure logic: the coordinator owns one instance and asks it once per call; the decision is stored
with the interaction, so a restart (a fresh block) never changes a decision made."""

from __future__ import annotations

import math
import random
from collections.abc import Hashable
from dataclasses import dataclass, field

BLOCK = 20  # calls per block: small enough that a team's share is right within a morning


@dataclass
class _Block:
    percentage: float
    carry: float = 0.0
    index: int = 0
    chosen: set[int] = field(default_factory=set)


class ScreenQuota:
    def __init__(self, block: int = BLOCK, rng: random.Random | None = None) -> None:
        if block < 1:
            raise ValueError(f"block must be at least 1 call, got {block}")
        self._size = block
        self._rng = rng or random.SystemRandom()
        self._blocks: dict[Hashable, _Block] = {}

    def decide(self, key: Hashable, percentage: float) -> bool:
        """Whether the next call of ``key`` (a team; None for agents without one) gets a screen."""
        if not 0.0 <= percentage <= 100.0:  # NaN is refused too
            raise ValueError(f"percentage must be within 0..100, got {percentage}")
        block = self._blocks.get(key)
        if block is None or block.percentage != percentage:
            block = self._blocks[key] = _Block(percentage)  # a changed policy starts afresh
            self._refill(block)
        elif block.index == self._size:
            block.index = 0
            self._refill(block)
        screen = block.index in block.chosen
        block.index += 1
        return screen

    def _refill(self, block: _Block) -> None:
        exact = block.carry + block.percentage * self._size / 100.0
        quota = min(self._size, math.floor(exact + 1e-9))  # 30 % of 20 is 6, not 5.999…
        block.carry = max(0.0, exact - quota)
        block.chosen = set(self._rng.sample(range(self._size), quota))
