"""Latching only to the call's own peer: a real INVITE over UDP, the real stream from 127.0.0.1 (the
signalling peer and the SDP's address) and a louder tone sprayed at the same RTP port from
127.0.0.2, starting before the real stream. The file must hold only the real stream, and the
call's RTP statistics count every sprayed packet as foreign. Run in process and through an RTP
worker process (the peer's address has to reach the worker with the media plan)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest

from server.sip.dialog import MediaFactory, rtp_session_factory
from server.sip.message import SipResponse, parse_message
from server.sip.service import SipService
from server.voice.g711 import ulaw_encode
from tests.integration.sip_fakes import FakeListener
from tests.ports import rtp_range

pytestmark = pytest.mark.timeout(120)
RATE = 8000
REAL_HZ, SPRAY_HZ = 400.0, 2400.0
PACKETS = 75  # 1.5 s of the real stream
SPRAY_PER_PACKET = 2


def _tone(hz: float, amplitude: float, packets: int) -> list[bytes]:
    t = np.arange(packets * 160) / RATE
    pcm = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    encoded = ulaw_encode(pcm)
    return [encoded[i * 160 : (i + 1) * 160] for i in range(packets)]


def _rtp(seq: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload


def _invite(port: int, media_port: int, call_id: str) -> bytes:
    sdp = (
        f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {media_port} RTP/AVP 0\r\na=sendonly\r\n"
    ).encode()
    return _head("INVITE", port, call_id, "z9hG4bK-inv", "", len(sdp)) + sdp


def _head(method: str, port: int, call_id: str, branch: str, to_tag: str, length: int = 0) -> bytes:
    ctype = "Content-Type: application/sdp\r\n" if length else ""
    return (
        f"{method} sip:1001@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch={branch}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=f1\r\nTo: <sip:1001@127.0.0.1>{to_tag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:caller@127.0.0.1:9>\r\n"
        f"{ctype}Content-Length: {length}\r\n\r\n"
    ).encode()


@asynccontextmanager
async def _service(tmp_path: Path, workers: int) -> AsyncIterator[tuple[SipService, FakeListener]]:
    pool = None
    factory: MediaFactory = rtp_session_factory
    if workers:
        from server.rtp.workers.pool import WorkerPool

        pool = WorkerPool(workers)
        await pool.start()
        factory = pool.media_factory
    listener = FakeListener(tmp_path)
    service = SipService(
        listener,
        host="127.0.0.1",
        port=0,
        advertised_host="127.0.0.1",
        rtp_host="127.0.0.1",
        rtp_port_range=rtp_range(),
        media_factory=factory,
    )
    await service.start()
    try:
        yield service, listener
    finally:
        await service.stop()
        if pool is not None:
            await pool.stop()


async def _spray_during_a_call(tmp_path: Path, workers: int) -> None:
    loop = asyncio.get_running_loop()
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for sock, host in ((sip, "127.0.0.1"), (real, "127.0.0.1"), (spray, "127.0.0.2")):
        sock.bind((host, 0))
        sock.setblocking(False)
    try:
        async with _service(tmp_path, workers) as (service, listener):
            call_id = uuid.uuid4().hex
            sip.sendto(_invite(service.port, real.getsockname()[1], call_id), ("127.0.0.1", service.port))
            while True:
                reply = parse_message(await asyncio.wait_for(loop.sock_recv(sip, 65535), 10))
                assert isinstance(reply, SipResponse)
                if reply.status >= 200:
                    break
            assert reply.status == 200, reply.status
            to_tag = f";tag={reply.to.tag}" if reply.to and reply.to.tag else ""
            rtp_port = int(reply.body.decode().split("m=audio ", 1)[1].split()[0])
            sip.sendto(
                _head("ACK", service.port, call_id, "z9hG4bK-inv", to_tag), ("127.0.0.1", service.port)
            )

            real_packets = _tone(REAL_HZ, 6000, PACKETS)
            spray_packets = _tone(SPRAY_HZ, 16000, PACKETS * SPRAY_PER_PACKET + 10)
            sprayed = 0
            target = ("127.0.0.1", rtp_port)
            for _ in range(10):  # the spray starts first: the old latching took it as the source
                spray.sendto(_rtp(sprayed, sprayed * 160, 0xBAD, spray_packets[sprayed]), target)
                sprayed += 1
            await asyncio.sleep(0.05)
            start = time.monotonic()
            for i, payload in enumerate(real_packets):
                real.sendto(_rtp(i, i * 160, 0x600D, payload), target)
                for _ in range(SPRAY_PER_PACKET):
                    spray.sendto(_rtp(sprayed, sprayed * 160, 0xBAD, spray_packets[sprayed]), target)
                    sprayed += 1
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
            await asyncio.sleep(0.2)  # the last packets are read before the BYE ends the call
            sip.sendto(
                _head("BYE", service.port, call_id, "z9hG4bK-bye", to_tag), ("127.0.0.1", service.port)
            )
            await asyncio.wait_for(listener.ended_event.wait(), 20)
        call, _, reason = listener.ended[0]
        assert reason == "bye"
        stats = call.media_stats()["0"]
        assert isinstance(stats, dict)
        # Every sprayed packet that reached the socket is counted (loopback may drop a few of a
        # burst under load, never most: before the fix the count was the real stream's 75).
        assert sprayed * 0.95 <= stats["dropped_foreign"] <= sprayed, (sprayed, stats)
        assert stats["written"] >= PACKETS * 0.9, stats
        with wave.open(str(call.voice_path), "rb") as wav:
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(samples)) ** 2
        freqs = np.fft.rfftfreq(len(samples), 1 / RATE)

        def band(hz: float) -> float:
            return float(spectrum[(freqs > hz - 50) & (freqs < hz + 50)].sum())

        assert band(REAL_HZ) > 0, "the real stream is missing from the file"
        assert band(SPRAY_HZ) < band(REAL_HZ) * 1e-3, "the sprayed tone got into the file"
    finally:
        for sock in (sip, real, spray):
            sock.close()


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "rtp-worker"])
def test_sprayed_rtp_from_another_host_never_reaches_the_file(tmp_path: Path, workers: int) -> None:
    asyncio.run(_spray_during_a_call(tmp_path, workers))
