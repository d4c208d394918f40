"""benchmarks/voice_load/verify.py: what makes a recorded load call correct."""

from __future__ import annotations

from benchmarks.voice_load.verify import CallRecord, Expected, WavFacts, judge

EXPECTED = Expected(packets=50)  # 1 s per leg
STATS = {"written": 50, "samples_written": 8000}


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
