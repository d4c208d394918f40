"""The admin's release API in process (SIP off): upload, rollout, the fleet-wide pin and off
switch (server/services/release_admin.py). What the recorders act on is the signed offer, so
each step is checked in the signed TUF targets as well as in the API's answer; every change is
audited with before/after and every refusal is audited and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.services.releases import ReleaseRepository, init_keys
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, ReleaseRepository]]:
    keys, data = tmp_path / "keys", tmp_path / "data"
    init_keys(keys)
    repo = ReleaseRepository(data / "releases")
    repo.create(keys)
    app = create_app(load_settings(None, data_dir=data, sip_enabled=False, release_keys_dir=keys))
    with TestClient(app) as c, session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor")
        s.commit()
        yield c, repo


def login(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def signed(repo: ReleaseRepository) -> dict[str, int]:
    return {r.version: r.rollout_percent for r in repo.releases()}


def audits(http: TestClient, action: str) -> list[tuple[str, str, str, str]]:
    with session_scope(http.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        rows = s.query(models.AuditRecord).filter_by(action=action).order_by(models.AuditRecord.seq).all()
        return [(r.username, r.target_id, r.outcome, r.detail) for r in rows]


def test_pin_and_off_switch_resign_the_offers_and_keep_the_admins_percentages(
    env: tuple[TestClient, ReleaseRepository],
) -> None:
    http, repo = env
    admin = login(http, "admin")
    for version, percent in (("0.2.0", 20), ("0.3.0", 5)):
        r = http.put(
            f"/api/admin/releases/{version}",
            params={"rollout_percent": percent},
            content=f"bundle {version}".encode(),
            headers=admin,
        )
        assert r.status_code == 200, r.text
    listed = http.get("/api/admin/releases", headers=admin).json()
    assert listed["policy"] == {"mode": "rollout", "pin": ""} and listed["signing_keys"] is True
    assert [(x["version"], x["rollout_percent"], x["uploaded_by"]) for x in listed["releases"]] == [
        ("0.2.0", 20, "admin"),
        ("0.3.0", 5, "admin"),
    ]
    assert all(isinstance(x["uploaded_at"], float) for x in listed["releases"])

    r = http.put("/api/admin/release-policy", json={"mode": "pinned", "pin": "0.2.0"}, headers=admin)
    assert r.status_code == 200 and r.json() == {"mode": "pinned", "pin": "0.2.0"}, r.text
    assert signed(repo) == {"0.2.0": 100, "0.3.0": 0}
    # while pinned, a new rollout share is kept for later; the signed offer stays at the pin's
    r = http.patch("/api/admin/releases/0.3.0", json={"rollout_percent": 60}, headers=admin)
    assert (r.json()["rollout_percent"], r.json()["chosen_percent"]) == (0, 60), r.text
    assert signed(repo) == {"0.2.0": 100, "0.3.0": 0}

    assert http.put("/api/admin/release-policy", json={"mode": "off"}, headers=admin).status_code == 200
    assert signed(repo) == {"0.2.0": 0, "0.3.0": 0}
    assert http.put("/api/admin/release-policy", json={"mode": "rollout"}, headers=admin).status_code == 200
    assert signed(repo) == {"0.2.0": 20, "0.3.0": 60}

    pinned = [json.loads(d) for u, _, o, d in audits(http, "release.policy") if o == "allowed"]
    assert pinned[0] == {
        "before": {"mode": "rollout", "pin": ""},
        "after": {"mode": "pinned", "pin": "0.2.0"},
        "offers": {"0.3.0": {"before": 5, "after": 0}, "0.2.0": {"before": 20, "after": 100}},
    }
    assert [p["after"]["mode"] for p in pinned] == ["pinned", "off", "rollout"]
    rollout = [json.loads(d) for _, v, o, d in audits(http, "release.publish") if v == "0.3.0"]
    assert rollout[0]["before"] is None and rollout[0]["after"] == {
        "rollout_percent": 5,
        "offered_percent": 5,
    }
    assert rollout[1]["before"] == {"rollout_percent": 5, "offered_percent": 0}
    assert rollout[1]["after"] == {"rollout_percent": 60, "offered_percent": 0}


def test_refusals_are_audited_and_change_nothing(env: tuple[TestClient, ReleaseRepository]) -> None:
    http, repo = env
    admin, sup = login(http, "admin"), login(http, "sup")
    r = http.put("/api/admin/releases/0.2.0", params={"rollout_percent": 20}, content=b"x", headers=admin)
    assert r.status_code == 200, r.text
    refused = [
        (http.get("/api/admin/releases", headers=sup), 403, "only an administrator"),
        (http.put("/api/admin/release-policy", json={"mode": "off"}, headers=sup), 403,
         "only an administrator"),
        (http.put("/api/admin/release-policy", json={"mode": "pinned", "pin": "9.9"}, headers=admin), 404,
         "release 9.9 is not published: upload it first"),
        (http.put("/api/admin/release-policy", json={"mode": "never"}, headers=admin), 422,
         "mode must be one of rollout, pinned, off, got 'never'"),
        (http.patch("/api/admin/releases/0.2.0", json={"rollout_percent": 150}, headers=admin), 422,
         "rollout_percent must be a whole number 0..100, got 150"),
    ]  # fmt: skip
    for response, status, message in refused:
        assert response.status_code == status and response.json()["message"].startswith(message), (
            response.text
        )
    assert signed(repo) == {"0.2.0": 20}
    assert http.get("/api/admin/releases", headers=admin).json()["policy"]["mode"] == "rollout"
    denied = [(u, o) for u, _, o, _ in audits(http, "release.policy") + audits(http, "release.list")]
    assert sorted(denied) == [("admin", "denied"), ("admin", "denied"), ("sup", "denied"), ("sup", "denied")]
    assert [(u, o) for u, _, o, _ in audits(http, "release.publish")] == [
        ("admin", "allowed"),
        ("admin", "denied"),
    ]


def test_a_policy_without_a_release_repository_is_refused_in_words(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_keys(keys)
    app = create_app(
        load_settings(None, data_dir=tmp_path / "data", sip_enabled=False, release_keys_dir=keys)
    )
    with TestClient(app) as http:
        with session_scope(app.state.ctx.sessions) as s:
            create_user(s, "admin", PASSWORD, "admin")
            s.commit()
        admin = login(http, "admin")
        listed = http.get("/api/admin/releases", headers=admin).json()
        assert listed == {
            "releases": [],
            "policy": {"mode": "rollout", "pin": ""},
            "repository": False,
            "signing_keys": True,
        }
        r = http.put("/api/admin/release-policy", json={"mode": "off"}, headers=admin)
        assert r.status_code == 409 and r.json()["error"] == "no_release_repository", r.text
        assert "tandem-server releases init-repo" in r.json()["message"]
        assert [(u, o) for u, _, o, _ in audits(http, "release.policy")] == [("admin", "denied")]
