"""A real RtpSession on loopback: paced speech, hand-made bad and reordered packets, a pause,
then the WAV is checked sample by sample (on asyncio's loop and on uvloop, which the server runs
on). FFmpeg's RTP muxer is a real G.722 and G.711 sender, with RTCP on the odd port."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from server.errors import PortRangeExhaustedError, RtpSessionError, UnsupportedCodecError
from server.rtp.packet import RtpPacket
from server.rtp.session import RtpSession
from server.sim.rtp_sender import send_rtp
from server.sim.speech import speech_like_pcm
from server.voice.g711 import ulaw_decode, ulaw_encode
from server.voice.stereo_writer import Channel, StereoWavWriter
from tests.loops import run_on
from tests.ports import rtp_range

HOST = "127.0.0.1"
RATE = 8000


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def pos(seconds: float) -> int:
    return round(seconds * RATE)


def level(value: int) -> bytes:
    return ulaw_encode(np.full(160, value, dtype=np.int16))


async def run_call(tmp_path: Path) -> tuple[RtpSession, np.ndarray, np.ndarray, float, float]:
    speech = speech_like_pcm(2.0, seed=4)
    session = await RtpSession.open(HOST, rtp_range(), tmp_path / "voice.wav", "PCMU")
    assert session.port % 2 == 0
    loop = asyncio.get_running_loop()
    answered_at = time.time()
    session.start(answered_at)
    source_port = free_udp_port()
    target = (HOST, session.port)

    async def pause_resume() -> None:
        await asyncio.sleep(answered_at + 0.8 - time.time())
        session.pause(answered_at + 0.8)
        await asyncio.sleep(answered_at + 1.4 - time.time())
        session.resume(answered_at + 1.4)

    async def foreign() -> None:
        await asyncio.sleep(0.5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # not the latched source
            sock.sendto(RtpPacket(0, 1, 1, 77, level(20000)).serialize(), target)

    await asyncio.gather(send_rtp((HOST, source_port), target, "PCMU", speech), pause_resume(), foreign())

    # The same source carries on with a new SSRC: reordered, a gap, and bad packets in between.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, source_port))
        sends: list[bytes] = []
        for i in [0, 1, 3, 2, 4, 6, 7, 8, 9]:  # 3 before 2 (reorder), 5 never sent (loss)
            sends.append(RtpPacket(0, 500 + i, 9000 + 160 * i, 0xABC, level(1000 * (i + 1))).serialize())
            if i == 1:
                sends += [b"\x80\x00short", RtpPacket(101, 7, 9000, 0xABC, b"\x01\x00\x00\xa0").serialize()]
            if i == 4:
                sends.append(sends[-1])  # a duplicate
                sends.append(bytes([0x80, 200, 0, 6]) + bytes(24))  # RTCP sender report
        for data in sends:
            sock.sendto(data, target)
            await asyncio.sleep(0.02 if len(data) == 172 else 0)
    await asyncio.sleep(0.1)
    ended_at = time.time()
    await session.close(ended_at)
    await session.close(ended_at + 5)  # idempotent: nothing changes
    assert loop.is_running()
    return session, read_wav(tmp_path / "voice.wav"), speech, answered_at, ended_at


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_recorded_call(tmp_path: Path, loop: str) -> None:
    session, data, speech, answered_at, ended_at = run_on(loop, run_call(tmp_path))
    assert abs(len(data) - (ended_at - answered_at) * RATE) <= pos(0.02)

    # The speech sits where its first packet arrived, sample-exact after G.711.
    expected = ulaw_decode(ulaw_encode(speech))
    probe_at = pos(0.5) + int(np.argmax(np.abs(expected[pos(0.5) : pos(0.6)])))
    block = expected[probe_at - 400 : probe_at + 400]
    matches = np.flatnonzero((sliding_window_view(data, len(block)) == block).all(axis=1))
    assert len(matches) == 1
    p0 = int(matches[0]) - (probe_at - 400)
    assert 0 <= p0 < pos(0.3)  # the sender started right after the answer
    pause_start, pause_end = pos(0.8), pos(1.4)
    assert np.array_equal(data[p0:pause_start], expected[: pause_start - p0])
    assert not data[pause_start:pause_end].any()  # the paused span is exactly zero
    speech_end = p0 + len(expected)
    assert np.array_equal(data[pause_end:speech_end], expected[pause_end - p0 :])
    assert np.abs(data[pause_end:speech_end].astype(float)).mean() > 100  # and it is audio

    # The hand-made stream: in order despite the reorder, silence where packet 5 was lost.
    tail = data[speech_end:]
    start = speech_end + int(np.flatnonzero(tail)[0])
    slots = [int(v) for v in data[start : start + 10 * 160 : 160]]
    assert slots == [int(ulaw_decode(level(1000 * (i + 1)))[0]) if i != 5 else 0 for i in range(10)]
    assert all(len(set(data[start + 160 * k : start + 160 * (k + 1)].tolist())) == 1 for k in range(10))
    assert not data[start + 1600 :].any()

    stats = session.stats
    assert stats.dropped_foreign == 1
    assert stats.dropped_malformed == 1
    assert stats.dropped_payload_type == 1
    assert stats.dropped_duplicate == 1
    assert stats.rtcp == 1 and stats.rtcp_sr == 1 and stats.rtcp_malformed == 0
    assert stats.ssrc_changes == 1
    assert stats.dropped_late == 0
    assert stats.written == 100 + 9
    assert session.last_packet_at is not None and answered_at < session.last_packet_at < ended_at
    assert stats.samples_written == len(data)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])  # uvloop reports EADDRINUSE differently
def test_port_allocation(tmp_path: Path, loop: str) -> None:
    async def run() -> None:
        base = free_udp_port() & ~1
        blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            blocker.bind((HOST, base))
        except OSError:
            pytest.skip("port raced away")
        try:
            session = await RtpSession.open(HOST, (base - 1, base + 10), tmp_path / "a.wav", "PCMA")
            assert session.port == base + 2  # base-1 is odd, base is taken
            with pytest.raises(PortRangeExhaustedError):
                await RtpSession.open(HOST, (base, base + 3), tmp_path / "b.wav", "PCMA")
            assert not (tmp_path / "b.wav").exists()
            await session.close(time.time())
        finally:
            blocker.close()
        with pytest.raises(UnsupportedCodecError):
            await RtpSession.open(HOST, (base, base + 10), tmp_path / "c.wav", "G729")
        with pytest.raises(RtpSessionError):
            await RtpSession.open(HOST, (base, base + 10), tmp_path / "a.wav", "PCMU")  # file exists

    run_on(loop, run())


def test_never_answered_gives_empty_wav(tmp_path: Path) -> None:
    async def run() -> None:
        session = await RtpSession.open(HOST, rtp_range(), tmp_path / "v.wav", "PCMU")
        await session.close(time.time())

    asyncio.run(run())
    assert len(read_wav(tmp_path / "v.wav")) == 0


def test_packets_before_start_are_kept(tmp_path: Path) -> None:
    async def run() -> np.ndarray:
        session = await RtpSession.open(HOST, rtp_range(), tmp_path / "v.wav", "PCMA")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(3):  # media after our 200 OK, before the ACK
                payload = bytes([0xAA]) * 160
                sock.sendto(RtpPacket(8, i, 160 * i, 5, payload).serialize(), (HOST, session.port))
            await asyncio.sleep(0.1)
            answered_at = time.time()
            session.start(answered_at)
            await session.close(answered_at + 0.2)
        return read_wav(tmp_path / "v.wav")

    data = asyncio.run(run())
    assert len(data) == pos(0.2)
    assert np.all(data[:480] == 32256) and np.all(data[480:] == 0)


def test_bad_datagrams_never_raise(tmp_path: Path) -> None:
    async def run() -> RtpSession:
        session = await RtpSession.open(HOST, rtp_range(), tmp_path / "v.wav", "PCMU")
        session.start(time.time())
        rng = np.random.default_rng(0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for n in range(300):
                junk = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
                sock.sendto(junk, (HOST, session.port))
                if n % 50 == 0:
                    await asyncio.sleep(0.01)
            sock.sendto(struct.pack("!BBHII", 0x80, 0, 1, 1, 1) + level(3000), (HOST, session.port))
            await asyncio.sleep(0.1)
        await session.close(time.time())
        return session

    session = asyncio.run(run())
    stats = session.stats
    assert stats.received == 301
    assert stats.dropped_malformed + stats.rtcp + stats.dropped_payload_type + stats.dropped_cn == 300
    assert stats.written == 1


def test_rtcp_port_taken_skips_the_pair(tmp_path: Path) -> None:
    async def run() -> None:
        base = free_udp_port() & ~1
        blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            blocker.bind((HOST, base + 1))  # the first pair's RTCP port
        except OSError:
            pytest.skip("port raced away")
        try:
            session = await RtpSession.open(HOST, (base, base + 10), tmp_path / "a.wav", "PCMU")
            assert (session.port, session.rtcp_port) == (base + 2, base + 3)
            await session.close(time.time())
        finally:
            blocker.close()

    asyncio.run(run())


def ffmpeg_sender(port: int, codec: str, frequency: int, seconds: float) -> list[str]:
    """FFmpeg's RTP muxer paced in real time (-re), 20 ms packets, RTCP SR to port + 1 and a BYE
    at the end; G.722 gets RFC 3551's 8000 Hz timestamp clock from it."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is missing: scripts/system-packages test installs it"
    rate = 16000 if codec == "g722" else 8000
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}",
        "-c:a", codec, "-f", "rtp", "-rtpflags", "send_bye", f"rtp://{HOST}:{port}?pkt_size=172",
    ]  # fmt: skip


def dominant(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_two_legs_from_ffmpeg_into_one_wideband_stereo_file(tmp_path: Path) -> None:
    """The SIPREC shape: a G.722 leg and a G.711 leg (upsampled) in one 16 kHz stereo WAV, each
    from a real RTP sender, with their RTCP read on the odd ports."""
    path = tmp_path / "call.wav"

    async def run() -> tuple[RtpSession, RtpSession, float, float]:
        stereo = StereoWavWriter(path, sample_rate=16000)
        caller = await RtpSession.open(
            HOST, rtp_range(), None, "G722", writer=stereo.channel(Channel.CALLER), sample_rate=16000
        )
        agent = await RtpSession.open(
            HOST, rtp_range(), None, "PCMU", writer=stereo.channel(Channel.AGENT), sample_rate=16000
        )
        answered_at = time.time()
        caller.start(answered_at)
        agent.start(answered_at)
        quiet = asyncio.subprocess.DEVNULL  # FFmpeg prints the stream's SDP
        senders = [
            await asyncio.create_subprocess_exec(
                *ffmpeg_sender(caller.port, "g722", 1000, 2.0), stdout=quiet
            ),
            await asyncio.create_subprocess_exec(
                *ffmpeg_sender(agent.port, "pcm_mulaw", 440, 2.0), stdout=quiet
            ),
        ]
        codes = [await asyncio.wait_for(p.wait(), 30) for p in senders]
        assert codes == [0, 0]
        await asyncio.sleep(0.3)
        ended_at = time.time()
        stereo.end_of_call()
        await caller.close(ended_at)
        await agent.close(ended_at)
        return caller, agent, answered_at, ended_at

    caller, agent, answered_at, ended_at = run_on("uvloop", run())
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 16000)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert abs(len(frames) - (ended_at - answered_at) * 16000) <= 16000 * 0.02
    for session, channel, frequency in ((caller, 0, 1000.0), (agent, 1, 440.0)):
        audio = frames[:, channel]
        nonzero = np.flatnonzero(audio)
        # 2 s of tone at its arrival time: media time kept (G.722 is not squeezed into 1 s)
        assert abs((nonzero[-1] - nonzero[0]) / 16000 - 2.0) < 0.03
        assert dominant(audio[nonzero[0] + 1600 : nonzero[0] + 17600], 16000) == pytest.approx(
            frequency, abs=2
        )
        stats = session.stats
        assert stats.dropped_malformed == stats.dropped_late == stats.dropped_foreign == 0
        # FFmpeg's RTCP on the odd port: its final SR counts what it sent, then BYE. (It cuts
        # G.711 into packets of up to 160 octets from 1024-sample frames: more than 100 packets.)
        assert stats.rtcp >= 2 and stats.rtcp_malformed == 0 and stats.rtcp_bye
        assert stats.sender_packets == stats.written >= 100
        assert stats.sender_octets == 2 * 8000  # G.722: 64 kbit/s; G.711: 64 kbit/s


def test_ports_rotate_through_the_range(tmp_path: Path) -> None:
    """A port just released is not handed out again at once; the search wraps at the top."""

    async def run() -> list[int]:
        base = free_udp_port() & ~7
        span = (base, base + 5)  # three pairs
        first = await RtpSession.open(HOST, span, tmp_path / "1.wav", "PCMU")
        await first.close(time.time())
        second = await RtpSession.open(HOST, span, tmp_path / "2.wav", "PCMU")  # not first's port
        third = await RtpSession.open(HOST, span, tmp_path / "3.wav", "PCMU")
        fourth = await RtpSession.open(HOST, span, tmp_path / "4.wav", "PCMU")  # wraps to the bottom
        with pytest.raises(PortRangeExhaustedError):
            await RtpSession.open(HOST, span, tmp_path / "5.wav", "PCMU")
        for session in (second, third, fourth):
            await session.close(time.time())
        return [session.port - base for session in (first, second, third, fourth)]

    assert run_on("uvloop", run()) == [0, 2, 4, 0]
