"""Endpoint audio timing, pure: the sample clock's minimum filter, drift, restart; the stereo
assembler's placement on the server-time grid, pauses, bounds; track continuity."""

from __future__ import annotations

import random

import numpy as np
import pytest

from recorder_service.audio_clock import AudioClock, Block, StereoAssembler, placement

RATE = 48000


def _feed(
    clock: AudioClock, t0: float, seconds: float, *, block: int = 480, ppm: float = 0.0, seed: int = 1
) -> None:
    """Blocks of a device whose sample 0 was at server time t0, running ``ppm`` fast, each
    callback late by a random 0-30 ms (one in ten by up to 200 ms)."""
    rng = random.Random(seed)
    n = 0
    while n < seconds * RATE:
        captured_end = t0 + (n + block) / (RATE * (1 + ppm * 1e-6))
        delay = rng.uniform(0, 0.030) if rng.random() > 0.1 else rng.uniform(0, 0.2)
        if rng.random() < 0.02:
            delay = 0.0002  # now and then a callback runs at once
        clock.observe(n, block, captured_end + delay)
        n += block


def test_clock_finds_sample_zero_despite_late_callbacks() -> None:
    clock = AudioClock(RATE)
    t0 = 1_800_000_000.25
    _feed(clock, t0, 10.0)
    assert abs(clock.origin() - t0) < 0.002
    assert abs(clock.server_time(RATE * 5) - (t0 + 5)) < 0.002


def test_first_block_alone_is_an_upper_bound() -> None:
    clock = AudioClock(RATE)
    clock.observe(0, 480, 100.05)  # the block ended at most at its arrival
    assert clock.origin() == pytest.approx(100.05 - 0.01)


@pytest.mark.parametrize("ppm", [200.0, -200.0])
def test_clock_follows_drift_within_its_window(ppm: float) -> None:
    """A device 200 ppm fast or slow over 10 minutes: 120 ms off a fixed mapping; the window
    keeps the mapping of the latest samples within a few ms (slow: the minimum of old bounds
    would stay behind without it)."""
    clock = AudioClock(RATE, window=20.0)
    t0 = 1_000.0
    _feed(clock, t0, 600.0, ppm=ppm, seed=3)
    last = round(600.0 * RATE)
    truth = t0 + last / (RATE * (1 + ppm * 1e-6))
    naive = t0 + last / RATE
    assert abs(naive - truth) > 0.1  # what a fixed mapping would be off by
    assert abs(clock.server_time(last) - truth) < 0.008


def test_restart_forgets_the_old_counter() -> None:
    clock = AudioClock(RATE)
    _feed(clock, 50.0, 2.0)
    clock.restart()
    assert not clock.ready
    clock.observe(0, 480, 60.01)
    assert clock.origin() == pytest.approx(60.0)
    assert clock.restarts == 1


def _tone(n: int, value: float) -> np.ndarray:
    return np.full(n, value, np.float32)


def test_assembler_puts_two_sources_on_one_grid() -> None:
    asm = StereoAssembler(RATE)
    asm.add(Block(0, 10.0, _tone(4800, 0.5)))  # mic: 10.0-10.1
    asm.add(Block(1, 10.05, _tone(4800, -0.25)))  # heard: 10.05-10.15
    start, out = asm.take(10.2) or (0.0, np.zeros((0, 2)))
    assert start == pytest.approx(10.0)
    assert out.shape == (4800 + 2400, 2)  # up to what is buffered: 10.15
    assert (out[:4800, 0] == 0.5).all() and (out[4800:, 0] == 0).all()
    assert (out[:2400, 1] == 0).all() and (out[2400:, 1] == -0.25).all()
    later = asm.take(10.2)
    assert later is None  # nothing new


def test_assembler_appends_within_tolerance_and_moves_beyond() -> None:
    asm = StereoAssembler(RATE, tolerance=0.005)
    asm.add(Block(0, 1.0, _tone(480, 1.0)))
    asm.add(Block(0, 1.0 + 0.010 + 0.003, _tone(480, 1.0)))  # 3 ms jitter: appended, no gap
    asm.add(Block(0, 1.0 + 0.020 + 0.050, _tone(480, 1.0)))  # 50 ms jump: placed there, gap
    _, out = asm.take(2.0) or (0.0, np.zeros((0, 2)))
    assert (out[:960, 0] == 1.0).all()
    gap = out[960 : 960 + 2400, 0]
    assert (gap == 0).all()
    assert (out[960 + 2400 : 960 + 2400 + 480, 0] == 1.0).all()


def test_assembler_silences_pause_and_drops_what_was_taken() -> None:
    asm = StereoAssembler(RATE)
    asm.add(Block(0, 0.0, _tone(RATE, 1.0)))
    asm.pause(0.25)
    asm.resume(0.75)
    _, out = asm.take(0.5) or (0.0, np.zeros((0, 2)))
    assert (out[: RATE // 4, 0] == 1.0).all() and (out[RATE // 4 :, 0] == 0).all()
    asm.add(Block(1, 0.4, _tone(4800, 1.0)))  # arrives after 0.5 was handed out: dropped
    assert asm.dropped == 4800
    start, out = asm.take(1.0) or (0.0, np.zeros((0, 2)))
    assert start == pytest.approx(0.5)
    assert (out[: RATE // 4, 0] == 0).all() and (out[RATE // 4 :, 0] == 1.0).all()


def test_assembler_discards_before_and_stays_bounded() -> None:
    asm = StereoAssembler(RATE, max_seconds=1.0)
    for k in range(30):  # 3 s and nobody takes
        asm.add(Block(0, k * 0.1, _tone(4800, float(k))))
    start, out = asm.take(100.0) or (0.0, np.zeros((0, 2)))
    assert start == pytest.approx(2.0) and len(out) == RATE
    asm.add(Block(0, 5.0, _tone(4800, 7.0)))
    asm.discard_before(5.05)
    start, out = asm.take(100.0) or (0.0, np.zeros((0, 2)))
    assert start == pytest.approx(5.05) and len(out) == 2400


@pytest.mark.parametrize(
    ("expected", "pts", "frames", "result"),
    [
        (None, 500, 10, (0, 0)),
        (100, 100, 10, (0, 0)),
        (100, 130, 10, (30, 0)),
        (100, 95, 10, (0, 5)),
        (100, 50, 10, (0, 10)),
    ],
)
def test_placement_keeps_a_track_contiguous(
    expected: int | None, pts: int, frames: int, result: tuple[int, int]
) -> None:
    assert placement(expected, pts, frames) == result
