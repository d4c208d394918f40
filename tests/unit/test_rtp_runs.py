"""The G.711 fast path (runs of continuation packets) and the tick's flush hold-back.

``RunBuffer`` is tested directly; the session tests feed datagrams to ``RtpSession._on_datagram``
with a fake clock and compare the file with what packet-by-packet placement must give: a run
never changes a sample, a counter, or where a reordered, duplicated or lost packet ends up.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from server.rtp.packet import RtpPacket
from server.rtp.run import RUN_MAX_PACKETS, RunBuffer
from server.rtp.session import RtpSession
from server.voice.g711 import ulaw_decode, ulaw_encode
from tests.ports import rtp_range

HOST = "127.0.0.1"
T0 = 1_700_000_000.0
A = ("127.0.0.1", 30000)
SSRC = 0x5151


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def packet(index: int, payload: bytes, *, ts0: int = 40_000, marker: bool = False, ssrc: int = SSRC) -> bytes:
    return RtpPacket(
        0, (1000 + index) & 0xFFFF, (ts0 + index * 160) & 0xFFFFFFFF, ssrc, payload, marker
    ).serialize()


def tone_frames(count: int) -> list[bytes]:
    t = np.arange(count * 160) / 8000
    pcm = np.round(6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    coded = ulaw_encode(pcm)
    return [coded[160 * i : 160 * (i + 1)] for i in range(count)]


def read_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


async def record(
    path: Path, schedule: list[tuple[float, bytes]], end: float, tick: float = 3600
) -> RtpSession:
    """Feed ``(arrival offset, datagram)`` in order, ticking by hand when ``tick`` has passed."""
    clock = Clock()
    session = await RtpSession.open(HOST, rtp_range(), path, "PCMU", clock=clock, tick_interval=tick)
    session.start(T0)
    for at, data in schedule:
        clock.now = T0 + at
        session._on_datagram(data, A)
    await session.close(T0 + end)
    return session


# ---- RunBuffer -------------------------------------------------------------------------------


def test_only_the_exact_continuation_joins_a_run(tmp_path: Path) -> None:
    """The session's inlined check: anything but the plain next packet takes the full path."""
    settle = 4  # the stream's first packets go one by one until its place is final (a 60-ms window)
    frames = tone_frames(settle + 2)
    with_padding = bytearray(packet(settle, frames[settle]))
    with_padding[0] |= 0x20
    variants = {
        "continuation": (packet(settle, frames[settle]), A),
        "another source": (packet(settle, frames[settle]), ("127.0.0.1", 30002)),
        "a gap": (packet(settle + 1, frames[settle + 1]), A),
        "another size": (packet(settle, frames[settle] + b"\xff"), A),
        "another ssrc": (packet(settle, frames[settle], ssrc=SSRC + 1), A),
        "a marker": (packet(settle, frames[settle], marker=True), A),
        "padding": (bytes(with_padding), A),
    }

    async def queued(data: bytes, addr: tuple[str, int], name: str) -> int:
        clock = Clock()
        session = await RtpSession.open(HOST, rtp_range(), tmp_path / f"{name}.wav", "PCMU", clock=clock)
        session.start(T0)
        for i in range(settle):  # each placed on its own; the last one arms the run
            clock.now = T0 + 0.005 + i * 0.02
            session._on_datagram(packet(i, frames[i]), A)
            assert session._run.pending == 0
        clock.now = T0 + 0.005 + settle * 0.02
        session._on_datagram(data, addr)
        pending = session._run.pending
        await session.close(T0 + 0.2)
        return pending

    for name, (data, addr) in variants.items():
        assert asyncio.run(queued(data, addr, name.replace(" ", "-"))) == (name == "continuation"), name


def test_no_run_before_the_streams_place_is_final(tmp_path: Path) -> None:
    """A late first packet and a catch-up burst: the burst's packets are placed one by one, each
    with its own arrival, so the stream moves to where the on-time packets put it."""

    async def body() -> tuple[RtpSession, list[int]]:
        clock = Clock()
        session = await RtpSession.open(HOST, rtp_range(), tmp_path / "v.wav", "PCMU", clock=clock)
        session.start(T0)
        pending = []
        for i, frame in enumerate(tone_frames(50)):
            clock.now = max(T0 + 0.035, T0 + 0.005 + i * 0.02)  # 30 ms late, then on time
            session._on_datagram(packet(i, frame), A)
            pending.append(session._run.pending)
        await session.close(T0 + 1.006)
        return session, pending

    session, pending = asyncio.run(body())
    assert pending[:3] == [0, 0, 0] and max(pending) > 0
    samples = read_samples(tmp_path / "v.wav")
    assert session.stats.samples_after_end == 0
    assert not samples[:40].any() and samples[40:48].any()  # from 5 ms, not 35 ms


def test_take_joins_payloads_and_remembers_the_run_across_wraparound() -> None:
    run = RunBuffer()
    ts0 = 0xFFFFFFFF - 200  # the run's timestamps wrap
    frames = tone_frames(3)
    run.arm(A, 172, 0, SSRC, ts0, 160)
    for index in (1, 2):
        data = packet(index, frames[index], ts0=ts0)
        assert not run.append(data, (ts0 + index * 160) & 0xFFFFFFFF, T0 + index * 0.02)
    taken = run.take()
    assert taken is not None and run.take() is None
    assert taken.payload == frames[1] + frames[2] and taken.packets == 2
    assert taken.timestamp == (ts0 + 160) & 0xFFFFFFFF and taken.arrival == T0 + 0.02
    assert run.placed_recently(SSRC, (ts0 + 160) & 0xFFFFFFFF)
    assert run.placed_recently(SSRC, (ts0 + 400) & 0xFFFFFFFF)  # inside the second packet
    assert not run.placed_recently(SSRC, ts0)  # the armed packet was placed on its own
    assert not run.placed_recently(SSRC, (ts0 + 480) & 0xFFFFFFFF)
    assert not run.placed_recently(SSRC + 1, (ts0 + 160) & 0xFFFFFFFF)


def test_a_run_is_bounded_and_arming_needs_it_placed() -> None:
    run = RunBuffer()
    run.arm(A, 172, 0, SSRC, 0, 160)
    full = [run.append(b"x" * 172, 160 * (i + 1), T0) for i in range(RUN_MAX_PACKETS)]
    assert full == [False] * (RUN_MAX_PACKETS - 1) + [True]
    with pytest.raises(RuntimeError):
        run.arm(A, 172, 0, SSRC, 0, 160)


# ---- the session with runs -------------------------------------------------------------------


def test_a_clean_stream_is_recorded_sample_exact_through_runs(tmp_path: Path) -> None:
    frames = tone_frames(200)
    schedule = [(0.005 + i * 0.02, packet(i, f)) for i, f in enumerate(frames)]
    session = asyncio.run(record(tmp_path / "v.wav", schedule, 4.005))
    stats = session.stats
    assert (stats.received, stats.written, stats.dropped_late, stats.dropped_duplicate) == (200, 200, 0, 0)
    samples = read_samples(tmp_path / "v.wav")
    assert len(samples) == round(4.005 * 8000)
    expected = ulaw_decode(b"".join(frames))
    start = round(0.005 * 8000)  # the first packet is placed at its arrival
    assert np.array_equal(samples[start : start + len(expected)], expected)


def test_loss_reorder_and_duplicates_come_out_as_packet_by_packet(tmp_path: Path) -> None:
    frames = tone_frames(100)
    order = list(range(100))
    order.remove(30)  # lost
    order[50], order[51] = order[51], order[50]  # reordered within the window
    schedule = [(0.005 + i * 0.02, packet(i, frames[i])) for i in order]
    schedule.insert(70, (0.005 + 69 * 0.02 + 0.001, packet(60, frames[60])))  # a late duplicate
    schedule.insert(81, (0.005 + 80 * 0.02 + 0.001, packet(80, frames[80])))  # an immediate one
    session = asyncio.run(record(tmp_path / "v.wav", schedule, 2.005))
    stats = session.stats
    assert stats.written == 99 and stats.dropped_duplicate == 2 and stats.dropped_late == 0
    assert stats.received == 101
    samples = read_samples(tmp_path / "v.wav")
    start = round(0.005 * 8000)
    decoded = [ulaw_decode(f) for f in frames]
    decoded[30] = np.zeros(160, dtype=np.int16)  # the lost packet's place is silence
    assert np.array_equal(samples[start : start + 100 * 160], np.concatenate(decoded))


def test_stats_and_file_are_complete_after_a_tick(tmp_path: Path) -> None:
    async def body() -> tuple[int, int, int]:
        clock = Clock()
        session = await RtpSession.open(
            HOST, rtp_range(), tmp_path / "v.wav", "PCMU", clock=clock, tick_interval=0.01
        )
        session.start(T0)
        for i, frame in enumerate(tone_frames(10)):
            clock.now = T0 + 0.005 + i * 0.02
            session._on_datagram(packet(i, frame), A)
        before = session.stats.written
        await asyncio.sleep(0.05)  # a tick places the run
        after = session.stats.written
        await session.close(T0 + 0.3)
        return before, after, session.stats.written

    before, after, final = asyncio.run(body())
    # Placed one by one until the stream's place is final (a 60-ms reorder window: 4 packets);
    # the rest wait in the run.
    assert before == 4 and after == final == 10


def test_packets_read_after_a_loop_stall_are_not_late(tmp_path: Path) -> None:
    """The loop stalls 1 s: the tick that runs first (timers before the socket poll) must not
    flush silence over the packets still queued in the socket."""

    async def body() -> RtpSession:
        clock = Clock()
        session = await RtpSession.open(
            HOST, rtp_range(), tmp_path / "v.wav", "PCMU", clock=clock, tick_interval=0.1
        )
        session.start(T0)
        frames = tone_frames(100)
        for i in range(25):  # 0.5 s of audio, ticks every 0.1 s along the way
            clock.now = T0 + 0.005 + i * 0.02
            session._on_datagram(packet(i, frames[i]), A)
            if i % 5 == 4:
                session._tick()
        clock.now = T0 + 1.6  # the stall ends: first the due tick runs ...
        session._tick()
        for i in range(25, 75):  # ... then the queued datagrams are read, all at once
            session._on_datagram(packet(i, frames[i]), A)
        clock.now = T0 + 1.7
        session._tick()
        await session.close(T0 + 1.7)
        return session

    session = asyncio.run(body())
    assert session.stats.dropped_late == 0 and session.stats.written == 75
    assert session.stats.reanchors == 0
