"""Refused INVITEs leave a trace: the whole server in process (SIP on, real UDP from 127.0.0.1 and
127.0.0.2), the missed-calls rows and counters, the API's roles, and the writer's bounds."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.calls.missed_calls import MissedCallLog
from server.settings import load_settings
from server.sip.message import SipResponse, parse_message
from server.sip.refusals import Refusal
from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from server.store.users import create_user
from tests.ports import rtp_range

pytestmark = pytest.mark.timeout(120)
PASSWORD = "correct-horse-battery"
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        sip_port=0,
        rtp_workers=0,
        sip_trusted_sources=["127.0.0.1/32"],  # 127.0.0.2 is "elsewhere"
        rtp_port_min=(rtp := rtp_range())[0],
        rtp_port_max=rtp[1],
    )
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
        create_user(s, "agent2", PASSWORD, "agent", team="Red")
    with TestClient(app) as client:
        yield client


def _login(http: TestClient, user: str, **extra: object) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _sip_port(client: TestClient) -> int:
    port = client.app.state.ctx.sip_port  # type: ignore[attr-defined]
    assert port
    return int(port)


def _request(method: str, port: int, dn: str, *, extra: str = "", body: bytes = b"") -> bytes:
    call_id = uuid.uuid4().hex
    head = (
        f"{method} sip:{dn}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{call_id[:12]}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:caller@127.0.0.1>;tag=f1\r\nTo: <sip:{dn}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n{extra}"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _exchange(source: str, port: int, data: bytes) -> SipResponse:
    """Send from ``source`` (a loopback address) and return the first final response."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(10)
        sock.sendto(data, ("127.0.0.1", port))
        while True:
            msg = parse_message(sock.recv(65535))
            assert isinstance(msg, SipResponse)
            if msg.status >= 200:
                return msg


def _poll(what: Callable[[], Any], deadline: float = 20.0) -> Any:
    end = time.monotonic() + deadline
    while True:
        value = what()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.1)


def test_every_refused_invite_is_logged_counted_and_listed(
    server: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server.sip")
    port = _sip_port(server)
    _login(server, "agent1", client="desktop", dn="1001")
    admin = _login(server, "admin")

    assert _exchange("127.0.0.1", port, _request("INVITE", port, "2002", body=OFFER)).status == 404
    declined = _request("INVITE", port, "1001", extra="X-Recording-Consent: no\r\n", body=OFFER)
    assert _exchange("127.0.0.1", port, declined).status == 603
    refused = _exchange("127.0.0.2", port, _request("INVITE", port, "1001", body=OFFER))
    assert refused.status == 403
    # OPTIONS: answered for a trusted peer, refused for anyone else.
    assert _exchange("127.0.0.1", port, _request("OPTIONS", port, "1001")).status == 200
    assert _exchange("127.0.0.2", port, _request("OPTIONS", port, "1001")).status == 403

    def rows() -> list[dict[str, Any]]:
        r = server.get("/api/admin/missed-calls", headers=admin)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items if len(items) >= 3 else []

    items = _poll(rows)
    by_reason = {row["reason"]: row for row in items}
    assert set(by_reason) == {"no-recording-party", "consent-declined", "untrusted-source"}, items
    missing = by_reason["no-recording-party"]
    assert (missing["status"], missing["dn"], missing["kind"], missing["count"]) == (404, "2002", "plain", 1)
    assert missing["source"].startswith("127.0.0.1:") and "sip:2002@127.0.0.1" in missing["request_uri"]
    assert missing["detail"] == "No agent logged in on this DN" and "caller" in missing["from"]
    assert by_reason["consent-declined"]["status"] == 603
    untrusted = by_reason["untrusted-source"]
    assert untrusted["status"] == 403 and untrusted["source"].startswith("127.0.0.2:")

    stats = server.get("/api/admin/sip/stats", headers=admin).json()
    assert stats["sip"]["refused"] == {"no-recording-party": 1, "consent-declined": 1, "untrusted-source": 1}
    assert stats["sip"]["untrusted"] == 2  # the INVITE and the OPTIONS
    assert stats["missed_calls"]["written"] == 3
    logged = [r.getMessage() for r in caplog.records if "refused INVITE" in r.getMessage()]
    assert any("404 No agent logged in on this DN" in m for m in logged), logged
    assert any("403 Forbidden" in m and "127.0.0.2" in m for m in logged), logged

    # Reading the list is audited; a filter narrows it.
    r = server.get("/api/admin/missed-calls?reason=untrusted-source", headers=admin)
    assert [row["reason"] for row in r.json()["items"]] == ["untrusted-source"]
    audit = server.get("/api/audit", headers=admin).json()
    assert any(a["action"] == "missed_calls.list" and a["outcome"] == "allowed" for a in audit)


def test_supervisor_sees_own_teams_dns_agents_see_nothing(server: TestClient) -> None:
    port = _sip_port(server)
    _login(server, "agent1", client="desktop", dn="1001")  # team Blue, the supervisor's
    _login(server, "agent2", client="desktop", dn="1002")  # team Red
    for dn in ("1001", "1002"):
        declined = _request("INVITE", port, dn, extra="X-Recording-Consent: no\r\n", body=OFFER)
        assert _exchange("127.0.0.1", port, declined).status == 603
    assert _exchange("127.0.0.1", port, _request("INVITE", port, "9999", body=OFFER)).status == 404
    admin, sup = _login(server, "admin"), _login(server, "sup")

    def three() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = server.get("/api/admin/missed-calls", headers=admin).json()["items"]
        return items if len(items) == 3 else []

    all_rows = _poll(three)
    assert len(all_rows) == 3
    seen = server.get("/api/admin/missed-calls", headers=sup).json()["items"]
    assert [row["dn"] for row in seen] == ["1001"]
    assert server.get("/api/admin/missed-calls", headers=_login(server, "agent1")).status_code == 403
    assert server.get("/api/admin/sip/stats", headers=sup).status_code == 403


def test_a_flood_of_refusals_is_coalesced_not_written_row_by_row(server: TestClient) -> None:
    port = _sip_port(server)
    admin = _login(server, "admin")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        for _ in range(300):
            sock.sendto(_request("INVITE", port, "1001", body=OFFER), ("127.0.0.1", port))

    def settled() -> tuple[list[dict[str, Any]], int] | None:
        # UDP on loopback may drop some of a burst: what the server refused is what it stores.
        items: list[dict[str, Any]] = server.get("/api/admin/missed-calls", headers=admin).json()["items"]
        refused = server.get("/api/admin/sip/stats", headers=admin).json()["sip"]["refused"]
        total = refused.get("untrusted-source", 0)
        return (items, total) if total and sum(row["count"] for row in items) == total else None

    result = _poll(settled)
    assert result is not None, "the refusals were not all stored"
    items, total = result
    assert total >= 100, f"only {total} of 300 INVITEs reached the server"
    assert len(items) <= 10, f"{len(items)} rows for one source's burst"
    assert all(row["reason"] == "untrusted-source" for row in items)


# ---- the writer's bounds, without the network ------------------------------------------------------
def _refusal(at: float, host: str = "192.0.2.1", reason: str = "untrusted-source") -> Refusal:
    return Refusal(
        at=at,
        call_id=f"c{at}",
        source=f"{host}:5060",
        source_host=host,
        from_uri="<sip:a@b>",
        to_uri="<sip:1@b>",
        request_uri="sip:1@b",
        dn="1",
        reason=reason,
        status=403,
        kind="plain",
    )


def test_writer_coalesces_per_second_and_bounds_pending(tmp_path: Path) -> None:
    asyncio.run(_writer_bounds(tmp_path))


async def _writer_bounds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    factory = make_session_factory(make_engine(url))
    log = MissedCallLog(factory, window=1.0, max_pending=3)
    for i in range(10):
        log.refused(_refusal(100.0 + i * 0.01))  # one row
    log.refused(_refusal(101.5))  # the same source a window later: a second row
    log.refused(_refusal(101.6, host="192.0.2.2"))  # another source: a third
    log.refused(_refusal(101.7, reason="no-recording-party"))  # pending full: dropped
    assert (log.stats.coalesced, log.stats.dropped, log.pending) == (9, 1, 3)
    await log.stop()
    with session_scope(factory) as s:
        rows = s.query(models.MissedCall).order_by(models.MissedCall.at).all()
        assert [(r.source, r.count, r.at, r.last_at) for r in rows] == [
            ("192.0.2.1:5060", 10, 100.0, 100.09),
            ("192.0.2.1:5060", 1, 101.5, 101.5),
            ("192.0.2.2:5060", 1, 101.6, 101.6),
        ]
    assert log.stats.written == 3


def test_a_refused_siprec_offer_is_stored_as_siprec(server: TestClient) -> None:
    port = _sip_port(server)
    # SIPREC without a metadata part names no recording-enabled party: 404, stored as a SIPREC call.
    status = _exchange(
        "127.0.0.1", port, _request("INVITE", port, "1001", extra="Require: siprec\r\n", body=OFFER)
    )
    assert status.status == 404
    admin = _login(server, "admin")
    (row,) = _poll(lambda: server.get("/api/admin/missed-calls", headers=admin).json()["items"])
    assert (row["kind"], row["status"], row["reason"]) == ("siprec", 404, "no-recording-party"), row
    assert row["detail"] == "No recording-enabled party in the metadata"


def test_untrusted_over_tcp_is_refused_too(server: TestClient) -> None:
    port = _sip_port(server)
    for source, expected in (("127.0.0.2", 403), ("127.0.0.1", 200)):
        with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
            sock.sendall(_request("OPTIONS", port, "1001").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65535)
                assert chunk, "connection closed without an answer"
                data += chunk
        reply = parse_message(data)
        assert isinstance(reply, SipResponse) and reply.status == expected, (source, reply)
