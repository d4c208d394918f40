"""A server that takes SIP(REC) calls on loopback, for the tests that call it from a test SRC
(``siprec_peer.SrcPeer``): its settings, its users, and desktop logins on a DN. One place, so the
SIPREC test files differ only in what they need to differ in (users, screen sampling, timeouts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.settings import Settings, load_settings
from server.store.db import session_scope
from server.store.users import create_user
from tests.ports import rtp_range

OFFERS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "siprec" / "offers"
PASSWORD = "correct-horse-battery"

# (username, role, create_user keywords): one user to add to the world.
User = tuple[str, str, dict[str, Any]]
ADMIN: User = ("admin", "admin", {})
BLUE_SUPERVISOR: User = ("sup", "supervisor", {"supervises": ["Blue"]})


def blue_agents(count: int) -> list[User]:
    """``agent0`` … ``agent<count-1>``, all in team Blue."""
    return [(f"agent{n}", "agent", {"team": "Blue"}) for n in range(count)]


def sip_settings(data_dir: Path, **overrides: Any) -> Settings:
    """SIP on a port the OS picks, RTP on a block of its own (tests/ports.py); no screen sampling
    and a 1-s ACW unless ``overrides`` says otherwise."""
    rtp = rtp_range()
    values: dict[str, Any] = {
        "sip_port": 0,
        "rtp_port_min": rtp[0],
        "rtp_port_max": rtp[1],
        "rtp_timeout_seconds": 30,
        "acw_limit_seconds": 1,
        "screen_percentage": 0,
        **overrides,
    }
    return load_settings(None, data_dir=data_dir, **values)


def app_with_users(settings: Settings, users: list[User]) -> FastAPI:
    """The real app on ``settings``, with ``users`` (password ``PASSWORD``) in its database."""
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        for username, role, extra in users:
            create_user(s, username, PASSWORD, role, **extra)
    return app


@contextmanager
def siprec_server(data_dir: Path, users: list[User], **overrides: Any) -> Iterator[tuple[TestClient, Any]]:
    """The app (``sip_settings``) with ``users``, its lifespan running; yields (client, ctx)."""
    app = app_with_users(sip_settings(data_dir, **overrides), users)
    with TestClient(app) as client:
        yield client, app.state.ctx


def desk_login(client: TestClient, user: str, dn: str) -> None:
    """Log ``user`` in on the desktop, on ``dn``: that DN's calls are then ``user``'s."""
    r = client.post(
        "/api/auth/login", json={"username": user, "password": PASSWORD, "client": "desktop", "dn": dn}
    )
    assert r.status_code == 200, r.text


class AgentDesks:
    """Gives each DN its own agent (the next unused ``agentN``; the same one when asked again), so a
    test file's calls on different DNs never share an agent."""

    def __init__(self) -> None:
        self._by_dn: dict[str, str] = {}

    def login(self, client: TestClient, dn: str) -> str:
        user = self._by_dn.setdefault(dn, f"agent{len(self._by_dn)}")
        desk_login(client, user, dn)
        return user
