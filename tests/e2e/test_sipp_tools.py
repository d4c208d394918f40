"""The SIPp test tools on their own: RTP captures, SIPp's message trace, the WAV measurements the
SIPp tests rely on (so a broken measurement cannot pass a broken recording), and the scenarios'
SIPREC offer as the server's own parser reads it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from server.sip.siprec import parse_offer
from tests.e2e.sipp_media import (
    PACKET_SAMPLES,
    Recording,
    dominant_hz,
    first_sound,
    is_silent,
    lost_packets,
    packet_windows,
    read_rtp_pcap,
    read_wav,
    rms_db,
    rtp_pcap,
    tone_db,
    write_tone,
)
from tests.e2e.sipp_tools import SIPP_DIR, parse_trace

RATE = 8000


def _sine(freq: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_lost_packets_are_the_fraction_asked_and_spare_the_edges() -> None:
    lost = lost_packets(200, 0.15, seed=3)
    assert len(lost) == 30
    assert min(lost) >= 5 and max(lost) < 195
    assert lost == lost_packets(200, 0.15, seed=3) != lost_packets(200, 0.15, seed=4)
    with pytest.raises(ValueError):
        lost_packets(10, 0.9, seed=1)


def test_pcap_keeps_the_gaps_of_lost_packets() -> None:
    payload = bytes(range(256)) * 25  # 6400 bytes: 40 packets
    packets = read_rtp_pcap(rtp_pcap(payload, {3, 4, 10}))
    assert [p.sequence for p in packets][:5] == [0, 1, 2, 5, 6]
    assert len(packets) == 37
    assert all(p.timestamp == p.sequence * PACKET_SAMPLES for p in packets)
    assert all(p.time == pytest.approx(p.sequence * 0.02) for p in packets)
    assert packets[3].payload == payload[5 * PACKET_SAMPLES : 6 * PACKET_SAMPLES]


def test_trace_is_read_with_direction_time_and_headers() -> None:
    text = (
        "----------------------------------------------- 2026-01-02 03:04:05.250000\n"
        "UDP message sent (100 bytes):\n\n"
        "INVITE sip:srs@127.0.0.1:5060 SIP/2.0\nCSeq: 1 INVITE\nContent-Type: application/sdp\n\nv=0\n\n"
        "----------------------------------------------- 2026-01-02 03:04:05.750000\n"
        "UDP message received [80] bytes :\n\n"
        "SIP/2.0 200 OK\nCSeq: 1 INVITE\nContact: <sip:x@y>;+sip.srs\n\n"
    )
    sent, received = parse_trace(text)
    assert sent.sent and not received.sent
    assert received.time - sent.time == pytest.approx(0.5)
    assert sent.is_request("INVITE") and sent.body == "v=0\n"
    assert received.is_response(200, "INVITE") and not received.is_response(200, "BYE")
    assert received.header("contact") == "<sip:x@y>;+sip.srs"


def test_tone_measurements_tell_the_channels_apart() -> None:
    left = _sine(440, 1.0) + _sine(1000, 1.0, 0.5 * 10 ** (-25 / 20))  # the other tone 25 dB down
    assert dominant_hz(left, RATE) == pytest.approx(440, abs=2)
    assert tone_db(left, RATE, 440) - tone_db(left, RATE, 1000) == pytest.approx(25, abs=1)
    assert rms_db(_sine(440, 1.0)) == pytest.approx(-9.03, abs=0.1)
    assert is_silent(np.zeros(800)) and is_silent(_sine(440, 0.1, 0.002))
    assert not is_silent(_sine(440, 0.1, 0.01))


def test_packet_windows_find_the_lost_packets_of_a_recorded_leg() -> None:
    signal = _sine(440, 1.0)
    lost = {7, 8, 20}
    for i in lost:
        signal[i * PACKET_SAMPLES : (i + 1) * PACKET_SAMPLES] = 0
    recorded = np.concatenate([np.zeros(333), signal])
    start = first_sound(recorded)
    assert start is not None and abs(start - 333) <= 2
    windows = packet_windows(recorded, start, 50)
    assert {i for i, w in enumerate(windows) if is_silent(w)} == lost


def test_recording_reads_stereo_16_bit_wav(tmp_path: Path) -> None:
    import wave

    frames = (np.stack([_sine(440, 0.5), _sine(1000, 0.5)], axis=1) * 32767).astype("<i2")
    with wave.open(str(tmp_path / "s.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(frames.tobytes())
    voice = read_wav(tmp_path / "s.wav")
    assert isinstance(voice, Recording) and voice.channels == 2 and voice.seconds == 0.5
    assert dominant_hz(voice.channel(1, 0.1, 0.4), RATE) == pytest.approx(1000, abs=4)
    assert len(voice.channel(0, 0.25)) == 2000


def test_tone_file_is_raw_mu_law_for_rtp_stream(tmp_path: Path) -> None:
    import subprocess

    data = write_tone(tmp_path / "t.ul", 1000, 0.5)
    assert len(data) == 4000 and not data.startswith(b"RIFF")  # no header: rtp_stream sends all
    pcm = subprocess.run(
        ["sox", "-t", "ul", "-r", "8000", "-c", "1", str(tmp_path / "t.ul"), "-t", "s16", "-"],
        check=True,
        capture_output=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype="<i2") / 32768.0
    assert dominant_hz(samples, RATE) == pytest.approx(1000, abs=4)
    assert rms_db(samples) == pytest.approx(-9.0, abs=0.5)


def _rendered_invite(scenario: str) -> tuple[str, bytes, str, str]:
    """The INVITE of a SIPREC scenario with its keywords filled in as SIPp would."""
    xml = (SIPP_DIR / scenario).read_text(encoding="latin-1")
    text = re.search(r"<!\[CDATA\[(.*?)\]\]>", xml, re.S)
    assert text is not None
    lines = [line.strip() for line in text.group(1).strip("\n").split("\n")]
    values = {
        "media_ip": "127.0.0.1",
        "media_ip_type": "4",
        "media_port": "20000",
        "leg_b_media_port": "20004",
        "agent_dn": "1001",
        "call_id": "c1@127.0.0.1",
    }
    message = re.sub(r"\[(\w+)\]", lambda m: values.get(m.group(1), m.group(0)), "\r\n".join(lines))
    head, _, body = message.partition("\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
    return headers["Content-Type"], body.encode(), headers["Require"], headers["Contact"]


@pytest.mark.parametrize(
    "scenario",
    [
        "siprec_call.xml",
        "siprec_pause.xml",
        "siprec_lost_ack.xml",
        "siprec_server_bye.xml",
        "siprec_cancel.xml",
    ],
)
def test_scenario_offer_ties_each_stream_to_its_participant(scenario: str) -> None:
    offer = parse_offer(*_rendered_invite(scenario))
    assert offer.siprec and offer.warnings == (), offer.warnings
    assert [(s.label, s.audio.port, s.audio.direction) for s in offer.streams] == [
        ("1", 20000, "sendonly"),
        ("2", 20004, "sendonly"),
    ]
    aors = {s.label: p.aor for s in offer.streams if (p := offer.participant(s.sender)) is not None}
    assert aors == {"1": "sip:1001@pbx.example.com", "2": "sip:+15550123@pbx.example.com"}
