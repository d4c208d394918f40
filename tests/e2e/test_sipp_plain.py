"""Plain (non-SIPREC) calls from SIPp to the running server, checked from the stored recordings:
a tone call, hold and resume by re-INVITE, CANCEL before the answer, a lost ACK, and the BYE the
server sends when RTP stops. One server for the module; each call lasts a few seconds."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.e2e.sipp_calls import assert_tone, call_length, recorder_fixture, tone_work
from tests.e2e.sipp_media import Samples, is_silent, read_wav
from tests.e2e.sipp_tools import Recorder, run_sipp, sipp_call_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TONE_HZ = 440
RTP_TIMEOUT = 2.0  # shorter than the hold below: a held call must not be ended for silence
LENGTH_TOLERANCE = 0.02  # the WAV lasts from the 200 OK to the BYE, to 20 ms


rec = recorder_fixture("plain-server", TANDEM_SERVER_RTP_TIMEOUT_SECONDS=str(RTP_TIMEOUT))


def _work(tmp_path: Path, name: str) -> Path:
    return tone_work(tmp_path, name, TONE_HZ)


def _assert_tone(x: Samples, what: str) -> None:
    assert_tone(x, TONE_HZ, what)


def test_plain_call_is_recorded_for_its_length(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "plaincall")
    result = run_sipp("plain_call.xml", rec.server.sip_port, work, service=rec.dn, duration_ms=4000).check()
    inter = rec.interaction(sipp_call_id(result) or "")
    voice = read_wav(rec.voice(inter, tmp_path / "voice.wav"))
    assert abs(voice.seconds - call_length(inter)) <= LENGTH_TOLERANCE, (voice.seconds, call_length(inter))
    assert voice.seconds > 3.9
    for second in range(3):
        _assert_tone(voice.channel(0, 0.3 + second, 1.3 + second), f"second {second}")


@pytest.mark.parametrize(("hold_dir", "hold_addr"), [("inactive", "127.0.0.1"), ("sendonly", "0.0.0.0")])
def test_hold_and_resume_by_reinvite(rec: Recorder, tmp_path: Path, hold_dir: str, hold_addr: str) -> None:
    work = _work(tmp_path, f"hold-{hold_dir}")
    result = run_sipp(
        "plain_hold.xml",
        rec.server.sip_port,
        work,
        service=rec.dn,
        keys={"hold_dir": hold_dir, "hold_addr": hold_addr},
        variables={"pause1_ms": 1500, "gap_ms": 2500, "pause2_ms": 1500},
    ).check()
    reinvites = result.sent("INVITE")[1:]
    assert len(reinvites) == 2, result.describe()
    inter = rec.interaction(sipp_call_id(result) or "")
    t0 = float(inter["answered_at"])
    held, resumed = reinvites[0].time - t0, reinvites[1].time - t0
    assert len(inter["pauses"]) == 1, f"expected one pause span for the hold: {inter['pauses']}"
    span = inter["pauses"][0]
    assert abs(span["started_at"] - t0 - held) <= 0.1, (span, held)
    assert span["ended_at"] is not None and abs(span["ended_at"] - t0 - resumed) <= 0.1, (span, resumed)
    voice = read_wav(rec.voice(inter, tmp_path / "voice.wav"))
    assert abs(voice.seconds - call_length(inter)) <= LENGTH_TOLERANCE
    for ch in range(voice.channels):
        assert is_silent(voice.channel(ch, held + 0.1, resumed - 0.1)), f"audio on channel {ch} while held"
    _assert_tone(voice.channel(0, 0.3, held - 0.1), "before the hold")
    _assert_tone(voice.channel(0, resumed + 0.3, voice.seconds - 0.2), "after the resume")


def test_cancel_before_answer_leaves_nothing_active(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "cancel")
    result = run_sipp("plain_cancel.xml", rec.server.sip_port, work, service=rec.dn).check()
    assert len(result.received(487, "INVITE")) == 1 and not result.received(200, "INVITE"), result.describe()
    call_id = sipp_call_id(result) or ""
    rec.assert_nothing_live(call_id)
    assert all(not i["media"] for i in rec.interactions(call_id)), "a cancelled call has media"
    # The agent is free for the next call.
    follow = run_sipp(
        "plain_call.xml",
        rec.server.sip_port,
        _work(tmp_path, "after-cancel"),
        service=rec.dn,
        duration_ms=1000,
    )
    assert follow.returncode == 0, f"the call after a CANCEL failed:\n{follow.describe()}"


def test_lost_ack_gets_the_200_again_and_records_normally(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "lostack")
    result = run_sipp(
        "plain_lost_ack.xml",
        rec.server.sip_port,
        work,
        service=rec.dn,
        duration_ms=2000,
        variables={"lost_ack_ms": 1800},
    ).check()
    oks = result.received(200, "INVITE")
    ack = result.sent("ACK")[0]
    before_ack = [m.time for m in oks if m.time < ack.time]
    assert len(before_ack) >= 3, f"expected the 200 OK twice more before the ACK:\n{result.describe()}"
    gaps = [b - a for a, b in itertools.pairwise(before_ack)]
    assert abs(gaps[0] - 0.5) < 0.2 and abs(gaps[1] - 1.0) < 0.25, f"not T1 doubling: {gaps}"
    inter = rec.interaction(sipp_call_id(result) or "")
    voice = read_wav(rec.voice(inter, tmp_path / "voice.wav"))
    assert abs(voice.seconds - call_length(inter)) <= LENGTH_TOLERANCE
    assert abs(float(inter["answered_at"]) - oks[0].time) < 0.2, "answered_at is not the 200 OK"
    _assert_tone(voice.channel(0, 0.3, 1.5), "before the ACK")
    _assert_tone(voice.channel(0, 2.0, voice.seconds - 0.3), "after the ACK")


def test_server_sends_bye_when_rtp_stops(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "serverbye")
    result = run_sipp(
        "plain_server_bye.xml", rec.server.sip_port, work, service=rec.dn, duration_ms=2000
    ).check()
    bye = [m for m in result.messages if not m.sent and m.is_request("BYE")]
    assert len(bye) >= 1, result.describe()
    inter = rec.interaction(sipp_call_id(result) or "")
    t0 = float(inter["answered_at"])
    quiet_for = bye[0].time - t0 - 2.0
    assert RTP_TIMEOUT <= quiet_for <= RTP_TIMEOUT + 1.5, f"BYE {quiet_for:.2f} s after the RTP stopped"
    assert abs(float(inter["ended_at"]) - bye[0].time) < 0.2
    voice = read_wav(rec.voice(inter, tmp_path / "voice.wav"))
    assert abs(voice.seconds - call_length(inter)) <= LENGTH_TOLERANCE
    _assert_tone(voice.channel(0, 0.3, 1.7), "while streaming")
    assert is_silent(voice.channel(0, 2.2, voice.seconds - 0.05)), "audio after the RTP stopped"
