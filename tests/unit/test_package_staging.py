"""The package's own version (recorder_service/updater/package.py): staged out of dpkg's reach with
hard links, switched to at once or left pending while a recorder is busy, and the pending switch
applied by the update check once every recorder is idle -- with the updater's health watch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recorder_service.updater import package
from recorder_service.updater.activity_file import ActivityRecord, now, write_record
from recorder_service.updater.apply import current_version, switch_current
from recorder_service.updater.cleanup import MARKER, STAGED_MARKER
from recorder_service.updater.layout import read_state
from recorder_service.updater.policy import Readiness, UpdateSettings
from recorder_service.updater.rollback import read_watch
from recorder_service.updater.system import UpdaterConfig, check

ME = os.getuid()
IDLE = Readiness(True, "every running recorder is idle")
BUSY = Readiness(False, "waiting: recorder(s) busy (1000: call)")


@pytest.mark.parametrize(
    ("current", "runs", "ready", "action"),
    [
        (None, False, BUSY, "switch"),  # a fresh install: nothing runs yet
        ("0.1.0", False, BUSY, "switch"),  # an old package's own versions/ files, deleted by dpkg
        ("0.2.0", True, BUSY, "keep"),  # a reconfigure or reinstall
        ("0.3.0", True, IDLE, "keep"),  # the self-updater's newer version: never downgraded
        ("0.1.0", True, IDLE, "switch"),
        ("0.1.0", True, BUSY, "pending"),
        ("0.1.0+g1a2b3c4", True, BUSY, "pending"),
    ],
)
def test_plan(current: str | None, runs: bool, ready: Readiness, action: str) -> None:
    step = package.plan("0.2.0", current, runs, ready)
    assert step.action == action, step
    if action == "pending":
        assert step.reason == (
            "package 0.2.0 installed, switched to when every recorder is idle "
            f"(waiting: recorder(s) busy (1000: call)); {current} keeps running"
        )


def _payload(root: Path, version: str, lib: str = "old library") -> None:
    """What dpkg unpacks into <root>/package/ (build-deb's layout)."""
    for app in ("tandem-recorder", "tandem-agent"):
        (root / "package" / app / "_internal").mkdir(parents=True, exist_ok=True)
        (root / "package" / app / app).write_text("#!/bin/sh\n")
        (root / "package" / app / "_internal" / "lib.so").write_text(lib)
    (root / "package" / "tandem-recorder" / "_internal" / "link.so").unlink(missing_ok=True)
    (root / "package" / "tandem-recorder" / "_internal" / "link.so").symlink_to("lib.so")
    (root / "package" / "VERSION").write_text(version + "\n")


def _dpkg_upgrade(root: Path, version: str) -> None:
    """What dpkg does to its files on an upgrade: a new file renamed over each name, never a
    write into the old file; a file the new package lacks is deleted."""
    for name, text in [("tandem-recorder/_internal/lib.so", f"library of {version}"), ("VERSION", version)]:
        new = root / "package" / f"{name}.dpkg-new"
        new.write_text(text + "\n" * (name == "VERSION"))
        os.replace(new, root / "package" / name)
    (root / "package" / "tandem-agent" / "_internal" / "lib.so").unlink(missing_ok=True)


def test_staging_links_the_payload_and_survives_dpkg_replacing_it(tmp_path: Path) -> None:
    _payload(tmp_path, "0.1.0")
    assert package.stage(tmp_path, "0.1.0")
    staged = tmp_path / "versions" / "0.1.0"
    lib = staged / "tandem-recorder" / "_internal" / "lib.so"
    # hard links: no second copy of the bundles on disk
    assert lib.stat().st_ino == (tmp_path / "package/tandem-recorder/_internal/lib.so").stat().st_ino
    assert os.readlink(staged / "tandem-recorder" / "_internal" / "link.so") == "lib.so"
    assert (staged / STAGED_MARKER).read_text() == "hard links"
    assert not list((tmp_path / "versions").glob(".*"))  # no staging leftover
    _dpkg_upgrade(tmp_path, "0.2.0")
    # the running version's files are as they were: every one, the agent's deleted one too
    assert lib.read_text() == "old library"
    assert (staged / "tandem-agent" / "_internal" / "lib.so").read_text() == "old library"
    assert (staged / "VERSION").read_text() == "0.1.0\n"
    assert package.stage(tmp_path, "0.2.0")
    assert (tmp_path / "versions/0.2.0/tandem-recorder/_internal/lib.so").read_text() == "library of 0.2.0"


def test_staging_is_idempotent_and_never_half_visible(tmp_path: Path) -> None:
    _payload(tmp_path, "0.1.0")
    # a postinst killed half-way left its temporary directory: it is redone, not reused
    leftover = tmp_path / "versions" / ".0.1.0.staging"
    leftover.mkdir(parents=True)
    (leftover / "half").write_text("")
    assert package.stage(tmp_path, "0.1.0")
    staged = tmp_path / "versions" / "0.1.0"
    assert not (staged / "half").exists() and not leftover.exists()
    before = {p.relative_to(staged): p.stat().st_ino for p in staged.rglob("*")}
    assert not package.stage(tmp_path, "0.1.0")  # dpkg-reconfigure, apt-get install --reinstall
    assert {p.relative_to(staged): p.stat().st_ino for p in staged.rglob("*")} == before
    # a payload that is not the version postinst names: refused, nothing made
    with pytest.raises(package.StageError, match=r"does not hold version 0\.9\.0 .*'0\.1\.0'"):
        package.stage(tmp_path, "0.9.0")
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == ["0.1.0"]


def _recorder_says(activity: Path, state: str, version: str) -> None:
    """This user's recorder's activity record, as the recorder writes it (its pid: this process)."""
    write_record(activity, ActivityRecord(os.getpid(), version, state, "", now()), f"{ME}.json")


def _config(root: Path, activity: Path) -> UpdaterConfig:
    # updates off and no release root: a pending package switch is IT's apt install, not an update
    return UpdaterConfig(
        root=root,
        server_url="",
        trusted_root=None,
        trust_problem="no trusted release root",
        settings=UpdateSettings(enabled=False, source="test"),
        activity_dir=activity,
        cache_dir=root / "cache",
        device_id="pc-1",
    )


def test_fresh_install_switches_at_once(tmp_path: Path) -> None:
    activity = tmp_path / "activity"
    activity.mkdir()
    _recorder_says(activity, "call", "0.0.9")  # nothing to protect: no version is installed
    _payload(tmp_path, "0.1.0")
    outcome = package.install(tmp_path, "0.1.0", activity, deadline=600)
    assert outcome.state == "applied" and current_version(tmp_path) == "0.1.0"
    assert read_watch(tmp_path) is None and read_state(tmp_path) is None
    again = package.install(tmp_path, "0.1.0", activity, deadline=600)  # dpkg-reconfigure
    assert (again.state, again.reason) == ("up_to_date", "0.1.0 is current already")


def test_upgrade_during_a_call_waits_for_idle_then_switches_with_a_health_watch(tmp_path: Path) -> None:
    activity = tmp_path / "activity"
    activity.mkdir()
    _payload(tmp_path, "0.1.0")
    package.install(tmp_path, "0.1.0", activity, deadline=600)
    _recorder_says(activity, "call", "0.1.0")
    _dpkg_upgrade(tmp_path, "0.2.0")
    outcome = package.install(tmp_path, "0.2.0", activity, deadline=600, now=1000.0)
    assert outcome.state == "waiting" and "0.1.0 keeps running" in outcome.reason
    assert current_version(tmp_path) == "0.1.0"
    assert package.read_pending(tmp_path) == "0.2.0"
    state = read_state(tmp_path)
    assert state is not None and (state["state"], state["current"]) == ("waiting", "0.1.0")
    assert (tmp_path / "versions/0.1.0/tandem-recorder/_internal/lib.so").read_text() == "old library"

    cfg = _config(tmp_path, activity)
    busy = check(cfg, clock=lambda: 1100.0)  # the timer's run, still in the call
    assert busy.state == "waiting" and current_version(tmp_path) == "0.1.0", busy
    _recorder_says(activity, "idle", "0.1.0")  # the call and its after-call work are over
    done = check(cfg, clock=lambda: 1200.0)
    assert done.state == "applied" and done.version == "0.2.0", done
    assert current_version(tmp_path) == "0.2.0" and package.read_pending(tmp_path) is None
    watch = read_watch(tmp_path)
    assert watch is not None
    assert (watch.version, watch.previous, watch.switched_at, watch.live_before) == (
        "0.2.0",
        "0.1.0",
        1200.0,
        (str(ME),),
    )
    # the next run judges the switch as a downloaded release's: the recorder on 0.2.0, healthy
    write_record(activity, ActivityRecord(os.getpid(), "0.2.0", "idle", "", now(), True), f"{ME}.json")
    confirmed = check(cfg, clock=lambda: 1210.0)
    assert (confirmed.state, confirmed.reason) == (
        "applied",
        f"0.2.0 confirmed: 0.2.0 healthy on every running recorder ({ME})",
    )


def test_old_versions_go_by_the_updaters_rule_but_never_one_still_running(tmp_path: Path) -> None:
    activity = tmp_path / "activity"
    activity.mkdir()
    versions = tmp_path / "versions"
    _payload(tmp_path, "0.1.0")
    package.install(tmp_path, "0.1.0", activity, deadline=600)
    for version in ("0.2.0", "0.3.0"):
        _dpkg_upgrade(tmp_path, version)
        package.install(tmp_path, version, activity, deadline=600)
    # 0.1.0 went (staged, no longer the package's, not the one before); 0.2.0 kept for a rollback
    assert sorted(p.name for p in versions.iterdir()) == ["0.2.0", "0.3.0"]
    # a recorder still on 0.2.0 (say, paired all day) keeps its version through two more upgrades
    _recorder_says(activity, "idle", "0.2.0")
    for version in ("0.4.0", "0.5.0"):
        _dpkg_upgrade(tmp_path, version)
        package.install(tmp_path, version, activity, deadline=600)
    assert sorted(p.name for p in versions.iterdir()) == ["0.2.0", "0.4.0", "0.5.0"]
    assert current_version(tmp_path) == "0.5.0"


def test_an_upgrade_keeps_the_self_updaters_newer_version_and_forgets_a_stale_pending(tmp_path: Path) -> None:
    activity = tmp_path / "activity"
    activity.mkdir()
    _payload(tmp_path, "0.1.0")
    package.install(tmp_path, "0.1.0", activity, deadline=600)
    newer = tmp_path / "versions" / "0.3.0"
    (newer / "tandem-recorder").mkdir(parents=True)
    (newer / "tandem-recorder" / "tandem-recorder").write_text("#!/bin/sh\n")
    (newer / MARKER).write_text("sha\n")
    _recorder_says(activity, "call", "0.1.0")
    _dpkg_upgrade(tmp_path, "0.2.0")
    assert package.install(tmp_path, "0.2.0", activity, deadline=600).state == "waiting"
    switch_current(tmp_path, "0.3.0")  # meanwhile the self-updater moved on
    _recorder_says(activity, "idle", "0.3.0")
    assert package.apply_pending(tmp_path, activity, 1.0, 600) is None
    assert current_version(tmp_path) == "0.3.0" and package.read_pending(tmp_path) is None


def test_install_package_command_says_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    activity = tmp_path / "activity"
    activity.mkdir()
    _payload(tmp_path, "0.1.0")
    env = {"TANDEM_ACTIVITY_DIR": str(activity)}
    assert package.run_install("0.1.0", str(tmp_path), env) == 0
    assert (
        capsys.readouterr().out == "tandem-agent 0.1.0: 0.1.0 installed (no version was current); current\n"
    )
    assert package.run_install("0.2.0", str(tmp_path), env) == 1  # the payload is still 0.1.0
    assert capsys.readouterr().err.startswith(
        f"tandem-recorder install-package: {tmp_path}/package does not hold version 0.2.0"
    )
