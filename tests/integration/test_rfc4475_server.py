"""RFC 4475 torture messages answered by the running ``SipService`` over UDP and over TCP.

Each message is sent byte-exact, on its own fresh server (the torture set reuses Via branches,
so one server would rightly take later messages for retransmissions of earlier ones), and the
final responses are compared with the table below. A last test sends the whole set to one server
over both transports and checks it still answers and recorded nothing.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from server.sip.framing import StreamFramer
from server.sip.service import SipService
from server.sip.tcp import StreamLimits
from tests.integration.sip_fakes import FakeListener
from tests.loops import LOOPS, run_on
from tests.ports import rtp_range

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "sip" / "rfc4475"
pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


@dataclass(frozen=True)
class Case:
    udp: tuple[int, ...]  # final (>= 200) response statuses, in order; () = dropped
    tcp: tuple[int, ...]
    why: str
    tcp_frame: str = "ok"  # "ok"; "bad-frame": cannot be framed, closed; "truncated": waits for more


_501 = "method not supported by a recorder: 501 + Allow (RFC 3261 §8.2.1)"
_404 = "well-formed INVITE to a DN nobody records: the listener answers 404 (RFC 3261 §21.4.5)"
_200 = "well-formed OPTIONS: 200 (RFC 3261 §11.2)"
_400 = "malformed request: 400 with the salvaged headers (RFC 4475 §1, RFC 3261 §21.4.1)"
_RESP = "a response, and no client transaction of ours matches it: dropped (RFC 3261 §18.1.2)"
EXPECTED: dict[str, Case] = {
    # ---- §3.1.1 valid messages: answered as the request asks, never 400
    "wsinv.dat": Case((481,), (481,), "§3.1.1.1 To tag but no such dialog: 481 (RFC 3261 §12.2.2)"),
    "intmeth.dat": Case((501,), (501,), "§3.1.1.2 " + _501),
    "esc01.dat": Case((404,), (404,), "§3.1.1.3 " + _404),
    "escnull.dat": Case((501,), (501,), "§3.1.1.4 REGISTER: " + _501),
    "esc02.dat": Case((501,), (501,), "§3.1.1.5 RE%47IST%45R is an unknown method: " + _501),
    "lwsdisp.dat": Case((200,), (200,), "§3.1.1.6 " + _200),
    "longreq.dat": Case((404,), (404,), "§3.1.1.7 " + _404),
    "dblreq.dat": Case(
        (501,),
        (501, 488),
        "§3.1.1.8 UDP: octets after Content-Length are ignored, REGISTER gets 501. TCP (RFC 3261 "
        "§18.3): they are the next message: the INVITE's bad SDP ('m =video') gets 488, and the 5 "
        "octets its Content-Length leaves over have no Content-Length: unframeable, closed",
        tcp_frame="bad-frame",
    ),
    "semiuri.dat": Case((200,), (200,), "§3.1.1.9 " + _200),
    "transports.dat": Case((200,), (200,), "§3.1.1.10 unknown Via transports are fine: " + _200),
    "mpart01.dat": Case((501,), (501,), "§3.1.1.11 MESSAGE: " + _501),
    "unreason.dat": Case((), (), "§3.1.1.12 " + _RESP),
    "noreason.dat": Case((), (), "§3.1.1.13 " + _RESP),
    # ---- §3.1.2 invalid messages: 400 when a response can be built
    "badinv01.dat": Case((400,), (400,), "§3.1.2.1 " + _400),
    "clerr.dat": Case(
        (400,),
        (),
        "§3.1.2.2 UDP: the body is shorter than Content-Length: 400. TCP (RFC 3261 §18.3): the "
        "rest of the body has simply not arrived yet; at EOF the partial message is dropped",
        tcp_frame="truncated",
    ),
    "ncl.dat": Case(
        (400,),
        (400,),
        "§3.1.2.3 negative Content-Length: 400; on TCP unframeable, closed",
        tcp_frame="bad-frame",
    ),
    "scalar02.dat": Case((400,), (400,), "§3.1.2.4 " + _400),
    "scalarlg.dat": Case((), (), "§3.1.2.5 a malformed response: dropped (nobody to answer)"),
    "quotbal.dat": Case((400,), (400,), "§3.1.2.6 " + _400),
    "ltgtruri.dat": Case((400,), (400,), "§3.1.2.7 " + _400),
    "lwsruri.dat": Case((400,), (400,), "§3.1.2.8 " + _400),
    "lwsstart.dat": Case((400,), (400,), "§3.1.2.9 " + _400),
    "trws.dat": Case((400,), (400,), "§3.1.2.10 " + _400),
    "escruri.dat": Case((404,), (404,), "§3.1.2.11 escaped headers in the R-URI are ignored: " + _404),
    "baddate.dat": Case((404,), (404,), "§3.1.2.12 a bad Date is not fatal: " + _404),
    "regbadct.dat": Case((501,), (501,), "§3.1.2.13 REGISTER: " + _501),
    "badaspec.dat": Case((200,), (200,), "§3.1.2.14 " + _200),
    "baddn.dat": Case((200,), (200,), "§3.1.2.15 " + _200),
    "badvers.dat": Case((505,), (505,), "§3.1.2.16 SIP/7.0: 505 (RFC 3261 §21.5.6)"),
    "mismatch01.dat": Case((400,), (400,), "§3.1.2.17 CSeq method differs from the start line: 400"),
    "mismatch02.dat": Case((400,), (400,), "§3.1.2.18 same, with an unknown method: 400, not 501"),
    "bigcode.dat": Case((), (), "§3.1.2.19 a malformed response: dropped"),
    # ---- §3.2 transaction layer
    "badbranch.dat": Case((200,), (200,), "§3.2.1 no magic cookie in the branch is still a request: 200"),
    # ---- §3.3 application layer semantics
    "insuf.dat": Case(
        (),
        (),
        "§3.3.1 no From, To, Call-ID: the RFC suggests 400, but RFC 3261 §8.2.6.2 makes a response "
        "copy exactly those headers, so none can be built and the request is dropped (also pinned "
        "by test_sip_service's missing-Call-ID case)",
    ),
    "unkscm.dat": Case((416,), (416,), "§3.3.2 unknown Request-URI scheme: 416 (RFC 3261 §8.2.2.1)"),
    "novelsc.dat": Case((416,), (416,), "§3.3.3 a tel: Request-URI we do not serve: 416"),
    "unksm2.dat": Case((501,), (501,), "§3.3.4 unknown schemes in headers are fine; REGISTER: " + _501),
    "bext01.dat": Case((420,), (420,), "§3.3.5 Require we do not support: 420 + Unsupported (§8.2.2.3)"),
    "invut.dat": Case((415,), (415,), "§3.3.6 body type we cannot read: 415 + Accept (§8.2.3)"),
    "regaut01.dat": Case((501,), (501,), "§3.3.7 REGISTER: " + _501),
    "multi01.dat": Case((400,), (400,), "§3.3.8 single-value header twice: 400"),
    "mcl01.dat": Case(
        (400,), (400,), "§3.3.9 two Content-Lengths: 400; on TCP unframeable, closed", tcp_frame="bad-frame"
    ),
    "bcast.dat": Case((), (), "§3.3.10 " + _RESP),
    "zeromf.dat": Case((200,), (200,), "§3.3.11 Max-Forwards 0 reaching the UAS itself: " + _200),
    "cparam01.dat": Case((501,), (501,), "§3.3.12 REGISTER: " + _501),
    "cparam02.dat": Case((501,), (501,), "§3.3.13 REGISTER: " + _501),
    "regescrt.dat": Case((501,), (501,), "§3.3.14 REGISTER: " + _501),
    "sdp01.dat": Case((404,), (404,), "§3.3.15 Accept without SDP: the DN is unknown first: " + _404),
    # ---- §3.4 backward compatibility
    "inv2543.dat": Case(
        (400,),
        (400,),
        "§3.4.1 RFC 2543 INVITE (no branch, no From tag): 400. It has no Content-Length, which on "
        "TCP (RFC 3261 §18.3) is already unframeable: 400 and closed",
        tcp_frame="bad-frame",
    ),
}


def _rows() -> list[tuple[str, str]]:
    if not DATA.is_dir():
        return []
    with (DATA / "EXPECTED.tsv").open(newline="") as fh:
        return [(row["file"], row["expected"]) for row in csv.DictReader(fh, delimiter="\t")]


ROWS = _rows()


def _with_service(
    tmp_path: Path, body: Callable[[SipService, FakeListener], Awaitable[T]], loop: str = "asyncio"
) -> T:
    async def main() -> T:
        listener = FakeListener(tmp_path)
        service = SipService(
            listener,
            host="127.0.0.1",
            port=0,
            advertised_host="127.0.0.1",
            rtp_host="127.0.0.1",
            rtp_port_range=rtp_range(),
            stream_limits=StreamLimits(idle_timeout=5.0, linger=0.05),
        )
        await service.start()
        try:
            return await body(service, listener)
        finally:
            await service.stop()
            assert not listener.answered, "a torture message started a recording"

    sip_log = logging.getLogger("server.sip")
    level = sip_log.level
    sip_log.setLevel(logging.ERROR)  # the torture set makes hundreds of expected warnings
    try:
        result = run_on(loop, main())
    finally:
        sip_log.setLevel(level)
    assert list(tmp_path.glob("*.wav")) == []
    return result


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


def _status(data: bytes) -> int:
    assert data.startswith(b"SIP/2.0 "), data[:80]
    return int(data[8:11])


async def _send_udp(port: int, data: bytes, finals: int, quiet: float = 0.05) -> list[int]:
    """Statuses of every response until ``finals`` final ones came and ``quiet`` s passed without
    another (0.25 s when no final response is expected)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0))
    statuses: list[int] = []
    try:
        transport.sendto(data, ("127.0.0.1", port))
        while True:
            done = sum(s >= 200 for s in statuses) >= finals
            try:
                statuses.append(_status(await asyncio.wait_for(proto.queue.get(), quiet if done else 0.25)))
            except TimeoutError:
                return statuses
    finally:
        transport.close()


async def _send_tcp(port: int, data: bytes) -> list[int]:
    """One connection per message: send, half-close, read responses until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = StreamFramer()
    statuses: list[int] = []
    try:
        writer.write(data)
        writer.write_eof()
        while chunk := await asyncio.wait_for(reader.read(65536), 3.0):
            framer.feed(chunk)
            while (message := framer.pop()) is not None:
                statuses.append(_status(message))
    finally:
        writer.close()
    return statuses


async def _options_ok(service: SipService, transport: str) -> bool:
    msg = (
        f"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bK-"
        f"{uuid.uuid4().hex}\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:1001@127.0.0.1>\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    if transport == "UDP":
        statuses = await _send_udp(service.port, msg, 1, quiet=0.0)
    else:
        assert service.tcp_port is not None
        statuses = await _send_tcp(service.tcp_port, msg)
    return statuses == [200]


def test_table_covers_the_torture_set() -> None:
    assert len(ROWS) == 49 and {name for name, _ in ROWS} == set(EXPECTED)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
@pytest.mark.parametrize(("name", "kind"), ROWS, ids=[name for name, _ in ROWS])
def test_torture_message_answered_by_server(name: str, kind: str, transport: str, tmp_path: Path) -> None:
    case = EXPECTED[name]
    data = (DATA / name).read_bytes()

    async def body(service: SipService, listener: FakeListener) -> None:
        if transport == "UDP":
            statuses = await _send_udp(service.port, data, len(case.udp))
            expected = case.udp
        else:
            assert service.tcp_port == service.port  # same port number (RFC 3261 §18.2.1)
            statuses = await _send_tcp(service.port, data)
            expected = case.tcp
            stats = service.stream_stats["TCP"]
            assert stats.closed["bad-frame"] == (1 if case.tcp_frame == "bad-frame" else 0)
            assert stats.truncated == (1 if case.tcp_frame == "truncated" else 0)
        assert tuple(s for s in statuses if s >= 200) == expected, case.why
        assert all(s == 100 for s in statuses if s < 200)
        if kind == "parse":
            assert 400 not in expected, "a well-formed message got 400"
        else:  # a rejected request never reaches the listener, let alone a recording
            assert not listener.offered
        assert await _options_ok(service, transport), "server stopped answering after " + name

    _with_service(tmp_path, body)


@pytest.mark.parametrize("loop", LOOPS)  # uvloop is what tandem-server run uses
def test_one_server_survives_the_whole_set_on_both_transports(tmp_path: Path, loop: str) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        assert service.tcp_port is not None
        for name, _ in ROWS:
            data = (DATA / name).read_bytes()
            await asyncio.gather(_send_udp(service.port, data, 0), _send_tcp(service.tcp_port, data))
        assert await _options_ok(service, "UDP") and await _options_ok(service, "TCP")
        assert service.stats.handler_errors == 0
        rejected_requests = {n for n, kind in ROWS if kind == "reject"}
        offered = {o.call_id for o in listener.offered}
        assert not any(n.removesuffix(".dat") in cid for n in rejected_requests for cid in offered)

    _with_service(tmp_path, body, loop)
