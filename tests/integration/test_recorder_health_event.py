"""The agent's desktop is told about his own recorder (``recorder.health``): in its ``state`` on
connect, on every heartbeat, and when the recorder connects or drops. A real server
(uvicorn) with WebSocket desktop and recorder clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.sync.client import ClientConnection, connect

from server.api.app import create_app
from server.settings import load_settings
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import Envelope, parse_envelope
from tests.integration.test_fleet import PASSWORD, LiveServer, beat, enrol, recorder, send_beat

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    app: FastAPI = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
        create_user(s, "agent2", PASSWORD, "agent", team="Blue")
    with LiveServer(app) as url:
        yield url


def desktop(http: httpx.Client, url: str, user: str, dn: str) -> ClientConnection:
    r = http.post(
        "/api/auth/login", json={"username": user, "password": PASSWORD, "client": "desktop", "dn": dn}
    )
    assert r.status_code == 200, r.text
    ws_url = url.replace("http://", "ws://", 1) + "/api/events?client=desktop"
    return connect(
        ws_url, additional_headers={"Authorization": f"Bearer {r.json()['token']}"}, open_timeout=10
    )


def next_health(ws: ClientConnection, check: Any = lambda d: True) -> dict[str, Any]:
    """The next recorder.health whose data passes ``check`` (others skipped), within a deadline."""
    deadline = time.monotonic() + 20
    while True:
        env: Envelope = parse_envelope(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if env.type == "recorder.health" and check(env.data):
            return dict(env.data)
        assert time.monotonic() < deadline, "no matching recorder.health"


def test_the_desktop_hears_its_recorder_connect_beat_fail_and_drop(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        token = enrol(http, "agent1")
        with desktop(http, server, "agent1", "1001") as ws:
            first = parse_envelope(ws.recv(timeout=10))  # in the state: never heard from
            assert first.type == "state"
            assert first.data["recorder"] == {
                "connected": False,
                "last_seen": None,
                "heartbeat": None,
                "problems": [],
            }
            with recorder(server, token) as rec:
                assert parse_envelope(rec.recv(timeout=10)).type == "state"
                assert next_health(ws)["connected"] is True
                send_beat(rec, beat(interval=5.0))
                got = next_health(ws, lambda d: d["heartbeat"] is not None)
                assert got["connected"] and got["heartbeat"]["state"] == "recording"
                assert got["heartbeat"]["segments_pending"] == 2 and got["problems"] == []
                assert got["heartbeat"]["upload"] == {
                    "segment": "int-7/r1/4",
                    "offset": 65536,
                    "length": 262144,
                }
                assert abs(got["last_seen"] - time.time()) < 30
                send_beat(rec, beat(state="spool_full", last_error="spool quota reached"))
                got = next_health(ws, lambda d: d["heartbeat"]["state"] == "spool_full")
                assert got["problems"][:1] == ["spool_full"] and "error" in got["problems"]
                assert got["heartbeat"]["last_error"] == "spool quota reached"
            dropped = next_health(ws, lambda d: not d["connected"])
            assert dropped["heartbeat"]["state"] == "spool_full"  # the last word it said, kept
        # A desktop connecting later gets the latest heartbeat at once.
        with desktop(http, server, "agent1", "1001") as ws:
            again = parse_envelope(ws.recv(timeout=10))
            assert again.type == "state" and again.data["recorder"]["heartbeat"]["state"] == "spool_full"
            assert again.data["recorder"]["connected"] is False


def test_another_agents_recorder_is_not_reported(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        other = enrol(http, "agent2")
        with recorder(server, other) as rec:
            assert parse_envelope(rec.recv(timeout=10)).type == "state"
            send_beat(rec, beat(host="pc-of-agent2"))
            with desktop(http, server, "agent2", "1002") as ws2:  # wait until it is stored
                state = parse_envelope(ws2.recv(timeout=10))
                if state.data["recorder"]["heartbeat"] is None:
                    next_health(ws2, lambda d: d["heartbeat"] is not None)
            with desktop(http, server, "agent1", "1001") as ws:
                first = parse_envelope(ws.recv(timeout=10))
                assert first.type == "state" and first.data["recorder"]["heartbeat"] is None
