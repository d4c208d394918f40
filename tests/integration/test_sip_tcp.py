"""SipService over TCP and TLS on loopback: a recorded call, stream framing, and the limits an
untrusted peer runs into (oversize messages, connection floods, slowloris)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from server.sim.rtp_sender import send_rtp
from server.sim.speech import speech_like_pcm
from server.sip.framing import StreamFramer
from server.sip.message import SipResponse, parse_message
from server.sip.service import SipService
from server.sip.tcp import StreamLimits
from tests.integration.sip_fakes import FakeListener
from tests.loops import LOOPS, run_on
from tests.ports import rtp_range
from tests.tls_certs import contexts

# Every test on both loops: the server runs on uvloop (tandem-server run), embedders may use asyncio's.
pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("loop", LOOPS)]
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n"
)


def _run(
    loop: str,
    tmp_path: Path,
    body: Callable[[SipService, FakeListener], Awaitable[None]],
    limits: StreamLimits | None = None,
    tls: ssl.SSLContext | None = None,
) -> FakeListener:
    async def main() -> FakeListener:
        listener = FakeListener(tmp_path)
        service = SipService(
            listener,
            host="127.0.0.1",
            port=0,
            advertised_host="127.0.0.1",
            rtp_host="127.0.0.1",
            rtp_port_range=rtp_range(),
            rtp_timeout=10.0,
            stream_limits=limits or StreamLimits(linger=0.05),
            tls_context=tls,
        )
        await service.start()
        try:
            await body(service, listener)
        finally:
            await service.stop()
        assert service.active_calls == 0
        return listener

    sip_log = logging.getLogger("server.sip")
    level = sip_log.level
    sip_log.setLevel(logging.ERROR)  # refused and broken connections are logged on purpose
    try:
        return run_on(loop, main())
    finally:
        sip_log.setLevel(level)


async def until(predicate: Callable[[], bool], what: str, deadline_s: float = 10.0) -> None:
    """Poll ``predicate`` on the running loop until it holds (a deadline generous under load)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {deadline_s:g} s waiting for {what}")
        await asyncio.sleep(0.01)


class Conn:
    """A raw SIP-over-stream client: writes bytes, reads framed responses and requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer()
        self.pending: list[bytes] = []

    @classmethod
    async def open(cls, port: int, tls: ssl.SSLContext | None = None) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # every write its own segment, so "split across segments" is real
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next(self, wait: float = 3.0) -> bytes:
        while not self.pending:
            chunk = await asyncio.wait_for(self.reader.read(65536), wait)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.framer.feed(chunk)
            while (message := self.framer.pop()) is not None:
                self.pending.append(message)
        return self.pending.pop(0)

    async def response(self) -> SipResponse:
        msg = parse_message(await self.next())
        assert isinstance(msg, SipResponse)
        return msg

    async def closed_by_server(self, wait: float = 3.0) -> bool:
        """True if the server closes (EOF or reset) within ``wait`` s; data read is discarded."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), wait):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.writer.close()


def _request(
    method: str,
    port: int,
    call_id: str,
    *,
    branch: str,
    body: bytes = b"",
    dn: str = "1001",
    to_tag: str = "",
    cseq: int = 1,
    transport: str = "TCP",
    extra: str = "",
) -> bytes:
    if body:
        extra += "Content-Type: application/sdp\r\n"
    head = (
        f"{method} sip:{dn}@127.0.0.1:{port};transport={transport.lower()} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:9;branch={branch}\r\nMax-Forwards: 70\r\n"
        f'From: "Caller" <sip:caller@127.0.0.1>;tag=f1\r\nTo: <sip:{dn}@127.0.0.1>{to_tag}\r\n'
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _options(port: int, call_id: str, transport: str = "TCP") -> bytes:
    return _request("OPTIONS", port, call_id, branch=f"z9hG4bK-{call_id}", transport=transport)


async def _call(conn: Conn, port: int, call_id: str) -> tuple[SipResponse, int]:
    """INVITE with SDP, then ACK: the 200 OK and the RTP port it names."""
    await conn.send(_request("INVITE", port, call_id, branch=f"z9hG4bK-{call_id}", body=OFFER))
    assert (await conn.response()).status == 100
    ok = await conn.response()
    assert ok.status == 200 and ok.to is not None and ok.to.tag
    rtp_port = int(next(line for line in ok.body.split(b"\r\n") if line.startswith(b"m=audio")).split()[1])
    await conn.send(
        _request("ACK", port, call_id, branch=f"z9hG4bK-{call_id}-ack", to_tag=f";tag={ok.to.tag}")
    )
    return ok, rtp_port


def test_tcp_call_is_recorded(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        assert service.tcp_port == service.port
        conn = await Conn.open(service.port)
        try:
            ok, rtp_port = await _call(conn, service.port, "tcp-call-1")
            assert ok.get("contact") == f"<sip:127.0.0.1:{service.port};transport=tcp>"
            assert "TCP" in (ok.get("via") or "")
            stats = await send_rtp(None, ("127.0.0.1", rtp_port), "PCMU", speech_like_pcm(1.5))
            assert stats.packets >= 70 and listener.answered
            assert ok.to is not None
            await conn.send(
                _request(
                    "BYE",
                    service.port,
                    "tcp-call-1",
                    branch="z9hG4bK-tcp-bye",
                    to_tag=f";tag={ok.to.tag}",
                    cseq=2,
                )
            )
            bye_ok = await conn.response()
            assert bye_ok.status == 200 and bye_ok.cseq is not None and bye_ok.cseq.method == "BYE"
            await asyncio.wait_for(listener.ended_event.wait(), 3)
        finally:
            conn.close()

    listener = _run(loop, tmp_path, body)
    assert len(listener.answered) == 1 and [r for _, _, r in listener.ended] == ["bye"]
    call, ended_at, _ = listener.ended[0]
    assert call.answered_at is not None
    with wave.open(str(call.voice_path), "rb") as wav:
        frames = wav.getnframes()
        samples = np.frombuffer(wav.readframes(frames), dtype=np.int16)
    assert abs(frames / 8000 - (ended_at - call.answered_at)) < 0.2
    assert np.abs(samples).max() > 1000  # the speech arrived, not just padding


def test_peer_closing_its_connection_ends_nothing_else(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        first, other = await Conn.open(service.port), await Conn.open(service.port)
        ok, _ = await _call(first, service.port, "tcp-drop-1")
        first.close()  # the SBC drops the connection without BYE
        # Once the server has seen the connection go, the call must still be up (no fixed wait).
        await until(lambda: service.stream_stats["TCP"].closed["peer"] == 1, "the server to see the close")
        assert service.active_calls == 1 and not listener.ended
        await other.send(_options(service.port, "still-there"))
        assert (await other.response()).status == 200
        assert ok.to is not None
        await other.send(
            _request(
                "BYE",
                service.port,
                "tcp-drop-1",
                branch="z9hG4bK-drop-bye",
                to_tag=f";tag={ok.to.tag}",
                cseq=2,
            )
        )
        assert (await other.response()).status == 200  # over the connection the BYE came on
        await asyncio.wait_for(listener.ended_event.wait(), 3)
        other.close()

    listener = _run(loop, tmp_path, body)
    assert [r for _, _, r in listener.ended] == ["bye"]


def test_two_messages_in_one_segment_and_one_split_across_segments(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        conn = await Conn.open(service.port)
        try:
            await conn.send(b"\r\n\r\n" + _options(service.port, "seg-a") + _options(service.port, "seg-b"))
            got = {(await conn.response()).call_id, (await conn.response()).call_id}
            assert got == {"seg-a", "seg-b"}
            split = _options(service.port, "seg-c")
            for piece in (split[:7], split[7:90], split[90:-3], split[-3:]):
                await conn.send(piece)
                await asyncio.sleep(0.05)
            reply = await conn.response()
            assert reply.status == 200 and reply.call_id == "seg-c"
        finally:
            conn.close()
        assert service.stream_stats["TCP"].closed["bad-frame"] == 0

    _run(loop, tmp_path, body)


def test_missing_content_length_gets_400_and_close(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        conn = await Conn.open(service.port)
        await conn.send(_options(service.port, "no-cl").replace(b"Content-Length: 0\r\n", b""))
        assert (await conn.response()).status == 400
        assert await conn.closed_by_server()
        conn.close()
        assert service.stream_stats["TCP"].closed["bad-frame"] == 1

    _run(loop, tmp_path, body)


def test_oversize_message_gets_513_and_close(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        conn = await Conn.open(service.port)
        big = _options(service.port, "big").replace(b"Content-Length: 0", b"Content-Length: 70000")
        await conn.send(big + b"x" * 4096)
        reply = await conn.response()
        assert reply.status == 513 and reply.call_id == "big"
        assert await conn.closed_by_server()
        conn.close()
        endless = await Conn.open(service.port)  # a header section that never ends: just closed
        try:
            await endless.send(b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Junk: " + b"a" * 70000)
        except ConnectionError:
            pass
        assert await endless.closed_by_server()
        endless.close()
        assert service.stream_stats["TCP"].closed["bad-frame"] == 2
        assert service.stats.responses[513] == 1

    _run(loop, tmp_path, body)


def test_connections_per_source_are_limited(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        conns = [await Conn.open(service.port) for _ in range(3)]
        for i, conn in enumerate(conns):  # each is established and served
            await conn.send(_options(service.port, f"lim-{i}"))
            assert (await conn.response()).status == 200
        extra = await Conn.open(service.port)
        assert await extra.closed_by_server(1.0)
        extra.close()
        stats = service.stream_stats["TCP"]
        assert stats.refused["per-ip"] == 1 and stats.accepted == 3
        conns.pop().close()
        await until(lambda: service.stream_stats["TCP"].closed["peer"] == 1, "the slot to be freed")
        again = await Conn.open(service.port)  # a freed slot can be used again
        await again.send(_options(service.port, "lim-again"))
        assert (await again.response()).status == 200
        for conn in [*conns, again]:
            conn.close()

    _run(loop, tmp_path, body, StreamLimits(max_per_ip=3, linger=0.05))


def test_slowloris_and_idle_connections_are_closed(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        loop = asyncio.get_running_loop()
        idle = await Conn.open(service.port)
        slow = await Conn.open(service.port)
        started = loop.time()
        dribble = _options(service.port, "slow")
        closed = False
        for i in range(40):  # one byte every 50 ms: never completes within the timeout
            try:
                await slow.send(dribble[i : i + 1])
            except ConnectionError:
                closed = True
                break
            await asyncio.sleep(0.05)
            if slow.reader.at_eof() or slow.writer.is_closing():
                closed = True
                break
        assert closed or await slow.closed_by_server(0.5)
        assert loop.time() - started < 1.6
        assert await idle.closed_by_server(1.0)
        idle.close()
        slow.close()
        assert service.stream_stats["TCP"].closed["idle"] == 2

    _run(loop, tmp_path, body, StreamLimits(idle_timeout=0.5, linger=0.05))


def test_tls_listener_answers_on_its_own_port(tmp_path: Path, loop: str) -> None:
    server_ctx, client_ctx = contexts(tmp_path)

    async def body(service: SipService, listener: FakeListener) -> None:
        assert service.tls_port is not None and service.tls_port != service.port
        conn = await Conn.open(service.tls_port, client_ctx)
        try:
            await conn.send(_options(service.tls_port, "tls-1", transport="TLS"))
            assert (await conn.response()).status == 200
            await conn.send(
                _request(
                    "INVITE",
                    service.tls_port,
                    "tls-2",
                    branch="z9hG4bK-tls2",
                    body=OFFER,
                    dn="9999",
                    transport="TLS",
                )
            )
            assert (await conn.response()).status == 100
            assert (await conn.response()).status == 404
        finally:
            conn.close()
        assert service.stream_stats["TLS"].accepted == 1
        plain = await Conn.open(service.tls_port)  # not TLS: the handshake fails, nothing answered
        await plain.send(_options(service.tls_port, "plain"))
        assert await plain.closed_by_server(2.0)
        plain.close()

    listener = _run(loop, tmp_path, body, tls=server_ctx)
    assert [o.dn for o in listener.offered] == ["9999"]
