"""The pairing's OS user survives a server restart (issue 15): a device paired with ``os_user``
(the device broker's caller) is listed with it by ``GET /api/admin/devices`` and the fleet from a
NEW server process on the same data directory — it is stored with the pairing (revision 0019), no
longer in the memory of the process that took the pairing. Unpaired, the device row names nobody.
And revision 0019 adds and removes the column."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.settings import load_settings
from server.store.db import session_scope
from server.store.users import create_user

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-staple"

# The restarted server: a new app on the same data directory in a process of its own (a new app in
# this test's process would share the old process's memory, and so could not tell the difference).
RESTARTED = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from server.api.app import create_app
from server.settings import load_settings

app = create_app(load_settings(None, data_dir=Path(sys.argv[1]), sip_enabled=False))
with TestClient(app) as http:
    r = http.post("/api/auth/login", json={"username": "admin", "password": sys.argv[2]})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    devices = http.get("/api/admin/devices", headers=headers).json()["devices"]
    fleet = http.get("/api/admin/fleet", headers=headers).json()["recorders"]
print(json.dumps({"devices": devices, "fleet": fleet}))
"""


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[TestClient]:
    """The first server: users made, served in-process until the block ends (lifespan shutdown)."""
    app = create_app(load_settings(None, data_dir=data_dir, sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "alice", PASSWORD, "agent", team="Blue")
    with TestClient(app) as c:
        yield c


def auth(http: TestClient, user: str, **extra: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def enrolled_device(http: TestClient, admin: dict[str, str], host: str) -> str:
    r = http.post(
        "/api/admin/devices/enrolment-tokens",
        headers=admin,
        json={"scope": "site:HQ", "ttl_hours": 1, "max_uses": 1},
    )
    assert r.status_code == 201, r.text
    r = http.post("/api/devices/enroll", json={"token": r.json()["token"], "hostname": host})
    assert r.status_code == 200, r.text
    return str(r.json()["credential"])


def pair(http: TestClient, credential: str, agent: str, os_user: str) -> None:
    desktop = auth(http, agent, client="desktop", dn="1002")  # only a desktop login pairs
    r = http.post("/api/agent/pairing-ticket", headers=desktop)
    assert r.status_code == 200, r.text
    r = http.post(
        "/api/devices/pair",
        headers={"Authorization": f"Bearer {credential}"},
        json={"ticket": r.json()["ticket"], "os_user": os_user},
    )
    assert r.status_code == 200, r.text


def restarted_server_lists(data_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", RESTARTED, str(data_dir), PASSWORD],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    listed: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return listed


def test_the_pairings_os_user_is_listed_after_a_server_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir) as client:
        admin = auth(client, "admin")
        credential = enrolled_device(client, admin, "desk-7")
        pair(client, credential, "alice", "jdoe")
        devices = client.get("/api/admin/devices", headers=admin).json()["devices"]
        assert [(d["state"], d["agent"], d["os_user"]) for d in devices] == [("paired", "alice", "jdoe")]
    # That server has stopped; the next one starts on the same data directory.

    listed = restarted_server_lists(data_dir)
    devices = listed["devices"]
    assert [(d["hostname"], d["state"], d["agent"], d["os_user"]) for d in devices] == [
        ("desk-7", "paired", "alice", "jdoe")
    ], devices
    assert [(r["agent"], r["os_user"]) for r in listed["fleet"]] == [("alice", "jdoe")], listed["fleet"]


def test_an_unpaired_device_names_no_os_user(tmp_path: Path) -> None:
    with serving(tmp_path / "data") as client:
        admin = auth(client, "admin")
        credential = enrolled_device(client, admin, "desk-8")
        pair(client, credential, "alice", "jdoe")
        r = client.post("/api/devices/unpair", headers={"Authorization": f"Bearer {credential}"})
        assert r.status_code == 204, r.text
        devices = client.get("/api/admin/devices", headers=admin).json()["devices"]
    assert [(d["state"], d["agent"], d["os_user"]) for d in devices] == [("idle", None, "")]


def test_revision_0019_adds_and_removes_the_pairings_os_user(tmp_path: Path) -> None:
    from alembic import command

    from server.store.db import alembic_config

    path = tmp_path / "r.db"
    url = f"sqlite:///{path}"

    def columns() -> set[str]:
        with sqlite3.connect(path) as db:
            return {r[1] for r in db.execute("PRAGMA table_info(device_pairings)")}

    command.upgrade(alembic_config(url), "0019")
    assert "os_user" in columns()
    command.downgrade(alembic_config(url), "0018")
    assert "os_user" not in columns() and {"recorder_token_id", "ended_at"} <= columns()
    command.upgrade(alembic_config(url), "0019")
    assert "os_user" in columns()
