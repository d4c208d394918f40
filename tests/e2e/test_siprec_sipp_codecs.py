"""Captured RTP that switches codec mid-stream (issue 11 item 3), from SIPp against the running
server: the SIPREC offer lists ``0 8`` on each stream (tests/sipp/siprec_call.xml) and the
caller's leg is a capture (play_pcap_audio) whose first half is PCMA and second half PCMU. Before,
the answer kept PCMU only and every PCMA packet was dropped: the first half of the caller's
channel was silent behind a SIP success."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from server.voice import g711
from tests.e2e.sipp_media import PACKET_SAMPLES, dominant_hz, read_wav, rms_db, rtp_pcap, write_tone
from tests.e2e.sipp_tools import Recorder, SecondStream, recorder, run_sipp, sipp_call_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

AGENT_HZ, CALLER_HZ = 1000, 440
LEFT, RIGHT = 0, 1
PACKETS = 180  # 3.6 s of the caller's leg: 90 packets PCMA, then 90 PCMU
_PCAP_GLOBAL, _RECORD, _FRAME_TO_RTP = 24, 16, 14 + 20 + 8  # pcap header, record header, eth+ip+udp


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    with recorder(tmp_path_factory.mktemp("siprec-codecs-server")) as r:
        yield r


def pcma_then_pcmu_capture(ulaw: bytes) -> bytes:
    """The leg as a capture: packets 0..89 A-law (PT 8), 90.. μ-law (PT 0), one SSRC."""
    half = PACKETS // 2 * PACKET_SAMPLES
    pcm = g711.ulaw_decode(np.frombuffer(ulaw[: PACKETS * PACKET_SAMPLES], dtype=np.uint8).tobytes())
    payload = g711.alaw_encode(pcm[:half]) + ulaw[half : PACKETS * PACKET_SAMPLES]
    capture = bytearray(rtp_pcap(payload, payload_type=8))
    frame = _FRAME_TO_RTP + 12 + PACKET_SAMPLES
    for index in range(PACKETS // 2, PACKETS):
        at = _PCAP_GLOBAL + index * (_RECORD + frame) + _RECORD + _FRAME_TO_RTP + 1
        assert capture[at] == 8
        capture[at] = 0
    return bytes(capture)


def test_a_leg_switching_pcma_to_pcmu_is_recorded_whole(rec: Recorder, tmp_path: Path) -> None:
    work = tmp_path / "codecs"
    work.mkdir()
    write_tone(work / "stream1.ul", AGENT_HZ, 20)
    caller = write_tone(work / "stream2.ul", CALLER_HZ, 20)
    (work / "stream2.pcap").write_bytes(pcma_then_pcmu_capture(caller))
    result = run_sipp(
        "siprec_call.xml",
        rec.server.sip_port,
        work,
        service="srs",
        duration_ms=4200,
        keys={"agent_dn": rec.dn},
        second=SecondStream(stream1_ms=3900, scenario="siprec_leg_pcap.xml"),
    ).check()
    ok = result.received(200, "INVITE")[0]
    assert ok.body.count("m=audio") == 2 and all(
        line.endswith("RTP/AVP 0 8") for line in ok.body.splitlines() if line.startswith("m=audio")
    ), ok.body
    inter = rec.interaction(sipp_call_id(result) or "")
    voice = read_wav(rec.voice(inter, work / "voice.wav"))
    assert voice.channels == 2 and voice.rate == 8000
    # The leg starts 0.1-0.3 s after the answer (a process start): windows well inside each half.
    for start, end in ((0.6, 1.6), (2.3, 3.3)):
        left = voice.channel(LEFT, start, end)
        assert rms_db(left) > -20, f"caller {start}-{end} s: no audio ({rms_db(left):.1f} dBFS)"
        assert abs(dominant_hz(left, voice.rate) - CALLER_HZ) < 5
        right = voice.channel(RIGHT, start, end)
        assert rms_db(right) > -20 and abs(dominant_hz(right, voice.rate) - AGENT_HZ) < 5
