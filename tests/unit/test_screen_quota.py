"""The screen quota: exact shares per block, carried fractions, per-team blocks, random places."""

from __future__ import annotations

import random

import pytest

from server.policy.screen_quota import BLOCK, ScreenQuota


def test_two_hundred_calls_at_thirty_percent_are_sixty_screens_every_time() -> None:
    for seed in range(50):
        quota = ScreenQuota(rng=random.Random(seed))
        assert sum(quota.decide("Blue", 30.0) for _ in range(200)) == 60


def test_any_run_of_calls_stays_within_one_block_of_the_target() -> None:
    quota = ScreenQuota(rng=random.Random(1))
    decisions = [quota.decide(None, 37.5) for _ in range(1000)]
    for n in range(1, 1001):
        assert abs(sum(decisions[:n]) - 0.375 * n) <= BLOCK, n


def test_a_fraction_the_block_cannot_hold_carries_into_the_next() -> None:
    quota = ScreenQuota(rng=random.Random(2))
    assert sum(quota.decide("t", 33.0) for _ in range(20 * BLOCK)) == round(0.33 * 20 * BLOCK)


def test_extremes_and_teams_are_counted_apart() -> None:
    quota = ScreenQuota(rng=random.Random(3))
    assert not any(quota.decide("Red", 0.0) for _ in range(100))
    assert all(quota.decide("Green", 100.0) for _ in range(100))
    blue = [quota.decide("Blue", 50.0) for _ in range(BLOCK)]
    assert sum(blue) == BLOCK // 2  # Red's and Green's calls took nothing from Blue's block
    with pytest.raises(ValueError):
        quota.decide("Blue", 100.5)
    with pytest.raises(ValueError):
        quota.decide("Blue", float("nan"))


def test_the_places_are_not_a_fixed_pattern() -> None:
    patterns = set()
    for seed in range(20):
        quota = ScreenQuota(rng=random.Random(seed))
        patterns.add(tuple(quota.decide("Blue", 30.0) for _ in range(BLOCK)))
    assert len(patterns) > 10  # an agent cannot tell which of his calls are recorded


def test_a_changed_percentage_starts_a_new_block() -> None:
    quota = ScreenQuota(rng=random.Random(4))
    for _ in range(5):
        quota.decide("Blue", 100.0)
    assert sum(quota.decide("Blue", 10.0) for _ in range(BLOCK)) == 2
