"""Bad input on an agent PC shows on the fleet page (``GET /api/admin/fleet``):

- a refused per-agent enrolment CODE (``POST /api/recorders/enroll``) is a refused-PC row named by
  the host and OS user the recorder sends, with the reason, until that host enrols;
- the recorder's own problem (config, wrong URL, ...), reported by the agent's desktop
  (``POST /api/agent/recorder-problems``), is a "problem" row first in the fleet until the desktop
  reports it cleared. Validated, person logins only (refusals audited), rate-limited per login."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from recorder_service import host_identity
from recorder_service.credentials import TokenStore
from recorder_service.device_session import enrol_device
from recorder_service.errors import CredentialsError
from recorder_service.main import _enroll
from server.api.app import create_app
from server.services.recorder_problems import LIMIT_REPORTS, ReportLimiter
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"
URL = "/api/agent/recorder-problems"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "sup2", PASSWORD, "supervisor", supervises=["Green"])
        create_user(s, "eva", PASSWORD, "evaluator", supervises=["Blue"])
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
        create_user(s, "agent2", PASSWORD, "agent", team="Blue")
    with TestClient(app) as c:
        yield c


def auth(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def new_code(http: TestClient, admin: dict[str, str], username: str = "agent1") -> str:
    r = http.post("/api/admin/recorders/enrolments", headers=admin, json={"username": username})
    assert r.status_code == 201, r.text
    code: str = r.json()["code"]
    return code


def enroll(http: TestClient, code: str, host: str = "", os_user: str = "") -> Any:
    return http.post("/api/recorders/enroll", json={"code": code, "hostname": host, "os_user": os_user})


def fleet(http: TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    r = http.get(f"/api/admin/fleet{query}", headers=headers)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["recorders"]
    return rows


def sessions(http: TestClient) -> Any:
    app: Any = http.app
    return app.state.ctx.sessions


def audits(http: TestClient, action: str) -> list[models.AuditRecord]:
    with session_scope(sessions(http)) as s:
        rows = list(
            s.execute(select(models.AuditRecord).where(models.AuditRecord.action == action)).scalars()
        )
        s.expunge_all()
    return rows


def report(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hostname": "pc-7",
        "os_user": "jdoe",
        "kind": "config",
        "message": "recorder.toml: unknown key 'fsp' (did you mean 'fps'?)",
        "occurred_at": "2026-12-05T09:00:00Z",
        "recorder_version": "1.4.0",
    }
    body.update(overrides)
    return body


class _Borrowed:
    """``with httpx.Client(...) as c`` in the recorder, answered by the test's app."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    def __enter__(self) -> TestClient:
        return self.http

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None


def test_a_refused_enrolment_code_names_its_host_on_the_fleet_until_it_enrols(client: TestClient) -> None:
    admin = auth(client, "admin")
    used, expired = new_code(client, admin), new_code(client, admin)
    assert enroll(client, used, "pc-ok").status_code == 200
    with session_scope(sessions(client)) as s:
        s.execute(
            update(models.RecorderEnrolment)
            .where(models.RecorderEnrolment.used_at.is_(None))
            .values(expires_at=1)
        )
    assert enroll(client, used, "pc-used", "jdoe").status_code == 401
    assert enroll(client, expired, "pc-expired", "asmith").status_code == 401
    assert enroll(client, "NOPE0-NOPE0-NOPE0-NOPE0-NOPE0", "pc-unknown").status_code == 401

    rows = {r["host"]: r for r in fleet(client, admin, "?status=enrol_refused")}
    assert set(rows) == {"pc-used", "pc-expired", "pc-unknown"}
    assert rows["pc-used"]["problem_text"] == "enrolment refused: code already used"
    assert rows["pc-used"]["agent"] == "jdoe"
    assert rows["pc-expired"]["problem_text"] == "enrolment refused: code expired"
    assert rows["pc-expired"]["last_error"].startswith("this enrolment code has expired")
    assert f"code {expired[:5]}…" in rows["pc-expired"]["last_error"]
    assert rows["pc-unknown"]["problem_text"] == "enrolment refused: unknown code"
    # The server's message only where it adds to the reason (the page shows both, joined).
    assert rows["pc-unknown"]["last_error"].startswith("code NOPE0…, 1 attempt from "), rows
    assert rows["pc-used"]["last_error"].startswith(
        "this enrolment code was already used; ask IT for a new one — "
    )
    assert expired not in str(rows) and expired.replace("-", "") not in str(rows)  # never the secret
    # Audited as before.
    assert len([a for a in audits(client, "recorder.enroll") if a.outcome == "denied"]) == 3

    # The host enrols with a fresh code: its row is gone, the others stay.
    assert enroll(client, new_code(client, admin), "pc-expired", "asmith").status_code == 200
    assert {r["host"] for r in fleet(client, admin, "?status=enrol_refused")} == {"pc-used", "pc-unknown"}

    # Over-long or control-character host names are refused before any code is looked at.
    assert enroll(client, "X", "h" * 201).status_code == 422
    assert enroll(client, "X", "pc\n1").status_code == 422


def test_the_recorder_sends_its_host_and_os_user_when_it_enrols(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``tandem-recorder login --enroll-code`` and the device enrolment send, end to end."""
    monkeypatch.setattr(httpx, "Client", lambda **_: _Borrowed(client))
    admin = auth(client, "admin")
    assert host_identity.os_user()  # this test needs a named account to find
    with pytest.raises(CredentialsError, match="unknown enrolment code"):
        _enroll("http://testserver", "BADC0-DE000-00000-00000-00000", TokenStore(tmp_path / "keys"))
    with pytest.raises(CredentialsError, match="unknown enrolment token"):
        enrol_device("http://testserver", "tet_nosuchtoken0000", hostname="pc-device")
    rows = {r["host"]: r for r in fleet(client, admin, "?status=enrol_refused")}
    assert rows[host_identity.hostname()]["refusal"]["os_user"] == host_identity.os_user()
    assert rows[host_identity.hostname()]["problem_text"] == "enrolment refused: unknown code"
    assert rows["pc-device"]["refusal"]["os_user"] == host_identity.os_user()


def test_a_reported_problem_is_first_on_the_fleet_until_the_desktop_clears_it(client: TestClient) -> None:
    admin, agent = auth(client, "admin"), auth(client, "agent1")
    assert enroll(client, new_code(client, admin, "agent2"), "pc-quiet").status_code == 200  # never seen
    assert enroll(client, "NOPE0-NOPE0-NOPE0-NOPE0-NOPE0", "pc-refused").status_code == 401
    assert client.post(URL, headers=agent, json=report()).status_code == 204

    rows = fleet(client, admin)
    assert [r["status"] for r in rows] == ["problem", "enrol_refused", "never_seen"]
    row = rows[0]
    assert row["host"] == "pc-7" and row["agent"] == "agent1" and row["team"] == "Blue"
    assert row["problem_text"] == "recorder not running: configuration error"
    assert row["last_error"] == "recorder.toml: unknown key 'fsp' (did you mean 'fps'?)"
    assert row["report"]["os_user"] == "jdoe" and row["version"] == "1.4.0"
    assert row["last_seen"] == 1796461200.0  # occurred_at, 2026-12-05T09:00:00Z
    assert [r["host"] for r in fleet(client, admin, "?status=problem")] == ["pc-7"]
    # Supervisors see the reports of their teams' agents only.
    assert [r["status"] for r in fleet(client, auth(client, "sup"))] == ["problem", "never_seen"]
    assert [r["status"] for r in fleet(client, auth(client, "sup2"))] == []

    # The latest report wins: one row per host and OS user.
    later = report(kind="unreachable", message="cannot reach https://tandem.example:8443: refused")
    assert client.post(URL, headers=agent, json=later).status_code == 204
    problems = fleet(client, admin, "?status=problem")
    assert (
        len(problems) == 1 and problems[0]["problem_text"] == "recorder not running: cannot reach the server"
    )

    # The desktop sees the recorder running again: the PC leaves the problem list.
    assert client.post(URL, headers=agent, json=report(kind="cleared", message="")).status_code == 204
    assert fleet(client, admin, "?status=problem") == []
    reported = [a for a in audits(client, "recorder.problem_reported") if a.outcome == "allowed"]
    assert [(a.username, a.target_id) for a in reported] == [("agent1", "pc-7")] * 2
    assert "config on pc-7 (OS user jdoe)" in reported[0].detail
    assert [a.target_id for a in audits(client, "recorder.problem_cleared")] == ["pc-7"]


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "broken"},
        {"message": "x" * 501},
        {"hostname": ""},
        {"hostname": "pc\x1b[31m"},
        {"os_user": "u" * 101},
        {"occurred_at": "yesterday"},
        {"recorder_version": "v" * 51},
        {"extra": "field"},
    ],
)
def test_a_bad_report_is_422_and_stores_nothing(client: TestClient, bad: dict[str, Any]) -> None:
    r = client.post(URL, headers=auth(client, "agent1"), json=report(**bad))
    assert r.status_code == 422, r.text
    assert fleet(client, auth(client, "admin"), "?status=problem") == []


def test_a_recorder_token_no_token_or_another_role_is_refused_and_audited(client: TestClient) -> None:
    admin = auth(client, "admin")
    recorder_token = enroll(client, new_code(client, admin)).json()["token"]
    r = client.post(URL, headers={"Authorization": f"Bearer {recorder_token}"}, json=report())
    assert r.status_code == 403 and r.json()["error"] == "recorder_token_not_allowed"
    assert client.post(URL, json=report()).status_code == 401
    assert client.post(URL, headers=auth(client, "eva"), json=report()).status_code == 403
    denied = [a for a in audits(client, "access.denied") if a.target_id == URL]
    assert sorted(a.username for a in denied) == ["agent1", "eva"]
    assert [a.target_id for a in audits(client, "auth.rejected")] == [URL]
    assert fleet(client, admin, "?status=problem") == []
    # A supervisor or admin logged in on a desktop may report.
    assert client.post(URL, headers=auth(client, "sup"), json=report(hostname="pc-sup")).status_code == 204


def test_a_login_reporting_in_a_loop_is_rate_limited_and_audited_once(client: TestClient) -> None:
    agent = auth(client, "agent1")
    for i in range(LIMIT_REPORTS):
        assert client.post(URL, headers=agent, json=report(message=f"try {i}")).status_code == 204
    for _ in range(3):
        r = client.post(URL, headers=agent, json=report(message="again"))
        assert r.status_code == 429 and r.json()["error"] == "too_many_reports"
    denied = [a for a in audits(client, "recorder.problem_reported") if a.outcome == "denied"]
    assert len(denied) == 1 and "rate-limited" in denied[0].detail
    assert (
        fleet(client, auth(client, "admin"), "?status=problem")[0]["last_error"] == f"try {LIMIT_REPORTS - 1}"
    )
    # Another login is not held up by it.
    assert client.post(URL, headers=auth(client, "agent2"), json=report(hostname="pc-8")).status_code == 204


def test_report_limiter_window() -> None:
    limiter = ReportLimiter(limit=2, window=10.0)
    assert [limiter.check("u", t) for t in (0.0, 1.0, 2.0, 3.0)] == ["ok", "ok", "limited_first", "limited"]
    assert limiter.check("v", 3.0) == "ok"  # per login
    assert limiter.check("u", 10.5) == "ok"  # the first report left the window
    assert limiter.check("u", 11.5) == "ok"
    assert limiter.check("u", 11.9) == "limited"  # announced 9.9 s ago: not audited again
    assert limiter.check("u", 12.5) == "limited_first"  # a new window: audited once more
    assert limiter.check("u", 21.6) == "ok"


def test_revision_0018_adds_and_removes_the_problems_table(tmp_path: Path) -> None:
    from alembic import command

    from server.store.db import alembic_config

    path = tmp_path / "r.db"
    url = f"sqlite:///{path}"

    def tables() -> set[str]:
        with sqlite3.connect(path) as db:
            return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    command.upgrade(alembic_config(url), "0018")
    assert "recorder_problems" in tables()
    command.downgrade(alembic_config(url), "0017")
    assert "recorder_problems" not in tables() and "enrolment_refusals" in tables()
    command.upgrade(alembic_config(url), "0018")
    assert "recorder_problems" in tables()
