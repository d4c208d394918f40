"""``tandem-server`` operator commands: they find the server's data directory the way the
server does, never create a stray database, go through the same rules as the API (refusals are
``error: …`` and exit 1, not a traceback) and leave the same audit records, as user "cli"."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cli import main
from server.settings import load_settings
from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from tests.fd_guard import descriptors_under

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("TANDEM_SERVER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # the default ./data lands here, never in the repository
    yield


@pytest.fixture
def server_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data directory as the server (or scripts/run's demo) leaves it."""
    data = tmp_path / "demo" / "server"
    assert main(["--data-dir", str(data), "demo-setup", "--json"]) == 0
    capsys.readouterr()
    return data


@contextmanager
def server_db(data: Path) -> Iterator[Session]:
    """A unit of work on the server's database; its engine is disposed (left to the garbage
    collector, every call kept three descriptors open: the file, its WAL and shm)."""
    engine = make_engine(load_settings(None, data_dir=data).resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            yield s
    finally:
        engine.dispose()


def audit_rows(data: Path, action: str) -> list[models.AuditRecord]:
    with server_db(data) as s:
        query = select(models.AuditRecord).where(models.AuditRecord.action == action)
        return list(s.execute(query.order_by(models.AuditRecord.id)).scalars())


def percentage_in(data: Path) -> float | None:
    with server_db(data) as s:
        row = s.get(models.Setting, "screen_percentage")
        return float(row.value) if row else None


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in Linux's /proc")
def test_commands_run_in_process_close_the_database(
    server_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The collector could close what a command left open and hide the leak: it waits here.
    gc.collect()
    gc.disable()
    try:
        assert descriptors_under(server_dir) == []
        for percentage in ("10", "20", "30"):
            assert main(["--data-dir", str(server_dir), "set-sampling", "--percentage", percentage]) == 0
        assert main(["--data-dir", str(server_dir), "demo-setup", "--json"]) == 0
        capsys.readouterr()
        assert descriptors_under(server_dir) == [], "a command left the database open"
    finally:
        gc.enable()


def test_commands_that_change_data_refuse_to_create_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["set-sampling", "--percentage", "10"],
        ["set-full-time-dn", "--username", "agent1", "--dn", "6100"],
        ["password-policy", "--min-length", "12"],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: no Tandem database at {tmp_path / 'data' / 'tandem.db'}"), err
        assert "the default ./data" in err and "TANDEM_SERVER_DATA_DIR" in err
    assert not (tmp_path / "data").exists()


def test_the_readme_way_reaches_the_servers_database(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TANDEM_SERVER_DATA_DIR", str(server_dir))
    assert main(["set-sampling", "--percentage", "25"]) == 0
    assert "25 %" in capsys.readouterr().out
    assert percentage_in(server_dir) == 25.0
    (record,) = audit_rows(server_dir, "policy.sampling")
    assert record.username == "cli" and record.outcome == "allowed" and "os_user=" in record.detail


def test_data_dir_precedence_is_the_servers(
    tmp_path: Path, server_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    assert main(["--data-dir", str(other), "migrate"]) == 0
    config = tmp_path / "tandem.toml"
    config.write_text(f'data_dir = "{other}"\n')
    # config file only
    assert main(["--config", str(config), "set-sampling", "--percentage", "1"]) == 0
    # the environment beats the config file
    monkeypatch.setenv("TANDEM_SERVER_DATA_DIR", str(server_dir))
    assert main(["--config", str(config), "set-sampling", "--percentage", "2"]) == 0
    # --data-dir beats both
    assert main(["--config", str(config), "--data-dir", str(other), "set-sampling", "--percentage", "3"]) == 0
    assert (percentage_in(other), percentage_in(server_dir)) == (3.0, 2.0)
    monkeypatch.setenv("TANDEM_SERVER_DATA_DIR", str(tmp_path / "typo"))
    assert main(["set-sampling", "--percentage", "4"]) == 1
    assert "from TANDEM_SERVER_DATA_DIR" in capsys.readouterr().err


def test_full_time_dn_from_the_cli_follows_the_api_rules(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data-dir", str(server_dir)]
    monkeypatch.setattr("sys.stdin", _Stdin(""))
    assert main([*base, "create-user", "--username", "agent2", "--role", "agent", "--password-stdin"]) == 1
    assert "error: the password needs at least 8 characters" in capsys.readouterr().err  # empty stdin
    assert main([*base, "set-full-time-dn", "--username", "agent1", "--dn", "not a dn!!"]) == 1
    assert "error: 'not a dn!!' is not a DN" in capsys.readouterr().err
    assert main([*base, "set-full-time-dn", "--username", "agent1", "--dn", "61 00"]) == 0
    assert "set to 6100" in capsys.readouterr().out
    assert main([*base, "set-full-time-dn", "--username", "supervisor", "--dn", "6100"]) == 1
    assert "no agent named 'supervisor'" in capsys.readouterr().err
    records = audit_rows(server_dir, "policy.full_time_dn")
    assert [(r.username, r.outcome) for r in records] == [
        ("cli", "denied"),
        ("cli", "allowed"),
        ("cli", "denied"),
    ]


def test_second_agent_cannot_get_the_same_full_time_dn(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data-dir", str(server_dir)]
    monkeypatch.setattr("sys.stdin", _Stdin("agent2-password-1\n"))
    assert main([*base, "create-user", "--username", "agent2", "--role", "agent", "--password-stdin"]) == 0
    assert main([*base, "set-full-time-dn", "--username", "agent1", "--dn", "6100"]) == 0
    assert main([*base, "set-full-time-dn", "--username", "agent2", "--dn", "6100"]) == 1
    assert "error: DN 6100 is already recorded full-time for agent1" in capsys.readouterr().err
    (created,) = [r for r in audit_rows(server_dir, "user.create") if r.target_id == "agent2"]
    assert created.username == "cli" and created.outcome == "allowed"


def test_password_policy_from_the_cli_applies_to_create_user(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data-dir", str(server_dir)]
    assert main([*base, "password-policy", "--min-length", "16", "--require-digit"]) == 0
    assert "at least 16 characters, a digit" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", _Stdin("only-fifteen-ch\n"))
    assert main([*base, "create-user", "--username", "bob", "--role", "agent", "--password-stdin"]) == 1
    assert "error: the password needs at least 16 characters, a digit" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _Stdin("sixteen-chars-99\n"))
    assert main([*base, "set-password", "--username", "agent1", "--password-stdin"]) == 0
    assert main([*base, "password-policy", "--min-length", "3"]) == 1
    assert "min_length must be between 8 and 128" in capsys.readouterr().err


def test_a_refusal_in_a_real_process_is_one_line_not_a_traceback(server_dir: Path) -> None:
    env = {**os.environ, "TANDEM_SERVER_DATA_DIR": str(server_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "set-sampling", "--percentage", "150"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: percentage must be between 0 and 100, got 150", proc.stderr
    (record,) = audit_rows(server_dir, "policy.sampling")
    assert record.outcome == "denied" and record.username == "cli"


class _Stdin:
    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self._lines.pop(0) if self._lines else ""
