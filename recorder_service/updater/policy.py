"""When the recorder may update, and to what -- pure rules, no I/O.

Three questions, asked in this order by the update loop:

1. Is updating allowed at all on this PC? IT can turn it off (HKLM policy ``AutoUpdate`` = 0 on
   Windows, written by the MSI's ``AUTOUPDATE=0``; ``auto_update = false`` in the machine config)
   or pin a version (``UpdatePin`` / ``update_pin``). The Windows policy wins over the file, as
   group policy does over local settings.
2. Which release is for this PC? The newest one offered to its staged-rollout bucket, or the
   pinned one whatever its rollout percentage (a pin is IT's explicit choice, so it may also be
   older than the running version: that is how IT rolls the fleet back).
3. May it be applied *now*? Never while a capture runs (a call or its after-call work) and never
   while recorded segments still wait in the spool or are being uploaded: a restart there would
   cut a recording, and recordings are evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

# Windows group policy, written by the MSI (installers/windows/tandem-agent.wxs).
POLICY_REGISTRY_KEY = r"SOFTWARE\Policies\Tandem\Agent"


class UpdatePolicyError(ValueError):
    """A policy value that cannot be understood; the message names where it came from."""


@dataclass(frozen=True)
class UpdateSettings:
    enabled: bool = True
    pinned: str = ""  # "" = follow the rollout
    source: str = "default"  # where the deciding value came from, for the log and fleet page


@dataclass(frozen=True)
class Offer:
    """A release the server offers: its version and the percentage of the fleet it is offered to."""

    version: str
    rollout_percent: int


@dataclass(frozen=True)
class Activity:
    """What the recorder is doing, from its controller and uploader (recorder_service.heartbeat)."""

    capture_mode: str  # the controller's mode: idle, capturing, paused, finalising
    in_call: bool  # a call or its after-call work is open for this agent
    pending_segments: int  # recorded segments in the spool not yet on the server
    uploading: bool  # a segment upload is in flight


@dataclass(frozen=True)
class Decision:
    version: str | None  # None: nothing to install
    reason: str


def parse_version(text: str, source: str = "version") -> Version:
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise UpdatePolicyError(
            f"{source}: {text!r} is not a version (e.g. 0.2.0 or 0.2.0+g1dfa7b7)"
        ) from exc


def _flag(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # REG_DWORD
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise UpdatePolicyError(f"{source}: expected true/false (or 1/0), got {value!r}")


def settings_from_layers(layers: Iterable[tuple[str, Mapping[str, object]]]) -> UpdateSettings:
    """Merge policy layers, first wins per key: ``[(source, {"auto_update": ..., "update_pin": ...})]``.

    Layers in order of authority: the Windows policy key, then the machine config file. A missing
    or empty value counts as not set (as in recorder_service.machine_config)."""
    enabled: tuple[bool, str] | None = None
    pinned: tuple[str, str] | None = None
    for source, layer in layers:
        for key in layer:
            if key not in ("auto_update", "update_pin"):
                raise UpdatePolicyError(
                    f"{source}: unknown update policy key {key!r} (known: auto_update, update_pin)"
                )
        value = layer.get("auto_update")
        if enabled is None and value is not None and value != "":
            enabled = (_flag(value, f"{source}: auto_update"), source)
        pin = layer.get("update_pin")
        if pinned is None and isinstance(pin, str) and pin.strip():
            parse_version(pin.strip(), f"{source}: update_pin")
            pinned = (pin.strip(), source)
        elif pin is not None and not isinstance(pin, str):
            raise UpdatePolicyError(f"{source}: update_pin must be a quoted version, got {pin!r}")
    if enabled is not None and not enabled[0]:
        return UpdateSettings(enabled=False, source=enabled[1])
    if pinned is not None:
        return UpdateSettings(pinned=pinned[0], source=pinned[1])
    return UpdateSettings(source=enabled[1] if enabled else "default")


# The Windows policy values and the keys they stand for.
POLICY_REGISTRY_VALUES = {"AutoUpdate": "auto_update", "UpdatePin": "update_pin"}


def registry_policy_layer(read: Callable[[str], object | None]) -> dict[str, object]:
    """The HKLM policy layer from ``read(value name)`` (None: not there). The real reader is
    winreg on Windows; tests pass a dict's ``get``."""
    return {ours: value for name, ours in POLICY_REGISTRY_VALUES.items() if (value := read(name)) is not None}


def rollout_bucket(device_id: str) -> int:
    """This PC's place in a staged rollout, 0..99, stable for the device: a release offered to
    N % goes to buckets 0..N-1, so the same PCs go first each time (IT can watch them as a canary
    ring) and raising the percentage only ever adds PCs."""
    digest = hashlib.sha256(device_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def offered_to(device_id: str, offer: Offer) -> bool:
    return rollout_bucket(device_id) < max(0, min(100, offer.rollout_percent))


def choose_release(
    current: str, offers: Iterable[Offer], settings: UpdateSettings, device_id: str
) -> Decision:
    """Which release this PC should run next, or None with the reason."""
    if not settings.enabled:
        return Decision(None, f"updates are turned off by policy ({settings.source})")
    running = parse_version(current, "running version")
    offers = list(offers)
    if settings.pinned:
        pin = parse_version(settings.pinned)
        if pin == running:
            return Decision(None, f"pinned to {settings.pinned} ({settings.source}), which is running")
        for offer in offers:
            if parse_version(offer.version, "offered version") == pin:
                return Decision(offer.version, f"pinned to {settings.pinned} ({settings.source})")
        return Decision(
            None, f"pinned to {settings.pinned} ({settings.source}), which the server does not offer"
        )
    newer = [o for o in offers if parse_version(o.version, "offered version") > running]
    mine = [o for o in newer if offered_to(device_id, o)]
    if not mine:
        if newer:
            return Decision(
                None, f"{max(newer, key=lambda o: Version(o.version)).version} is not yet offered to this PC"
            )
        return Decision(None, f"{current} is the newest release")
    best = max(mine, key=lambda o: Version(o.version))
    return Decision(
        best.version, f"{best.version} offered to {best.rollout_percent}% of the fleet, this PC included"
    )


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


def may_apply_now(activity: Activity) -> Readiness:
    """Whether a downloaded release may be installed and started now."""
    if activity.capture_mode not in ("idle", ""):
        return Readiness(False, f"waiting: the recorder is {activity.capture_mode}")
    if activity.in_call:
        return Readiness(False, "waiting: a call or its after-call work is in progress")
    if activity.uploading:
        return Readiness(False, "waiting: a segment upload is in flight")
    if activity.pending_segments > 0:
        return Readiness(False, f"waiting: {activity.pending_segments} recorded segment(s) not yet uploaded")
    return Readiness(True, "idle: no call, no after-call work, nothing left to upload")
