"""The recorder fleet: heartbeats sent on a recorder's event channel are stored (the latest per
recorder) and shown on ``GET /api/admin/fleet`` — problems first, offline after three missed
heartbeats, filters — to admins (all) and supervisors (their teams' agents); other roles refused
and audited. A real server (uvicorn) and WebSocket recorders."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from server.api.app import create_app
from server.services import recorder_fleet
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import Envelope, parse_envelope
from tandem_protocol.recorder_health import Heartbeat, UploadProgress
from tests.integration.live_server import LiveServer as LiveServer  # re-exported: tests import it from here

PASSWORD = "correct-horse-battery"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "comp", PASSWORD, "compliance")
        create_user(s, "agent1", PASSWORD, "agent", team="Blue", full_name="Alex Agent")
        create_user(s, "agent2", PASSWORD, "agent", team="Red")
        create_user(s, "agent3", PASSWORD, "agent", team="Blue")
    with LiveServer(app) as url:
        yield url, app


def headers(http: httpx.Client, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def enrol(http: httpx.Client, username: str) -> str:
    r = http.post(
        "/api/admin/recorders/enrolments", headers=headers(http, "admin"), json={"username": username}
    )
    r = http.post("/api/recorders/enroll", json={"code": r.json()["code"]})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def recorder(url: str, token: str) -> ClientConnection:
    ws_url = url.replace("http://", "ws://", 1) + "/api/events?client=recorder"
    return connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10)


def beat(**over: Any) -> dict[str, Any]:
    base = Heartbeat(
        version="0.9.1",
        state="recording",
        host="pc-blue-01",
        interaction_id="int-7",
        spool_bytes=3 * 1024 * 1024,
        segments_pending=2,
        upload=UploadProgress("int-7/r1/4", 65536, 262144),
        free_disk_bytes=120 * 1024**3,
        free_disk_percent=55.0,
        clock_offset=-0.012,
        clock_accuracy=0.003,
        interval=15.0,
    ).to_dict()
    return {**base, **over}


def send_beat(ws: ClientConnection, data: dict[str, Any]) -> None:
    ws.send(Envelope("recorder.heartbeat", data).to_json())


def fleet(http: httpx.Client, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    r = http.get("/api/admin/fleet", headers=auth, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_fleet(
    http: httpx.Client, auth: dict[str, str], check: Any, what: str, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = fleet(http, auth)
        if check(got):
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {got}"
        time.sleep(0.1)


def by_agent(got: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["agent"]: r for r in got["recorders"]}


def test_heartbeats_are_stored_and_a_silent_recorder_turns_offline(live: tuple[str, FastAPI]) -> None:
    url, _app = live
    with httpx.Client(base_url=url, timeout=30) as http:
        admin = headers(http, "admin")
        token = enrol(http, "agent1")
        got = fleet(http, admin)
        assert by_agent(got)["agent1"]["status"] == "never_seen"  # enrolled, not heard from
        with recorder(url, token) as ws:
            assert parse_envelope(ws.recv(timeout=10)).type == "state"
            send_beat(ws, beat(interval=1.0))
            got = wait_fleet(
                http, admin, lambda g: by_agent(g)["agent1"]["host"] == "pc-blue-01", "the heartbeat"
            )
            row = by_agent(got)["agent1"]
            assert row["status"] == "recording" and row["version"] == "0.9.1" and row["team"] == "Blue"
            assert row["full_name"] == "Alex Agent" and row["interaction_id"] == "int-7"
            assert row["segments_pending"] == 2 and row["spool_bytes"] == 3 * 1024 * 1024
            assert row["upload"] == {"segment": "int-7/r1/4", "offset": 65536, "length": 262144}
            assert row["free_disk_percent"] == 55.0 and row["clock_accuracy"] == 0.003
            assert row["problems"] == [] and abs(row["last_seen"] - time.time()) < 30
            # A malformed heartbeat is answered with an error naming the field; nothing stored.
            send_beat(ws, beat(state="asleep", host="elsewhere"))
            while (env := parse_envelope(ws.recv(timeout=10))).type != "error":
                pass
            assert "heartbeat.state" in env.data["message"]
            assert by_agent(fleet(http, admin))["agent1"]["host"] == "pc-blue-01"
            # No more heartbeats: offline after three of its 1-s intervals.
            sent = time.monotonic()
            got = wait_fleet(http, admin, lambda g: by_agent(g)["agent1"]["status"] == "offline", "offline")
            assert time.monotonic() - sent >= 2.5
            assert by_agent(got)["agent1"]["problems"][0] == "offline"


def test_a_desktop_cannot_pose_as_a_recorder_heartbeat(live: tuple[str, FastAPI]) -> None:
    url, app = live
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post(
            "/api/auth/login",
            json={"username": "agent1", "password": PASSWORD, "client": "desktop", "dn": "1001"},
        )
        ws_url = url.replace("http://", "ws://", 1) + "/api/events?client=desktop"
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {r.json()['token']}"}) as ws:
            assert parse_envelope(ws.recv(timeout=10)).type == "state"
            send_beat(ws, beat())
            while (env := parse_envelope(ws.recv(timeout=10))).type != "error":
                pass
            assert "unknown message type" in env.data["message"]
    with session_scope(app.state.ctx.sessions) as s:
        assert s.execute(select(models.RecorderStatus)).scalars().all() == []


def _store(app: FastAPI, token_id: int, user_id: int, seen: float, **over: Any) -> None:
    with session_scope(app.state.ctx.sessions) as s:
        recorder_fleet.store_heartbeat(s, token_id, user_id, Heartbeat.from_dict(beat(**over)), seen)


def test_problems_come_first_and_filters_and_roles(live: tuple[str, FastAPI]) -> None:
    url, app = live
    with httpx.Client(base_url=url, timeout=30) as http:
        tokens = {name: enrol(http, name) for name in ("agent1", "agent2", "agent3")}
        for name in tokens:
            with recorder(url, tokens[name]) as ws:  # one heartbeat each, through the channel
                assert parse_envelope(ws.recv(timeout=10)).type == "state"
                send_beat(ws, beat(host=f"pc-{name}"))
        admin = headers(http, "admin")
        wait_fleet(http, admin, lambda g: all(r["host"] for r in g["recorders"]), "three heartbeats")
        with session_scope(app.state.ctx.sessions) as s:
            rows = {
                r.host: (r.token_id, r.user_id) for r in s.execute(select(models.RecorderStatus)).scalars()
            }
        now = time.time()
        # agent2's recorder: silent for a minute (offline); agent3's: disk almost full.
        _store(app, *rows["pc-agent2"], now - 60, host="pc-agent2")
        _store(
            app,
            *rows["pc-agent3"],
            now,
            host="pc-agent3",
            state="idle",
            free_disk_percent=12.0,
            update_state="rolled_back",
            update_detail="0.4.0 failed its self-test, 0.3.0 stays",
        )
        got = fleet(http, admin)
        # the PC's self-update state rides on the heartbeat to the fleet page
        assert [(r["update_state"], r["update_detail"]) for r in got["recorders"]] == [
            ("", ""),
            ("rolled_back", "0.4.0 failed its self-test, 0.3.0 stays"),
            ("", ""),
        ]
        assert [r["host"] for r in got["recorders"]] == ["pc-agent2", "pc-agent3", "pc-agent1"]
        assert [r["problems"] for r in got["recorders"]] == [["offline"], ["low_disk"], []]
        assert got["total"] == 3 and got["with_problems"] == 2
        assert got["by_status"] == {"idle": 1, "offline": 1, "recording": 1}
        assert [r["host"] for r in fleet(http, admin, problems="true")["recorders"]] == [
            "pc-agent2",
            "pc-agent3",
        ]
        assert [r["host"] for r in fleet(http, admin, status="offline,idle")["recorders"]] == [
            "pc-agent2",
            "pc-agent3",
        ]
        assert [r["agent"] for r in fleet(http, admin, q="AGENT1")["recorders"]] == ["agent1"]
        assert [r["agent"] for r in fleet(http, admin, q="red")["recorders"]] == ["agent2"]  # team name
        # A supervisor sees his teams' agents' recorders only.
        sup = fleet(http, headers(http, "sup"))
        assert sorted(r["agent"] for r in sup["recorders"]) == ["agent1", "agent3"] and sup["total"] == 2
        # Agents and compliance are refused, and the refusal is audited.
        for user in ("agent1", "comp"):
            r = http.get("/api/admin/fleet", headers=headers(http, user))
            assert r.status_code == 403 and r.json()["error"] == "forbidden"
        with session_scope(app.state.ctx.sessions) as s:
            denied = (
                s.execute(
                    select(models.AuditRecord).where(models.AuditRecord.action == recorder_fleet.ACTION)
                )
                .scalars()
                .all()
            )
        assert sorted((d.username, d.outcome) for d in denied) == [("agent1", "denied"), ("comp", "denied")]
        # A revoked credential stays listed as such (IT sees which PC lost its access).
        with session_scope(app.state.ctx.sessions) as s:
            s.get(models.ApiToken, rows["pc-agent1"][0]).revoked_at = time.time()  # type: ignore[union-attr]
        row = by_agent(fleet(http, admin))["agent1"]
        assert row["status"] == "revoked" and row["problems"][0] == "revoked"
