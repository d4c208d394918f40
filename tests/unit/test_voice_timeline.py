"""The voice timeline, driven directly: placement, loss, reorder, duplicates, wrap-around,
re-anchoring, pauses, padding and truncation."""

from __future__ import annotations

import numpy as np
import pytest

from server.errors import TimelineError
from server.voice.timeline import Chunk, Verdict, VoiceTimeline

T0 = 1_000_000.0  # answered_at
RATE = 8000
N = 160  # samples per 20 ms packet
SSRC = 0x1234


def frame(value: int) -> np.ndarray:
    return np.full(N, value, dtype=np.int16)


class FileSink:
    """What the WAV writer would see: appends only, at exactly the current end."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.length = 0

    def take(self, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            assert chunk.position == self.length, "timeline must only append"
            self.parts.append(np.array(chunk.samples))
            self.length += len(chunk.samples)

    def zero(self, start: int, end: int) -> None:
        data = self.array()
        data[start:end] = 0
        self.parts, self.length = [data], len(data)

    def finish(self, timeline: VoiceTimeline, ended_at: float) -> np.ndarray:
        result = timeline.finish(ended_at)
        self.take(result.chunks)
        return self.array()[: result.length]

    def array(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int16)


def push(
    tl: VoiceTimeline,
    sink: FileSink,
    index: int,
    arrival: float,
    ts0: int = 5000,
    ssrc: int = SSRC,
    value: int | None = None,
) -> Verdict:
    samples = frame(index + 1 if value is None else value)
    result = tl.push(ssrc, (ts0 + index * N) & 0xFFFFFFFF, samples, arrival)
    sink.take(result.chunks)
    return result.verdict


def values_at(data: np.ndarray, start: int, count: int) -> list[int]:
    """The value of each 160-sample slot from ``start`` (asserting each slot is uniform)."""
    out = []
    for k in range(count):
        slot = data[start + k * N : start + (k + 1) * N]
        assert len(set(slot.tolist())) == 1, f"slot {k} is not uniform"
        out.append(int(slot[0]))
    return out


def test_first_packet_placed_at_arrival_then_by_timestamp() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(10):
        # Arrival jitter must not move audio: positions come from the timestamps.
        assert push(tl, sink, i, T0 + 1.0 + i * 0.02 + (0.015 if i % 3 else 0.0)) is Verdict.ACCEPTED
    data = sink.finish(tl, T0 + 2.0)
    assert len(data) == 2 * RATE
    assert not data[:RATE].any()
    assert values_at(data, RATE, 10) == list(range(1, 11))
    assert not data[RATE + 10 * N :].any()
    assert tl.stats.accepted == 10 and tl.stats.late == 0


def test_first_packet_late() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    sink.take(tl.flush(T0 + 2.0))  # the file grows with silence while nothing arrives
    assert 0 < sink.length < 2 * RATE
    push(tl, sink, 0, T0 + 3.0)
    push(tl, sink, 1, T0 + 3.02)
    data = sink.finish(tl, T0 + 3.5)
    assert not data[: 3 * RATE].any()
    assert values_at(data, 3 * RATE, 2) == [1, 2]


def test_late_first_packet_then_catch_up_places_the_stream_at_its_earliest_arrival() -> None:
    """The sender's first packet leaves 32 ms late and the next go out in a burst to catch up,
    then on time: the stream belongs where the on-time packets put it, so its end is not cut."""
    tl, sink = VoiceTimeline(T0), FileSink()
    start = T0 + 0.005  # when the sender's clock started
    for i in range(500):
        assert push(tl, sink, i, max(start + 0.032, start + i * 0.02)) is Verdict.ACCEPTED
        if i < 3:
            assert not tl.settled
    assert tl.settled
    data = sink.finish(tl, start + 10.0 + 0.002)  # the BYE right after the last packet
    assert tl.stats.discarded_at_end == 0
    first = round(0.005 * RATE)
    assert not data[:first].any()
    assert values_at(data, first, 500) == list(range(1, 501))


def test_anchor_is_final_once_the_stream_has_audio_written() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(10):  # steadily 30 ms "late": that is simply where this stream is
        push(tl, sink, i, T0 + 0.03 + i * 0.02)
    assert tl.settled
    for i in range(10, 20):  # the path gets 30 ms faster: no audio moves, nothing is late
        assert push(tl, sink, i, T0 + i * 0.02) is Verdict.ACCEPTED
    data = sink.finish(tl, T0 + 0.5)
    assert values_at(data, round(0.03 * RATE), 20) == list(range(1, 21))
    assert tl.stats.overlapped == 0 and tl.stats.reanchors == 0


def test_a_new_stream_is_never_moved_onto_the_previous_one() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(3):
        push(tl, sink, i, T0 + i * 0.02)
    # A new source whose first packet is late and whose second claims a place before the old
    # stream's end: it may come earlier only down to where the old stream's audio ends.
    push(tl, sink, 0, T0 + 0.1, ts0=777, ssrc=0x9999, value=50)
    push(tl, sink, 1, T0 + 0.05, ts0=777, ssrc=0x9999, value=51)
    push(tl, sink, 2, T0 + 0.14, ts0=777, ssrc=0x9999, value=52)
    data = sink.finish(tl, T0 + 0.3)
    assert values_at(data, 0, 6) == [1, 2, 3, 50, 51, 52]
    assert tl.stats.overlapped == 0 and tl.stats.late == 0


def test_packet_before_answer_is_clamped_to_zero() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    push(tl, sink, 0, T0 - 0.5)
    push(tl, sink, 1, T0 - 0.48)
    data = sink.finish(tl, T0 + 0.1)
    assert values_at(data, 0, 2) == [1, 2]
    assert len(data) == 800


def test_loss_becomes_silence() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in (0, 1, 2, 4, 5, 6, 7, 8, 9):
        push(tl, sink, i, T0 + i * 0.02)
    data = sink.finish(tl, T0 + 0.2)
    assert values_at(data, 0, 10) == [1, 2, 3, 0, 5, 6, 7, 8, 9, 10]


def test_reorder_inside_window_lands_in_place() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    order = [0, 1, 3, 2, 4, 6, 5, 7, 8, 9]
    for n, i in enumerate(order):
        assert push(tl, sink, i, T0 + n * 0.02) is Verdict.ACCEPTED
    data = sink.finish(tl, T0 + 0.2)
    assert values_at(data, 0, 10) == list(range(1, 11))
    assert tl.stats.late == 0


def test_reorder_outside_window_is_dropped_as_late() -> None:
    tl, sink = VoiceTimeline(T0, reorder_window=0.06), FileSink()
    for i in (0, 1, 3, 4, 5, 6, 7, 8):
        push(tl, sink, i, T0 + i * 0.02)
    assert push(tl, sink, 2, T0 + 0.17) is Verdict.LATE
    data = sink.finish(tl, T0 + 0.2)
    assert values_at(data, 0, 9) == [1, 2, 0, 4, 5, 6, 7, 8, 9]
    assert tl.stats.late == 1


def test_duplicates_are_dropped() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    push(tl, sink, 0, T0)
    assert push(tl, sink, 0, T0 + 0.001, value=99) is Verdict.DUPLICATE  # still in the window
    for i in range(1, 8):
        push(tl, sink, i, T0 + i * 0.02)
    assert push(tl, sink, 1, T0 + 0.17, value=99) is Verdict.DUPLICATE  # already written
    data = sink.finish(tl, T0 + 0.16)
    assert values_at(data, 0, 8) == list(range(1, 9))
    assert tl.stats.duplicates == 2


def test_timestamp_wrap_around() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    ts0 = 0xFFFFFFFF - 2 * N + 1  # wraps between packets 1 and 2
    for i in range(6):
        push(tl, sink, i, T0 + i * 0.02, ts0=ts0)
    data = sink.finish(tl, T0 + 0.12)
    assert values_at(data, 0, 6) == [1, 2, 3, 4, 5, 6]
    assert tl.stats.reanchors == 0


def test_reordered_across_wrap_around() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    ts0 = 0xFFFFFFFF - 2 * N + 1
    for n, i in enumerate([0, 2, 1, 3]):
        push(tl, sink, i, T0 + n * 0.02, ts0=ts0)
    assert values_at(sink.finish(tl, T0 + 0.08), 0, 4) == [1, 2, 3, 4]


def test_ssrc_change_reanchors_on_arrival() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(3):
        push(tl, sink, i, T0 + i * 0.02)
    # A new source (e.g. after a transfer) with an unrelated timestamp, 1 s later.
    for i in range(3):
        push(tl, sink, i, T0 + 1.0 + i * 0.02, ts0=123_456_789, ssrc=0x9999, value=50 + i)
    data = sink.finish(tl, T0 + 1.1)
    assert values_at(data, 0, 3) == [1, 2, 3]
    assert not data[3 * N : RATE].any()
    assert values_at(data, RATE, 3) == [50, 51, 52]
    assert tl.stats.ssrc_changes == 1


def test_new_stream_does_not_overwrite_buffered_audio() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(3):
        push(tl, sink, i, T0 + i * 0.02)
    # The new SSRC's first packet arrives as the old stream's last one starts playing.
    push(tl, sink, 0, T0 + 0.04, ts0=777, ssrc=0x9999, value=50)
    push(tl, sink, 1, T0 + 0.06, ts0=777, ssrc=0x9999, value=51)
    data = sink.finish(tl, T0 + 0.2)
    assert values_at(data, 0, 5) == [1, 2, 3, 50, 51]


def test_wild_timestamp_jump_reanchors() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    push(tl, sink, 0, T0)
    push(tl, sink, 1, T0 + 0.02)
    # The sender's timestamp leaps 100 s ahead while packets keep arriving every 20 ms.
    push(tl, sink, 5000, T0 + 0.04, value=3)
    push(tl, sink, 5001, T0 + 0.06, value=4)
    data = sink.finish(tl, T0 + 0.08)
    assert values_at(data, 0, 4) == [1, 2, 3, 4]
    assert tl.stats.reanchors == 1


def test_silence_suppression_gap_is_kept_without_reanchor() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    push(tl, sink, 0, T0)
    for t in np.arange(0.1, 3.0, 0.1):
        sink.take(tl.flush(T0 + t))
    push(tl, sink, 150, T0 + 3.0 + 0.004, value=2)  # 3 s later by both timestamp and clock
    data = sink.finish(tl, T0 + 3.1)
    assert values_at(data, 0, 1) == [1]
    assert not data[N : 3 * RATE].any()
    assert values_at(data, 3 * RATE, 1) == [2]
    assert tl.stats.reanchors == 0 and tl.stats.late == 0


def test_stalled_sender_reanchors_instead_of_losing_the_rest() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    push(tl, sink, 0, T0)
    for t in np.arange(0.1, 3.0, 0.1):
        sink.take(tl.flush(T0 + t))
    # The sender stalled 3 s but carries on with continuous timestamps.
    for i in range(1, 4):
        assert push(tl, sink, i, T0 + 3.0 + i * 0.02) is Verdict.ACCEPTED
    data = sink.finish(tl, T0 + 3.2)
    assert tl.stats.reanchors == 1
    start = round(3.02 * RATE)
    assert values_at(data, start, 3) == [2, 3, 4]


def test_flush_holds_back_for_jitter() -> None:
    rng = np.random.default_rng(7)
    tl, sink = VoiceTimeline(T0), FileSink()
    events: list[tuple[float, int]] = [(T0 + 0.5 + i * 0.02 + rng.uniform(0, 0.05), i) for i in range(200)]
    events += [(T0 + 0.5 + k * 0.01, -1) for k in range(450)]  # flush ticks every 10 ms
    for at, i in sorted(events):
        if i < 0:
            sink.take(tl.flush(at))
        else:
            push(tl, sink, i, at)
    data = sink.finish(tl, T0 + 5.0)
    first = int(np.flatnonzero(data)[0])
    # The stream starts at its earliest arrival among its first packets (never before the
    # earliest arrival of any, never after the first packet's).
    assert first <= tl.position_of(min(a for a, i in events if i == 0))
    assert first >= min(tl.position_of(a - i * 0.02) for a, i in events if i >= 0)
    assert values_at(data, first, 200) == list(range(1, 201))
    assert tl.stats.late == 0


def test_pause_span_is_zero_whatever_arrives() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(100):  # 2 s of audio
        at = T0 + i * 0.02
        if i == 25:
            assert tl.pause(T0 + 0.5) == []  # nothing of the span is written yet
        if i == 75:
            tl.resume(T0 + 1.5)
        push(tl, sink, i, at)
    data = sink.finish(tl, T0 + 2.0)
    assert not data[round(0.5 * RATE) : round(1.5 * RATE)].any()
    assert values_at(data, 0, 25) == list(range(1, 26))
    assert values_at(data, round(1.5 * RATE), 25) == list(range(76, 101))


def test_pause_returns_already_written_range() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(50):
        push(tl, sink, i, T0 + i * 0.02)
    written = tl.written
    retro = tl.pause(T0 + 0.5)
    assert retro == [(round(0.5 * RATE), written)]
    for start, end in retro:
        sink.zero(start, end)
    for i in range(50, 60):
        push(tl, sink, i, T0 + i * 0.02)
    assert tl.paused
    data = sink.finish(tl, T0 + 1.3)  # a pause never outlives the call: the open span ends here
    assert values_at(data, 0, 25) == list(range(1, 26))
    assert not data[round(0.5 * RATE) :].any()


def test_pause_and_resume_are_idempotent() -> None:
    tl = VoiceTimeline(T0)
    tl.resume(T0 + 1)  # not paused: nothing happens
    assert not tl.paused
    tl.pause(T0 + 1)
    assert tl.pause(T0 + 2) == [] and tl.paused
    tl.resume(T0 + 0.5)  # before the pause began: the span is empty, never negative
    assert not tl.paused


def test_finish_pads_and_truncates() -> None:
    tl, sink = VoiceTimeline(T0), FileSink()
    push(tl, sink, 0, T0)
    assert len(sink.finish(tl, T0 + 60.0)) == 60 * RATE
    assert sink.length == 60 * RATE

    tl, sink = VoiceTimeline(T0), FileSink()
    for i in range(10):
        push(tl, sink, i, T0 + i * 0.02)
    result = tl.finish(T0 + 0.05)  # BYE arrived while audio was still buffered
    sink.take(result.chunks)
    assert result.length == 400
    assert tl.stats.discarded_at_end > 0
    assert values_at(sink.array()[: result.length], 0, 2) == [1, 2]


def test_finish_before_answer_is_empty() -> None:
    tl = VoiceTimeline(T0)
    assert tl.finish(T0 - 1).length == 0


def test_after_finish() -> None:
    tl = VoiceTimeline(T0)
    tl.finish(T0 + 1)
    assert tl.push(SSRC, 0, frame(1), T0 + 0.5).verdict is Verdict.AFTER_END
    assert tl.flush(T0 + 2) == []
    with pytest.raises(TimelineError):
        tl.finish(T0 + 2)
    with pytest.raises(TimelineError):
        tl.pause(T0 + 2)


def test_empty_payload_is_ignored() -> None:
    tl = VoiceTimeline(T0)
    assert tl.push(SSRC, 0, np.zeros(0, dtype=np.int16), T0).verdict is Verdict.EMPTY


def test_reorder_buffer_is_bounded() -> None:
    tl, sink = VoiceTimeline(T0, reorder_window=1.0, max_pending=4), FileSink()
    for i in range(10):
        push(tl, sink, i, T0 + i * 0.02)
    assert tl.stats.forced > 0
    assert values_at(sink.finish(tl, T0 + 0.2), 0, 10) == list(range(1, 11))


def test_silence_chunks_are_bounded() -> None:
    tl = VoiceTimeline(T0, max_chunk_seconds=1.0)
    chunks = tl.finish(T0 + 3600).chunks
    assert len(chunks) == 3600
    assert max(len(c.samples) for c in chunks) == RATE
