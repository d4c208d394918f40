"""The recorder policy through every door — API (bearer), web (session cookie) and CLI — one
service: the same validation, the same answer, the same audit; admins only; and a stored change
reaches a connected recorder at once (API, web) or within the server's re-read interval (CLI).

TestClient for the HTTP doors; a real uvicorn and a WebSocket client for the push."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from server.api.app import create_app
from server.cli import main as cli_main
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import parse_envelope
from tests.integration.live_server import LiveServer

PASSWORD = "correct-horse-battery"
ORIGIN = {"Origin": "http://testserver"}


def make_app(data_dir: Path) -> FastAPI:
    app = create_app(load_settings(None, data_dir=data_dir, sip_enabled=False, screen_fps=4.0))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "comp", PASSWORD, "compliance")
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
    return app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(tmp_path / "data")) as c:
        yield c


def bearer(http: TestClient | httpx.Client, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audit_rows(app: Any, action: str) -> list[models.AuditRecord]:
    with session_scope(app.state.ctx.sessions) as s:
        query = select(models.AuditRecord).where(models.AuditRecord.action == action)
        return list(s.execute(query.order_by(models.AuditRecord.id)).scalars())


def test_admin_reads_and_changes_the_policy_and_bad_values_are_422_naming_the_field(
    client: TestClient,
) -> None:
    admin = bearer(client, "admin")
    r = client.get("/api/admin/recorder-policy", headers=admin)
    assert r.status_code == 200 and r.json()["fps"] == 4.0  # the server's screen_fps until changed
    wanted = {
        "fps": 2,
        "segment_seconds": 30,
        "monitors": "primary",
        "max_width": 1280,
        "masking": [
            {"name": "cards", "kind": "window", "title": "card|payment", "action": "pause"},
            {"name": "clock", "kind": "region", "rect": [0, 0, 200, 40]},
        ],
        "upload_window": ["18:00", "07:00"],
        "bandwidth_kbps": 512,
        "endpoint_audio": True,
        "spool_min_free_percent": 15,
        "spool_max_mb": 2048,
        "heartbeat_seconds": 10,
    }
    r = client.put("/api/admin/recorder-policy", headers=admin, json=wanted)
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["masking"][1]["rect"] == [0, 0, 200, 40] and stored["upload_window"] == ["18:00", "07:00"]
    assert client.get("/api/admin/recorder-policy", headers=admin).json() == stored
    for bad, field in (
        ({**wanted, "fps": 60}, "fps: between 0.2 and 30"),
        ({**wanted, "masking": [{"kind": "region", "rect": [0, 0, -1, 5]}]}, "masking[0].rect"),
        ({**wanted, "upload_window": ["6pm", "7am"]}, "upload_window"),
        ({**wanted, "heartbeat": 5}, "heartbeat: unknown field"),
    ):
        r = client.put("/api/admin/recorder-policy", headers=admin, json=bad)
        assert r.status_code == 422 and r.json()["error"] == "invalid_recorder_policy", r.text
        assert r.json()["message"].startswith(field), r.json()
    assert client.get("/api/admin/recorder-policy", headers=admin).json() == stored  # unchanged
    rows = audit_rows(client.app, "policy.recorder")
    assert [r.outcome for r in rows] == ["allowed", "denied", "denied", "denied", "denied"]
    assert (
        json.loads(rows[0].detail)["after"]["fps"] == 2.0
        and json.loads(rows[0].detail)["before"]["fps"] == 4.0
    )


@pytest.mark.parametrize("user", ["agent1", "sup", "comp"])
def test_other_roles_are_refused_and_audited(client: TestClient, user: str) -> None:
    headers = bearer(client, user)
    r = client.get("/api/admin/recorder-policy", headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = client.put("/api/admin/recorder-policy", headers=headers, json={"fps": 1})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    for action in ("policy.recorder.read", "policy.recorder"):
        [row] = audit_rows(client.app, action)
        assert row.outcome == "denied" and row.username == user
    admin = bearer(client, "admin")
    assert client.get("/api/admin/recorder-policy", headers=admin).json()["fps"] == 4.0


def test_web_api_and_cli_give_the_same_answer_and_the_same_audit(client: TestClient, tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    api = bearer(client, "admin")
    r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD, "client": "web"})
    assert r.status_code == 200  # the session cookie is in the client's jar from now on
    bad = {"fps": 5, "monitors": "left"}
    r_api = client.put("/api/admin/recorder-policy", headers=api, json=bad)
    r_web = client.put("/api/admin/recorder-policy", headers=ORIGIN, json=bad)
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad))
    assert cli_main(["--data-dir", data_dir, "recorder-policy", "set", "--json", str(bad_file)]) == 1
    assert r_api.status_code == r_web.status_code == 422
    assert r_api.json() == r_web.json()
    denied = audit_rows(client.app, "policy.recorder")
    assert [row.outcome for row in denied] == ["denied"] * 3
    assert len({row.detail.split(" os_user=")[0] for row in denied}) == 1  # the same reason, each door
    assert [row.username for row in denied] == ["admin", "admin", "cli"]
    # A valid change from each door: each audited, each read back by the others.
    r = client.put("/api/admin/recorder-policy", headers=ORIGIN, json={"fps": 3})
    assert r.status_code == 200 and r.json()["fps"] == 3.0
    assert (
        cli_main(
            [
                "--data-dir",
                data_dir,
                "recorder-policy",
                "set",
                "--set",
                "fps=1.5",
                "--set",
                "monitors=primary",
            ]
        )
        == 0
    )
    got = client.get("/api/admin/recorder-policy", headers=api).json()
    assert got["fps"] == 1.5 and got["monitors"] == "primary"
    allowed = [row for row in audit_rows(client.app, "policy.recorder") if row.outcome == "allowed"]
    assert [row.username for row in allowed] == ["admin", "cli"]
    assert json.loads(allowed[1].detail.split(" os_user=")[0]) == {
        "before": {"fps": 3.0, "monitors": "all"},
        "after": {"fps": 1.5, "monitors": "primary"},
    }


def test_cli_show_prints_the_policy_in_force(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client.put("/api/admin/recorder-policy", headers=bearer(client, "admin"), json={"segment_seconds": 20})
    assert cli_main(["--data-dir", str(tmp_path / "data"), "recorder-policy", "show"]) == 0
    assert json.loads(capsys.readouterr().out)["segment_seconds"] == 20.0
    assert cli_main(["--data-dir", str(tmp_path / "data"), "recorder-policy", "set", "--set", "fps"]) == 1
    assert "expected key=value" in capsys.readouterr().err


# -- delivery to recorders ------------------------------------------------------------------------
def recorder_token(http: httpx.Client, username: str = "agent1") -> str:
    r = http.post(
        "/api/admin/recorders/enrolments", headers=bearer(http, "admin"), json={"username": username}
    )
    r = http.post("/api/recorders/enroll", json={"code": r.json()["code"]})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def next_of(ws: ClientConnection, kind: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {kind} within {timeout} s"
        env = parse_envelope(ws.recv(timeout=remaining))
        if env.type == kind:
            return env.data


def test_a_change_reaches_the_connected_recorder_from_the_api_at_once_and_from_the_cli(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path / "data")
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        token = recorder_token(http)
        ws_url = url.replace("http", "ws") + "/api/events?client=recorder"
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            next_of(ws, "state", 10)
            assert next_of(ws, "recorder.policy", 5)["fps"] == 4.0  # the policy in force, on connecting
            r = http.put(
                "/api/admin/recorder-policy",
                headers=bearer(http, "admin"),
                json={"fps": 2, "heartbeat_seconds": 7},
            )
            assert r.status_code == 200
            pushed = next_of(ws, "recorder.policy", 5)
            assert pushed == r.json()
            assert (
                cli_main(
                    [
                        "--data-dir",
                        str(tmp_path / "data"),
                        "recorder-policy",
                        "set",
                        "--set",
                        "max_width=1920",
                    ]
                )
                == 0
            )
            pushed = next_of(ws, "recorder.policy", 20)  # the server re-reads the stored policy every 5 s
            assert pushed["max_width"] == 1920 and pushed["fps"] == 2.0
