"""The system updater's pure parts and its configuration (issue 15 item 5): the update keys of
agent.toml, the recorders' activity records and the gate over them, when a recorder re-executes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recorder_service.errors import ConfigError
from recorder_service.machine_config import load_agent_settings, load_machine_settings, parse_toml
from recorder_service.updater.activity_file import (
    ActivityRecord,
    gate,
    read_records,
    remove_record,
    stale,
    state_of,
    write_record,
)
from recorder_service.updater.apply import switch_current
from recorder_service.updater.in_recorder import REEXEC_ENV, SelfUpdate, exec_environment, program_in
from recorder_service.updater.layout import install_root
from recorder_service.updater.policy import Activity
from recorder_service.updater.system import load_updater_config

ME = os.getuid()


def test_update_keys_in_agent_toml_are_validated() -> None:
    values = parse_toml(
        'auto_update = false\nupdate_pin = "0.2.0"\nupdate_root = "/etc/tandem/root.json"\n', "/m.toml"
    )
    assert values == {"auto_update": "false", "update_pin": "0.2.0", "update_root": "/etc/tandem/root.json"}
    assert parse_toml('auto_update = "1"', "/m.toml") == {"auto_update": "true"}
    with pytest.raises(ConfigError, match=r"^/m\.toml: auto_update: expected true or false"):
        parse_toml('auto_update = "sometimes"', "/m.toml")
    with pytest.raises(ConfigError, match=r"^/m\.toml: update_pin: 'latest' is not a version"):
        parse_toml('update_pin = "latest"', "/m.toml")


def test_update_keys_belong_to_the_pc_not_to_a_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = tmp_path / "agent.toml"
    machine.write_text('server_url = "https://it.example"\nauto_update = false\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user = tmp_path / "xdg" / "tandem" / "agent.toml"
    user.parent.mkdir(parents=True)
    user.write_text('update_pin = "0.1.0"\n')
    env = {"TANDEM_AGENT_CONFIG": str(machine)}
    with pytest.raises(ConfigError, match="update_pin can only be set for the whole PC"):
        load_agent_settings(env)
    # the updater reads the machine's layers only, whatever a user's file says
    assert load_machine_settings(env).values == {"server_url": "https://it.example", "auto_update": "false"}


def test_updater_config_off_wins_and_a_missing_root_is_said(tmp_path: Path) -> None:
    machine = tmp_path / "agent.toml"
    machine.write_text(f'server_url = "https://it.example"\nupdate_root = "{tmp_path / "root.json"}"\n')
    env = {"TANDEM_AGENT_CONFIG": str(machine), "TANDEM_INSTALL_ROOT": str(tmp_path / "opt")}
    cfg = load_updater_config(env)
    assert (
        cfg.trusted_root is None
        and f"no trusted release root at {tmp_path / 'root.json'}" in cfg.trust_problem
    )
    assert cfg.settings.enabled and cfg.server_url == "https://it.example"
    (tmp_path / "root.json").write_text("{}")
    machine.write_text(machine.read_text() + 'auto_update = false\nupdate_pin = "0.2.0"\n')
    cfg = load_updater_config(env)
    assert cfg.trusted_root == b"{}"
    assert not cfg.settings.enabled and cfg.settings.source == str(machine)


IDLE = Activity("idle", in_call=False, pending_segments=0, uploading=False)


def test_state_of_the_recorder() -> None:
    assert state_of(IDLE, False)[0] == "idle"
    assert state_of(Activity("capturing", True, 0, False), False)[0] == "capturing"
    assert state_of(Activity("idle", True, 0, False), False)[0] == "call"  # a call not screen-recorded
    assert state_of(Activity("idle", True, 0, False), True)[0] == "acw"
    assert state_of(Activity("idle", False, 3, False), False) == (
        "uploading",
        "waiting: 3 recorded segment(s) not yet uploaded",
    )


def _record(pid: int, state: str) -> ActivityRecord:
    return ActivityRecord(pid, "0.1.0", state, "", 1.0)


def test_gate_waits_for_every_live_recorder_and_ignores_dead_ones(tmp_path: Path) -> None:
    alive = {100: ME, 200: ME}
    write_record(tmp_path, _record(100, "idle"), f"{ME}.json")
    assert gate(read_records(tmp_path, alive.get)).ready

    other = tmp_path / "other"
    other.mkdir()
    write_record(other, _record(200, "capturing"), f"{ME}.json")
    seen = read_records(other, alive.get)
    readiness = gate(seen)
    assert not readiness.ready and f"{ME}: capturing" in readiness.reason

    # the recorder was killed mid-call: its record does not hold updates back, and may go
    seen = read_records(other, lambda pid: None)
    assert gate(seen).ready and stale(seen) == [other / f"{ME}.json"]


def test_a_record_speaks_only_for_its_own_user(tmp_path: Path) -> None:
    # a file named for another uid (here: written by us under uid+1's name) is not believed
    write_record(tmp_path, _record(100, "idle"), f"{ME + 1}.json")
    (seen,) = read_records(tmp_path, {100: ME}.get)
    assert not seen.alive and f"written by uid {ME}" in seen.problem
    # nor a pid that belongs to someone else
    write_record(tmp_path, _record(300, "capturing"), f"{ME}.json")
    seen_all = read_records(tmp_path, {100: ME, 300: ME + 7}.get)
    assert [s.problem for s in seen_all if s.path.name == f"{ME}.json"] == [
        f"pid 300 belongs to uid {ME + 7}"
    ]
    assert gate(seen_all).ready


def test_unreadable_record_is_reported_and_remove_keeps_anothers(tmp_path: Path) -> None:
    (tmp_path / f"{ME}.json").write_text("{not json")
    (seen,) = read_records(tmp_path, lambda pid: None)
    assert seen.record is None and seen.problem.startswith("unreadable")
    write_record(tmp_path, _record(100, "idle"), f"{ME}.json")
    remove_record(tmp_path, 999, f"{ME}.json")  # not ours (a re-executed or newer recorder's)
    assert (tmp_path / f"{ME}.json").exists()
    remove_record(tmp_path, 100, f"{ME}.json")
    assert not (tmp_path / f"{ME}.json").exists()


def _installed(root: Path, *versions: str) -> None:
    for version in versions:
        program = root / "versions" / version / "tandem-recorder" / "tandem-recorder"
        program.parent.mkdir(parents=True)
        program.write_text("#!/bin/sh\n")


def test_recorder_reexecutes_only_idle_into_a_new_good_current(tmp_path: Path) -> None:
    _installed(tmp_path, "0.1.0", "0.2.0")
    switch_current(tmp_path, "0.1.0")
    hook = SelfUpdate(root=tmp_path, version="0.1.0", directory=tmp_path, env={})
    assert hook.due("idle") is None  # current is what runs
    switch_current(tmp_path, "0.2.0")
    assert hook.due("capturing") is None and hook.due("acw") is None and hook.due("uploading") is None
    assert hook.due("idle") == program_in(tmp_path)
    hook.hold = True  # a device recorder with an agent paired: it waits for his logout
    assert hook.due("idle") is None
    hook.hold = False
    (tmp_path / "versions" / "0.2.0.failed").write_text("bad\n")
    assert hook.due("idle") is None
    assert SelfUpdate(root=None, version="0.1.0", directory=tmp_path, env={}).due("idle") is None


def test_recorder_that_reexecuted_into_a_mismatched_version_stops_trying(tmp_path: Path) -> None:
    _installed(tmp_path, "0.2.0")
    switch_current(tmp_path, "0.2.0")
    # started to be 0.2.0, but the bundle says it is 0.2.0+gabc: re-executing again would loop
    hook = SelfUpdate(root=tmp_path, version="0.2.0+gabc", directory=tmp_path, env={REEXEC_ENV: "0.2.0"})
    assert hook.due("idle") is None and hook.due("idle") is None


def test_install_root_from_the_environment_or_none() -> None:
    assert install_root({"TANDEM_INSTALL_ROOT": "/opt/x"}) == Path("/opt/x")
    assert install_root({}) is None  # a source checkout never re-executes


def test_device_recorder_with_nobody_logged_in_is_idle_and_moves_to_a_new_version(tmp_path: Path) -> None:
    """A PC's device recorder between agents has no session: it says idle, and once the updater
    switched ``current`` it stops so ``main`` re-executes into the new version."""
    import asyncio
    import tempfile

    from recorder_service.device_broker_client import LocalDeviceCredential
    from recorder_service.device_session import DeviceRunner
    from recorder_service.updater.activity_file import ActivityRecord

    _installed(tmp_path, "0.1.0", "0.2.0")
    switch_current(tmp_path, "0.1.0")
    records = tmp_path / "activity"
    records.mkdir()
    hook = SelfUpdate(root=tmp_path, version="0.1.0", directory=records, interval=0.05, env={})
    device = LocalDeviceCredential("http://tandem.test", "tdc_x")
    runner = DeviceRunner(device, tmp_path, fps=1.0, monitor=0, self_update=hook)
    with tempfile.TemporaryDirectory(dir="/tmp") as short:  # a unix socket path must be short

        async def scenario() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(Path(short) / "pair.sock", stop))
            for _ in range(200):
                if (records / f"{ME}.json").exists():
                    break
                await asyncio.sleep(0.05)
            record = ActivityRecord.from_json((records / f"{ME}.json").read_text())
            assert (record.state, record.version, record.pid) == ("idle", "0.1.0", os.getpid())
            assert not task.done()  # nothing new installed: it keeps waiting for an agent
            switch_current(tmp_path, "0.2.0")
            await asyncio.wait_for(task, timeout=30)
            assert stop.is_set()

        asyncio.run(scenario())
    assert hook.exec_program == program_in(tmp_path)


def test_versions_live_recorders_run_are_kept(tmp_path: Path) -> None:
    from recorder_service.updater.cleanup import running_versions

    records = tmp_path / "activity"
    records.mkdir()
    write_record(records, ActivityRecord(os.getpid(), "0.1.0", "idle", "", 1.0), f"{ME}.json")
    env = {"TANDEM_AGENT_CONFIG": str(tmp_path / "none.toml"), "TANDEM_ACTIVITY_DIR": str(records)}
    assert running_versions(load_updater_config(env).activity_dir) == {"0.1.0"}


def test_the_new_version_starts_as_a_new_program_not_as_a_child_of_the_old_bundle() -> None:
    old_bundle = {
        "PATH": "/usr/bin",
        "DISPLAY": ":0",
        "_PYI_ARCHIVE_FILE": "/opt/tandem/versions/0.1.0/tandem-recorder/tandem-recorder",
        "_PYI_APPLICATION_HOME_DIR": "/opt/tandem/versions/0.1.0/tandem-recorder/_internal",
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "LD_LIBRARY_PATH": "/opt/tandem/versions/0.1.0/tandem-recorder/_internal:/usr/local/lib",
        "LD_LIBRARY_PATH_ORIG": "/usr/local/lib",
    }
    assert exec_environment(old_bundle, "0.2.0") == {
        "PATH": "/usr/bin",
        "DISPLAY": ":0",
        "LD_LIBRARY_PATH": "/usr/local/lib",
        "PYINSTALLER_RESET_ENVIRONMENT": "1",
        REEXEC_ENV: "0.2.0",
    }
