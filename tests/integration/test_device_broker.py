"""The PC's device broker for real (issue 15 item 4, hot-desking with one OS account per agent):
the broker process runs as root (``tandem-recorder device-broker``, as tandem-device.socket
starts it), the real recorders (``tandem-recorder run``) of two OS users (nobody and daemon, each
with his own runtime directory; daemon with no keyring at all) pair through it against a real
server, each when his agent's desktop login hands it a ticket -- over the recorder's own pairing
socket, as that same OS user.

One device on the fleet API however many OS accounts, each pairing under its own agent; the
credential file is 0600 root and another user cannot read it; the enrolment token expiring after
the first enrolment does not stop the next OS user's recorder (the bug: each account enrolled
the PC again); IT revokes the device → the next pairing is refused with a clear message."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from server.store import models
from server.store.db import session_scope
from tests.integration.test_devices_api import admin, live, new_token, poll
from tests.integration.test_recorder_missing import PASSWORD

__all__ = ["live"]  # the server fixture, shared with test_devices_api

REPO = Path(__file__).resolve().parents[2]
USERS = {"nobody": "nogroup", "daemon": "daemon"}  # two OS accounts every Debian system has
DNS = {"alice": "1002", "bob": "1003"}  # both stay logged in (the desktop of the other OS session)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="runs the broker as root and the recorders as other users (setpriv)",
)


def as_user(user: str) -> list[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={USERS[user]}", "--clear-groups"]


@pytest.fixture
def base() -> Iterator[Path]:
    # Short (AF_UNIX paths ~107 bytes) and reachable by the other users (pytest's tmp is 0700 root).
    path = Path(f"/tmp/tdbr-{os.getpid()}")
    path.mkdir(mode=0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_broker(base: Path, config: Path, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TANDEM_AGENT_CONFIG": str(config), **(extra or {})}
    args = ["device-broker", "--socket", str(base / "device.sock"), "--state-dir", str(base / "state")]
    return subprocess.Popen(
        [sys.executable, "-m", "recorder_service.main", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def start_recorder(
    base: Path, user: str, config: Path, url: str, keyring: bool = True, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], Path]:
    """``user``'s recorder: his own home, runtime directory (0700) and keyring file -- or no
    keyring at all (a session without one: the broker holds the credential, none is needed)."""
    home = base / user
    (home / "run").mkdir(parents=True, mode=0o700)
    pw = subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout
    gid = subprocess.run(["id", "-g", user], capture_output=True, text=True, check=True).stdout
    for p in (home, home / "run"):
        os.chown(p, int(pw), int(gid))
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "XDG_CONFIG_HOME": str(home / "cfg"),
        "TANDEM_AGENT_CONFIG": str(config),
        "TANDEM_DEVICE_BROKER_SOCKET": str(base / "device.sock"),
        "TANDEM_RECORDER_SERVER": url,
        **(extra or {}),
    }
    args = ["run", "--spool", str(home / "spool")]
    if keyring:
        args += ["--keyring-file", str(home / "kr.cfg")]
    proc = subprocess.Popen(
        [*as_user(user), sys.executable, "-m", "recorder_service.main", *args, "--log-level", "INFO"],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return proc, home / "run" / "tandem-recorder.sock"


def desktop_pairs(user: str, recorder_socket: Path, ticket: str) -> dict[str, Any]:
    """What the agent desktop does after login (agent_app/pairing.py), as the same OS user."""
    code = (
        "import json, sys; from pathlib import Path; from agent_app.pairing import send; "
        "print(json.dumps(send({'op': 'pair', 'ticket': sys.argv[1]}, Path(sys.argv[2]), 120)))"
    )
    out = subprocess.run(
        [*as_user(user), sys.executable, "-c", code, ticket, str(recorder_socket)],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "HOME": "/"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


def ticket_for(http: httpx.Client, agent: str) -> str:
    r = http.post(
        "/api/auth/login",
        json={"username": agent, "password": PASSWORD, "client": "desktop", "dn": DNS[agent]},
    )
    assert r.status_code == 200, r.text
    r = http.post("/api/agent/pairing-ticket", headers={"Authorization": f"Bearer {r.json()['token']}"})
    assert r.status_code == 200, r.text
    return str(r.json()["ticket"])


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out


def test_two_os_users_pair_through_one_broker_holding_one_root_only_credential(
    live: tuple[str, Any], base: Path
) -> None:
    url, ctx = live
    with session_scope(ctx.sessions) as s:
        ids = {name: uid for name, uid in s.execute(select(models.User.username, models.User.id)).all()}
    connected = ctx.coordinator.recorders.connected
    procs: dict[str, subprocess.Popen[str]] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        headers = admin(http)
        token = new_token(http, headers, max_uses=1)  # one PC, one enrolment
        config = base / "agent.toml"
        config.write_text(f'server_url = "{url}"\nenroll_token = "{token["token"]}"\n')
        config.chmod(0o644)
        broker = start_broker(base, config)
        procs["broker"] = broker
        try:
            poll(lambda: (base / "device.sock").exists() or broker.poll() is not None, "the broker's socket")
            assert broker.poll() is None
            rec_a, sock_a = start_recorder(base, "nobody", config, url)
            procs["nobody"] = rec_a
            poll(lambda: sock_a.exists() or rec_a.poll() is not None, "nobody's recorder endpoint")
            assert rec_a.poll() is None, stop(rec_a)

            # alice logs in on the PC's desktop under OS account nobody: the broker enrols the PC.
            assert desktop_pairs("nobody", sock_a, ticket_for(http, "alice")) == {
                "ok": True,
                "agent": "alice",
            }
            poll(lambda: connected(ids["alice"]), "alice's recorder (OS user nobody) on the channel")
            credential = base / "state" / "device-credential"
            info = credential.stat()
            assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, 0)
            denied = subprocess.run(
                [*as_user("nobody"), "cat", str(credential)], capture_output=True, text=True
            )
            assert denied.returncode != 0 and "Permission denied" in denied.stderr
            assert (
                not (base / "nobody" / "kr.cfg").exists()
                or "device:" not in (base / "nobody" / "kr.cfg").read_text()
            )

            # The enrolment token expires (and was single-use): the next OS user still pairs.
            with session_scope(ctx.sessions) as s:
                s.execute(
                    update(models.EnrolmentToken)
                    .where(models.EnrolmentToken.id == token["id"])
                    .values(expires_at=1)
                )
            rec_b, sock_b = start_recorder(base, "daemon", config, url, keyring=False)
            procs["daemon"] = rec_b
            poll(lambda: sock_b.exists() or rec_b.poll() is not None, "daemon's recorder endpoint")
            assert rec_b.poll() is None, stop(rec_b)
            assert desktop_pairs("daemon", sock_b, ticket_for(http, "bob")) == {"ok": True, "agent": "bob"}
            poll(lambda: connected(ids["bob"]), "bob's recorder (OS user daemon) on the channel")
            poll(lambda: not connected(ids["alice"]), "alice's binding ended by bob's pairing")

            devices = http.get("/api/admin/devices", headers=headers).json()["devices"]
            assert [(d["state"], d["agent"]) for d in devices] == [("paired", "bob")], devices
            tokens = http.get("/api/admin/devices/enrolment-tokens", headers=headers).json()["tokens"]
            assert [t["state"] for t in tokens] == ["expired"]

            # IT revokes the device: the next pairing is refused, and says why.
            r = http.post(f"/api/admin/devices/{devices[0]['id']}/revoke", headers=headers)
            assert r.status_code == 204, r.text
            poll(lambda: not connected(ids["bob"]), "the revoked device off the channel")
            again = desktop_pairs("nobody", sock_a, ticket_for(http, "alice"))
            assert again["ok"] is False
            assert (
                again["error"].startswith("the server refused (401): ") and "revoked by IT" in again["error"]
            )
        finally:
            out = {name: stop(proc) for name, proc in procs.items()}
    assert "paired: recording alice" in out["nobody"], out["nobody"]
    assert "device credential: held by the PC's device broker" in out["nobody"], out["nobody"]
    assert "paired: recording bob" in out["daemon"], out["daemon"]
    assert "revoked by IT" in out["nobody"], out["nobody"]
    broker_log = out["broker"]
    assert broker_log.count("enrolling this PC") == 1, broker_log
    # The token is in a file every user can read (IT's own agent.toml): it works, with a warning.
    assert f"the device enrolment token in {config} is readable by every user" in broker_log, broker_log
    assert "pair for nobody (uid 65534): done" in broker_log and "pair for daemon (uid 1): done" in broker_log
    assert "tdc_" not in broker_log  # the credential is never logged
    with session_scope(ctx.sessions) as s:
        pairs = [
            a.outcome
            for a in s.execute(select(models.AuditRecord).where(models.AuditRecord.action == "device.pair"))
            .scalars()
            .all()
        ]
    assert pairs[-1] == "denied"


def test_the_root_only_token_enrols_and_the_pairing_names_its_os_user(
    live: tuple[str, Any], base: Path
) -> None:
    """As the package installs it: the device token in its own file (0600 root, as postinst writes
    the debconf answer), agent.toml (0644) with the server URL alone. OS user nobody's recorder
    cannot read the token but knows the PC is a device; the broker enrols with it and sends the
    caller's OS user with the pairing: the device listing, the fleet row and the audit record
    name it."""
    url, ctx = live
    procs: dict[str, subprocess.Popen[str]] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        headers = admin(http)
        config, token_file = base / "agent.toml", base / "enroll-token"
        config.write_text(f'server_url = "{url}"\n')
        config.chmod(0o644)
        token_file.write_text(new_token(http, headers)["token"] + "\n")
        token_file.chmod(0o600)
        extra = {"TANDEM_AGENT_ENROLL_TOKEN_FILE": str(token_file)}
        procs["broker"] = broker = start_broker(base, config, extra)
        try:
            poll(lambda: (base / "device.sock").exists() or broker.poll() is not None, "the broker's socket")
            assert broker.poll() is None
            rec, sock = start_recorder(base, "nobody", config, url, extra=extra)
            procs["nobody"] = rec
            poll(lambda: sock.exists() or rec.poll() is not None, "nobody's recorder endpoint")
            assert rec.poll() is None, stop(rec)
            assert desktop_pairs("nobody", sock, ticket_for(http, "alice")) == {"ok": True, "agent": "alice"}
            devices = http.get("/api/admin/devices", headers=headers).json()["devices"]
            assert [(d["state"], d["agent"], d["os_user"]) for d in devices] == [
                ("paired", "alice", "nobody")
            ]
            fleet = http.get("/api/admin/fleet", headers=headers).json()["recorders"]
            assert [(r["agent"], r["os_user"]) for r in fleet] == [("alice", "nobody")], fleet
        finally:
            out = {name: stop(proc) for name, proc in procs.items()}
    assert "device credential: held by the PC's device broker" in out["nobody"], out["nobody"]
    assert "readable by every user" not in out["broker"] + out["nobody"]
    with session_scope(ctx.sessions) as s:
        details = s.execute(
            select(models.AuditRecord.detail).where(
                models.AuditRecord.action == "device.pair", models.AuditRecord.outcome == "allowed"
            )
        ).scalars()
        assert [d.endswith("now records alice (OS user nobody)") for d in details] == [True]
