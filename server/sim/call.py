"""A simulated caller: a real SIP UAC over UDP that places one call to the recording server and
streams speech-like G.711 audio, for demos, load tests and end-to-end tests.

It speaks the same wire protocol a PBX would (INVITE with an SDP offer, ACK, RTP, BYE), using
the engine's own message builders and parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from typing import cast

from server.errors import SdpError, SimulatedCallError, SipParseError
from server.sim.rtp_sender import send_rtp
from server.sim.speech import speech_like_pcm
from server.sip.builders import build_request, build_response, new_branch, new_tag
from server.sip.message import SipRequest, SipResponse, parse_message
from server.sip.sdp import SUPPORTED, choose_audio, parse_sdp

_logger = logging.getLogger(__name__)
T1 = 0.5
T2 = 4.0
FINAL_TIMEOUT = 32.0  # Timer B (64*T1)
MAX_QUEUED = 64


@dataclass(frozen=True, slots=True)
class SimulatedCallResult:
    call_id: str
    codec: str
    remote_rtp: tuple[str, int]
    answered_at: float  # time.time() when the 200 OK arrived
    ended_at: float  # time.time() when the BYE transaction ended
    packets_sent: int
    ended_by: str  # "caller" (our BYE) or "server" (the server's BYE)


class _UacProtocol(asyncio.DatagramProtocol):
    """Queues responses; answers a BYE from the server at once (it may hang up first)."""

    def __init__(self) -> None:
        self.responses: asyncio.Queue[SipResponse] = asyncio.Queue(MAX_QUEUED)
        self.remote_bye = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.dropped += 1
            _logger.debug("simulated caller dropped a malformed datagram: %s", exc)
            return
        if isinstance(msg, SipResponse):
            try:
                self.responses.put_nowait(msg)
            except asyncio.QueueFull:
                self.dropped += 1
            return
        if self.transport is not None and msg.method != "ACK":
            status = 200 if msg.method in ("BYE", "OPTIONS") else 501
            self.transport.sendto(build_response(msg, status).to_bytes(), (str(addr[0]), int(addr[1])))
        if msg.method == "BYE":
            self.remote_bye.set()


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _offer(host: str, rtp_port: int, codec: str) -> bytes:
    pt = SUPPORTED[codec]
    sid = int(time.time())
    return (
        f"v=0\r\no=sim {sid} {sid} IN IP4 {host}\r\ns=Tandem simulated call\r\nc=IN IP4 {host}\r\n"
        f"t=0 0\r\nm=audio {rtp_port} RTP/AVP {pt}\r\na=rtpmap:{pt} {codec}/8000\r\na=sendonly\r\n"
    ).encode()


class _Dialog:
    def __init__(
        self, proto: _UacProtocol, server: tuple[str, int], local: tuple[str, int], dn: str, caller: str
    ) -> None:
        self.proto = proto
        self.server = server
        self.local = local
        self.call_id = f"{new_tag()}@{local[0]}"
        self.uri = f"sip:{dn}@{server[0]}:{server[1]}"
        self.from_ = f"<sip:{caller}@{local[0]}>;tag={new_tag()}"
        self.to = f"<sip:{dn}@{server[0]}>"
        self.contact = f"<sip:{caller}@{local[0]}:{local[1]}>"
        self.cseq = 1

    def request(self, method: str, branch: str, cseq: int, body: bytes = b"") -> SipRequest:
        return build_request(
            method,
            self.uri,
            via=f"SIP/2.0/UDP {self.local[0]}:{self.local[1]};branch={branch};rport",
            from_=self.from_,
            to=self.to,
            call_id=self.call_id,
            cseq=cseq,
            contact=self.contact,
            body=body,
        )

    def send(self, data: bytes) -> None:
        assert self.proto.transport is not None
        self.proto.transport.sendto(data, self.server)

    async def transact(self, data: bytes, method: str, cseq: int, *, final_timeout: float) -> SipResponse:
        """Send with T1-doubling retransmission until a response; return the final response."""
        interval = T1
        got_provisional = False
        deadline = time.monotonic() + final_timeout
        while True:
            if not got_provisional:
                self.send(data)
            wait = min(interval, deadline - time.monotonic())
            if wait <= 0:
                raise SimulatedCallError(f"no final response to {method} within {final_timeout:.0f} s")
            try:
                resp = await asyncio.wait_for(self.proto.responses.get(), wait)
            except TimeoutError:
                interval = min(interval * 2, T2)
                continue
            cs = resp.cseq
            if resp.call_id != self.call_id or cs is None or (cs.number, cs.method) != (cseq, method):
                continue  # stray or retransmitted response of an earlier transaction
            if resp.status < 200:
                got_provisional = True
                continue
            return resp

    def ack(self, resp: SipResponse, branch: str, cseq: int) -> None:
        to = resp.get("to")
        if to:
            self.to = to  # carries the server's tag from now on
        self.send(self.request("ACK", branch, cseq).to_bytes())


async def simulate_call(
    server: tuple[str, int],
    dn: str,
    seconds: float,
    codec: str = "PCMU",
    caller: str = "+15550100",
    local_host: str = "127.0.0.1",
) -> SimulatedCallResult:
    if codec not in SUPPORTED:
        raise SimulatedCallError(f"unsupported codec {codec!r}; use PCMU or PCMA")
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_UacProtocol, local_addr=(local_host, 0))
    try:
        local = (local_host, int(transport.get_extra_info("sockname")[1]))
        rtp_port = _free_udp_port(local_host)
        dialog = _Dialog(proto, server, local, dn, caller)
        return await _run(dialog, rtp_port, seconds, codec)
    finally:
        transport.close()


async def _run(dialog: _Dialog, rtp_port: int, seconds: float, codec: str) -> SimulatedCallResult:
    branch = new_branch()
    invite = dialog.request("INVITE", branch, dialog.cseq, _offer(dialog.local[0], rtp_port, codec))
    resp = await dialog.transact(invite.to_bytes(), "INVITE", dialog.cseq, final_timeout=FINAL_TIMEOUT)
    answered_at = time.time()
    if resp.status >= 300:
        dialog.ack(resp, branch, dialog.cseq)  # ACK of a non-2xx reuses the INVITE's branch
        raise SimulatedCallError(f"call refused: {resp.status} {resp.reason}", status=resp.status)
    dialog.ack(resp, new_branch(), dialog.cseq)
    try:
        choice = choose_audio(parse_sdp(resp.body))
    except SdpError as exc:
        raise SimulatedCallError(f"unusable SDP answer: {exc}") from exc
    remote = (choice.remote_host, choice.remote_port)
    pcm = speech_like_pcm(seconds)
    stop = asyncio.Event()
    stopper = asyncio.create_task(_stop_on_bye(dialog.proto.remote_bye, stop))
    try:
        stats = await send_rtp((dialog.local[0], rtp_port), remote, choice.codec, pcm, stop)
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
    packets = stats.packets
    if dialog.proto.remote_bye.is_set():
        return SimulatedCallResult(
            dialog.call_id, choice.codec, remote, answered_at, time.time(), packets, "server"
        )
    dialog.cseq += 1
    bye = dialog.request("BYE", new_branch(), dialog.cseq).to_bytes()
    bye_resp = await dialog.transact(bye, "BYE", dialog.cseq, final_timeout=FINAL_TIMEOUT)
    if bye_resp.status >= 300:
        raise SimulatedCallError(f"BYE refused: {bye_resp.status} {bye_resp.reason}", bye_resp.status)
    return SimulatedCallResult(
        dialog.call_id, choice.codec, remote, answered_at, time.time(), packets, "caller"
    )


async def _stop_on_bye(remote_bye: asyncio.Event, stop: asyncio.Event) -> None:
    await remote_bye.wait()
    stop.set()
