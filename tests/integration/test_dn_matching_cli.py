"""``tandem-server dn-matching``: shows the DN matching policy, changes it through the same rules
as the API (a bad rule is ``error: …``, exit 1, audited as denied) and is audited as user "cli"."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from server.cli import main
from server.settings import load_settings
from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("TANDEM_SERVER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield


def audit_outcomes(data: Path) -> list[tuple[str, str]]:
    settings = load_settings(None, data_dir=data)
    with session_scope(make_session_factory(make_engine(settings.resolved_database_url))) as s:
        rows = s.execute(
            select(models.AuditRecord)
            .where(models.AuditRecord.action == "policy.dn_matching")
            .order_by(models.AuditRecord.id)
        ).scalars()
        return [(r.username, r.outcome) for r in rows]


def test_dn_matching_is_shown_changed_and_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "server"
    assert main(["--data-dir", str(data), "migrate"]) == 0
    capsys.readouterr()
    assert main(["--data-dir", str(data), "dn-matching"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "strip_prefixes": [],
        "last_digits": 0,
        "record_unassigned": False,
    }
    argv = ["--data-dir", str(data), "dn-matching", "--strip-prefixes", "+1, 9", "--record-unassigned"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == {
        "strip_prefixes": ["+1", "9"],
        "last_digits": 0,
        "record_unassigned": True,
    }
    assert main(["--data-dir", str(data), "dn-matching", "--last-digits", "1"]) == 1
    assert "3-32" in capsys.readouterr().err
    assert main(["--data-dir", str(data), "dn-matching", "--last-digits", "7"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["last_digits"] == 7 and shown["strip_prefixes"] == ["+1", "9"] and shown["record_unassigned"]
    assert audit_outcomes(data) == [("cli", "allowed"), ("cli", "denied"), ("cli", "allowed")]
