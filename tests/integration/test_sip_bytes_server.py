"""Header bytes that are not UTF-8 (issue 11 item 6), sent to the whole server (SIP engine, core,
database): a Latin-1 display name, control and 0xff octets in the Call-ID, invalid UTF-8 in a
SIPREC metadata name. Each call is recorded, the 200 OK echoes the request's bytes exactly, and
what is stored is a safe decoding ("Müller")."""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.api.app import create_app
from server.settings import load_settings
from server.sip.sdp import parse_sdp
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tests.integration.siprec_peer import SrcPeer, tone
from tests.ports import rtp_range

pytestmark = pytest.mark.timeout(120)
OFFERS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "siprec" / "offers"
PASSWORD = "correct-horse-battery"
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 41000 RTP/AVP 0\r\na=sendrecv\r\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    data = tmp_path_factory.mktemp("sipbytes") / "data"
    rtp = rtp_range()
    settings = load_settings(
        None,
        data_dir=data,
        sip_port=0,
        rtp_port_min=rtp[0],
        rtp_port_max=rtp[1],
        rtp_timeout_seconds=30,
        acw_limit_seconds=1,
        screen_percentage=0,
    )
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "agent0", PASSWORD, "agent", team="Blue")
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
    with TestClient(app) as client:
        for user, dn in (("agent0", "1001"), ("agent1", "1002")):
            r = client.post(
                "/api/auth/login",
                json={"username": user, "password": PASSWORD, "client": "desktop", "dn": dn},
            )
            assert r.status_code == 200, r.text
        yield client, app.state.ctx


def _stored(ctx: Any, call_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The interaction of ``call_id`` (as stored) once its voice file is, with that file's length."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.sessions) as s:
            row = s.execute(
                select(models.Interaction).where(models.Interaction.call_id == call_id)
            ).scalar_one_or_none()
            voice = [m for m in row.media if m.kind == "voice"] if row is not None else []
            if row is not None and voice and row.ended_at is not None and row.answered_at is not None:
                with wave.open(str(ctx.storage.local_path(voice[0].storage_key)), "rb") as wav:
                    seconds = wav.getnframes() / wav.getframerate()
                return {
                    "caller": row.caller,
                    "callee": row.callee,
                    "call_id": row.call_id,
                    "participants": json.loads(row.participants or "[]"),
                    "length": row.ended_at - row.answered_at,
                    "seconds": seconds,
                }
        time.sleep(0.1)
    raise AssertionError(f"no stored voice for call {call_id!r}")


def _header(data: bytes, name: bytes) -> bytes:
    found = re.search(rb"\r\n" + name + rb": ([^\r\n]*)\r\n", data, re.IGNORECASE)
    assert found is not None, data[:400]
    return found.group(1)


def _final(sock: socket.socket, method: bytes) -> bytes:
    while True:
        data, _ = sock.recvfrom(65535)
        if re.search(rb"\r\nCSeq: *\d+ " + method + rb"\r\n", data) and not data.startswith(b"SIP/2.0 1"):
            return data


def test_non_utf8_display_name_and_call_id_are_recorded_and_echoed_exactly(
    server: tuple[TestClient, Any],
) -> None:
    _, ctx = server
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    target = ("127.0.0.1", ctx.sip_port)
    port = sock.getsockname()[1]
    call_id = b"bin\x01\xff-" + secrets.token_hex(4).encode() + b"@pbx\xe9"
    from_ = b'"M\xfcller" <sip:4930123@127.0.0.1>;tag=t\xe9g'
    to = b"<sip:1001@127.0.0.1>"
    via = f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-bytes1;rport".encode()

    def request(method: bytes, cseq: int, to_header: bytes, body: bytes = b"", branch: bytes = b"") -> bytes:
        return (
            method
            + f" sip:1001@127.0.0.1:{ctx.sip_port} SIP/2.0\r\nVia: ".encode()
            + (via.replace(b"bytes1", branch) if branch else via)
            + b"\r\nMax-Forwards: 70\r\nFrom: "
            + from_
            + b"\r\nTo: "
            + to_header
            + b"\r\nCall-ID: "
            + call_id
            + f"\r\nCSeq: {cseq} {method.decode()}\r\nContact: <sip:4930123@127.0.0.1:{port}>\r\n".encode()
            + (b"Content-Type: application/sdp\r\n" if body else b"")
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    try:
        sock.sendto(request(b"INVITE", 1, to, SDP), target)
        ok = _final(sock, b"INVITE")
        assert ok.startswith(b"SIP/2.0 200 "), ok[:200]  # was 500 (the database refused the text)
        assert _header(ok, b"Call-ID") == call_id and _header(ok, b"From") == from_
        assert _header(ok, b"Via") == via
        to_tag = _header(ok, b"To")
        assert to_tag.startswith(to + b";tag=")
        sock.sendto(request(b"ACK", 1, to_tag, branch=b"bytes2"), target)
        answer = parse_sdp(ok.split(b"\r\n\r\n", 1)[1])
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            peer = SrcPeer.__new__(SrcPeer)  # only its RTP sender: the SIP here is written by hand
            peer.server, peer.rtp = target, rtp
            peer.stream({answer.media[0].port: (tone(440.0, 1.0), 0)})
        finally:
            rtp.close()
        sock.sendto(request(b"BYE", 2, to_tag, branch=b"bytes3"), target)
        bye_ok = _final(sock, b"BYE")
        assert bye_ok.startswith(b"SIP/2.0 200 ") and _header(bye_ok, b"Call-ID") == call_id
    finally:
        sock.close()
    row = _stored(ctx, "bin?ÿ-" + call_id[6:-1].decode() + "é")
    assert row["caller"] == "Müller <4930123>"
    assert abs(row["seconds"] - row["length"]) < 0.05 and row["seconds"] > 0.9


def test_invalid_utf8_in_a_siprec_metadata_name_is_recorded(server: tuple[TestClient, Any]) -> None:
    _, ctx = server
    body = (OFFERS / "acme-siprec-offer.txt").read_bytes()
    assert b"<name>9000</name>" in body
    body = body.replace(b"<name>9000</name>", b"<name>M\xfcller \xff\xfe\x01</name>", 1)
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite(body, dn="1002", siprec=True)
        assert dialog.status == 200, [r.status for r in dialog.responses]
        peer.stream({port: (tone(440.0, 1.0), pt) for port, pt in dialog.ports.values()})
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = _stored(ctx, dialog.call_id)
    assert abs(row["seconds"] - row["length"]) < 0.05 and row["seconds"] > 0.9
    # Both parties survive the odd octets (the XML parse used to stop at them, losing the agent's).
    names = {p["aor"]: p["name"] for p in row["participants"]}
    assert names == {"sip:9000@192.168.50.102": "Müller ÿþ?", "sip:1002@192.168.50.10": "1002"}
    assert row["caller"].startswith("Müller ÿþ?")
