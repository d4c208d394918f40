"""Refused device enrolments on the fleet (``GET /api/admin/fleet``): a PC whose enrolment token is
expired, revoked, used up or unknown is a problem row ("enrolment refused: token expired") with its
host, OS user, source address and token prefix, first in the fleet, filterable, for admins only;
gone once the host enrols. Bounded per host, by age and in total; a source refused too often is
rate-limited (429), audited once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from server.api.app import create_app
from server.services import enrolment_refusals
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
    with TestClient(app) as c:
        yield c


def auth(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def new_token(http: TestClient, headers: dict[str, str], max_uses: int = 1) -> dict[str, Any]:
    r = http.post(
        "/api/admin/devices/enrolment-tokens",
        headers=headers,
        json={"scope": "team:Blue", "ttl_hours": 1, "max_uses": max_uses},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def enrol(http: TestClient, token: str, host: str, os_user: str = "") -> int:
    r = http.post("/api/devices/enroll", json={"token": token, "hostname": host, "os_user": os_user})
    return r.status_code


def sessions(http: TestClient) -> Any:
    app: Any = http.app
    return app.state.ctx.sessions


def test_refused_enrolments_are_problem_rows_first_until_the_host_enrols(client: TestClient) -> None:
    admin = auth(client, "admin")
    expired, revoked, good = new_token(client, admin), new_token(client, admin), new_token(client, admin)
    with session_scope(sessions(client)) as s:
        s.execute(
            update(models.EnrolmentToken)
            .where(models.EnrolmentToken.id == expired["id"])
            .values(expires_at=1)
        )
    assert (
        client.post(f"/api/admin/devices/enrolment-tokens/{revoked['id']}/revoke", headers=admin).status_code
        == 204
    )
    assert enrol(client, expired["token"], "pc-expired", "jdoe") == 401
    assert enrol(client, expired["token"], "pc-expired", "jdoe") == 401
    assert enrol(client, revoked["token"], "pc-revoked") == 401
    assert enrol(client, "tet_nosuchtoken0000", "pc-unknown") == 401

    fleet = client.get("/api/admin/fleet", headers=admin).json()
    rows = {r["host"]: r for r in fleet["recorders"]}
    assert set(rows) == {"pc-expired", "pc-revoked", "pc-unknown"}
    assert [r["status"] for r in fleet["recorders"]] == ["enrol_refused"] * 3
    row = rows["pc-expired"]
    assert row["problem_text"] == "enrolment refused: token expired"
    assert row["agent"] == "jdoe" and row["problems"] == ["enrol_refused"]
    assert row["refusal"]["attempts"] == 2 and row["refusal"]["token_id"] == expired["id"]
    assert row["refusal"]["token_prefix"] == expired["token"][:8] and row["refusal"]["remote_addr"]
    assert expired["token"] not in str(fleet)  # the secret itself is never shown
    assert rows["pc-revoked"]["problem_text"] == "enrolment refused: token revoked"
    assert rows["pc-unknown"]["problem_text"] == "enrolment refused: unknown token"
    assert rows["pc-unknown"]["refusal"]["token_id"] is None
    assert fleet["by_status"] == {"enrol_refused": 3} and fleet["with_problems"] == 3

    # Problems first: a refused PC sorts before a PC that merely never connected.
    assert enrol(client, good["token"], "pc-good") == 200
    r = client.post("/api/admin/recorders/enrolments", headers=admin, json={"username": "agent1"})
    assert client.post("/api/recorders/enroll", json={"code": r.json()["code"]}).status_code == 200
    statuses = [r["status"] for r in client.get("/api/admin/fleet", headers=admin).json()["recorders"]]
    assert statuses == ["enrol_refused"] * 3 + ["never_seen"]

    # The filter keeps only the refused rows; a search by host narrows it.
    only = client.get("/api/admin/fleet?status=enrol_refused&q=revoked", headers=admin).json()
    assert [r["host"] for r in only["recorders"]] == ["pc-revoked"]

    # Supervisors do not see PCs that belong to no team yet.
    sup = client.get("/api/admin/fleet", headers=auth(client, "sup")).json()
    assert [r["status"] for r in sup["recorders"]] == ["never_seen"]

    # The host enrols with a fresh token: its row is gone.
    fresh = new_token(client, admin)
    assert enrol(client, fresh["token"], "pc-expired", "jdoe") == 200
    hosts = {
        r["host"]
        for r in client.get("/api/admin/fleet?status=enrol_refused", headers=admin).json()["recorders"]
    }
    assert hosts == {"pc-revoked", "pc-unknown"}


def test_refusals_are_bounded_per_host_by_age_and_a_flooding_source_is_rate_limited(
    client: TestClient,
) -> None:
    for i in range(enrolment_refusals.LIMIT_REFUSALS):
        assert enrol(client, f"tet_bad{i}", "pc-flood") == 401
    # The source is now turned away before its token is looked at.
    r = client.post("/api/devices/enroll", json={"token": "tet_again", "hostname": "pc-flood"})
    assert r.status_code == 429 and r.json()["error"] == "too_many_refused_enrolments", r.text
    with session_scope(sessions(client)) as s:
        kept = s.execute(
            select(func.count())
            .select_from(models.EnrolmentRefusal)
            .where(models.EnrolmentRefusal.hostname == "pc-flood")
        ).scalar_one()
        limited = s.execute(
            select(func.count())
            .select_from(models.AuditRecord)
            .where(models.AuditRecord.detail.contains("rate-limited"))
        ).scalar_one()
    assert kept == enrolment_refusals.PER_HOST
    assert limited == 1  # audited once, not per attempt
    admin = auth(client, "admin")
    row = client.get("/api/admin/fleet", headers=admin).json()["recorders"][0]
    assert row["host"] == "pc-flood" and row["refusal"]["attempts"] == enrolment_refusals.PER_HOST

    # By age: an old refusal is neither listed nor kept once another refusal arrives.
    with session_scope(sessions(client)) as s:
        s.execute(update(models.EnrolmentRefusal).values(at=1.0))
    assert client.get("/api/admin/fleet?status=enrol_refused", headers=admin).json()["recorders"] == []
    with session_scope(sessions(client)) as s:
        enrolment_refusals.record(
            s,
            hostname="pc-other",
            os_user="",
            remote_addr="10.0.0.9",
            token="tet_x",
            reason="invalid_enrolment_token",
            message="unknown",
        )
    with session_scope(sessions(client)) as s:
        hosts = s.execute(select(models.EnrolmentRefusal.hostname)).scalars().all()
    assert hosts == ["pc-other"]


def test_the_total_is_bounded_against_invented_host_names(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enrolment_refusals, "MAX_ROWS", 5)
    with session_scope(sessions(client)) as s:
        for i in range(12):
            enrolment_refusals.record(
                s,
                hostname=f"pc-{i}",
                os_user="",
                remote_addr="",
                token="tet_x",
                reason="invalid_enrolment_token",
                message="",
                now=1000.0 + i,
            )
    with session_scope(sessions(client)) as s:
        hosts = (
            s.execute(select(models.EnrolmentRefusal.hostname).order_by(models.EnrolmentRefusal.id))
            .scalars()
            .all()
        )
    assert hosts == [f"pc-{i}" for i in range(7, 12)]


def test_source_limiter_window() -> None:
    limiter = enrolment_refusals.SourceLimiter(limit=2, window=10.0)
    assert not limiter.blocked("a", 0.0)
    limiter.refused("a", 0.0)
    limiter.refused("a", 1.0)
    assert limiter.blocked("a", 5.0) and not limiter.blocked("b", 5.0)
    assert not limiter.blocked("a", 10.5)  # the first refusal left the window


def test_revision_0016_adds_and_removes_the_refusals_table(tmp_path: Path) -> None:
    import sqlite3

    from alembic import command

    from server.store.db import alembic_config

    path = tmp_path / "r.db"
    url = f"sqlite:///{path}"

    def tables() -> set[str]:
        with sqlite3.connect(path) as db:
            return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    command.upgrade(alembic_config(url), "0016")
    assert "enrolment_refusals" in tables()
    command.downgrade(alembic_config(url), "0015")
    assert "enrolment_refusals" not in tables() and "devices" in tables()
    command.upgrade(alembic_config(url), "0016")
    assert "enrolment_refusals" in tables()
