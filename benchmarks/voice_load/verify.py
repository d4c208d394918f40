"""Is each recorded call correct, and what do the calls of a run add up to?

Pure: the caller reads the database rows and the WAV files (``collect.py``) and hands in plain
values. A call is correct when

* both streams were recorded: the server's RTP statistics (``recording_meta["rtp"]``) show every
  packet SIPp sent as written into the file, nothing dropped for any reason (lost = sent − written);
* the stored stereo WAV is as long as the media sent, within the tolerance (±20 ms): the server
  pads the file from the 200 OK to the BYE, so this also measures how promptly media started
  after the answer and the BYE followed the last packet, under load;
* on each channel the audio (first to last non-zero sample) spans the media sent, within the
  same tolerance, with no silence inside it (``HOLE_SAMPLES``): no packet was misplaced in time
  or replaced by silence.

The file's length is also set against the call as SIPp itself timed it (its 200 OK received to
its BYE sent, from its ``-trace_shortmsg`` log, same machine and clock). What SIPp adds to its
call (its scenario clock moves in 4-ms steps, it starts the media ms after the 200 OK) is then
apart from the rest: the server's own timing error plus however late SIPp read the 200 OK (it
logs a message when it handles it, not when it arrived). Reported, not judged: the acceptance
stays "within ±20 ms of the media sent".
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

# A run of this many zero samples (2 ms) inside a channel's audio is a hole: the tones sent have
# at most a sample or two of μ-law zero at their zero crossings.
HOLE_SAMPLES = 16

DROP_KEYS = (
    "dropped_malformed",
    "dropped_late",
    "dropped_duplicate",
    "dropped_foreign",
    "dropped_payload_type",
    "dropped_dtmf",
    "dropped_cn",
    "dropped_early",
    "dropped_after_end",
)


@dataclass(frozen=True, slots=True)
class Expected:
    packets: int  # per stream
    packet_ms: int = 20
    tolerance_ms: float = 20.0
    streams: int = 2

    @property
    def media_ms(self) -> float:
        return float(self.packets * self.packet_ms)


@dataclass(frozen=True, slots=True)
class WavFacts:
    frames: int
    rate: int
    channels: int
    firsts: tuple[int, ...]  # per channel: the first non-zero sample
    lasts: tuple[int, ...]  # per channel: one past the last non-zero sample
    holes: tuple[int, ...] = ()  # per channel: samples of silence inside the audio (runs ≥ HOLE_SAMPLES)

    @property
    def ms(self) -> float:
        return 1000.0 * self.frames / self.rate

    @property
    def spans(self) -> tuple[int, ...]:
        """Per channel: samples from the first to the last non-zero one (0: silent channel)."""
        return tuple(max(0, b - a) for a, b in zip(self.firsts, self.lasts, strict=True))

    def start_ms(self) -> float:
        """Answer → the first audio on any channel."""
        return 1000.0 * min(self.firsts, default=0) / self.rate

    def end_gap_ms(self) -> float:
        """The last audio on any channel → the end of the file (the BYE)."""
        return 1000.0 * (self.frames - max(self.lasts, default=0)) / self.rate


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_id: str
    started_at: float  # INVITE received (server clock)
    answered_at: float | None  # 200 OK sent
    ended_at: float | None
    rtp: dict[str, dict[str, object]]  # recording_meta["rtp"]: stream index -> counters
    wav: WavFacts | None  # None: no stored voice file
    peer_call_ms: float | None = None  # the call as SIPp timed it: 200 OK received → BYE sent


@dataclass(slots=True)
class Verdict:
    call_id: str
    lost: int = 0  # packets sent but not written, all streams
    drops: dict[str, int] = field(default_factory=dict)  # dropped_* counters, summed over streams
    length_error_ms: float | None = None  # file length − media sent
    span_error_ms: float | None = None  # the worst channel's audio span − media sent
    start_ms: float | None = None  # answer → first audio
    end_gap_ms: float | None = None  # last audio → end of file
    peer_error_ms: float | None = None  # file − the call as SIPp timed it (module docstring)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _count(stats: dict[str, object], key: str) -> int:
    value = stats.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def judge(record: CallRecord, expected: Expected) -> Verdict:
    verdict = Verdict(record.call_id)
    if record.answered_at is None:
        verdict.problems.append("not answered")
    if len(record.rtp) != expected.streams:
        verdict.problems.append(f"{len(record.rtp)} RTP streams recorded, {expected.streams} expected")
    for stats in record.rtp.values():
        verdict.lost += expected.packets - _count(stats, "written")
        for key in DROP_KEYS:
            if n := _count(stats, key):
                verdict.drops[key] = verdict.drops.get(key, 0) + n
    verdict.lost += expected.packets * max(0, expected.streams - len(record.rtp))
    # Accepted (so counted as written) but placed after the BYE and cut from the file.
    cut = sum(_count(stats, "samples_after_end") for stats in record.rtp.values())
    if verdict.lost:
        verdict.problems.append(f"{verdict.lost} packets lost")
    if cut:
        verdict.problems.append(f"{cut} samples after the BYE cut")
    if verdict.drops:
        verdict.problems.append("dropped: " + ", ".join(f"{k}={v}" for k, v in sorted(verdict.drops.items())))
    wav = record.wav
    if wav is None:
        verdict.problems.append("no stored voice file")
        return verdict
    if wav.channels != expected.streams:
        verdict.problems.append(f"{wav.channels}-channel file, {expected.streams} expected")
    verdict.length_error_ms = wav.ms - expected.media_ms
    verdict.start_ms, verdict.end_gap_ms = wav.start_ms(), wav.end_gap_ms()
    if record.peer_call_ms is not None:
        verdict.peer_error_ms = wav.ms - record.peer_call_ms
    if abs(verdict.length_error_ms) > expected.tolerance_ms:
        problem = f"file length off by {verdict.length_error_ms:+.1f} ms"
        if record.peer_call_ms is not None and verdict.peer_error_ms is not None:
            problem += (
                f" (SIPp's call, 200 OK to BYE, {record.peer_call_ms - expected.media_ms:+.1f} ms "
                f"longer than its media; the file {verdict.peer_error_ms:+.1f} ms off that)"
            )
        verdict.problems.append(problem)
    if any(wav.holes):
        verdict.problems.append(f"silence inside the audio: {1000.0 * max(wav.holes) / wav.rate:.1f} ms")
    if wav.spans:
        errors = [1000.0 * span / wav.rate - expected.media_ms for span in wav.spans]
        verdict.span_error_ms = max(errors, key=abs)
        if abs(verdict.span_error_ms) > expected.tolerance_ms:
            verdict.problems.append(f"audio span off by {verdict.span_error_ms:+.1f} ms")
    return verdict


@dataclass(slots=True)
class Summary:
    attempted: int  # calls SIPp started
    sipp_succeeded: int
    sipp_failed: int
    answered: int
    recorded: int  # stored voice files
    correct: int
    within_tolerance: int  # files whose length is within the tolerance of the media sent
    lost_packets: int
    packets_expected: int
    length_error_ms: tuple[float, float, float] | None  # min, median, max
    span_error_max_ms: float | None
    start_ms: tuple[float, float] | None  # answer → first audio: median, max
    end_gap_ms: tuple[float, float] | None  # last audio → end of file: min, median
    setup_ms: tuple[float, float] | None  # INVITE received → 200 OK sent: median, max
    max_concurrent: int  # recorded calls overlapping (answered → ended), server clock
    problems: dict[str, int]  # first problem of each failed call, by kind, with counts
    peer_error_ms: tuple[float, float, float] | None = None  # file − SIPp's call: min, median, max

    @property
    def passed(self) -> bool:
        """The acceptance: every call recorded, no packet lost, every file within the tolerance."""
        return self.attempted > 0 and self.correct == self.attempted and self.lost_packets == 0

    @property
    def lossless(self) -> bool:
        """Every call answered and recorded with every packet written (file lengths aside)."""
        return self.attempted > 0 and self.recorded == self.attempted and self.lost_packets == 0

    def lines(self) -> list[str]:
        out = [
            f"calls attempted {self.attempted}, SIPp ok {self.sipp_succeeded} / failed {self.sipp_failed}",
            f"answered {self.answered}, recorded {self.recorded}, correct {self.correct}, "
            f"length within tolerance {self.within_tolerance}",
            f"lost packets {self.lost_packets} of {self.packets_expected} sent",
            f"peak concurrent recorded calls {self.max_concurrent}",
        ]
        if self.length_error_ms is not None:
            lo, mid, hi = self.length_error_ms
            out.append(f"file length − media sent: min {lo:+.1f} ms, median {mid:+.1f} ms, max {hi:+.1f} ms")
        if self.peer_error_ms is not None:
            lo, mid, hi = self.peer_error_ms
            out.append(
                f"file length − the call as SIPp timed it (200 OK handled → BYE sent; the server's "
                f"error and SIPp's delay reading the 200 OK): min {lo:+.1f} ms, median {mid:+.1f} ms, "
                f"max {hi:+.1f} ms"
            )
        if self.span_error_max_ms is not None:
            out.append(f"audio span − media sent, worst: {self.span_error_max_ms:+.1f} ms")
        if self.setup_ms is not None:
            mid, top = self.setup_ms
            out.append(f"INVITE → 200 OK (server clock): median {mid:.0f} ms, max {top:.0f} ms")
        if self.start_ms is not None and self.end_gap_ms is not None:
            out.append(
                f"answer → first audio: median {self.start_ms[0]:.1f} ms, max {self.start_ms[1]:.1f} ms; "
                f"last audio → BYE: min {self.end_gap_ms[0]:.1f} ms, median {self.end_gap_ms[1]:.1f} ms"
            )
        for kind, count in sorted(self.problems.items(), key=lambda kv: -kv[1]):
            out.append(f"  {count} calls: {kind}")
        return out


def _kind(problem: str) -> str:
    """A problem without its numbers, to count alike failures together."""
    words = [w for w in problem.split() if not any(c.isdigit() for c in w)]
    return " ".join(words)


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


FALLBACK = "[fallback media path] "


def summarise(
    records: list[CallRecord],
    expected: Expected,
    attempted: int,
    sipp_succeeded: int,
    sipp_failed: int,
    fallbacks: frozenset[str] = frozenset(),
) -> tuple[Summary, list[Verdict]]:
    """``fallbacks``: Call-IDs whose media SIPp sent the less precise way; their problems are
    counted apart so the load generator's share of the failures shows."""
    verdicts = [judge(r, expected) for r in records]
    for v in verdicts:
        if v.problems and v.call_id in fallbacks:
            v.problems[0] = FALLBACK + v.problems[0]
    problems: dict[str, int] = {}
    for v in verdicts:
        if v.problems:
            problems[_kind(v.problems[0])] = problems.get(_kind(v.problems[0]), 0) + 1
    missing = attempted - len(records)
    if missing > 0:
        problems["no interaction on the server"] = missing
    lengths = sorted(v.length_error_ms for v in verdicts if v.length_error_ms is not None)
    spans = [v.span_error_ms for v in verdicts if v.span_error_ms is not None]
    starts = [v.start_ms for v in verdicts if v.start_ms is not None]
    end_gaps = [v.end_gap_ms for v in verdicts if v.end_gap_ms is not None]
    setups = [1000.0 * (r.answered_at - r.started_at) for r in records if r.answered_at is not None]
    peer_errors = sorted(v.peer_error_ms for v in verdicts if v.peer_error_ms is not None)
    summary = Summary(
        attempted=attempted,
        sipp_succeeded=sipp_succeeded,
        sipp_failed=sipp_failed,
        answered=sum(1 for r in records if r.answered_at is not None),
        recorded=sum(1 for r in records if r.wav is not None),
        correct=sum(1 for v in verdicts if v.ok),
        within_tolerance=sum(
            1
            for v in verdicts
            if v.length_error_ms is not None and abs(v.length_error_ms) <= expected.tolerance_ms
        ),
        lost_packets=sum(max(0, v.lost) for v in verdicts)
        + max(0, missing) * expected.packets * expected.streams,
        packets_expected=attempted * expected.packets * expected.streams,
        length_error_ms=(lengths[0], statistics.median(lengths), lengths[-1]) if lengths else None,
        span_error_max_ms=max(spans, key=abs) if spans else None,
        start_ms=(statistics.median(starts), max(starts)) if starts else None,
        end_gap_ms=(min(end_gaps), statistics.median(end_gaps)) if end_gaps else None,
        setup_ms=(statistics.median(setups), max(setups)) if setups else None,
        max_concurrent=peak_overlap(
            [
                (r.answered_at, r.ended_at)
                for r in records
                if r.answered_at is not None and r.ended_at is not None
            ]
        ),
        problems=problems,
        peer_error_ms=(
            (peer_errors[0], statistics.median(peer_errors), peer_errors[-1]) if peer_errors else None
        ),
    )
    return summary, verdicts
