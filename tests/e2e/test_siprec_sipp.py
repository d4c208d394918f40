"""SIPREC recording sessions from SIPp (the SRC) to the running server (the SRS), checked from the
stored recordings: two streams → a stereo file (caller left, agent right), pause and hold by
re-INVITE, CANCEL before the answer, a lost ACK, the server's BYE when RTP stops, and 15 %
packet loss on one leg.

Each call sends the agent's voice (AGENT_HZ) on the first m=audio line (label 1, SIPp's
rtp_stream) and the caller's (CALLER_HZ) on the second (label 2, a second SIPp: see
tests/sipp/siprec_leg.xml); only the metadata says whose stream is whose. The second stream
starts about 0.1-0.3 s after the first (a process start), so its schedule leads by LEG_B_LEAD
where a span must be silent on both channels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.sip.sdp import parse_sdp
from server.sip.siprec import parse_offer
from tests.e2e.sipp_calls import assert_tone, call_length, recorder_fixture, tone_work
from tests.e2e.sipp_media import (
    PACKET_SAMPLES,
    Recording,
    first_sound,
    is_silent,
    lost_packets,
    packet_windows,
    read_wav,
    rms_db,
    rtp_pcap,
    tone_db,
)
from tests.e2e.sipp_tools import Recorder, SecondStream, SippResult, run_sipp, sipp_call_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

AGENT_HZ = 1000  # label 1, first m=audio: the agent → right channel
CALLER_HZ = 440  # label 2, second m=audio: the caller → left channel
LEFT, RIGHT = 0, 1
RTP_TIMEOUT = 2.0  # shorter than the pauses below: a paused recording must not time out
LENGTH_TOLERANCE = 0.02  # the WAV lasts from the 200 OK to the BYE, to 20 ms
SPAN_TOLERANCE = 0.1  # silence and pause spans match the re-INVITEs to 100 ms
LEG_B_LEAD = 300  # ms the second stream stops before (and resumes after) a pause


rec = recorder_fixture("siprec-server", TANDEM_SERVER_RTP_TIMEOUT_SECONDS=str(RTP_TIMEOUT))


def _work(tmp_path: Path, name: str) -> Path:
    return tone_work(tmp_path, name, AGENT_HZ, CALLER_HZ)


def _recorded(rec: Recorder, result: SippResult, dest: Path) -> tuple[dict[str, Any], Recording]:
    """The call's interaction and stereo voice file, whose length must be the call's."""
    result.check()
    inter = rec.interaction(sipp_call_id(result) or "")
    voice = read_wav(rec.voice(inter, dest))
    assert voice.channels == 2 and voice.rate == 8000, f"{voice.channels} channels at {voice.rate} Hz"
    assert abs(voice.seconds - call_length(inter)) <= LENGTH_TOLERANCE, (voice.seconds, call_length(inter))
    return inter, voice


def _assert_separated(voice: Recording, start: float, end: float) -> None:
    """Caller's tone on the left, agent's on the right, each ≥ 20 dB down on the other side."""
    left, right = voice.channel(LEFT, start, end), voice.channel(RIGHT, start, end)
    assert_tone(left, CALLER_HZ, f"left {start:.1f}-{end:.1f} s")
    assert_tone(right, AGENT_HZ, f"right {start:.1f}-{end:.1f} s")
    caller_leak = tone_db(left, 8000, CALLER_HZ) - tone_db(right, 8000, CALLER_HZ)
    agent_leak = tone_db(right, 8000, AGENT_HZ) - tone_db(left, 8000, AGENT_HZ)
    assert caller_leak >= 20 and agent_leak >= 20, f"cross-talk {caller_leak:.1f} / {agent_leak:.1f} dB down"


@dataclass
class TwoStreamCall:
    result: SippResult
    work: Path


@pytest.fixture(scope="module")
def two_stream_call(rec: Recorder, tmp_path_factory: pytest.TempPathFactory) -> TwoStreamCall:
    work = _work(tmp_path_factory.mktemp("siprec"), "call")
    result = run_sipp(
        "siprec_call.xml",
        rec.server.sip_port,
        work,
        service="srs",
        duration_ms=4000,
        keys={"agent_dn": rec.dn},
        second=SecondStream(stream1_ms=3800),
    )
    return TwoStreamCall(result, work)


def test_sipp_sends_a_siprec_offer_the_server_parser_reads(
    rec: Recorder, two_stream_call: TwoStreamCall
) -> None:
    invite = two_stream_call.result.sent("INVITE")[0]
    assert invite.header("Require") == "siprec" and "+sip.src" in (invite.header("Contact") or "")
    offer = parse_offer(
        invite.header("Content-Type") or "",
        invite.body.replace("\n", "\r\n").encode(),
        invite.header("Require"),
        invite.header("Contact"),
    )
    assert offer.siprec and offer.warnings == (), offer.warnings
    senders = [(s.label, p.aor if (p := offer.participant(s.sender)) else None) for s in offer.streams]
    assert senders == [("1", f"sip:{rec.dn}@pbx.example.com"), ("2", "sip:+15550123@pbx.example.com")]
    assert all(s.audio.direction == "sendonly" for s in offer.streams)


def test_answer_has_one_recvonly_stream_per_offered_stream(two_stream_call: TwoStreamCall) -> None:
    result = two_stream_call.result
    oks = result.received(200, "INVITE")
    assert oks, f"the SIPREC INVITE was not answered 200 OK:\n{result.describe()}"
    assert "+sip.srs" in (oks[0].header("Contact") or ""), oks[0].header("Contact")
    answer = parse_sdp(oks[0].body.replace("\n", "\r\n").encode())
    audio = [m for m in answer.media if m.media == "audio"]
    assert [m.label for m in audio] == ["1", "2"], [m.label for m in audio]
    assert all(m.direction == "recvonly" for m in audio)
    ports = [m.port for m in audio]
    assert all(p > 0 and p % 2 == 0 for p in ports) and len(set(ports)) == 2, ports


def test_two_streams_make_a_stereo_file_caller_left_agent_right(
    rec: Recorder, two_stream_call: TwoStreamCall
) -> None:
    _, voice = _recorded(rec, two_stream_call.result, two_stream_call.work / "voice.wav")
    _assert_separated(voice, 0.5, 3.5)
    for second in range(1, 3):  # the same on each side all along, no swap mid-call
        _assert_separated(voice, second, second + 1.0)
    assert two_stream_call.result.second, "the second stream's SIPp did not run"


@pytest.mark.parametrize(("hold_dir", "hold_addr"), [("inactive", "127.0.0.1"), ("sendonly", "0.0.0.0")])
def test_pause_and_hold_by_reinvite_are_silent_pause_spans(
    rec: Recorder, tmp_path: Path, hold_dir: str, hold_addr: str
) -> None:
    work = _work(tmp_path, f"pause-{hold_dir}")
    result = run_sipp(
        "siprec_pause.xml",
        rec.server.sip_port,
        work,
        service="srs",
        keys={"agent_dn": rec.dn, "hold_dir": hold_dir, "hold_addr": hold_addr},
        variables={"pause1_ms": 1500, "gap_ms": 2500, "pause2_ms": 1500},
        second=SecondStream(1500 - LEG_B_LEAD, 2500 + LEG_B_LEAD, 1500 - LEG_B_LEAD),
    )
    inter, voice = _recorded(rec, result, work / "voice.wav")
    t0 = inter["answered_at"]
    held, resumed = (m.time - t0 for m in result.sent("INVITE")[1:3])
    assert len(inter["pauses"]) == 1, f"expected one pause span: {inter['pauses']}"
    span = inter["pauses"][0]
    assert abs(span["started_at"] - t0 - held) <= SPAN_TOLERANCE, (span, held)
    assert span["ended_at"] is not None and abs(span["ended_at"] - t0 - resumed) <= SPAN_TOLERANCE
    for ch in (LEFT, RIGHT):
        quiet = voice.channel(ch, held + SPAN_TOLERANCE, resumed - SPAN_TOLERANCE)
        assert is_silent(quiet), f"channel {ch}: {rms_db(quiet):.1f} dBFS while paused"
    # The first stream stops and starts with the re-INVITEs: audio right up to the span.
    assert_tone(voice.channel(RIGHT, held - 0.3, held - SPAN_TOLERANCE), AGENT_HZ, "just before the pause")
    assert_tone(voice.channel(RIGHT, resumed + SPAN_TOLERANCE, resumed + 0.3), AGENT_HZ, "just after")
    _assert_separated(voice, 0.5, held - 0.5)
    _assert_separated(voice, resumed + 0.5, voice.seconds - 0.5)


def test_cancel_before_answer_records_nothing(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "cancel")
    result = run_sipp(
        "siprec_cancel.xml", rec.server.sip_port, work, service="srs", keys={"agent_dn": rec.dn}
    ).check()
    assert len(result.received(487, "INVITE")) == 1 and not result.received(200, "INVITE"), result.describe()
    call_id = sipp_call_id(result) or ""
    rec.assert_nothing_live(call_id)
    assert all(not i["media"] for i in rec.interactions(call_id)), "a cancelled call has media"
    follow = run_sipp(
        "siprec_call.xml",
        rec.server.sip_port,
        _work(tmp_path, "after-cancel"),
        service="srs",
        duration_ms=1000,
        keys={"agent_dn": rec.dn},
        second=SecondStream(stream1_ms=800),
    )
    assert follow.returncode == 0, f"the recording after a CANCEL failed:\n{follow.describe()}"


def test_lost_ack_gets_the_200_again_and_records_normally(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "lostack")
    result = run_sipp(
        "siprec_lost_ack.xml",
        rec.server.sip_port,
        work,
        service="srs",
        duration_ms=2000,
        keys={"agent_dn": rec.dn},
        variables={"lost_ack_ms": 1800},
        second=SecondStream(stream1_ms=3500),
    )
    inter, voice = _recorded(rec, result, work / "voice.wav")
    oks = result.received(200, "INVITE")
    ack = result.sent("ACK")[0]
    before_ack = [m.time for m in oks if m.time < ack.time]
    assert len(before_ack) >= 3, f"expected the 200 OK twice more before the ACK:\n{result.describe()}"
    gaps = [b - a for a, b in itertools.pairwise(before_ack)]
    assert abs(gaps[0] - 0.5) < 0.2 and abs(gaps[1] - 1.0) < 0.25, f"not T1 doubling: {gaps}"
    assert abs(inter["answered_at"] - oks[0].time) < 0.2, "answered_at is not the 200 OK"
    _assert_separated(voice, 0.5, 1.7)  # before the ACK
    _assert_separated(voice, 2.0, 3.3)


def test_server_sends_bye_when_rtp_stops(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "serverbye")
    result = run_sipp(
        "siprec_server_bye.xml",
        rec.server.sip_port,
        work,
        service="srs",
        duration_ms=2000,
        keys={"agent_dn": rec.dn},
        second=SecondStream(stream1_ms=1800),
    )
    inter, voice = _recorded(rec, result, work / "voice.wav")
    bye = next(m for m in result.messages if not m.sent and m.is_request("BYE"))
    quiet_for = bye.time - inter["answered_at"] - 2.0
    assert RTP_TIMEOUT - 0.3 <= quiet_for <= RTP_TIMEOUT + 1.5, f"BYE {quiet_for:.2f} s after the RTP stopped"
    assert abs(inter["ended_at"] - bye.time) < 0.2
    _assert_separated(voice, 0.5, 1.7)
    for ch in (LEFT, RIGHT):
        assert is_silent(voice.channel(ch, 2.3, voice.seconds - 0.05)), f"channel {ch}: audio after the RTP"


def test_fifteen_percent_loss_on_one_leg(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "loss")
    packets = 180  # 3.6 s of the caller's stream, from a capture with 15 % of its packets missing
    lost = lost_packets(packets, 0.15, seed=15)
    caller = (work / "stream2.ul").read_bytes()[: packets * PACKET_SAMPLES]
    (work / "stream2.pcap").write_bytes(rtp_pcap(caller, lost))
    result = run_sipp(
        "siprec_call.xml",
        rec.server.sip_port,
        work,
        service="srs",
        duration_ms=4000,
        keys={"agent_dn": rec.dn},
        second=SecondStream(stream1_ms=3700, scenario="siprec_leg_pcap.xml"),
    )
    _, voice = _recorded(rec, result, work / "voice.wav")
    left = voice.channel(LEFT)
    start = first_sound(left)
    assert start is not None, "nothing of the caller's stream was recorded"
    windows = packet_windows(left, start, packets)
    gaps = [i for i in lost if not is_silent(windows[i])]
    dropouts = [i for i in range(packets) if i not in lost and rms_db(windows[i]) < -20]
    assert len(gaps) <= 0.1 * len(lost), f"audio where packets were lost: {sorted(gaps)}"
    assert len(dropouts) <= 0.1 * (packets - len(lost)), f"received packets missing: {dropouts}"
    assert start / voice.rate + packets * PACKET_SAMPLES / voice.rate <= voice.seconds
    # The agent's leg lost nothing: a few 20 ms windows may be short of audio when SIPp's sender
    # stalls on a loaded machine, not more.
    agent = packet_windows(voice.channel(RIGHT), int(0.3 * voice.rate), 170)
    quiet = [i for i, w in enumerate(agent) if rms_db(w) < -20]
    assert len(quiet) <= 8, f"the lossless leg has {len(quiet)} silent 20 ms windows"
    assert_tone(voice.channel(RIGHT, 0.5, 3.5), AGENT_HZ, "the agent's leg")
