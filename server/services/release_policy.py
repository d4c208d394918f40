"""The fleet-wide update policy the admin sets on the server -- pure rules, no I/O.

Three modes:

- ``rollout``: each release is offered to the share of the fleet the admin chose for it.
- ``pinned`` to a version: that release is offered to every PC (100 %) and every other one to
  none (0 %). A PC installs only offered releases newer than the one it runs
  (``recorder_service.updater.policy.choose_release``), so PCs on an older version move to the
  pin and PCs already past it stay where they are: a fleet-wide pin holds the fleet back, it
  does not roll PCs back (IT's per-PC pin, ``update_pin`` / ``UpdatePin``, does that).
- ``off``: every release is offered to 0 %: no PC starts an update.

The recorders read only the signed offers (the TUF targets' ``rollout_percent``), so the server
carries the policy out by re-signing the offers; the admin's own percentages are kept aside
(``chosen``) and come back when the pin is lifted or updates are turned back on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("rollout", "pinned", "off")


class ReleasePolicyError(ValueError):
    """A policy request that cannot be understood; the message says why."""


@dataclass(frozen=True)
class FleetPolicy:
    mode: str = "rollout"
    pin: str = ""  # the pinned version when mode == "pinned", else ""

    def describe(self) -> dict[str, str]:
        return {"mode": self.mode, "pin": self.pin}


def parse_policy(raw: object) -> FleetPolicy:
    """The policy from a request body ``{"mode": ..., "pin": ...}`` (pin only with ``pinned``)."""
    if not isinstance(raw, Mapping):
        raise ReleasePolicyError('send {"mode": "rollout" | "pinned" | "off", "pin": "<version>"}')
    unknown = sorted(set(raw) - {"mode", "pin"})
    if unknown:
        raise ReleasePolicyError(f"unknown field {unknown[0]!r} (known: mode, pin)")
    mode, pin = raw.get("mode"), raw.get("pin", "")
    if mode not in MODES:
        raise ReleasePolicyError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(pin, str):
        raise ReleasePolicyError(f"pin must be a version string, got {pin!r}")
    pin = pin.strip()
    if mode == "pinned" and not pin:
        raise ReleasePolicyError("name the version to pin the fleet to")
    if mode != "pinned" and pin:
        raise ReleasePolicyError(f"a pin ({pin}) goes only with mode pinned")
    return FleetPolicy(mode, pin)


def policy_from_state(state: Mapping[str, object]) -> FleetPolicy:
    """The stored policy; a missing or damaged file means the default (follow the rollout)."""
    try:
        return parse_policy({"mode": state.get("mode", "rollout"), "pin": state.get("pin", "")})
    except ReleasePolicyError:
        return FleetPolicy()


def offered_percent(version: str, chosen: int, policy: FleetPolicy) -> int:
    """The share of the fleet ``version`` is offered to under ``policy``."""
    if policy.mode == "off":
        return 0
    if policy.mode == "pinned":
        return 100 if version == policy.pin else 0
    return chosen


def plan(
    signed: Mapping[str, int], chosen: Mapping[str, int], policy: FleetPolicy
) -> list[tuple[str, int, int]]:
    """The offers to re-sign, ``(version, now, then)``: narrowings first, so a recorder checking
    while the server works through the list never sees a wider offer than before or after."""
    changes = [
        (version, now, then)
        for version, now in signed.items()
        if (then := offered_percent(version, chosen.get(version, now), policy)) != now
    ]
    return sorted(changes, key=lambda c: (c[2] > c[1], c[0]))
