"""Screen sampling: which interactions also get a screen recording.

Decided once per interaction and deterministically — the same id and percentage always give
the same answer — by hashing the interaction id onto [0, 100). 0 % never records, 100 % always.
"""

from __future__ import annotations

import hashlib


def sample_point(interaction_id: str) -> float:
    """Where this interaction falls on [0, 100)."""
    digest = hashlib.sha256(interaction_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def decide_screen(interaction_id: str, percentage: float) -> bool:
    if not 0.0 <= percentage <= 100.0:
        raise ValueError(f"percentage must be within 0..100, got {percentage}")
    return sample_point(interaction_id) < percentage


def effective_percentage(global_percentage: float, team_override: float | None) -> float:
    return global_percentage if team_override is None else team_override
