"""A busy event loop reads datagrams late; what they mean is timed by when they arrived.

An RTP stream whose first packets wait in the socket while the loop is blocked is still placed
where it was sent (read-time anchoring put it later and cut its end at the BYE), and a SIP
request carries the kernel's receive time to the handler."""

from __future__ import annotations

import asyncio
import socket
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from server.rtp.packet import RtpPacket
from server.rtp.session import RtpSession
from server.rxstamp import receive_clock
from server.sip.transport import UdpTransport
from tests.loops import run_on
from tests.ports import rtp_range

RATE = 8000
BLOCKED = 0.25  # how long the loop is kept from its sockets


@pytest.fixture(autouse=True, scope="module")
def kernel_stamping_on() -> Iterator[None]:
    """Linux turns receive stamping on in a deferred work item when the first socket asks for it
    and no other socket wants it: on a loaded machine the item can run after a test's datagram
    arrived, which is then stamped when it is read. (A running server's sockets keep it on.) So a
    socket of our own asks first, and the tests start once a datagram it reads late is stamped
    earlier than its read; it stays open, keeping stamping on, until the module is done."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", 0))
        clock = receive_clock(probe, time.time)
        for _ in range(200):
            sender.sendto(b"probe", probe.getsockname())
            time.sleep(0.05)
            probe.recv(64)
            if time.time() - clock() > 0.03:
                break
        else:
            raise AssertionError("the kernel never stamped a datagram with its arrival time")
        yield
    finally:
        sender.close()
        probe.close()


def block_loop(seconds: float) -> None:
    """Keep the event loop from its sockets, as a busy process does."""
    time.sleep(seconds)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_stream_read_late_is_placed_when_it_arrived(tmp_path: Path, loop: str) -> None:
    path = tmp_path / "late.wav"
    times: dict[str, float] = {}
    stats: dict[str, object] = {}

    async def body() -> None:
        session = await RtpSession.open("127.0.0.1", rtp_range(), path, "PCMU")
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            times["answered"] = time.time()
            session.start(times["answered"])
            await asyncio.sleep(0.1)
            times["first"] = time.time()
            for index in range(40):
                packet = RtpPacket(0, index, 160 * index, 0x4242, bytes([0x20]) * 160).serialize()
                sender.sendto(packet, ("127.0.0.1", session.port))
                if index * 0.02 < BLOCKED:
                    block_loop(0.02)  # these wait in the socket
                else:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.02)
            times["end"] = time.time()
            await session.close(times["end"])
            stats.update(session.stats.as_dict())
        finally:
            sender.close()

    run_on(loop, body())
    with wave.open(str(path), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    first_audio = int(np.flatnonzero(samples)[0]) / RATE
    # Placed where it was sent (within scheduling noise), not BLOCKED later when it was read.
    assert abs(first_audio - (times["first"] - times["answered"])) < 0.015, first_audio
    assert stats["written"] == 40
    assert stats["samples_after_end"] == 0  # nothing pushed past the end of the call
    assert np.count_nonzero(samples) == 40 * 160


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_sip_datagram_read_late_carries_its_arrival_time(loop: str) -> None:
    seen: list[tuple[bytes, float, float]] = []
    sent: list[float] = []

    async def body() -> None:
        udp = await UdpTransport.open(
            "127.0.0.1", 0, lambda data, addr, arrived: seen.append((data, arrived, time.time()))
        )
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sent.append(time.time())
            sender.sendto(b"BYE", ("127.0.0.1", udp.port))
            sent.append(time.time())
            block_loop(BLOCKED)
            for _ in range(50):
                if seen:
                    break
                await asyncio.sleep(0.01)
        finally:
            sender.close()
            udp.close()

    run_on(loop, body())
    ((data, arrived, read),) = seen
    assert data == b"BYE"
    before, after = sent
    assert read - after >= BLOCKED - 0.01  # it was read late ...
    assert before - 0.005 <= arrived <= after + 0.005  # ... and stamped when it arrived
