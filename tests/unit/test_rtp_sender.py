"""The paced RTP sender: packet format, pacing without drift, stop, and the rate-limited log."""

from __future__ import annotations

import asyncio
import logging
import socket

import numpy as np
import pytest

from server.ratelog import RateLimitedLog
from server.rtp.packet import RtpPacket
from server.sim.rtp_sender import RtpSendStats, send_rtp
from server.voice.g711 import alaw_decode, alaw_encode


async def _collect(
    pcm: np.ndarray, stop: asyncio.Event | None = None
) -> tuple[list[RtpPacket], list[float], RtpSendStats]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    received: list[tuple[bytes, float]] = []

    def on_readable() -> None:
        while True:
            try:
                received.append((sock.recv(2048), loop.time()))
            except BlockingIOError:
                return

    loop.add_reader(sock.fileno(), on_readable)
    try:
        stats = await send_rtp(None, sock.getsockname(), "PCMA", pcm, stop)
        await asyncio.sleep(0.05)
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    return [RtpPacket.parse(d) for d, _ in received], [t for _, t in received], stats


def test_packets_and_pacing() -> None:
    pcm = ((np.arange(8000 + 50) % 400) * 40 - 8000).astype(np.int16)  # 1 s + a partial frame
    packets, times, stats = asyncio.run(_collect(pcm))
    assert stats.packets == len(packets) == 51
    first = packets[0]
    assert first.marker and not any(p.marker for p in packets[1:])
    assert all(p.payload_type == 8 and p.ssrc == first.ssrc and len(p.payload) == 160 for p in packets)
    assert [(p.sequence - first.sequence) & 0xFFFF for p in packets] == list(range(51))
    assert [(p.timestamp - first.timestamp) & 0xFFFFFFFF for p in packets] == [160 * i for i in range(51)]
    audio = np.concatenate([alaw_decode(p.payload) for p in packets])
    assert np.array_equal(audio[: len(pcm)], alaw_decode(alaw_encode(pcm)))
    assert np.all(np.abs(audio[len(pcm) :]) <= 8)  # padded with silence (A-law has no exact 0)
    # Paced on a fixed schedule: the n-th packet leaves n*20 ms after the first, without drift.
    offsets = np.array(times) - times[0] - 0.02 * np.arange(51)
    assert np.all(offsets > -0.015) and np.all(offsets < 0.03)
    assert 0.95 < times[-1] - times[0] < 1.05


def test_random_initial_values() -> None:
    pcm = np.zeros(160, dtype=np.int16)
    a = asyncio.run(_collect(pcm))[0][0]
    b = asyncio.run(_collect(pcm))[0][0]
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)


def test_stop_event() -> None:
    async def run() -> tuple[list[RtpPacket], RtpSendStats]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        packets, _, stats = await _collect(np.zeros(8000 * 5, dtype=np.int16), stop)
        return packets, stats

    packets, stats = asyncio.run(run())
    assert stats.stopped
    assert 5 <= len(packets) <= 20


def test_ratelog_suppresses_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    ratelog = RateLimitedLog(logging.getLogger("t"), interval=10, clock=lambda: now[0], max_reasons=2)
    with caplog.at_level(logging.WARNING, logger="t"):
        assert ratelog.warning("bad", "bad packet %d", 1)
        assert not ratelog.warning("bad", "bad packet %d", 2)
        assert not ratelog.warning("bad", "bad packet %d", 3)
        assert ratelog.warning("other", "other")
        now[0] = 11
        assert ratelog.warning("bad", "bad packet %d", 4)
        assert ratelog.warning("third", "third")  # evicts the oldest reason; the table stays bounded
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["bad packet 1", "other", "bad packet 4 (2 more suppressed)", "third"]
