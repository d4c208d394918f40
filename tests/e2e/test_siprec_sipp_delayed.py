"""A SIPREC delayed offer from SIPp (issue 11 item 4), as Cisco UCM's built-in bridge sends it:
the INVITE has the metadata and no SDP (was refused 488); the server's 200 OK offers two labelled
recvonly streams with every codec it decodes; SIPp answers in the ACK and streams both legs. The
stored stereo file has each party's tone on its own channel for the whole call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.sip.sdp import parse_sdp
from tests.e2e.sipp_media import dominant_hz, read_wav, rms_db, tone_db, write_tone
from tests.e2e.sipp_tools import Recorder, SecondStream, recorder, run_sipp, sipp_call_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

AGENT_HZ = 1000  # label 1 (first m=audio): the agent → right channel
CALLER_HZ = 440  # label 2: the caller → left channel
LENGTH_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    with recorder(tmp_path_factory.mktemp("siprec-delayed-server")) as r:
        yield r


def test_delayed_offer_is_recorded_in_stereo(rec: Recorder, tmp_path: Path) -> None:
    work = tmp_path / "delayed"
    work.mkdir()
    write_tone(work / "stream1.ul", AGENT_HZ, 20)
    write_tone(work / "stream2.ul", CALLER_HZ, 20)
    result = run_sipp(
        "siprec_delayed_offer.xml",
        rec.server.sip_port,
        work,
        service="srs",
        duration_ms=4000,
        keys={"agent_dn": rec.dn},
        second=SecondStream(stream1_ms=3800),
    ).check()
    invite = result.sent("INVITE")[0]
    assert "application/sdp" not in invite.body, "the scenario's INVITE must carry no SDP"
    oks = result.received(200, "INVITE")
    assert oks, result.describe()
    offer = parse_sdp(oks[0].body.replace("\n", "\r\n").encode())
    audio = [m for m in offer.media if m.media == "audio"]
    assert [m.label for m in audio] == ["1", "2"] and all(m.direction == "recvonly" for m in audio)
    assert all(m.formats == ["0", "8", "9", "101", "13"] for m in audio), [m.formats for m in audio]
    assert "m=audio" in result.sent("ACK")[0].body, "the answer rides in the ACK"

    inter = rec.interaction(sipp_call_id(result) or "")
    voice = read_wav(rec.voice(inter, work / "voice.wav"))
    assert voice.channels == 2 and voice.rate == 16000  # G.722 was offered: a wideband file
    call_length = inter["ended_at"] - inter["answered_at"]
    assert abs(voice.seconds - call_length) <= LENGTH_TOLERANCE, (voice.seconds, call_length)
    for start in (0.5, 1.5, 2.5):
        left, right = voice.channel(0, start, start + 1.0), voice.channel(1, start, start + 1.0)
        assert rms_db(left) > -20 and abs(dominant_hz(left, voice.rate) - CALLER_HZ) < 5
        assert rms_db(right) > -20 and abs(dominant_hz(right, voice.rate) - AGENT_HZ) < 5
        assert tone_db(left, voice.rate, CALLER_HZ) - tone_db(right, voice.rate, CALLER_HZ) >= 20
        assert tone_db(right, voice.rate, AGENT_HZ) - tone_db(left, voice.rate, AGENT_HZ) >= 20
