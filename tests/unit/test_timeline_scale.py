"""The timeline's timestamp scale: file samples per RTP timestamp unit (G.722: 2, since its RTP
clock is 8000 Hz for 16 kHz audio; G.711 upsampled to 16 kHz: 2; a 48 kHz clock into 16 kHz: 1/3)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from server.errors import TimelineError
from server.voice.timeline import Chunk, Verdict, VoiceTimeline

T0 = 500_000.0
RATE = 16000
TS_PER_PACKET = 160  # 20 ms of an 8000 Hz RTP clock
SAMPLES = 320  # 20 ms at 16 kHz


def collect(chunks: list[Chunk], out: list[np.ndarray], length: list[int]) -> None:
    for chunk in chunks:
        assert chunk.position == length[0]
        out.append(np.array(chunk.samples))
        length[0] += len(chunk.samples)


def run(
    order: list[int], scale: Fraction | int = 2, ended: float = 0.2, ts0: int = 7000
) -> tuple[VoiceTimeline, np.ndarray]:
    tl = VoiceTimeline(T0, sample_rate=RATE, timestamp_scale=scale)
    out: list[np.ndarray] = []
    length = [0]
    step = round(TS_PER_PACKET * 2 / Fraction(scale))  # timestamp units per 20 ms at this scale
    for n, index in enumerate(order):
        samples = np.full(SAMPLES, index + 1, dtype=np.int16)
        result = tl.push(0x42, (ts0 + index * step) & 0xFFFFFFFF, samples, T0 + n * 0.02)
        assert result.verdict is Verdict.ACCEPTED
        collect(result.chunks, out, length)
    final = tl.finish(T0 + ended)
    collect(final.chunks, out, length)
    return tl, np.concatenate(out)[: final.length]


def slots(data: np.ndarray, count: int) -> list[int]:
    values = []
    for k in range(count):
        slot = data[k * SAMPLES : (k + 1) * SAMPLES]
        assert len(set(slot.tolist())) == 1, f"slot {k} is not uniform"
        values.append(int(slot[0]))
    return values


def test_g722_packets_are_contiguous() -> None:
    tl, data = run(list(range(10)))
    assert len(data) == round(0.2 * RATE)  # file length in seconds = media time
    assert slots(data, 10) == list(range(1, 11))
    assert tl.stats.overlapped == 0 and tl.stats.reanchors == 0


def test_without_scale_g722_packets_would_overlap() -> None:
    """The bug the scale prevents: 160 timestamp units taken as 160 samples of a 320-sample packet."""
    tl = VoiceTimeline(T0, sample_rate=RATE)
    out: list[np.ndarray] = []
    length = [0]
    for i in range(10):
        samples = np.full(SAMPLES, i + 1, dtype=np.int16)
        collect(tl.push(0x42, 7000 + i * TS_PER_PACKET, samples, T0 + i * 0.02).chunks, out, length)
    collect(tl.finish(T0 + 0.2).chunks, out, length)
    data = np.concatenate(out)
    # Each packet would start 160 samples after the previous one, halfway into it: half of every
    # packet after the first is cut, and the audio runs at double speed.
    assert data[: 2 * SAMPLES].tolist() == [1] * 320 + [2] * 160 + [3] * 160


def test_loss_leaves_a_gap_of_the_right_length() -> None:
    _, data = run([0, 1, 2, 4, 5, 6, 7, 8, 9])
    assert slots(data, 10) == [1, 2, 3, 0, 5, 6, 7, 8, 9, 10]


def test_reorder_and_wrap_with_scale() -> None:
    _, data = run([0, 2, 1, 3, 5, 4], ts0=0xFFFFFFFF - 2 * TS_PER_PACKET + 1, ended=0.12)
    assert slots(data, 6) == [1, 2, 3, 4, 5, 6]


def test_fractional_scale() -> None:
    """A 48 kHz RTP clock (960 units per 20 ms) recorded at 16 kHz: 1/3 sample per unit."""
    _, data = run([0, 1, 3, 2], scale=Fraction(1, 3), ended=0.08)
    assert slots(data, 4) == [1, 2, 3, 4]


def test_silence_gap_in_timestamps_is_scaled() -> None:
    tl = VoiceTimeline(T0, sample_rate=RATE, timestamp_scale=2)
    out: list[np.ndarray] = []
    length = [0]
    collect(tl.push(1, 0, np.full(SAMPLES, 5, dtype=np.int16), T0).chunks, out, length)
    # 1 s later by the clock and by the timestamp (8000 units = 16000 samples): no re-anchor.
    collect(tl.push(1, 8000, np.full(SAMPLES, 6, dtype=np.int16), T0 + 1.0).chunks, out, length)
    final = tl.finish(T0 + 1.02)
    collect(final.chunks, out, length)
    data = np.concatenate(out)
    assert (data[:SAMPLES] == 5).all() and not data[SAMPLES:RATE].any()
    assert (data[RATE : RATE + SAMPLES] == 6).all()
    assert tl.stats.reanchors == 0


@pytest.mark.parametrize("scale", [0, -1, Fraction(-1, 2)])
def test_scale_must_be_positive(scale: Fraction | int) -> None:
    with pytest.raises(TimelineError):
        VoiceTimeline(T0, timestamp_scale=scale)
