"""RtpSession's receive path driven packet by packet with a fake clock: telephone-event and comfort
noise, latching, payload-type mapping, an injected stereo writer with G.722 and upsampled G.711,
and RTCP. The session binds real loopback sockets; datagrams are handed to it directly so every
arrival time is exact."""

from __future__ import annotations

import asyncio
import struct
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.errors import RtpSessionError
from server.rtp.packet import RtpPacket
from server.rtp.session import RtpSession
from server.rtp.source import Address
from server.voice import g722
from server.voice.g711 import ulaw_decode, ulaw_encode
from server.voice.stereo_writer import Channel, StereoWavWriter
from tests.ports import rtp_range

HOST = "127.0.0.1"
T0 = 1_700_000_000.0
A = ("127.0.0.1", 30000)
B = ("127.0.0.1", 30002)
SSRC = 0x5151


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def tone(frequency: float, seconds: float, rate: int = 8000, amplitude: float = 6000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def read_wav(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getframerate(), wav.getnchannels(), data.reshape(-1, wav.getnchannels())


def rtp(
    pt: int, index: int, payload: bytes, ts_step: int = 160, marker: bool = False, ts: int | None = None
) -> bytes:
    timestamp = 40_000 + index * ts_step if ts is None else ts
    return RtpPacket(pt, (1000 + index) & 0xFFFF, timestamp & 0xFFFFFFFF, SSRC, payload, marker).serialize()


def dtmf_event(event: int, duration: int, end: bool) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)


Body = Callable[[Clock, Path], Awaitable[Any]]


def run(tmp_path: Path, body: Body) -> Any:
    async def main() -> Any:  # asyncio.run takes a coroutine, a Body returns any awaitable
        return await body(Clock(), tmp_path)

    return asyncio.run(main())


async def open_session(clock: Clock, path: Path | None, codec: str = "PCMU", **options: Any) -> RtpSession:
    return await RtpSession.open(HOST, rtp_range(), path, codec, clock=clock, tick_interval=3600, **options)


def feed(session: RtpSession, clock: Clock, at: float, data: bytes, addr: Address = A) -> None:
    clock.now = at
    session._on_datagram(data, addr)


async def tone_with_burst(
    clock: Clock, tmp_path: Path, burst_pt: int, burst: Callable[[int, int], bytes], **options: Any
) -> tuple[RtpSession, np.ndarray, np.ndarray]:
    """2 s of 1 kHz tone, 20 ms packets; packets 40..59 are replaced by ``burst(k, index)``."""
    pcm = tone(1000, 2.0)
    session = await open_session(clock, tmp_path / "v.wav", telephone_event_pt=101, **options)
    session.start(T0)
    for i in range(100):
        at = T0 + 0.1 + i * 0.02
        if 40 <= i < 60:
            feed(session, clock, at, burst(i - 40, i))
            if i == 59:  # RFC 4733: the end packet is sent three times
                feed(session, clock, at + 0.001, burst(i - 40, i))
                feed(session, clock, at + 0.002, burst(i - 40, i))
        else:
            feed(session, clock, at, rtp(0, i, ulaw_encode(pcm[160 * i : 160 * (i + 1)])))
    await session.close(T0 + 2.5)
    rate, channels, data = read_wav(tmp_path / "v.wav")
    assert (rate, channels) == (8000, 1)
    return session, data[:, 0], ulaw_decode(ulaw_encode(pcm))


def check_burst_is_silence(data: np.ndarray, expected: np.ndarray) -> None:
    assert len(data) == round(2.5 * 8000)  # the file's length is media time, to the sample
    start = round(0.1 * 8000)  # the first packet's arrival
    assert not data[:start].any()
    assert np.array_equal(data[start : start + 40 * 160], expected[: 40 * 160])
    assert not data[start + 40 * 160 : start + 60 * 160].any()  # no noise where DTMF was
    assert np.array_equal(data[start + 60 * 160 : start + 100 * 160], expected[60 * 160 :])
    assert not data[start + 100 * 160 :].any()


def test_dtmf_burst_leaves_silence_and_continuity(tmp_path: Path) -> None:
    def event(k: int, index: int) -> bytes:  # all packets of one event carry its start timestamp
        payload = dtmf_event(5, 160 * (k + 1), end=index == 59)
        return rtp(101, index, payload, marker=k == 0, ts=40_000 + 40 * 160)

    session, data, expected = run(tmp_path, lambda c, p: tone_with_burst(c, p, 101, event))
    check_burst_is_silence(data, expected)
    stats = session.stats
    assert (stats.dropped_dtmf, stats.written, stats.dropped_payload_type) == (22, 80, 0)
    assert stats.reanchors == 0 and stats.dropped_late == 0


def test_comfort_noise_is_silence(tmp_path: Path) -> None:
    def comfort_noise(k: int, index: int) -> bytes:  # RFC 3389: one noise-level octet
        return rtp(13, index, bytes([40]), ts=40_000 + index * 160)

    session, data, expected = run(tmp_path, lambda c, p: tone_with_burst(c, p, 13, comfort_noise))
    check_burst_is_silence(data, expected)
    assert (session.stats.dropped_cn, session.stats.written, session.stats.dropped_dtmf) == (22, 80, 0)


def test_telephone_event_unknown_is_another_payload_type(tmp_path: Path) -> None:
    async def body(clock: Clock, path: Path) -> RtpSession:
        session = await open_session(clock, path / "v.wav")  # no telephone_event_pt negotiated
        session.start(T0)
        feed(session, clock, T0 + 0.01, rtp(101, 0, dtmf_event(1, 160, False)))
        await session.close(T0 + 0.1)
        return session

    stats = run(tmp_path, body).stats
    assert (stats.dropped_payload_type, stats.dropped_dtmf) == (1, 0)


def test_dtmf_and_cn_keep_the_stream_alive(tmp_path: Path) -> None:
    async def body(clock: Clock, path: Path) -> list[float | None]:
        session = await open_session(clock, path / "v.wav", telephone_event_pt=96)
        session.start(T0)
        seen = []
        for at, pt in ((T0 + 1, 96), (T0 + 2, 13), (T0 + 3, 55)):
            feed(session, clock, at, rtp(pt, 0, b"\x01\x02\x03\x04"))
            seen.append(session.last_packet_at)
        await session.close(T0 + 4)
        return seen

    assert run(tmp_path, body) == [T0 + 1, T0 + 2, T0 + 2]  # PT 55 is not the call's: ignored


def test_latching_first_source_wins(tmp_path: Path) -> None:
    async def body(clock: Clock, path: Path) -> RtpSession:
        session = await open_session(clock, path / "v.wav")
        session.start(T0)
        for i in range(5):
            feed(session, clock, T0 + i * 0.02, rtp(0, i, bytes(160)), A)
            feed(session, clock, T0 + i * 0.02, rtp(0, i, bytes(160)), B)
        assert session.source == A
        session.relatch()  # a re-INVITE moved the stream: the next valid source wins
        feed(session, clock, T0 + 0.2, rtp(0, 10, bytes(160)), B)
        feed(session, clock, T0 + 0.22, rtp(0, 11, bytes(160)), A)
        assert session.source == B
        await session.close(T0 + 0.3)
        return session

    session = run(tmp_path, body)
    assert (session.stats.written, session.stats.dropped_foreign) == (6, 6)


def test_without_latching_only_the_expected_source(tmp_path: Path) -> None:
    async def body(clock: Clock, path: Path) -> RtpSession:
        session = await open_session(clock, path / "v.wav", latching=False, expected_source=B)
        session.start(T0)
        feed(session, clock, T0, rtp(0, 0, bytes(160)), A)  # first, but not the SDP's address
        feed(session, clock, T0 + 0.02, rtp(0, 1, bytes(160)), ("127.0.0.1", B[1] + 2))  # port differs
        feed(session, clock, T0 + 0.04, rtp(0, 2, bytes(160)), ("127.0.0.2", B[1]))  # host differs
        assert session.source is None
        feed(session, clock, T0 + 0.06, rtp(0, 3, bytes(160)), ("::ffff:127.0.0.1", B[1], 0, 0))
        feed(session, clock, T0 + 0.08, rtp(0, 4, bytes(160)), B)
        session.relatch(A)  # a re-INVITE gave a new address
        feed(session, clock, T0 + 0.10, rtp(0, 5, bytes(160)), B)
        feed(session, clock, T0 + 0.12, rtp(0, 6, bytes(160)), A)
        await session.close(T0 + 0.2)
        return session

    session = run(tmp_path, body)
    assert (session.stats.written, session.stats.dropped_foreign) == (3, 4)


def test_dynamic_payload_type(tmp_path: Path) -> None:
    async def body(clock: Clock, path: Path) -> RtpSession:
        session = await open_session(clock, path / "v.wav", payload_type=96)  # PCMU as PT 96
        session.start(T0)
        feed(session, clock, T0, rtp(18, 0, bytes(20)))  # G.729: not decodable
        feed(session, clock, T0 + 0.02, rtp(96, 1, bytes(160)))
        await session.close(T0 + 0.1)
        return session

    stats = run(tmp_path, body).stats
    assert (stats.written, stats.dropped_payload_type, stats.undecodable_payload_type) == (1, 1, 18)


def test_g722_and_upsampled_pcmu_into_one_stereo_file(tmp_path: Path) -> None:
    """A SIPREC call: the caller's leg G.722, the agent's PCMU, one 16 kHz stereo file."""
    wide = tone(1000, 1.0, rate=16000)
    wide_payload = g722.encode(wide)
    narrow = tone(440, 1.0)

    async def body(clock: Clock, path: Path) -> tuple[RtpSession, RtpSession]:
        stereo = StereoWavWriter(path / "call.wav", sample_rate=16000)
        caller = await open_session(
            clock, None, "G722", writer=stereo.channel(Channel.CALLER), sample_rate=16000
        )
        agent = await open_session(
            clock, None, "PCMU", writer=stereo.channel(Channel.AGENT), sample_rate=16000
        )
        assert caller.voice_path == agent.voice_path == path / "call.wav"
        assert caller.port != agent.port
        for session in (caller, agent):
            session.start(T0)
        for i in range(50):
            at = T0 + 0.2 + i * 0.02
            feed(caller, clock, at, rtp(9, i, wide_payload[160 * i : 160 * (i + 1)]), A)
            feed(agent, clock, at + 0.005, rtp(0, i, ulaw_encode(narrow[160 * i : 160 * (i + 1)])), B)
        stereo.end_of_call()
        await caller.close(T0 + 1.5)
        await agent.close(T0 + 1.5)
        assert stereo.closed
        return caller, agent

    caller, agent = run(tmp_path, body)
    rate, channels, frames = read_wav(tmp_path / "call.wav")
    assert (rate, channels) == (16000, 2)
    assert len(frames) == round(1.5 * 16000)  # both channels: media time at the file's rate
    start = round(0.2 * 16000)
    left, right = frames[:, 0], frames[:, 1]
    assert not left[:start].any() and not left[start + 16000 :].any()
    assert np.array_equal(left[start : start + 16000], g722.G722Decoder()(wide_payload))
    right_start = round(0.205 * 16000)
    spectrum = np.abs(np.fft.rfft(right[right_start : right_start + 16000].astype(float)))
    assert np.fft.rfftfreq(16000, 1 / 16000)[int(np.argmax(spectrum))] == 440.0
    # Upsampled with state across packets: no step at any packet boundary.
    audio = right[right_start : right_start + 16000].astype(int)
    assert np.abs(np.diff(audio)).max() < 6000 * 2 * np.pi * 440 / 16000 * 1.5
    assert caller.stats.written == agent.stats.written == 50
    assert caller.sample_rate == agent.sample_rate == 16000


def test_rtcp_on_both_ports(tmp_path: Path) -> None:
    sr = struct.pack("!BBHIQIII", 0x80, 200, 6, SSRC, 1, 2, 77, 12320)
    bye = struct.pack("!BBHI", 0x81, 203, 1, SSRC)

    async def body(clock: Clock, path: Path) -> RtpSession:
        session = await open_session(clock, path / "v.wav")
        session.start(T0)
        feed(session, clock, T0, rtp(0, 0, bytes(160)), A)
        feed(session, clock, T0 + 0.01, sr, A)  # rtcp-mux on the RTP port
        assert session.stats.sender_packets == 77 and session.last_rtcp_at == T0 + 0.01
        clock.now = T0 + 0.02
        session._on_rtcp_datagram(sr[:20], (A[0], A[1] + 1))  # truncated
        session._on_rtcp_datagram(sr + bye, ("127.0.0.9", A[1] + 1))  # not the media's host
        session._on_rtcp_datagram(b"\x00" * 3, (A[0], A[1] + 1))
        assert not session.stats.rtcp_bye
        session._on_rtcp_datagram(sr + bye, (A[0], A[1] + 1))
        await session.close(T0 + 0.1)
        return session

    stats = run(tmp_path, body).stats
    assert (stats.rtcp, stats.rtcp_sr, stats.rtcp_malformed, stats.rtcp_foreign) == (5, 2, 2, 1)
    assert stats.rtcp_bye and stats.sender_octets == 12320 and stats.sender_ssrc == SSRC
    assert stats.received == 2 and stats.written == 1 and stats.dropped_malformed == 0


@pytest.mark.parametrize(
    ("codec", "path", "options", "message"),
    [
        ("PCMU", None, {}, "voice_path or writer"),
        ("G722", "v.wav", {"sample_rate": 12000}, "whole multiple"),
        ("PCMU", "v.wav", {"latching": False}, "expected_source"),
        ("PCMU", "v.wav", {"telephone_event_pt": 0}, "share payload type 0"),
        ("PCMU", "v.wav", {"payload_type": 128}, "outside 0..127"),
    ],
)
def test_open_rejects(
    tmp_path: Path, codec: str, path: str | None, options: dict[str, Any], message: str
) -> None:
    async def body(clock: Clock, directory: Path) -> None:
        with pytest.raises(RtpSessionError, match=message):
            await open_session(clock, directory / path if path else None, codec, **options)

    run(tmp_path, body)
    assert not (tmp_path / "v.wav").exists()


def test_tick_keeps_the_file_growing_while_no_audio_arrives(tmp_path: Path) -> None:
    async def body(clock: Clock, path: Path) -> list[int]:
        session = await RtpSession.open(
            HOST,
            rtp_range(),
            path / "v.wav",
            "PCMU",
            clock=clock,
            tick_interval=0.005,
            telephone_event_pt=101,
        )
        session.start(T0)
        for i in range(5):
            feed(session, clock, T0 + i * 0.02, rtp(0, i, ulaw_encode(np.full(160, 1000, dtype=np.int16))))
        lengths = [session.samples_written]
        # Only telephone-events for 3 s (no audio): ticks must still flush silence to the file.
        for k in range(150):
            feed(
                session,
                clock,
                T0 + 0.1 + k * 0.02,
                rtp(101, 5 + k, dtmf_event(1, 160, False), ts=40_000 + 800),
            )
            if k % 10 == 9:
                await asyncio.sleep(0.02)  # let the timer run
        await asyncio.sleep(0.05)
        lengths += [session.samples_written, session.stats.samples_written]
        await session.close(T0 + 3.2)
        return lengths

    before, during, reported = run(tmp_path, body)
    assert before < 5 * 160  # the reorder window holds the last packets back
    # flush emits up to now - idle_hold (0.25 s) behind the last arrival
    assert during == reported == round((3.08 - 0.25) * 8000)


def test_audio_placed_after_the_end_is_counted_as_cut(tmp_path: Path) -> None:
    """Accepted packets whose place lies after the BYE are cut from the file, and say so: written
    alone would call them recorded."""

    async def body(clock: Clock, path: Path) -> RtpSession:
        session = await open_session(clock, path / "v.wav")
        session.start(T0)
        for i in range(50):  # 1 s of audio from +0.1 s, but the call ends at +0.9 s
            feed(session, clock, T0 + 0.1 + i * 0.02, rtp(0, i, bytes([0x20]) * 160))
        await session.close(T0 + 0.9)
        return session

    session = run(tmp_path, body)
    assert session.stats.written == 50
    assert session.stats.samples_after_end == round(0.2 * 8000)
    _, _, data = read_wav(tmp_path / "v.wav")
    assert len(data) == round(0.9 * 8000)


class SlowClosingSink:
    """A VoiceSink whose close blocks like a final fsync on a busy disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples_written = 0
        self.closed_on_thread: str | None = None

    def write(self, samples: np.ndarray) -> None:
        self.samples_written += len(samples)

    def zero(self, start: int, end: int) -> None:
        pass

    def truncate(self, samples: int) -> None:
        self.samples_written = min(self.samples_written, samples)

    def maybe_sync(self) -> None:
        pass

    def close(self) -> None:
        import threading
        import time

        time.sleep(0.3)
        self.closed_on_thread = threading.current_thread().name


def test_closing_a_session_does_not_hold_the_event_loop(tmp_path: Path) -> None:
    async def body(clock: Clock, path: Path) -> tuple[SlowClosingSink, int]:
        sink = SlowClosingSink(path / "slow.wav")
        session = await open_session(clock, None, writer=sink)
        session.start(T0)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await session.close(T0 + 1.0)
        task.cancel()
        return sink, ticks

    sink, ticks = run(tmp_path, body)
    assert sink.samples_written == 8000  # padded to the end before the close
    assert sink.closed_on_thread is not None and sink.closed_on_thread != "MainThread"
    assert ticks >= 10  # the loop ran other work while the sink closed


def test_a_process_reading_in_batches_leaves_no_silence_in_either_channel(tmp_path: Path) -> None:
    """A worker running behind reads 32 datagrams from one socket, then 32 from the other (one
    loop iteration, 0.64 s of media each): the channel read second must not be taken for a
    lagging one and have its audio replaced by silence."""

    async def body(clock: Clock, path: Path) -> tuple[StereoWavWriter, RtpSession, RtpSession]:
        stereo = StereoWavWriter(path / "call.wav")
        caller = await open_session(clock, None, writer=stereo.channel(Channel.CALLER))
        agent = await open_session(clock, None, writer=stereo.channel(Channel.AGENT))
        for session in (caller, agent):
            session.start(T0)
        for batch in range(10):  # 6.4 s of media from +0.1 s, read in batches of 32 per socket
            for session, address in ((caller, A), (agent, B)):
                for i in range(32 * batch, 32 * (batch + 1)):
                    # arrival: the kernel's stamp, i.e. when it was sent, not when it was read
                    feed(session, clock, T0 + 0.1 + 0.02 * i, rtp(0, i, bytes([0x20]) * 160), address)
        for session in (caller, agent):
            await session.close(T0 + 0.1 + 6.4)
        return stereo, caller, agent

    stereo, caller, agent = run(tmp_path, body)
    assert caller.stats.written == agent.stats.written == 320
    assert stereo.stats.filled == [0, 0] and stereo.stats.dropped == [0, 0]
    _, channels, data = read_wav(tmp_path / "call.wav")
    assert channels == 2
    for channel in (0, 1):
        assert np.count_nonzero(data[:, channel]) == 320 * 160
