"""Dialogs as real SBCs send them (issue 11 item 5) and header bytes that are not UTF-8 (item 6),
sent as raw datagrams to the SIP engine on both event loops; the recording is the real
``RtpSession``'s WAV, whose length must be the call's."""

from __future__ import annotations

import asyncio
import re
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from server.errors import SipParseError
from server.sip.listener import UpdateKind
from server.sip.message import SipResponse, parse_message
from server.sip.refusals import Refusal, RefusalSink
from server.sip.service import SipService
from tests.integration.sip_fakes import FakeListener
from tests.loops import LOOPS, run_on
from tests.ports import rtp_range

pytestmark = pytest.mark.timeout(90)
DEADLINE = 10.0  # generous: the machine is shared and noisy

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 41000 RTP/AVP 0\r\na=sendrecv\r\n"
)
SDP_INACTIVE = SDP.replace(b"a=sendrecv", b"a=inactive").replace(b"1 1 IN", b"1 2 IN")
SDP_ACTIVE = SDP.replace(b"1 1 IN", b"1 3 IN")


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


@dataclass
class RawUac:
    """A caller that writes its requests byte by byte (so they can be as broken as an SBC's)."""

    port: int
    transport: asyncio.DatagramTransport
    proto: _Udp
    call_id: bytes = b"tol-1"
    from_: bytes = b"<sip:caller@127.0.0.1>;tag=f1"
    to: bytes = b"<sip:1001@127.0.0.1>"
    to_tag: bytes = b""
    branches: int = 0
    received: list[bytes] = field(default_factory=list)

    def request(
        self,
        method: str,
        cseq: int,
        *,
        body: bytes = b"",
        with_tag: bool = True,
        cseq_method: str | None = None,
        start: bytes | None = None,
    ) -> bytes:
        self.branches += 1
        to = self.to + (b";tag=" + self.to_tag if with_tag and self.to_tag else b"")
        head = (
            (start or f"{method} sip:1001@127.0.0.1:{self.port} SIP/2.0".encode())
            + b"\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-tol"
            + str(self.branches).encode()
            + b"\r\nMax-Forwards: 70\r\nFrom: "
            + self.from_
            + b"\r\nTo: "
            + to
            + b"\r\nCall-ID: "
            + self.call_id
            + f"\r\nCSeq: {cseq} {cseq_method or method}\r\n".encode()
            + b"Contact: <sip:caller@127.0.0.1:9>\r\n"
            + (b"Content-Type: application/sdp\r\n" if body else b"")
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        return head + body

    def send(self, data: bytes) -> None:
        self.transport.sendto(data, ("127.0.0.1", self.port))

    async def response(self, method: str, status: int | None = None) -> SipResponse:
        """The next response to ``method`` (with ``status`` if given); others are kept aside."""
        while True:
            data = await asyncio.wait_for(self.proto.queue.get(), DEADLINE)
            self.received.append(data)
            try:
                msg = parse_message(data)
            except SipParseError:
                continue  # e.g. a 400 echoing a broken Via: the test reads ``received`` raw
            if isinstance(msg, SipResponse) and msg.cseq and msg.cseq.method == method:
                if status is None or msg.status == status:
                    return msg

    async def invite(self, cseq: int = 1, body: bytes = SDP) -> SipResponse:
        self.send(self.request("INVITE", cseq, body=body))
        ok = await self.response("INVITE", 200)
        assert ok.to is not None and ok.to.tag
        self.to_tag = ok.to.tag.encode("utf-8", "surrogateescape")
        return ok

    async def reinvite(self, cseq: int, body: bytes) -> SipResponse:
        self.send(self.request("INVITE", cseq, body=body))
        while (reply := await self.response("INVITE")).status < 200 or reply.cseq is None:
            pass
        return reply


async def _wait_for(predicate: Callable[[], object], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _run(
    loop: str,
    tmp_path: Path,
    body: Callable[[SipService, FakeListener, RawUac], Awaitable[None]],
    refusals: RefusalSink | None = None,
) -> tuple[SipService, FakeListener]:
    async def main() -> tuple[SipService, FakeListener]:
        listener = FakeListener(tmp_path)
        service = SipService(
            listener,
            host="127.0.0.1",
            port=0,
            advertised_host="127.0.0.1",
            rtp_host="127.0.0.1",
            rtp_port_range=rtp_range(),
            rtp_timeout=60.0,
            refusals=refusals,
        )
        await service.start()
        transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(
            _Udp, local_addr=("127.0.0.1", 0)
        )
        try:
            await body(service, listener, RawUac(service.port, transport, proto))
        finally:
            transport.close()
            await service.stop()
        return service, listener

    return run_on(loop, main())


def _assert_recorded_for_its_length(listener: FakeListener, at_most: float) -> None:
    """One call, ended by the caller's BYE, whose WAV lasts from the 200 OK to the BYE."""
    assert len(listener.answered) == 1 and len(listener.ended) == 1
    call, ended_at, reason = listener.ended[0]
    assert reason == "bye" and call.answered_at is not None
    with wave.open(str(call.voice_path), "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert abs(seconds - (ended_at - call.answered_at)) < 0.1, (seconds, ended_at - call.answered_at)
    assert seconds < at_most, f"a {seconds:.1f} s file for a call shorter than {at_most} s"


# ---- item 5: dialogs -------------------------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_ack_and_bye_without_to_tag_match_their_dialog(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite()
        uac.send(uac.request("ACK", 1, with_tag=False))
        await _wait_for(lambda: listener.answered, "the ACK without To-tag to answer the call")
        await asyncio.sleep(0.5)  # the call lasts a moment: its file must last as long
        uac.send(uac.request("BYE", 2, with_tag=False))
        assert (await uac.response("BYE")).status == 200  # was 481
        await _wait_for(lambda: listener.ended, "the call to end")

    service, listener = _run(loop, tmp_path, body)
    _assert_recorded_for_its_length(listener, 5.0)  # was 32 s: the BYE refused, the 2xx never ACKed
    assert service.stats.tolerated["ack-without-to-tag"] == 1
    assert service.stats.tolerated["bye-without-to-tag"] == 1


@pytest.mark.parametrize("loop", LOOPS)
def test_without_to_tag_two_dialogs_of_one_call_id_match_neither(loop: str, tmp_path: Path) -> None:
    """Matching without our tag is safe only when one dialog can be meant: a forked INVITE's
    two dialogs share Call-ID and From-tag, so a tag-less BYE names neither."""

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite()
        first_tag = uac.to_tag
        uac.send(uac.request("ACK", 1))
        # A second INVITE of the same Call-ID and From-tag (another branch of a fork).
        uac.to_tag = b""
        await uac.invite(cseq=1)
        assert uac.to_tag != first_tag
        uac.send(uac.request("ACK", 1))
        await _wait_for(lambda: len(listener.answered) == 2, "both dialogs answered")
        uac.send(uac.request("BYE", 2, with_tag=False))
        assert (await uac.response("BYE")).status == 481
        for tag in (first_tag, uac.to_tag):
            uac.to_tag = tag
            uac.send(uac.request("BYE", 3))
            assert (await uac.response("BYE")).status == 200

    service, listener = _run(loop, tmp_path, body)
    assert len(listener.ended) == 2 and "bye-without-to-tag" not in service.stats.tolerated


@pytest.mark.parametrize("loop", LOOPS)
def test_ack_with_another_cseq_acknowledges_the_reinvite(loop: str, tmp_path: Path) -> None:
    """Pause, then resume: the pause's ACK carries a CSeq no INVITE had. It was not matched, the
    2xx stayed pending, the resume was refused 491 and the call ended after 32 s."""

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite()
        uac.send(uac.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the call answered")
        assert (await uac.reinvite(2, SDP_INACTIVE)).status == 200
        uac.send(uac.request("ACK", 7))
        await _wait_for(lambda: service.stats.tolerated["ack-cseq-mismatch"], "the odd ACK matched")
        assert (await uac.reinvite(3, SDP_ACTIVE)).status == 200  # was 491
        uac.send(uac.request("ACK", 3))
        uac.send(uac.request("BYE", 4))
        assert (await uac.response("BYE")).status == 200
        await _wait_for(lambda: listener.ended, "the call to end")

    service, listener = _run(loop, tmp_path, body)
    assert [u.kind for _, u in listener.updates] == [UpdateKind.PAUSE, UpdateKind.RESUME]
    assert "reinvite-before-ack" not in service.stats.tolerated  # the ACK itself was matched
    _assert_recorded_for_its_length(listener, 5.0)


@pytest.mark.parametrize("loop", LOOPS)
def test_initial_ack_with_another_cseq_or_an_invite_cseq_answers_the_call(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite(cseq=5)
        uac.send(uac.request("ACK", 6, cseq_method="INVITE"))  # was 400: CSeq method is not ACK
        await _wait_for(lambda: listener.answered, "the call answered")
        uac.send(uac.request("BYE", 7))
        assert (await uac.response("BYE")).status == 200
        await _wait_for(lambda: listener.ended, "the call to end")

    service, listener = _run(loop, tmp_path, body)
    assert service.stats.tolerated["ack-cseq-mismatch"] == 1
    assert service.stats.tolerated["ack-cseq-method"] == 1
    _assert_recorded_for_its_length(listener, 5.0)


@pytest.mark.parametrize("loop", LOOPS)
def test_reinvite_before_the_ack_takes_the_ack_as_sent(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite()
        # The ACK is lost; the SRC pauses the recording.
        assert (await uac.reinvite(2, SDP_INACTIVE)).status == 200  # was 491 Request Pending
        await _wait_for(lambda: listener.answered, "the call taken as answered")
        uac.send(uac.request("ACK", 1))  # the late ACK of the INVITE: must not ack the re-INVITE
        uac.send(uac.request("ACK", 2))
        assert (await uac.reinvite(3, SDP_ACTIVE)).status == 200
        uac.send(uac.request("ACK", 3))
        uac.send(uac.request("BYE", 4))
        assert (await uac.response("BYE")).status == 200
        await _wait_for(lambda: listener.ended, "the call to end")

    service, listener = _run(loop, tmp_path, body)
    assert service.stats.tolerated["reinvite-before-ack"] == 1
    assert "ack-cseq-mismatch" not in service.stats.tolerated
    assert [u.kind for _, u in listener.updates] == [UpdateKind.PAUSE, UpdateKind.RESUME]
    _assert_recorded_for_its_length(listener, 5.0)


@pytest.mark.parametrize("loop", LOOPS)
def test_reinvite_with_a_lower_cseq_is_accepted(loop: str, tmp_path: Path) -> None:
    """An SBC that restarted its CSeq numbering (failover) pauses and resumes the recording."""

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite(cseq=100)
        uac.send(uac.request("ACK", 100))
        await _wait_for(lambda: listener.answered, "the call answered")
        assert (await uac.reinvite(1, SDP_INACTIVE)).status == 200  # was 500 CSeq Out Of Order
        uac.send(uac.request("ACK", 1))
        assert (await uac.reinvite(2, SDP_ACTIVE)).status == 200
        uac.send(uac.request("ACK", 2))
        uac.send(uac.request("BYE", 3))
        assert (await uac.response("BYE")).status == 200
        await _wait_for(lambda: listener.ended, "the call to end")

    service, listener = _run(loop, tmp_path, body)
    assert service.stats.tolerated["cseq-not-increasing"] == 1
    assert [u.kind for _, u in listener.updates] == [UpdateKind.PAUSE, UpdateKind.RESUME]
    _assert_recorded_for_its_length(listener, 5.0)


ACK_CSEQ = re.compile(rb"^SIP/2\.0 .*\r\nCSeq: *\d+ +ACK\r\n", re.DOTALL | re.IGNORECASE)
BROKEN_ACKS = {
    "bad request line": b"ACK  sip:1001@127.0.0.1 SIP/2.0",
    "bad version": b"ACK sip:1001@127.0.0.1 SIP/9.9",
    "no URI scheme": b"ACK 1001@127.0.0.1 SIP/2.0",
    "lower-case method, bad line": b"ack sip:1001@127.0.0.1 SIP/2.0 x",
}


@pytest.mark.parametrize("loop", LOOPS)
def test_a_malformed_ack_is_never_answered(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite()
        for start in BROKEN_ACKS.values():
            uac.send(uac.request("ACK", 1, start=start))
        broken_via = uac.request("ACK", 1).replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/UDP ;;")
        uac.send(broken_via)
        # An OPTIONS after them: the engine answers datagrams in order, so once its 200 is in,
        # any answer to the broken ACKs would be in too.
        uac.send(uac.request("OPTIONS", 1, with_tag=False))
        await uac.response("OPTIONS", 200)
        answers = [r.split(b"\r\n", 1)[0] for r in uac.received if ACK_CSEQ.search(r)]
        assert not answers, f"ACKs answered: {answers}"
        uac.send(uac.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the good ACK")
        uac.send(uac.request("BYE", 2))
        assert (await uac.response("BYE")).status == 200

    service, _ = _run(loop, tmp_path, body)
    assert service.stats.tolerated["malformed-ack"] == len(BROKEN_ACKS) + 1
    assert service.stats.responses[400] == 0


# ---- item 6: header octets that are not UTF-8 ---------------------------------------------------
class _Refusals:
    def __init__(self) -> None:
        self.seen: list[Refusal] = []

    def refused(self, refusal: Refusal) -> None:
        self.seen.append(refusal)


@pytest.mark.parametrize("loop", LOOPS)
def test_latin1_and_binary_header_octets_are_recorded_and_echoed(loop: str, tmp_path: Path) -> None:
    refusals = _Refusals()

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        uac.call_id = b"bin\x01\xff@pbx"
        uac.from_ = b'"M\xfcller" <sip:4930123@127.0.0.1>;tag=t\xe9g'
        uac.send(uac.request("INVITE", 1, body=SDP))
        ok = await uac.response("INVITE", 200)
        raw = uac.received[-1]
        assert b"\r\nCall-ID: bin\x01\xff@pbx\r\n" in raw and b'\r\nFrom: "M\xfcller" <sip:' in raw
        assert ok.to is not None and ok.to.tag
        uac.to_tag = ok.to.tag.encode()
        uac.send(uac.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the call answered")
        uac.send(uac.request("BYE", 2))
        assert (await uac.response("BYE")).status == 200
        await _wait_for(lambda: listener.ended, "the call to end")
        # A refused one: the missed-call record shows the name, not "M?ller".
        uac.call_id, uac.to, uac.to_tag = b"refused\xff", b"<sip:9999@127.0.0.1>", b""
        uac.send(uac.request("INVITE", 1, body=SDP).replace(b"sip:1001@127.0.0.1:", b"sip:9999@127.0.0.1:"))
        assert (await uac.response("INVITE", 404)).status == 404

    _, listener = _run(loop, tmp_path, body, refusals)
    offer = listener.offered[0]
    assert offer.caller == "Müller <4930123>" and offer.call_id == "bin?ÿ@pbx"
    _assert_recorded_for_its_length(listener, 5.0)
    assert [(r.call_id, r.from_uri) for r in refusals.seen] == [
        ("refusedÿ", '"Müller" <sip:4930123@127.0.0.1>;tag=tég')
    ]


@pytest.mark.parametrize("loop", LOOPS)
def test_an_unframeable_ack_on_tcp_is_not_answered(loop: str, tmp_path: Path) -> None:
    """No Content-Length on a stream: the connection is closed (RFC 3261 §18.3), and an ACK gets
    no 400 on its way out (an INVITE would)."""
    replies: dict[str, bytes] = {}

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        assert service.tcp_port is not None
        for method in ("ACK", "INVITE"):
            reader, writer = await asyncio.open_connection("127.0.0.1", service.tcp_port)
            message = uac.request(method, 1).replace(b"Content-Length: 0\r\n", b"")
            writer.write(message.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
            await writer.drain()
            replies[method] = await asyncio.wait_for(reader.read(), DEADLINE)  # up to the close
            writer.close()

    service, _ = _run(loop, tmp_path, body)
    assert replies["ACK"] == b""
    assert replies["INVITE"].startswith(b"SIP/2.0 400 ")
    assert service.stats.tolerated["malformed-ack"] == 1
