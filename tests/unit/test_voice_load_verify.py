"""benchmarks/voice_load/verify.py: what makes a recorded load call correct."""

from __future__ import annotations

from pathlib import Path

from benchmarks.voice_load.sipp_load import SCENARIO, peer_call_ms
from benchmarks.voice_load.verify import CallRecord, Expected, WavFacts, judge

EXPECTED = Expected(packets=50)  # 1 s per leg
STATS: dict[str, object] = {"written": 50, "samples_written": 8000}


def record(wav: WavFacts, rtp: dict[str, dict[str, object]] | None = None) -> CallRecord:
    rtp = rtp if rtp is not None else {"0": dict(STATS), "1": dict(STATS)}
    return CallRecord("c", 0.0, 0.0, 1.0, rtp, wav)


def facts(holes: tuple[int, ...] = (0, 0), frames: int = 8080) -> WavFacts:
    return WavFacts(frames, 8000, 2, (40, 40), (8040, 8040), holes)


def test_a_complete_call_is_correct() -> None:
    assert judge(record(facts()), EXPECTED).ok


def test_silence_inside_a_channel_is_a_problem_even_with_every_packet_written() -> None:
    verdict = judge(record(facts(holes=(0, 1118))), EXPECTED)
    assert verdict.problems == ["silence inside the audio: 139.8 ms"]


def test_audio_cut_after_the_bye_is_a_problem_though_counted_as_written() -> None:
    cut = dict(STATS, samples_after_end=480)
    verdict = judge(record(facts(), {"0": dict(STATS), "1": cut}), EXPECTED)
    assert verdict.problems == ["480 samples after the BYE cut"]


def test_lost_packets_and_long_files_are_problems() -> None:
    short = dict(STATS, written=47)
    verdict = judge(record(facts(frames=8400), {"0": dict(STATS), "1": short}), EXPECTED)
    assert "3 packets lost" in verdict.problems
    assert any(problem.startswith("file length off by +50.0 ms") for problem in verdict.problems)


def test_a_long_file_says_how_much_of_it_the_load_generator_made() -> None:
    peer_timed = CallRecord(
        "c", 0.0, 0.0, 1.0, {"0": dict(STATS), "1": dict(STATS)}, facts(frames=8200), 1024.6
    )
    verdict = judge(peer_timed, EXPECTED)
    assert verdict.peer_error_ms is not None and abs(verdict.peer_error_ms - 0.4) < 1e-9
    assert verdict.problems == [
        "file length off by +25.0 ms (SIPp's call, 200 OK to BYE, +24.6 ms longer than its media; "
        "the file +0.4 ms off that)"
    ]


def test_sipp_short_message_log_gives_each_calls_length_as_sipp_timed_it(tmp_path: Path) -> None:
    lines = [
        ("51.725985", "S", "1-9@h", "CSeq:1 INVITE", "INVITE sip:srs@h SIP/2.0"),
        ("51.729099", "R", "1-9@h", "CSeq:1 INVITE", "SIP/2.0 100 Trying"),
        ("51.757619", "R", "1-9@h", "CSeq:1 INVITE", "SIP/2.0 200 OK"),
        ("51.757817", "S", "1-9@h", "CSeq:1 ACK", "ACK sip:srs@h SIP/2.0"),
        ("52.757619", "R", "1-9@h", "CSeq:1 INVITE", "SIP/2.0 200 OK"),  # a retransmission
        ("61.765867", "S", "1-9@h", "CSeq:2 BYE", "BYE sip:srs@h SIP/2.0"),
        ("62.265867", "S", "1-9@h", "CSeq:2 BYE", "BYE sip:srs@h SIP/2.0"),  # resent
        ("51.9", "S", "2-9@h", "CSeq:1 INVITE", "INVITE sip:srs@h SIP/2.0"),  # never answered
        ("garbage",),
    ]
    text = "".join("\t".join(("2026-11-21", "13:46", f"17952688{f[0]}", *f[1:])) + "\n" for f in lines)
    (tmp_path / f"{SCENARIO.stem}_9_shortmessages.log").write_text(text)
    times = peer_call_ms(tmp_path, 9)
    assert list(times) == ["1-9@h"] and abs(times["1-9@h"] - 10008.248) < 1e-3
    assert peer_call_ms(tmp_path, 10) == {}
