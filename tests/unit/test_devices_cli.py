"""``tandem-server devices``: enrolment tokens created, listed and revoked from the command line,
a bad scope refused with the reason, devices listed and revoked; audited as "cli"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from server.cli import main
from server.services import devices
from server.settings import load_settings
from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope


def test_tokens_and_devices_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert main(["--data-dir", data, "migrate"]) == 0
    capsys.readouterr()
    assert main(["--data-dir", data, "devices", "token-create", "--scope", "nowhere"]) == 1
    assert "scope must be team:NAME or site:LABEL" in capsys.readouterr().err
    assert (
        main(
            ["--data-dir", data, "devices", "token-create", "--scope", "site:HQ", "--max-uses", "3", "--json"]
        )
        == 0
    )
    made = json.loads(capsys.readouterr().out)
    assert made["token"].startswith("tet_") and made["max_uses"] == 3
    settings = load_settings(None, data_dir=Path(data))
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        device_id = devices.enrol(s, made["token"], "desk-3").device_id
    assert main(["--data-dir", data, "devices", "token-revoke", str(made["id"])]) == 0
    assert main(["--data-dir", data, "devices", "revoke", str(device_id)]) == 0
    capsys.readouterr()
    assert main(["--data-dir", data, "devices", "tokens"]) == 0
    assert [t["state"] for t in json.loads(capsys.readouterr().out)] == ["revoked"]
    assert main(["--data-dir", data, "devices", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(d["hostname"], d["state"], d["revoked_by"]) for d in listed] == [("desk-3", "revoked", "cli")]
    with session_scope(sessions) as s:
        actions = [
            (a.action, a.outcome, a.username)
            for a in s.execute(
                select(models.AuditRecord).where(models.AuditRecord.action.like("device.%"))
            ).scalars()
        ]
    engine.dispose()
    assert actions == [
        ("device.enrolment_token.create", "denied", "cli"),
        ("device.enrolment_token.create", "allowed", "cli"),
        ("device.enroll", "allowed", "device desk-3"),
        ("device.enrolment_token.revoke", "allowed", "cli"),
        ("device.revoke", "allowed", "cli"),
    ]
