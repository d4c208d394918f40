"""What the installer test's call asks of the real server on the host: a SIPp call to a DN, the
interaction it made, the muxed file a supervisor downloads, and -- read from the server's database,
which the test may see and a PC may not -- which pairing recorded it and what the audit log says.
"""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.harness import ServerProcess, stop_process
from tests.e2e.screen_call import SCENARIO
from tests.ports import free_ports


def sipp_call(server: ServerProcess, work: Path, dn: str, seconds: float) -> None:
    cmd = ["sipp", f"127.0.0.1:{server.sip_port}", "-sf", str(SCENARIO), "-s", dn, "-m", "1"]
    cmd += ["-d", str(int(seconds * 1000)), "-i", "127.0.0.1", "-mi", "127.0.0.1"]
    cmd += ["-mp", str(free_ports(4)), "-timeout", str(int(seconds + 90)), "-nostdin"]
    sipp = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = sipp.communicate(timeout=seconds + 120)
        assert sipp.returncode == 0, out.decode(errors="replace")[-3000:]
    finally:
        stop_process(sipp)


def _db(server: ServerProcess) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "tandem.db")


def latest_interaction(server: ServerProcess, dn: str, since: float) -> str:
    with _db(server) as db:
        row = db.execute(
            "SELECT id FROM interactions WHERE dn = ? AND started_at >= ? ORDER BY started_at DESC",
            (dn, since - 5),
        ).fetchone()
    assert row, f"no interaction on {dn} since the call"
    return str(row[0])


def muxed(server: ServerProcess, iid: str, token: str) -> bytes | None:
    r = httpx.get(
        f"{server.url}/api/interactions/{iid}/media/muxed", headers={"Authorization": f"Bearer {token}"}
    )
    return r.content if r.status_code == 200 else None


@dataclass(frozen=True)
class Pairing:
    """An open device ↔ agent-login binding, and what vouched for it."""

    device_id: int
    agent: str
    agent_login_client: str  # the scope of the login whose ticket paired it: "desktop"
    agent_login_revoked: bool
    recorder_token_id: int  # the token the device records and uploads with for this agent


def open_pairing(server: ServerProcess, agent: str) -> Pairing | None:
    with _db(server) as db:
        row = db.execute(
            "SELECT p.device_id, u.username, t.client, t.revoked_at IS NOT NULL, p.recorder_token_id"
            " FROM device_pairings p JOIN users u ON u.id = p.agent_id"
            " JOIN api_tokens t ON t.id = p.agent_token_id"
            " WHERE u.username = ? AND p.ended_at IS NULL ORDER BY p.paired_at DESC",
            (agent,),
        ).fetchone()
    return Pairing(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None


def recorded_by(server: ServerProcess, iid: str) -> tuple[str | None, set[int | None]]:
    """The interaction's agent, and the recorder tokens that uploaded its screen segments."""
    with _db(server) as db:
        agent = db.execute(
            "SELECT u.username FROM interactions i LEFT JOIN users u ON u.id = i.agent_id WHERE i.id = ?",
            (iid,),
        ).fetchone()
        tokens = db.execute(
            "SELECT DISTINCT uploaded_by_token_id FROM screen_segments WHERE interaction_id = ?", (iid,)
        ).fetchall()
    return (agent[0] if agent else None), {t[0] for t in tokens}


def audit_rows(
    server: ServerProcess, action: str, target_id: str | None = None
) -> list[tuple[str, str, str]]:
    """(username, outcome, detail) of each audit record of ``action`` (on ``target_id``)."""
    query = "SELECT username, outcome, detail FROM audit_log WHERE action = ?"
    args: tuple[str, ...] = (action,)
    if target_id is not None:
        query, args = query + " AND target_id = ?", (action, target_id)
    with _db(server) as db:
        return [(str(u), str(o), str(d)) for u, o, d in db.execute(query + " ORDER BY seq", args)]
