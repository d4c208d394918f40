"""The REST API in process (SIP off): login, tokens, roles, sampling policy, audit, uploads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.security.tokens import new_token, token_digest
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
    with TestClient(app) as c:
        yield c


def login(http: TestClient, user: str, **extra: object) -> str:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def audit(client: TestClient) -> list[dict[str, object]]:
    token = login(client, "admin")
    r = client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    return list(r.json())


def test_wrong_password_is_refused_and_audited(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "agent1", "password": "nope-nope-nope"})
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_credentials", "message": "wrong username or password"}
    r = client.post("/api/auth/login", json={"username": "ghost", "password": "nope-nope-nope"})
    assert r.status_code == 401
    denied = [a for a in audit(client) if a["action"] == "auth.login" and a["outcome"] == "denied"]
    assert {a["username"] for a in denied} == {"agent1", "ghost"}


def test_forged_and_expired_tokens_get_401(client: TestClient) -> None:
    r = client.get("/api/me", headers={"Authorization": "Bearer tdm_forgedforgedforgedforgedforged"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    expired = new_token()
    with session_scope(client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        s.add(
            models.ApiToken(
                token_hash=token_digest(expired),
                user_id=1,
                client="api",
                created_at=0,
                expires_at=time.time() - 1,
            )
        )
    r = client.get("/api/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert sum(1 for a in audit(client) if a["action"] == "auth.rejected") >= 2


def test_agent_desktop_login_binds_dn_until_logout(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "agent1", "password": PASSWORD, "client": "desktop"})
    assert r.status_code == 400 and r.json()["error"] == "dn_required"
    token = login(client, "agent1", client="desktop", dn="1001")
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["dn"] == "1001" and me["role"] == "agent"
    assert client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    token = login(client, "agent1", client="desktop", dn="1002")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()["dn"] == "1002"


def test_sampling_policy_admin_only_and_validated(client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {login(client, 'admin')}"}
    sup = {"Authorization": f"Bearer {login(client, 'sup')}"}
    assert client.get("/api/admin/sampling", headers=sup).status_code == 403
    r = client.put("/api/admin/sampling", headers=admin, json={"percentage": 0, "team_overrides": {}})
    assert r.status_code == 200 and r.json()["percentage"] == 0
    r = client.put("/api/admin/sampling", headers=admin, json={"percentage": 120, "team_overrides": {}})
    assert r.status_code == 422 and r.json()["error"] == "invalid_percentage"
    assert client.get("/api/admin/sampling", headers=admin).json()["percentage"] == 0
    assert any(a["action"] == "access.denied" for a in audit(client))


def test_upload_for_unknown_interaction_is_refused_and_nothing_stored(
    client: TestClient, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {login(client, 'admin')}"}
    r = client.post("/api/admin/recorders/enrolments", headers=admin, json={"username": "agent1"})
    code = r.json()["code"]
    recorder = client.post("/api/recorders/enroll", json={"code": code}).json()["token"]
    headers = {
        "Authorization": f"Bearer {recorder}",
        "X-Tandem-Started-At": "1",
        "X-Tandem-Sha256": "0" * 64,
    }
    r = client.put("/api/interactions/does-not-exist/screen", headers=headers, content=b"x" * 1000)
    assert r.status_code == 404 and r.json()["error"] == "unknown_interaction"
    storage = tmp_path / "data" / "storage"
    assert not any(p.is_file() for p in storage.rglob("*"))
    assert (
        not any((tmp_path / "data" / "tmp").glob("upload-*"))
        if (tmp_path / "data" / "tmp").exists()
        else True
    )


def test_audit_log_is_append_only(client: TestClient) -> None:
    audit(client)
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    with (
        pytest.raises(DatabaseError, match="append-only"),
        session_scope(
            client.app.state.ctx.sessions  # type: ignore[attr-defined]
        ) as s,
    ):
        s.execute(text("DELETE FROM audit_log"))
