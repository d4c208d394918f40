"""HTTP hardening in process (SIP off): login throttling and the argon2 bound, Range edges through
the media route, token transport (no ?token=, WebSocket tickets, redacted access log, logout
closing sockets), CSRF on cookie-authenticated changes, security headers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.api import routes_auth
from server.api.app import create_app
from server.security import passwords
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


def ctx(http: TestClient) -> Any:
    return http.app.state.ctx  # type: ignore[attr-defined]


def login(http: TestClient, user: str, **extra: object) -> str:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_rows(http: TestClient, action: str) -> list[dict[str, Any]]:
    with session_scope(ctx(http).sessions) as s:
        rows = s.query(models.AuditRecord).filter_by(action=action).all()
        return [
            {"outcome": r.outcome, "username": r.username, "detail": r.detail, "target_id": r.target_id}
            for r in rows
        ]


# --- login throttling and the argon2 bound ---------------------------------------------------


def test_failed_logins_are_throttled_before_any_password_check(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = routes_auth.verify_password

    def counting(stored: str | None, password: str) -> bool:
        checks.append(password)
        return real(stored, password)

    monkeypatch.setattr(routes_auth, "verify_password", counting)
    wrong = {"username": "agent1", "password": "wrong-password-1"}
    for _ in range(5):
        assert client.post("/api/auth/login", json=wrong).status_code == 401
    r = client.post("/api/auth/login", json=wrong)  # the 6th failure starts the back-off
    assert r.status_code == 401
    assert len(checks) == 6
    r = client.post("/api/auth/login", json={"username": "agent1", "password": PASSWORD})
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "too_many_attempts"
    assert int(r.headers["Retry-After"]) >= 1
    assert len(checks) == 6, "a throttled login must not reach argon2"
    denied = [a for a in audit_rows(client, "auth.login") if a["outcome"] == "denied"]
    assert any("too many failed logins" in a["detail"] for a in denied)
    # Another user from the same address still gets in (the source allows more failures).
    assert client.post("/api/auth/login", json={"username": "sup", "password": PASSWORD}).status_code == 200


def test_success_resets_the_users_failures(client: TestClient) -> None:
    wrong = {"username": "agent1", "password": "wrong-password-1"}
    for _ in range(5):
        assert client.post("/api/auth/login", json=wrong).status_code == 401
    login(client, "agent1")
    for _ in range(5):  # five fresh free failures, not an immediate back-off
        assert client.post("/api/auth/login", json=wrong).status_code == 401


def test_login_refused_with_503_when_password_checks_are_saturated(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = passwords.Gate(concurrent=1, waiting=0, wait_seconds=30)
    monkeypatch.setattr(passwords, "_gate", gate)
    with gate.turn():  # the one slot is busy and nobody may wait
        r = client.post("/api/auth/login", json={"username": "agent1", "password": PASSWORD})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "busy" and r.headers["Retry-After"] == "1"
    assert any(a["detail"] == "server busy with other logins" for a in audit_rows(client, "auth.login"))
    login(client, "agent1")  # free again


# --- Range through the media route -------------------------------------------------------------


def stored_media(http: TestClient, data: bytes) -> str:
    """An ended interaction of agent1 with a voice file of ``data`` in storage."""
    context = ctx(http)
    interaction_id = str(uuid.uuid4())
    started = time.time() - 60
    source = context.settings.data_dir / f"{interaction_id}.wav"
    source.write_bytes(data)
    key = f"test/{interaction_id}/voice.wav"
    size = context.storage.put_file(key, source)
    with session_scope(context.sessions) as s:
        agent = s.query(models.User).filter_by(username="agent1").one()
        s.add(
            models.Interaction(
                id=interaction_id,
                call_id=f"call-{interaction_id}",
                dn="1001",
                agent_id=agent.id,
                caller="+15550123",
                callee="1001",
                state="done",
                started_at=started,
                ended_at=started + 10,
                screen_decision=False,
                screen_percentage=0,
                voice_state="stopped",
                screen_state="off",
            )
        )
        s.add(
            models.MediaFile(
                interaction_id=interaction_id,
                kind="voice",
                storage_key=key,
                content_type="audio/wav",
                size=size,
                sha256="0" * 64,
                started_at=started,
                created_at=started,
            )
        )
    return interaction_id


@pytest.mark.parametrize(
    ("range_header", "status", "body_slice", "content_range"),
    [
        ("bytes=-0", 416, None, "bytes */1000"),  # used to serve the whole file
        ("bytes=1000-", 416, None, "bytes */1000"),
        ("bytes=1_0-20", 200, slice(None), None),  # used to be served as bytes 10-20
        ("bytes=0-1,5-6", 200, slice(None), None),
        ("bytes=5-3", 200, slice(None), None),
        ("bytes=0-", 206, slice(0, 1000), "bytes 0-999/1000"),
        ("bytes=-500", 206, slice(500, 1000), "bytes 500-999/1000"),
        ("bytes=10-20", 206, slice(10, 21), "bytes 10-20/1000"),
    ],
)
def test_media_range_edges(
    client: TestClient,
    range_header: str,
    status: int,
    body_slice: slice | None,
    content_range: str | None,
) -> None:
    data = bytes(range(256)) * 3 + bytes(232)
    assert len(data) == 1000
    interaction_id = stored_media(client, data)
    r = client.get(
        f"/api/interactions/{interaction_id}/media/voice",
        headers={**bearer(login(client, "sup")), "Range": range_header},
    )
    assert r.status_code == status, r.text
    assert r.headers.get("Content-Range") == content_range
    if body_slice is not None:
        assert r.content == data[body_slice]
        assert r.headers["Content-Length"] == str(len(data[body_slice]))
