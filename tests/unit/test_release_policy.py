"""The fleet-wide update policy's pure rules (server/services/release_policy.py): what each
release is offered to under a pin or the off switch, and in which order the offers change."""

from __future__ import annotations

import pytest

from server.services.release_policy import (
    FleetPolicy,
    ReleasePolicyError,
    offered_percent,
    parse_policy,
    plan,
    policy_from_state,
)

SIGNED = {"0.1.0": 100, "0.2.0": 20, "0.3.0": 5}


def test_a_pin_offers_the_pinned_release_to_all_and_the_others_to_none() -> None:
    pin = FleetPolicy("pinned", "0.2.0")
    assert {v: offered_percent(v, p, pin) for v, p in SIGNED.items()} == {
        "0.1.0": 0,
        "0.2.0": 100,
        "0.3.0": 0,
    }


def test_off_offers_nothing_and_the_rollout_offers_the_chosen_share() -> None:
    assert [offered_percent(v, p, FleetPolicy("off")) for v, p in SIGNED.items()] == [0, 0, 0]
    assert [offered_percent(v, p, FleetPolicy()) for v, p in SIGNED.items()] == [100, 20, 5]


def test_the_plan_narrows_offers_before_it_widens_any() -> None:
    pin = FleetPolicy("pinned", "0.2.0")
    assert plan(SIGNED, SIGNED, pin) == [("0.1.0", 100, 0), ("0.3.0", 5, 0), ("0.2.0", 20, 100)]
    pinned = {"0.1.0": 0, "0.2.0": 100, "0.3.0": 0}
    # back to the rollout: the admin's own percentages return
    assert plan(pinned, SIGNED, FleetPolicy()) == [("0.2.0", 100, 20), ("0.1.0", 0, 100), ("0.3.0", 0, 5)]
    assert plan(SIGNED, SIGNED, FleetPolicy()) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mode": "sometimes"}, "mode must be one of rollout, pinned, off, got 'sometimes'"),
        ({"mode": "pinned"}, "name the version to pin the fleet to"),
        ({"mode": "off", "pin": "0.2.0"}, "a pin (0.2.0) goes only with mode pinned"),
        ({"mode": "pinned", "pin": 2}, "pin must be a version string, got 2"),
        ({"mode": "off", "percent": 1}, "unknown field 'percent' (known: mode, pin)"),
        ([], 'send {"mode": "rollout" | "pinned" | "off", "pin": "<version>"}'),
    ],
)
def test_a_bad_policy_is_refused_with_a_sentence(raw: object, message: str) -> None:
    with pytest.raises(ReleasePolicyError) as err:
        parse_policy(raw)
    assert str(err.value) == message


def test_a_stored_policy_is_read_back_and_a_damaged_one_is_the_default() -> None:
    assert parse_policy({"mode": "pinned", "pin": " 0.2.0 "}) == FleetPolicy("pinned", "0.2.0")
    assert policy_from_state({"mode": "off", "pin": "", "chosen": {}}) == FleetPolicy("off")
    assert policy_from_state({"mode": 7}) == FleetPolicy()
