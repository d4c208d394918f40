"""``tandem-server releases rollout|policy``: the web page's rollout, pin and off switch from the
server's shell, through the same service (server/services/release_admin.py) — so the same offers
are signed, the same refusals given and the same audit records written as from the web and API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from server.cli import main as cli_main
from server.services.releases import ReleaseRepository
from server.settings import load_settings
from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope


def _audits(data: Path, action: str) -> list[tuple[str, str, str, str]]:
    engine = make_engine(load_settings(None, data_dir=data).resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            rows = s.scalars(
                select(models.AuditRecord)
                .where(models.AuditRecord.action == action)
                .order_by(models.AuditRecord.seq)
            ).all()
            return [(r.username, r.outcome, r.target_id, r.detail) for r in rows]
    finally:
        engine.dispose()


def test_rollout_pin_and_off_from_the_cli_sign_the_offers_and_are_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    base = ["--data-dir", str(data), "releases"]
    assert cli_main([*base, "init-keys", str(keys)]) == 0
    assert cli_main([*base, "init-repo", "--keys", str(keys)]) == 0
    assert cli_main(["--data-dir", str(data), "demo-setup"]) == 0
    for version in ("0.2.0", "0.3.0"):
        bundle = tmp_path / f"{version}.tar.gz"
        bundle.write_bytes(f"bundle {version}".encode())
        argv = [*base, "add", "--version", version, "--bundle", str(bundle), "--keys", str(keys)]
        assert cli_main([*argv, "--percent", "10"]) == 0
    repo = ReleaseRepository(data / "releases")

    def signed() -> dict[str, int]:
        return {r.version: r.rollout_percent for r in repo.releases()}

    assert cli_main([*base, "rollout", "0.3.0", "40", "--keys", str(keys)]) == 0
    assert signed() == {"0.2.0": 10, "0.3.0": 40}
    capsys.readouterr()
    assert cli_main([*base, "rollout", "0.3.0", "150", "--keys", str(keys)]) == 1
    assert "rollout_percent must be a whole number 0..100" in capsys.readouterr().err
    assert signed() == {"0.2.0": 10, "0.3.0": 40}  # the refusal changed nothing

    assert cli_main([*base, "policy", "pinned", "--pin", "0.9.9", "--keys", str(keys)]) == 1
    assert "release 0.9.9 is not published" in capsys.readouterr().err
    assert cli_main([*base, "policy", "pinned", "--pin", "0.2.0", "--keys", str(keys)]) == 0
    assert signed() == {"0.2.0": 100, "0.3.0": 0}
    assert cli_main([*base, "policy", "off", "--keys", str(keys)]) == 0
    assert signed() == {"0.2.0": 0, "0.3.0": 0}
    assert cli_main([*base, "policy", "rollout", "--keys", str(keys)]) == 0
    assert signed() == {"0.2.0": 10, "0.3.0": 40}  # the admin's shares come back

    policy = _audits(data, "release.policy")
    assert [(u, o, t) for u, o, t, _ in policy] == [
        ("cli", "denied", "0.9.9"),
        ("cli", "allowed", "0.2.0"),
        ("cli", "allowed", ""),
        ("cli", "allowed", ""),
    ]
    pinned, _ = json.JSONDecoder().raw_decode(policy[1][3])  # the CLI appends os_user=…
    assert pinned["before"] == {"mode": "rollout", "pin": ""}
    assert pinned["after"] == {"mode": "pinned", "pin": "0.2.0"}
    rollouts = [(u, o, t) for u, o, t, _ in _audits(data, "release.publish")]
    assert ("cli", "allowed", "0.3.0") in rollouts and ("cli", "denied", "0.3.0") in rollouts
