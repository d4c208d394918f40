"""Every offered codec decoded, packet by packet (issue 11 item 3): a sender that switches
between offered payload types mid-stream (PCMA ↔ PCMU, G.711 ↔ G.722) is recorded in full at the
file's one rate, and a stream of only undecodable packets becomes a visible error, not a silent
file. The audio's content is checked (a tone of known frequency in each part), not its length."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from server.callmedia.plan import plan_media
from server.calls.voice_faults import UNDECODABLE, end_reason, media_error
from server.rtp.packet import RtpPacket
from server.rtp.payload_types import UNDECODABLE_SECONDS
from server.rtp.session import RtpSession
from server.sip.sdp import audio_streams, build_multistream_answer, parse_sdp
from server.voice import g711, g722
from tests.ports import rtp_range

HOST = "127.0.0.1"
SRC = ("127.0.0.1", 30000)
T0 = 1_700_000_000.0
SSRC = 0x7001


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def tone(frequency: float, seconds: float, rate: int) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * rate)) / rate
    return np.round(6000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def dominant(samples: npt.NDArray[np.int16], rate: int) -> tuple[float, float]:
    """(frequency of the strongest FFT bin, RMS) of ``samples``."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x)), float(np.sqrt(np.mean(x**2)))


def read_wav(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def packet(pt: int, index: int, payload: bytes) -> bytes:
    return RtpPacket(
        pt, index & 0xFFFF, (40_000 + 160 * index) & 0xFFFFFFFF, SSRC, payload, False
    ).serialize()


def run(body: Any) -> Any:
    return asyncio.run(body())


async def open_session(clock: Clock, path: Path, codec: str, **options: Any) -> RtpSession:
    return await RtpSession.open(HOST, rtp_range(), path, codec, clock=clock, tick_interval=3600, **options)


def feed(session: RtpSession, clock: Clock, packets: list[bytes]) -> None:
    for k, data in enumerate(packets):
        clock.now = T0 + 0.02 * k
        session._on_datagram(data, SRC)


def test_pcma_then_pcmu_both_halves_carry_the_tone(tmp_path: Path) -> None:
    """Offer ``0 8``: the sender uses PCMA for the first second and PCMU for the second (it may,
    RFC 3264 §5.1). Before, every PCMA packet was dropped (dropped_payload_type): half silent."""
    signal = tone(440, 2.0, 8000)
    packets = [
        packet(
            8 if k < 50 else 0,
            k,
            (g711.alaw_encode if k < 50 else g711.ulaw_encode)(signal[160 * k : 160 * (k + 1)]),
        )
        for k in range(100)
    ]

    async def body() -> RtpSession:
        clock = Clock()
        session = await open_session(clock, tmp_path / "v.wav", "PCMU", payload_codecs={0: "PCMU", 8: "PCMA"})
        session.start(T0)
        feed(session, clock, packets)
        await session.close(T0 + 2.0)
        return session

    session = run(body)
    assert (session.stats.written, session.stats.dropped_payload_type) == (100, 0)
    assert session.stats.codec_changes == 2  # PCMU (negotiated) → PCMA → PCMU
    rate, audio = read_wav(tmp_path / "v.wav")
    assert rate == 8000 and abs(len(audio) - 16000) <= 160
    for half in (audio[800:7200], audio[8800:15200]):
        frequency, rms = dominant(half, rate)
        assert abs(frequency - 440) < 10 and rms > 3000


def test_g711_then_g722_in_one_wideband_file(tmp_path: Path) -> None:
    """PCMU for one second, then G.722 (offered too): one 16 kHz file, both parts the tone."""
    narrow, wide = tone(500, 1.0, 8000), tone(500, 1.0, 16000)
    wide_payload = g722.encode(wide)
    packets = [packet(0, k, g711.ulaw_encode(narrow[160 * k : 160 * (k + 1)])) for k in range(50)]
    packets += [packet(9, 50 + k, wide_payload[160 * k : 160 * (k + 1)]) for k in range(50)]

    async def body() -> RtpSession:
        clock = Clock()
        session = await open_session(
            clock, tmp_path / "v.wav", "PCMU", sample_rate=16000, payload_codecs={0: "PCMU", 9: "G722"}
        )
        session.start(T0)
        feed(session, clock, packets)
        await session.close(T0 + 2.0)
        return session

    session = run(body)
    assert session.stats.written == 100 and session.stats.dropped_payload_type == 0
    rate, audio = read_wav(tmp_path / "v.wav")
    assert rate == 16000 and abs(len(audio) - 32000) <= 320
    for part in (audio[1600:14400], audio[17600:30400]):
        frequency, rms = dominant(part, rate)
        assert abs(frequency - 500) < 10 and rms > 2500


def test_g722_in_a_narrowband_file_is_downsampled(tmp_path: Path) -> None:
    """A re-INVITE (or a sender ignoring the answer) brings G.722 into an 8 kHz file."""
    wide_payload = g722.encode(tone(700, 1.0, 16000))
    packets = [packet(9, k, wide_payload[160 * k : 160 * (k + 1)]) for k in range(50)]

    async def body() -> RtpSession:
        clock = Clock()
        session = await open_session(clock, tmp_path / "v.wav", "PCMA")
        session.start(T0)
        feed(session, clock, packets)
        await session.close(T0 + 1.0)
        return session

    assert run(body).stats.written == 50
    rate, audio = read_wav(tmp_path / "v.wav")
    assert rate == 8000 and abs(len(audio) - 8000) <= 160
    frequency, rms = dominant(audio[800:7200], rate)
    assert abs(frequency - 700) < 10 and rms > 2500


def test_only_undecodable_packets_is_a_visible_failure(tmp_path: Path) -> None:
    """G.729 (PT 18) that was never negotiated, for longer than the limit: ``media_error`` is set,
    and the coordinator's reading of the stats names it as an undecodable voice failure."""
    count = int(UNDECODABLE_SECONDS / 0.02) + 10

    async def body() -> RtpSession:
        clock = Clock()
        session = await open_session(clock, tmp_path / "v.wav", "PCMU")
        session.start(T0)
        feed(session, clock, [packet(18, k, bytes(20)) for k in range(count)])
        await session.close(T0 + 3.0)
        return session

    stats = run(body).stats
    assert stats.dropped_payload_type == count and stats.written == 0
    assert stats.media_error is not None and "payload type 18" in stats.media_error
    error = media_error({"0": stats.as_dict()})
    assert error is not None and error == stats.media_error and end_reason(error) == UNDECODABLE


def test_a_few_undecodable_packets_among_audio_are_no_failure(tmp_path: Path) -> None:
    signal = tone(440, 3.0, 8000)
    packets = [
        packet(18, k, bytes(20))
        if k % 10 == 0
        else packet(0, k, g711.ulaw_encode(signal[160 * k : 160 * (k + 1)]))
        for k in range(150)
    ]

    async def body() -> RtpSession:
        clock = Clock()
        session = await open_session(clock, tmp_path / "v.wav", "PCMU")
        session.start(T0)
        feed(session, clock, packets)
        await session.close(T0 + 3.0)
        return session

    stats = run(body).stats
    assert stats.dropped_payload_type == 15 and stats.written == 135 and stats.media_error is None


OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 18 9 101 13\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=label:1\r\na=sendonly\r\n"
    b"m=audio 4002 RTP/AVP 8 0\r\na=label:2\r\na=sendonly\r\n"
)


def test_answer_lists_every_decodable_type_and_the_plan_is_wideband() -> None:
    """Offer ``0 8 18 9 101 13`` → answer ``0 8 9 101 13`` (all but G.729); before, ``0`` only."""
    sdp = parse_sdp(OFFER)
    streams = audio_streams(sdp)
    answer = build_multistream_answer(sdp, streams, "127.0.0.1", {0: 30000, 1: 30002}).decode()
    m_lines = [line for line in answer.split("\r\n") if line.startswith("m=")]
    assert m_lines == ["m=audio 30000 RTP/AVP 0 8 9 101 13", "m=audio 30002 RTP/AVP 8 0"]
    for rtpmap in ("0 PCMU/8000", "8 PCMA/8000", "9 G722/8000", "101 telephone-event/8000", "13 CN/8000"):
        assert f"a=rtpmap:{rtpmap}\r\n" in answer
    plan = plan_media(
        [
            (s.index, s.codec or "", s.payload_type or 0, s.telephone_event, None, s.decodable)
            for s in streams
        ],
        frozenset({1}),
    )
    assert plan.sample_rate == 16000  # G.722 was offered on a leg: the file is wideband
    assert plan.streams[0].payload_codecs == ((0, "PCMU"), (8, "PCMA"), (9, "G722"))
    assert plan.streams[1].payload_codecs == ((8, "PCMA"), (0, "PCMU"))


def test_dynamic_comfort_noise_is_silence_not_undecodable(tmp_path: Path) -> None:
    """``a=rtpmap:19 CN/8000`` (as in an offer of the shared test data): seconds of comfort noise
    during silence suppression are CN, not an undecodable stream that fails the voice."""
    count = int(UNDECODABLE_SECONDS / 0.02) + 50

    async def body() -> RtpSession:
        clock = Clock()
        session = await open_session(clock, tmp_path / "v.wav", "PCMU", payload_codecs={0: "PCMU", 19: "CN"})
        session.start(T0)
        feed(session, clock, [packet(19, k, bytes(1)) for k in range(count)])
        await session.close(T0 + 4.0)
        return session

    stats = run(body).stats
    assert stats.dropped_cn == count and stats.dropped_payload_type == 0 and stats.media_error is None
