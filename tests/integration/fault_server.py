"""An in-process server (the real app, SIP on a free port) and a plain SIP call into it, for the
fault tests: worker death, full disk, locked database."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.settings import load_settings
from server.store.db import session_scope
from server.store.users import create_user
from tests.integration.siprec_peer import Dialog, SrcPeer, tone
from tests.ports import rtp_range

PASSWORD = "correct-horse-battery"
AGENT, DN = "agent1", "1001"
SUPERVISOR = "supervisor1"  # oversees the agent's team


@contextlib.contextmanager
def running_server(data: Path, **settings: Any) -> Iterator[tuple[TestClient, Any]]:
    """The app with an agent (``AGENT``), his supervisor and its lifespan running; yields
    (client, app)."""
    low, high = rtp_range(200)
    values: dict[str, Any] = {
        "data_dir": data,
        "sip_port": 0,
        "sip_tcp": False,
        "rtp_port_min": low,
        "rtp_port_max": high,
        "rtp_timeout_seconds": 60,
        "acw_limit_seconds": 1,
        "screen_percentage": 0,
        "media_encoder_process": False,
        **settings,
    }
    app = create_app(load_settings(None, **values))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, AGENT, PASSWORD, "agent", team="Blue")
        create_user(s, SUPERVISOR, PASSWORD, "supervisor", supervises=["Blue"])
    with TestClient(app) as client:
        yield client, app


def login_agent(client: TestClient, dn: str = DN) -> str:
    """Log the agent in on the desktop, bound to ``dn``; returns the bearer token."""
    r = client.post(
        "/api/auth/login", json={"username": AGENT, "password": PASSWORD, "client": "desktop", "dn": dn}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def supervisor_headers(client: TestClient) -> dict[str, str]:
    r = client.post("/api/auth/login", json={"username": SUPERVISOR, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def plain_offer(rtp_port: int) -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
    ).encode()


def call(peer: SrcPeer, dn: str = DN) -> Dialog:
    """A plain INVITE for ``dn``, answered and ACKed."""
    dialog = peer.invite(plain_offer(peer.rtp.getsockname()[1]), dn=dn, siprec=False)
    assert dialog.status == 200, [(r.status, r.reason) for r in dialog.responses]
    return dialog


@contextlib.contextmanager
def streaming(peer: SrcPeer, dialog: Dialog) -> Iterator[None]:
    """A 440 Hz tone to the call's (first) port, sent by a thread until the block ends."""
    stop = threading.Event()
    port = dialog.ports[0][0]

    def send() -> None:
        while not stop.is_set():
            peer.stream({port: (tone(440, 0.2), 0)})

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(10)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def row(db: Path, query: str, *args: Any) -> Any:
    """One row from the server's SQLite database, read with a connection of our own."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute(query, args).fetchone()
