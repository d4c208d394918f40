"""Device enrolment and pairing against a real server (uvicorn): enrolment refused with a clear
error (and audited) for an expired, revoked or used-up enrolment token — also in the real
recorder's log, with nothing stored; and the real recorder process (``tandem-recorder run``, a
device of its PC) following the desktop's real client: alice logs in → her recorder channel is up;
she logs out → it is gone; bob logs in → his; the device revoked → refused, listed "revoked"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from agent_app.pairing import PairingApiClient
from server.api.app import create_app
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tests.integration.test_recorder_missing import PASSWORD, LiveServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "alice", PASSWORD, "agent", team="Blue")
        create_user(s, "bob", PASSWORD, "agent", team="Blue")
    with LiveServer(app) as url:
        yield url, app.state.ctx


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    # A short path: AF_UNIX socket paths are limited to ~107 bytes.
    path = Path(f"/tmp/tdv-{os.getpid()}")
    path.mkdir(mode=0o700, exist_ok=True)
    yield path
    for p in path.iterdir():
        p.unlink()
    path.rmdir()


def admin(http: httpx.Client) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def new_token(http: httpx.Client, headers: dict[str, str], **body: object) -> dict[str, Any]:
    r = http.post("/api/admin/devices/enrolment-tokens", headers=headers, json={"scope": "site:HQ", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def poll(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def recorder(url: str, tmp: Path, runtime: Path, token: str) -> subprocess.Popen[str]:
    config = tmp / "agent.toml"
    config.write_text(f'server_url = "{url}"\nenroll_token = "{token}"\n')
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TANDEM_AGENT_CONFIG": str(config),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(tmp / "cfg"),
    }
    env.pop("TANDEM_RECORDER_SERVER", None)
    args = [
        "run",
        "--spool",
        str(tmp / "spool"),
        "--keyring-file",
        str(tmp / "kr.cfg"),
        "--log-level",
        "INFO",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "recorder_service.main", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_enrolment_refused_for_expired_revoked_and_used_up_tokens(
    live: tuple[str, Any], tmp_path: Path, runtime_dir: Path
) -> None:
    url, ctx = live
    with httpx.Client(base_url=url, timeout=30) as http:
        headers = admin(http)
        expired, revoked, once = new_token(http, headers), new_token(http, headers), new_token(http, headers)
        with session_scope(ctx.sessions) as s:
            s.execute(
                update(models.EnrolmentToken)
                .where(models.EnrolmentToken.id == expired["id"])
                .values(expires_at=1)
            )
        assert (
            http.post(
                f"/api/admin/devices/enrolment-tokens/{revoked['id']}/revoke", headers=headers
            ).status_code
            == 204
        )
        assert (
            http.post("/api/devices/enroll", json={"token": once["token"], "hostname": "d1"}).status_code
            == 200
        )
        for token, error in (
            (expired, "enrolment_token_expired"),
            (revoked, "enrolment_token_revoked"),
            (once, "enrolment_token_used_up"),
        ):
            r = http.post("/api/devices/enroll", json={"token": token["token"], "hostname": "d2"})
            assert r.status_code == 401 and r.json()["error"] == error, r.text
        states = [
            t["state"]
            for t in http.get("/api/admin/devices/enrolment-tokens", headers=headers).json()["tokens"]
        ]
        assert states == ["expired", "revoked", "used_up"]
        # A web login gets no pairing ticket: only an agent's desktop pairs a recorder.
        r = http.post("/api/agent/pairing-ticket", headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "not_an_agent_desktop"
    # The real recorder with the revoked token: a clear message, exit 2, nothing stored.
    proc = recorder(url, tmp_path, runtime_dir, revoked["token"])
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "device enrolment refused (HTTP 401): this enrolment token was revoked by IT" in out
    assert "device:" not in (tmp_path / "kr.cfg").read_text()
    with session_scope(ctx.sessions) as s:
        details = [
            a.detail
            for a in s.execute(
                select(models.AuditRecord)
                .where(models.AuditRecord.action == "device.enroll")
                .order_by(models.AuditRecord.id)
            ).scalars()
        ]
    assert details[1:] == [
        "this enrolment token has expired; ask IT for a new one",
        "this enrolment token was revoked by IT; ask for a new one",
        "this enrolment token was used 1 time(s) already",
        "this enrolment token was revoked by IT; ask for a new one",
    ]


def test_the_real_recorder_follows_whoever_logs_in_on_the_desktop(
    live: tuple[str, Any], tmp_path: Path, runtime_dir: Path
) -> None:
    url, ctx = live
    with session_scope(ctx.sessions) as s:
        ids = {name: uid for name, uid in s.execute(select(models.User.username, models.User.id)).all()}
    connected = ctx.coordinator.recorders.connected
    with httpx.Client(base_url=url, timeout=30) as http:
        headers = admin(http)
        token = new_token(http, headers)
        proc = recorder(url, tmp_path, runtime_dir, token["token"])
        opened: list[PairingApiClient] = []
        try:
            sock = runtime_dir / "tandem-recorder.sock"
            poll(lambda: sock.exists() or proc.poll() is not None, "the recorder's pairing endpoint")
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""

            def desktop(user: str) -> PairingApiClient:
                api = PairingApiClient(url)
                opened.append(api)
                api.socket_path = sock
                api.login(user, PASSWORD, "1002")  # one desk, one DN
                return api

            alice = desktop("alice")
            poll(lambda: connected(ids["alice"]), "alice's recorder on the channel")
            alice.logout()
            poll(lambda: not connected(ids["alice"]), "alice's recorder gone after her logout")
            bob = desktop("bob")
            poll(lambda: connected(ids["bob"]), "bob's recorder on the channel")
            assert not connected(ids["alice"])
            devices = http.get("/api/admin/devices", headers=headers).json()["devices"]
            assert [(d["state"], d["agent"]) for d in devices] == [("paired", "bob")]
            r = http.post(f"/api/admin/devices/{devices[0]['id']}/revoke", headers=headers)
            assert r.status_code == 204
            poll(lambda: not connected(ids["bob"]), "the revoked device off the channel")
            # Logging in again: the revoked device is refused and stays off.
            assert bob.pair_recorder() is False
            devices = http.get("/api/admin/devices", headers=headers).json()["devices"]
            assert devices[0]["state"] == "revoked"
        finally:
            for api in opened:
                api.close()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
    assert "paired: recording alice" in out and "paired: recording bob" in out, out
    # Each agent's session spooled into his own directory: bob's uploads never carry alice's segments.
    assert sorted(p.name for p in (tmp_path / "spool" / "agents").iterdir()) == ["alice", "bob"]
    assert "this device's credential was revoked by IT" in out, out
