"""The system updater's process-level parts (recorder_service/updater/system.py): the new
version's self-test runs as an unprivileged user when the updater is root, one updater at a time,
old versions the updater installed are cleaned up (never the package's own)."""

from __future__ import annotations

import os
import pwd
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder_service.updater.apply import switch_current
from recorder_service.updater.cleanup import MARKER
from recorder_service.updater.cleanup import collect_garbage as _collect_garbage
from recorder_service.updater.layout import read_state, update_summary
from recorder_service.updater.lock import locked as _locked
from recorder_service.updater.system import CheckResult, run_self_test, write_state


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory nobody may enter (pytest's tmp_path is root's 0700 one)."""
    with tempfile.TemporaryDirectory(prefix="tandem-update-test-", dir="/tmp") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def _program(where: Path, body: str) -> Path:
    program = where / "tandem-recorder"
    program.write_text("#!/bin/sh\n" + body)
    program.chmod(0o755)
    return program


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches users")
def test_self_test_runs_as_nobody_when_the_updater_is_root(readable_dir: Path) -> None:
    program = _program(readable_dir, 'echo "uid $(id -u) args $*"\n')
    healthy, said = run_self_test(program, "https://tandem.example", timeout=30)
    assert healthy, said
    assert said == f"uid {pwd.getpwnam('nobody').pw_uid} args self-test --server https://tandem.example"


def test_self_test_failure_and_timeout_are_said(readable_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_SELF_TEST_USER", "-")
    healthy, said = run_self_test(_program(readable_dir, "echo 'FAIL import av' >&2\nexit 1\n"), "u", 30)
    assert not healthy and said == "self-test exited with code 1: FAIL import av"
    healthy, said = run_self_test(_program(readable_dir, "exec sleep 30\n"), "u", 0.5)
    assert not healthy and said == "self-test did not finish within 0.5 s"


def test_one_updater_at_a_time(tmp_path: Path) -> None:
    with _locked(tmp_path) as first:
        assert first
        with _locked(tmp_path) as second:
            assert not second
    with _locked(tmp_path) as again:
        assert again


def test_old_versions_go_but_not_the_packages_nor_current_nor_previous(tmp_path: Path) -> None:
    for version, ours in [("0.1.0", False), ("0.2.0", True), ("0.3.0", True), ("0.4.0", True)]:
        (tmp_path / "versions" / version).mkdir(parents=True)
        if ours:
            (tmp_path / "versions" / version / MARKER).write_text("sha\n")
    (tmp_path / "versions" / "0.5.0.failed").write_text("why\n")
    switch_current(tmp_path, "0.4.0")
    _collect_garbage(tmp_path, current="0.4.0", previous="0.3.0", running=set())
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == [
        "0.1.0",
        "0.3.0",
        "0.4.0",
        "0.5.0.failed",
    ]


def test_state_file_is_readable_by_every_user(tmp_path: Path) -> None:
    write_state(
        tmp_path, CheckResult("waiting", "0.2.0 offered; waiting: recorder(s) busy", "0.2.0"), "0.1.0"
    )
    state = read_state(tmp_path)
    assert state is not None and state["state"] == "waiting" and state["current"] == "0.1.0"
    assert (tmp_path / "update-state.json").stat().st_mode & 0o777 == 0o644
    # what the recorder's heartbeat carries to the fleet page
    assert update_summary(tmp_path) == ("waiting", "0.2.0 offered; waiting: recorder(s) busy")
    assert update_summary(None) == ("", "") and update_summary(tmp_path / "nothing") == ("", "")
