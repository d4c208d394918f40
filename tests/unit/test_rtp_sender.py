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
    # Paced: no packet arrives before its slot (n*20 ms after the start). How late one may be
    # depends on the machine's load, so the schedule itself is tested with a clock this test
    # controls (test_a_late_wakeup_does_not_push_the_following_packets_back).
    early = np.array(times) - stats.started_at - 0.02 * np.arange(51)
    assert np.all(early > -0.005), early.min()


def test_a_late_wakeup_does_not_push_the_following_packets_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sleep overshoots by 5 ms: the n-th packet's slot must stay start + n*20 ms (no drift)."""
    clock = [1000.0]
    slots: list[float] = []

    class ManualClockLoop(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return clock[0]

    async def late_sleep(delay: float) -> None:
        slots.append(clock[0] + delay)  # the time the sender asked to wake at: its slot
        clock[0] += delay + 0.005
        await real_sleep(0)

    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", late_sleep)  # what rtp_sender calls
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    loop = ManualClockLoop()
    try:
        pcm = np.zeros(160 * 20, dtype=np.int16)
        stats = loop.run_until_complete(send_rtp(None, sink.getsockname(), "PCMA", pcm))
    finally:
        loop.close()
        sink.close()
    assert stats.packets == 20 and len(slots) == 19  # the first packet leaves at once
    assert np.allclose(np.array(slots) - stats.started_at, 0.02 * np.arange(1, 20), atol=1e-9)
    assert stats.max_lateness == pytest.approx(0.005)


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
