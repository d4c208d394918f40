"""SIPREC media as independent SRCs send it (issue 11 items 3, 4, 9), as raw datagrams to the SIP
engine on both event loops, recorded by real RTP sessions; the WAV's *content* is checked (a tone
of known frequency per channel and per part of the call), not only its length.

- A delayed offer (Cisco UCM's built-in bridge): INVITE with the metadata and no SDP; our offer is
  in the 200 OK (resent until the ACK), the answer in the ACK.
- A re-INVITE that changes a stream's codec (PCMA → G.722 after a transfer) continues the
  recording instead of 488.
- Two labelled streams from independent flows: one starts late, the other changes SSRC mid-call;
  one stereo file, each party on its own channel, both as long as the call.
"""

from __future__ import annotations

import asyncio
import re
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from server.errors import SipParseError
from server.rtp.packet import RtpPacket
from server.sip.message import SipResponse, parse_message
from server.sip.service import SipService
from server.voice import g711, g722
from tests.integration.sip_fakes import FakeListener
from tests.loops import LOOPS, run_on
from tests.ports import rtp_range

pytestmark = pytest.mark.timeout(120)
DEADLINE = 10.0  # generous: the machine is shared and noisy
HOST = "127.0.0.1"

METADATA = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="c2Vzcw=="><sipSessionID>ucm-bib-1</sipSessionID></session>
  <participant participant_id="cGExPQ=="><nameID aor="sip:+15551230000@pstn.example.com"/></participant>
  <participant participant_id="cGEyPQ=="><nameID aor="sip:1001@ucm.example.com"/></participant>
  <stream stream_id="c3QxPQ==" session_id="c2Vzcw=="><label>10</label></stream>
  <stream stream_id="c3QyPQ==" session_id="c2Vzcw=="><label>11</label></stream>
  <participantstreamassoc participant_id="cGExPQ==">
    <send>c3QxPQ==</send><recv>c3QyPQ==</recv></participantstreamassoc>
  <participantstreamassoc participant_id="cGEyPQ==">
    <send>c3QyPQ==</send><recv>c3QxPQ==</recv></participantstreamassoc>
</recording>
"""
BOUNDARY = "uniqueBoundary"
Int16Array = npt.NDArray[np.int16]


def metadata_only_body() -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\n"
        "Content-Disposition: recording-session\r\n\r\n".encode()
        + METADATA
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def sdp(*media: str, version: int = 1) -> bytes:
    head = f"v=0\r\no=src 1 {version} IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
    return (head + "".join(media)).encode()


def tone(frequency: float, seconds: float, rate: int) -> Int16Array:
    t = np.arange(round(seconds * rate)) / rate
    return np.round(6000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def peak(samples: Int16Array, rate: int) -> tuple[float, float]:
    """(strongest frequency, RMS) of ``samples``."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x)), float(np.sqrt(np.mean(x**2)))


def read_wav(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getframerate(), data.reshape(-1, wav.getnchannels())


def frames(codec: str, pcm: Int16Array) -> list[bytes]:
    """20-ms payloads of ``pcm`` (8 kHz for G.711, 16 kHz for G.722)."""
    if codec == "G722":
        whole = g722.encode(pcm)
        return [whole[i : i + 160] for i in range(0, len(whole), 160)]
    encode = g711.alaw_encode if codec == "PCMA" else g711.ulaw_encode
    return [encode(pcm[i : i + 160]) for i in range(0, len(pcm), 160)]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


@dataclass
class Src:
    """A recording client that writes its requests byte by byte."""

    port: int
    transport: asyncio.DatagramTransport
    proto: _Udp
    call_id: str = "media-1"
    to_tag: str = ""
    branches: int = 0
    received: list[SipResponse] = field(default_factory=list)

    def request(
        self, method: str, cseq: int, body: bytes = b"", content_type: str = "application/sdp"
    ) -> bytes:
        self.branches += 1
        to = "<sip:1001@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        head = (
            f"{method} sip:1001@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-m{self.branches}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:src@127.0.0.1>;tag=s1\r\nTo: {to}\r\nCall-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nContact: <sip:src@127.0.0.1:9>;+sip.src\r\nRequire: siprec\r\n"
            + (f"Content-Type: {content_type}\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def send(self, data: bytes) -> None:
        self.transport.sendto(data, (HOST, self.port))

    async def response(self, method: str, status: int) -> SipResponse:
        while True:
            data = await asyncio.wait_for(self.proto.queue.get(), DEADLINE)
            try:
                msg = parse_message(data)
            except SipParseError:
                continue
            if isinstance(msg, SipResponse) and msg.cseq and msg.cseq.method == method:
                self.received.append(msg)
                if msg.status >= 200 and msg.status != status:
                    raise AssertionError(f"{method} got {msg.status} {msg.reason}, not {status}")
                if msg.status == status:
                    return msg

    async def invite(self, body: bytes, content_type: str) -> SipResponse:
        self.send(self.request("INVITE", 1, body, content_type))
        ok = await self.response("INVITE", 200)
        assert ok.to is not None and ok.to.tag
        self.to_tag = ok.to.tag
        return ok


def answer_ports(body: bytes) -> list[int]:
    return [int(port) for port in re.findall(rb"^m=audio (\d+) ", body, re.MULTILINE)]


async def send_packets(
    port: int, packets: list[tuple[int, int, int, bytes]], local: tuple[str, int] | None = None
) -> None:
    """Paced RTP: (pt, ssrc, timestamp, payload) every 20 ms to ``port``."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=local or (HOST, 0), remote_addr=(HOST, port)
    )
    try:
        start = loop.time()
        for k, (pt, ssrc, timestamp, payload) in enumerate(packets):
            delay = start + 0.02 * k - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            transport.sendto(
                RtpPacket(pt, k & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc, payload, k == 0).serialize()
            )
    finally:
        transport.close()


def bound_port() -> tuple[str, int]:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return HOST, int(sock.getsockname()[1])


async def _wait_for(predicate: Callable[[], object], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _run(
    loop: str, tmp_path: Path, body: Callable[[SipService, FakeListener, Src], Awaitable[None]]
) -> FakeListener:
    async def main() -> FakeListener:
        listener = FakeListener(tmp_path)
        service = SipService(
            listener,
            host=HOST,
            port=0,
            advertised_host=HOST,
            rtp_host=HOST,
            rtp_port_range=rtp_range(),
            rtp_timeout=60.0,
        )
        await service.start()
        transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(
            _Udp, local_addr=(HOST, 0)
        )
        try:
            await body(service, listener, Src(service.port, transport, proto))
        finally:
            transport.close()
            await service.stop()
        return listener

    return run_on(loop, main())


def _the_call(listener: FakeListener) -> tuple[int, npt.NDArray[np.int16], float]:
    assert len(listener.ended) == 1
    call, ended_at, reason = listener.ended[0]
    assert reason == "bye" and call.answered_at is not None
    rate, audio = read_wav(call.voice_path)
    assert abs(len(audio) / rate - (ended_at - call.answered_at)) < 0.1
    return rate, audio, ended_at - call.answered_at


def stream_stats(listener: FakeListener) -> dict[str, dict[str, Any]]:
    """Each recorded stream's RTP counters, by m-line index."""
    stats = listener.ended[0][0].media_stats()
    return {index: dict(value) for index, value in stats.items() if isinstance(value, dict)}


# ---- item 3: every offered codec ----------------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_offer_of_pcmu_and_pcma_records_both_halves(loop: str, tmp_path: Path) -> None:
    """Offer ``0 8`` (was answered ``0`` only); the SRC sends PCMA for the first second and PCMU
    for the second. Before, every PCMA packet was dropped and the first half was silent."""
    leg = bound_port()

    async def body(service: SipService, listener: FakeListener, src: Src) -> None:
        ok = await src.invite(sdp(f"m=audio {leg[1]} RTP/AVP 0 8\r\na=sendonly\r\n"), "application/sdp")
        assert re.findall(rb"^m=audio \d+ RTP/AVP ([^\r]*)\r$", ok.body, re.MULTILINE) == [b"0 8"]
        src.send(src.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the call answered")
        pcm = tone(800, 2.0, 8000)
        packets = [(8, 0x4444, 160 * k, p) for k, p in enumerate(frames("PCMA", pcm[:8000]))]
        packets += [(0, 0x4444, 8000 + 160 * k, p) for k, p in enumerate(frames("PCMU", pcm[8000:]))]
        await send_packets(answer_ports(ok.body)[0], packets, leg)
        src.send(src.request("BYE", 2))
        await src.response("BYE", 200)
        await _wait_for(lambda: listener.ended, "the call to end")

    listener = _run(loop, tmp_path, body)
    rate, audio, _ = _the_call(listener)
    stats = next(iter(stream_stats(listener).values()))
    assert stats["written"] == 100 and stats["dropped_payload_type"] == 0
    for part in (slice(800, 7200), slice(8800, 15200)):  # PCMA half, PCMU half
        found, rms = peak(audio[part, 0], rate)
        assert abs(found - 800) < 10 and rms > 2500, (part, found, rms)


# ---- item 4: delayed offer --------------------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_delayed_offer_offers_in_the_200_and_takes_the_answer_from_the_ack(loop: str, tmp_path: Path) -> None:
    """INVITE with the rs-metadata and no SDP (was 488): the 200 OK offers two recvonly streams
    labelled as the metadata's, every decodable codec; it is resent until the ACK, whose answer
    picks PCMA for one leg and PCMU for the other. Each leg's tone lands on its own channel."""
    caller_src, agent_src = bound_port(), bound_port()

    async def body(service: SipService, listener: FakeListener, src: Src) -> None:
        ok = await src.invite(metadata_only_body(), f"multipart/mixed;boundary={BOUNDARY}")
        offer = ok.body.decode()
        assert ok.get("content-type") == "application/sdp"
        assert re.findall(r"^m=audio \d+ RTP/AVP ([^\r]*)\r$", offer, re.MULTILINE) == ["0 8 9 101 13"] * 2
        assert re.findall(r"^a=label:([^\r]*)\r$", offer, re.MULTILINE) == ["10", "11"]
        assert offer.count("a=recvonly") == 2
        again = await src.response("INVITE", 200)  # no ACK yet: the offer is resent (Timer G)
        assert again.body == ok.body
        ports = answer_ports(ok.body)
        answer = sdp(
            f"m=audio {caller_src[1]} RTP/AVP 8\r\na=label:10\r\na=sendonly\r\n",
            f"m=audio {agent_src[1]} RTP/AVP 0\r\na=label:11\r\na=sendonly\r\n",
        )
        src.send(src.request("ACK", 1, answer))
        await _wait_for(lambda: listener.answered, "the ACK to answer the call")
        caller = [(8, 0x1111, 160 * k, p) for k, p in enumerate(frames("PCMA", tone(440, 1.5, 8000)))]
        agent = [(0, 0x2222, 160 * k, p) for k, p in enumerate(frames("PCMU", tone(1000, 1.5, 8000)))]
        await asyncio.gather(
            send_packets(ports[0], caller, caller_src), send_packets(ports[1], agent, agent_src)
        )
        src.send(src.request("BYE", 2))
        await src.response("BYE", 200)
        await _wait_for(lambda: listener.ended, "the call to end")

    listener = _run(loop, tmp_path, body)
    offer = listener.offered[0]
    assert offer.siprec
    rate, audio, _ = _the_call(listener)
    assert rate == 16000 and audio.shape[1] == 2  # G.722 was offered: the file is wideband
    stats = stream_stats(listener)
    assert [s["written"] for s in stats.values()] == [75, 75]
    middle = slice(round(0.3 * rate), round(1.2 * rate))
    for channel, frequency in ((0, 440), (1, 1000)):
        found, rms = peak(audio[middle, channel], rate)
        assert abs(found - frequency) < 10 and rms > 2500, (channel, found, rms)


@pytest.mark.parametrize("loop", LOOPS)
def test_reinvite_changing_pcma_to_g722_continues_the_recording(loop: str, tmp_path: Path) -> None:
    """PCMA only, then (after a transfer) a re-INVITE offering G.722 only: was 488 Codec Change
    Not Supported. Now answered with G.722; the 8 kHz file carries the tone in both halves."""
    leg = bound_port()

    async def body(service: SipService, listener: FakeListener, src: Src) -> None:
        ok = await src.invite(sdp(f"m=audio {leg[1]} RTP/AVP 8\r\na=sendonly\r\n"), "application/sdp")
        src.send(src.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the call answered")
        port = answer_ports(ok.body)[0]
        packets = [(8, 0x3333, 160 * k, p) for k, p in enumerate(frames("PCMA", tone(600, 1.0, 8000)))]
        packets += [
            (9, 0x3333, 8000 + 160 * k, p) for k, p in enumerate(frames("G722", tone(600, 1.0, 16000)))
        ]
        sending = asyncio.ensure_future(send_packets(port, packets, leg))
        await asyncio.sleep(0.3)
        src.send(src.request("INVITE", 2, sdp(f"m=audio {leg[1]} RTP/AVP 9\r\na=sendonly\r\n", version=2)))
        reoffer = await src.response("INVITE", 200)
        assert re.findall(rb"^m=audio \d+ RTP/AVP ([^\r]*)\r$", reoffer.body, re.MULTILINE) == [b"9"]
        assert answer_ports(reoffer.body) == [port]
        src.send(src.request("ACK", 2))
        await sending
        src.send(src.request("BYE", 3))
        await src.response("BYE", 200)
        await _wait_for(lambda: listener.ended, "the call to end")

    listener = _run(loop, tmp_path, body)
    rate, audio, _ = _the_call(listener)
    assert rate == 8000
    stats = next(iter(stream_stats(listener).values()))
    assert stats["written"] == 100 and stats["dropped_payload_type"] == 0
    for part in (slice(800, 7200), slice(8800, 15200)):  # PCMA half, G.722 half
        found, rms = peak(audio[part, 0], rate)
        assert abs(found - 600) < 10 and rms > 2500, (part, found, rms)


# ---- item 9: two streams from independent flows -------------------------------------------------
def offer_body(caller_port: int, agent_port: int) -> bytes:
    dtmf = "a=rtpmap:101 telephone-event/8000\r\n"
    offer = sdp(
        f"m=audio {caller_port} RTP/AVP 0 101\r\n{dtmf}a=label:10\r\na=sendonly\r\n",
        f"m=audio {agent_port} RTP/AVP 0 101\r\n{dtmf}a=label:11\r\na=sendonly\r\n",
    )
    return (
        f"--{BOUNDARY}\r\nContent-Type: application/sdp\r\n\r\n".encode()
        + offer
        + f"\r\n--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\n"
        "Content-Disposition: recording-session\r\n\r\n".encode()
        + METADATA
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


@pytest.mark.parametrize("loop", LOOPS)
def test_two_independent_streams_late_start_and_ssrc_change_make_one_stereo_file(
    loop: str, tmp_path: Path
) -> None:
    """The SBC forks each party's media on its own: the caller's leg flows from the answer on;
    the agent's starts 0.8 s late and changes SSRC (and timestamp base) at 1.4 s. One stereo
    file: the caller's tone on the left for the whole call, the agent's on the right from 0.8 s
    on (silence before), both channels as long as the call."""
    caller_src, agent_src = bound_port(), bound_port()

    async def body(service: SipService, listener: FakeListener, src: Src) -> None:
        body_bytes = offer_body(caller_src[1], agent_src[1])
        ok = await src.invite(body_bytes, f"multipart/mixed;boundary={BOUNDARY}")
        src.send(src.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the call answered")
        ports = answer_ports(ok.body)
        caller = [(0, 0xA1, 160 * k, p) for k, p in enumerate(frames("PCMU", tone(440, 2.0, 8000)))]
        agent_audio = frames("PCMU", tone(1000, 1.2, 8000))
        agent = [(0, 0xB1, 5000 + 160 * k, p) for k, p in enumerate(agent_audio[:30])]
        agent += [(0, 0xB2, 900_000 + 160 * k, p) for k, p in enumerate(agent_audio[30:])]

        async def late_agent() -> None:
            await asyncio.sleep(0.8)
            await send_packets(ports[1], agent, agent_src)

        await asyncio.gather(send_packets(ports[0], caller, caller_src), late_agent())
        await asyncio.sleep(0.2)
        src.send(src.request("BYE", 2))
        await src.response("BYE", 200)
        await _wait_for(lambda: listener.ended, "the call to end")

    listener = _run(loop, tmp_path, body)
    rate, audio, seconds = _the_call(listener)  # both channels: one frame count, the call's length
    assert rate == 8000 and audio.shape[1] == 2 and seconds > 2.0
    stats = stream_stats(listener)
    assert [s["written"] for s in stats.values()] == [100, 60]
    assert stats["1"]["ssrc_changes"] >= 1

    def at(start: float, end: float) -> slice:
        return slice(round(start * rate), round(end * rate))

    found, rms = peak(audio[at(0.2, 1.9), 0], rate)
    assert abs(found - 440) < 10 and rms > 2500, (found, rms)
    assert peak(audio[at(0.05, 0.6), 1], rate)[1] < 100  # the agent's leg had not started
    for part in (at(0.95, 1.35), at(1.5, 1.9)):  # before and after its SSRC change
        found, rms = peak(audio[part, 1], rate)
        assert abs(found - 1000) < 10 and rms > 2500, (part, found, rms)
