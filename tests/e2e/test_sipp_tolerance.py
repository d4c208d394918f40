"""Dialogs as SBCs that bend RFC 3261 send them (issue 11 item 5), from SIPp to the running server,
checked from the stored recordings: an ACK and a BYE without the To-tag, a hold whose ACK carries
a CSeq no INVITE had, re-INVITEs that restart the CSeq numbering, an ACK whose CSeq method is
INVITE. Before, these calls were refused mid-way (481 to the BYE, 491 to the resume, 500 to the
restarted numbering, 400 to the ACK) or recorded for 32 s of silence; now each is recorded for
its length with its hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.sipp_calls import assert_tone, call_length, recorder_fixture, tone_work
from tests.e2e.sipp_media import Samples, is_silent, read_wav
from tests.e2e.sipp_tools import Recorder, run_sipp, sipp_call_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

TONE_HZ = 440
RTP_TIMEOUT = 3.0  # longer than the calls' silences: a held call must not be ended for them
LENGTH_TOLERANCE = 0.02  # the WAV lasts from the 200 OK to the BYE, to 20 ms
SPAN_TOLERANCE = 0.1


rec = recorder_fixture("tolerance-server", TANDEM_SERVER_RTP_TIMEOUT_SECONDS=str(RTP_TIMEOUT))


def _work(tmp_path: Path, name: str) -> Path:
    return tone_work(tmp_path, name, TONE_HZ)


def _assert_tone(x: Samples, what: str) -> None:
    assert_tone(x, TONE_HZ, what)


def test_ack_and_bye_without_to_tag_record_the_call_for_its_length(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "no-to-tag")
    result = run_sipp(
        "tolerance_no_to_tag.xml", rec.server.sip_port, work, service=rec.dn, duration_ms=3000
    ).check()  # was: the BYE answered 481
    inter = rec.interaction(sipp_call_id(result) or "")
    voice = read_wav(rec.voice(inter, tmp_path / "voice.wav"))
    assert abs(voice.seconds - call_length(inter)) <= LENGTH_TOLERANCE, (voice.seconds, call_length(inter))
    assert 2.9 < voice.seconds < 5, f"a {voice.seconds:.1f} s file for a 3 s call"  # was 32 s, silent
    _assert_tone(voice.channel(0, 0.3, 2.5), "the call")


CSEQ_CASES = {
    # the hold's ACK says CSeq 9: was not matched, so the resume got 491 and the call ended at 32 s
    "ack-with-another-cseq": dict(
        invite_cseq=1,
        ack1_cseq=1,
        ack1_method="ACK",
        hold_cseq=2,
        ack2_cseq=9,
        resume_cseq=3,
        ack3_cseq=3,
        bye_cseq=4,
    ),
    # an SBC restarted its numbering after the INVITE: the hold was refused 500 CSeq Out Of Order
    "cseq-restarted": dict(
        invite_cseq=100,
        ack1_cseq=100,
        ack1_method="ACK",
        hold_cseq=1,
        ack2_cseq=1,
        resume_cseq=2,
        ack3_cseq=2,
        bye_cseq=3,
    ),
    # the first ACK's CSeq method is INVITE: was answered 400 (and never matched)
    "ack-cseq-method-invite": dict(
        invite_cseq=1,
        ack1_cseq=1,
        ack1_method="INVITE",
        hold_cseq=2,
        ack2_cseq=2,
        resume_cseq=3,
        ack3_cseq=3,
        bye_cseq=4,
    ),
}


@pytest.mark.parametrize("case", sorted(CSEQ_CASES))
def test_odd_cseqs_keep_the_hold_and_the_recording(rec: Recorder, tmp_path: Path, case: str) -> None:
    work = _work(tmp_path, case)
    result = run_sipp(
        "tolerance_cseq.xml",
        rec.server.sip_port,
        work,
        service=rec.dn,
        keys=CSEQ_CASES[case],
        variables={"pause1_ms": 1500, "gap_ms": 2000, "pause2_ms": 1500},
    ).check()
    reinvites = result.sent("INVITE")[1:]
    assert len(reinvites) == 2 and len(result.received(200, "INVITE")) >= 3, result.describe()
    assert not [m for m in result.messages if not m.sent and m.first_line.startswith("SIP/2.0 4")]
    inter = rec.interaction(sipp_call_id(result) or "")
    t0 = float(inter["answered_at"])
    held, resumed = reinvites[0].time - t0, reinvites[1].time - t0
    assert len(inter["pauses"]) == 1, f"expected one pause span for the hold: {inter['pauses']}"
    span = inter["pauses"][0]
    assert abs(span["started_at"] - t0 - held) <= SPAN_TOLERANCE, (span, held)
    assert span["ended_at"] is not None and abs(span["ended_at"] - t0 - resumed) <= SPAN_TOLERANCE
    voice = read_wav(rec.voice(inter, tmp_path / "voice.wav"))
    assert abs(voice.seconds - call_length(inter)) <= LENGTH_TOLERANCE, (voice.seconds, call_length(inter))
    assert voice.seconds < 10, f"a {voice.seconds:.1f} s file for a 5 s call"
    assert is_silent(voice.channel(0, held + 0.1, resumed - 0.1)), "audio while held"
    _assert_tone(voice.channel(0, 0.3, held - 0.1), "before the hold")
    _assert_tone(voice.channel(0, resumed + 0.3, voice.seconds - 0.2), "after the resume")
