"""The self-update rules (recorder_service.updater.policy): never during a call, its after-call
work or an upload; IT's off switch and pin; the staged rollout."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from recorder_service.controller import Mode
from recorder_service.updater.activity import CallWatch, activity_of
from recorder_service.updater.policy import (
    Activity,
    Offer,
    UpdatePolicyError,
    UpdateSettings,
    choose_release,
    may_apply_now,
    offered_to,
    registry_policy_layer,
    rollout_bucket,
    settings_from_layers,
)
from recorder_service.updater.sources import load_update_settings
from tandem_protocol.events import CallInfo, Envelope, EventType, Phase, ScreenState, VoiceState

IDLE = Activity(capture_mode="idle", in_call=False, pending_segments=0, uploading=False)


def test_applies_only_when_idle_with_nothing_left_to_upload() -> None:
    assert may_apply_now(IDLE).ready
    for busy, words in [
        (Activity("capturing", True, 0, False), "capturing"),
        (Activity("paused", True, 0, False), "paused"),
        (Activity("finalising", False, 0, False), "finalising"),
        (Activity("idle", True, 0, False), "after-call work"),  # ACW with capture already stopped
        (Activity("idle", False, 0, True), "upload is in flight"),
        (Activity("idle", False, 3, False), "3 recorded segment(s)"),
    ]:
        readiness = may_apply_now(busy)
        assert not readiness.ready, busy
        assert words in readiness.reason


def test_newest_release_offered_to_this_pc_is_chosen() -> None:
    offers = [Offer("0.1.0", 100), Offer("0.2.0", 100), Offer("0.1.5", 100)]
    decision = choose_release("0.1.0", offers, UpdateSettings(), "pc-1")
    assert decision.version == "0.2.0"
    assert choose_release("0.2.0", offers, UpdateSettings(), "pc-1").version is None
    # never a downgrade without a pin (the TUF metadata's own rollback protection is the client's)
    assert choose_release("0.3.0", offers, UpdateSettings(), "pc-1").version is None


def test_local_version_stamps_compare_as_versions() -> None:
    offers = [Offer("0.2.0+g1dfa7b7", 100)]
    assert choose_release("0.1.0+gabc1234", offers, UpdateSettings(), "pc").version == "0.2.0+g1dfa7b7"
    with pytest.raises(UpdatePolicyError, match="not a version"):
        choose_release("banana", offers, UpdateSettings(), "pc")


def test_updates_off_by_policy_wins_over_everything() -> None:
    settings = settings_from_layers(
        [("HKLM\\policy", {"auto_update": 0}), ("/etc/tandem/agent.toml", {"update_pin": "0.2.0"})]
    )
    assert not settings.enabled
    decision = choose_release("0.1.0", [Offer("0.2.0", 100)], settings, "pc")
    assert decision.version is None
    assert "turned off by policy (HKLM\\policy)" in decision.reason


def test_pin_ignores_rollout_and_may_roll_back() -> None:
    never = next(f"pc-{i}" for i in range(1000) if rollout_bucket(f"pc-{i}") >= 50)
    offers = [Offer("0.1.0", 0), Offer("0.2.0", 50), Offer("0.3.0", 100)]
    pinned = UpdateSettings(pinned="0.2.0", source="agent.toml")
    assert choose_release("0.1.0", offers, pinned, never).version == "0.2.0"
    assert choose_release("0.3.0", offers, pinned, never).version == "0.2.0"  # IT rolls back
    assert choose_release("0.2.0", offers, pinned, never).version is None
    missing = choose_release("0.1.0", offers, UpdateSettings(pinned="0.9.0", source="x"), never)
    assert missing.version is None and "does not offer" in missing.reason


def test_staged_rollout_is_a_stable_growing_share_of_the_fleet() -> None:
    fleet = [f"device-{i}" for i in range(2000)]
    assert all(0 <= rollout_bucket(d) < 100 for d in fleet)
    assert rollout_bucket("device-7") == rollout_bucket("device-7")
    ten = {d for d in fleet if offered_to(d, Offer("0.2.0", 10))}
    fifty = {d for d in fleet if offered_to(d, Offer("0.2.0", 50))}
    assert 100 < len(ten) < 300  # about 10 % of 2000
    assert 850 < len(fifty) < 1150
    assert ten <= fifty  # raising the percentage only adds PCs
    assert not any(offered_to(d, Offer("0.2.0", 0)) for d in fleet)
    assert all(offered_to(d, Offer("0.2.0", 100)) for d in fleet)
    outside = next(d for d in fleet if d not in ten)
    decision = choose_release("0.1.0", [Offer("0.2.0", 10)], UpdateSettings(), outside)
    assert decision.version is None and "not yet offered to this PC" in decision.reason


def test_policy_layers_first_wins_and_bad_values_are_named() -> None:
    registry = registry_policy_layer({"AutoUpdate": 1, "UpdatePin": "0.2.0"}.get)
    assert registry == {"auto_update": 1, "update_pin": "0.2.0"}
    settings = settings_from_layers(
        [("HKLM", registry), ("file", {"auto_update": False, "update_pin": "0.3.0"})]
    )
    assert settings == UpdateSettings(enabled=True, pinned="0.2.0", source="HKLM")
    assert settings_from_layers([("file", {"update_pin": ""})]) == UpdateSettings()
    with pytest.raises(UpdatePolicyError, match="file: auto_update: expected true/false"):
        settings_from_layers([("file", {"auto_update": "maybe"})])
    with pytest.raises(UpdatePolicyError, match="file: unknown update policy key 'auto_updates'"):
        settings_from_layers([("file", {"auto_updates": False})])
    with pytest.raises(UpdatePolicyError, match="update_pin: 'latest' is not a version"):
        settings_from_layers([("file", {"update_pin": "latest"})])


def _call(iid: str, phase: Phase) -> dict[str, object]:
    info = CallInfo(
        iid,
        "c-" + iid,
        "1001",
        "+15551234",
        "1001",
        phase,
        VoiceState.RECORDING,
        ScreenState.OFF,
        False,
        1.0,
    )
    return dataclasses.asdict(info)


def test_call_watch_knows_a_call_from_ringing_to_the_end_of_acw() -> None:
    """A call that is not screen-recorded (sampling) leaves the capture idle: the update must
    still wait for it, and for its after-call work."""
    watch = CallWatch()
    idle_controller = SimpleNamespace(mode=Mode.IDLE)
    empty = SimpleNamespace(stats=lambda: SimpleNamespace(state="idle", pending_segments=0, current=None))
    assert may_apply_now(activity_of(idle_controller, empty, watch)).ready
    for kind, phase in [
        (EventType.CALL_STARTED, Phase.RINGING),
        (EventType.CALL_UPDATED, Phase.ACTIVE),
        (EventType.CALL_ENDED, Phase.ACW),
    ]:
        watch.observe(Envelope(kind, _call("i1", phase)))
        readiness = may_apply_now(activity_of(idle_controller, empty, watch))
        assert not readiness.ready and "after-call work" in readiness.reason, phase
    watch.observe(Envelope(EventType.ACW_ENDED, _call("i1", Phase.DONE)))
    assert may_apply_now(activity_of(idle_controller, empty, watch)).ready
    watch.observe(Envelope(EventType.STATE, {"call": _call("i2", Phase.ACW)}))  # reconnect mid-ACW
    assert watch.in_call
    watch.observe(Envelope(EventType.STATE, {"call": None}))
    assert not watch.in_call
    watch.observe(Envelope(EventType.CALL_STARTED, {"interaction_id": "i3"}))  # not understood: ignored
    assert not watch.in_call


def test_activity_of_the_running_service() -> None:
    calls = CallWatch()
    capturing = activity_of(
        SimpleNamespace(mode=Mode.CAPTURING),
        SimpleNamespace(stats=lambda: SimpleNamespace(state="idle", pending_segments=0, current=None)),
        calls,
    )
    assert capturing.capture_mode == "capturing" and not may_apply_now(capturing).ready
    sending = activity_of(
        SimpleNamespace(mode=Mode.IDLE),
        SimpleNamespace(stats=lambda: SimpleNamespace(state="backoff", pending_segments=2, current=object())),
        calls,
    )
    assert sending == Activity("idle", in_call=False, pending_segments=2, uploading=True)


def test_windows_policy_overrides_the_machine_file() -> None:
    machine = {"server_url": "https://x", "auto_update": True, "update_pin": "0.2.0"}
    gpo_off = load_update_settings(
        machine, "/etc/tandem/agent.toml", registry=lambda: registry_policy_layer({"AutoUpdate": 0}.get)
    )
    assert not gpo_off.enabled and gpo_off.source == "HKLM\\SOFTWARE\\Policies\\Tandem\\Agent"
    file_only = load_update_settings(machine, "/etc/tandem/agent.toml", registry=dict)
    assert file_only == UpdateSettings(pinned="0.2.0", source="/etc/tandem/agent.toml")
    assert load_update_settings({}, "agent.toml") == UpdateSettings()  # off Windows: no registry layer
