"""Frame gate: pause/resume spans, dedupe, holdback, stop tail (pure)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recorder_service.frame_gate import FrameGate, Released


def _feed(
    gate: FrameGate[str],
    start: float,
    end: float,
    step: float,
    digest_of: Callable[[float], int] = lambda t: int(t * 1000),
) -> list[Released[str]]:
    out: list[Released[str]] = []
    t = start
    while t < end - 1e-9:
        out += gate.offer(round(t, 6), digest_of(t), f"img@{t:.2f}")
        t += step
    return out


def test_holdback_delays_release() -> None:
    gate: FrameGate[str] = FrameGate(holdback=1.0)
    assert gate.offer(10.0, 1, "a") == []
    assert gate.offer(10.5, 2, "b") == []
    out = gate.offer(11.0, 3, "c")
    assert [r.ts for r in out] == [10.0]


def test_pause_drops_held_frames_at_or_after_at_and_resume_keeps_from_at() -> None:
    gate: FrameGate[str] = FrameGate(holdback=1.0)
    released = _feed(gate, 0.0, 5.0, 0.2)
    assert gate.pause(4.5) == 0  # arrived 0.5 s late: held frames cover it
    released += _feed(gate, 5.0, 8.0, 0.2)  # grabbed while paused: all dropped
    gate.resume(8.0)
    released += _feed(gate, 7.6, 10.0, 0.2)  # stamps before resume at are dropped too
    released += gate.flush(10.0)
    stamps = [r.ts for r in released]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert not [t for t in stamps if 4.5 <= t < 8.0], stamps
    assert max(t for t in stamps if t < 4.5) == pytest.approx(4.4)
    assert min(t for t in stamps if t >= 8.0) == pytest.approx(8.0)
    assert stamps[-1] == pytest.approx(10.0)  # stop tail repeats the last image at stop time
    assert released[-1].image == released[-2].image


def test_late_pause_is_reported() -> None:
    gate: FrameGate[str] = FrameGate(holdback=0.5)
    _feed(gate, 0.0, 3.0, 0.2)
    assert gate.pause(1.0) == 1
    assert gate.stats.late == 1


def test_unchanged_frames_never_resent_only_the_stop_tail() -> None:
    gate: FrameGate[str] = FrameGate(holdback=0.0)
    released = _feed(gate, 0.0, 5.0, 0.2, digest_of=lambda t: 7)
    released += gate.flush(5.0)
    stamps = [r.ts for r in released]
    assert stamps == pytest.approx([0.0, 5.0])  # no keepalive re-sends of a still screen
    assert gate.stats.duplicates == 24


def test_stop_while_paused_has_no_tail_inside_pause() -> None:
    gate: FrameGate[str] = FrameGate(holdback=1.0)
    released = _feed(gate, 0.0, 2.0, 0.2)
    gate.pause(1.5)
    released += gate.flush(3.0)
    assert max(r.ts for r in released) < 1.5


def test_start_paused_then_resume_starts_file_at_resume() -> None:
    gate: FrameGate[str] = FrameGate(holdback=0.0)
    gate.pause(0.0)
    assert _feed(gate, 0.0, 1.0, 0.2) == []
    gate.resume(1.0)
    out = _feed(gate, 1.0, 2.0, 0.2)
    assert out[0].ts == pytest.approx(1.0)


def test_timestamps_forced_strictly_increasing() -> None:
    gate: FrameGate[str] = FrameGate(holdback=0.0)
    out = gate.offer(5.0, 1, "a") + gate.offer(4.9, 2, "b") + gate.offer(5.0, 3, "c")
    stamps = [r.ts for r in out]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_held_buffer_is_bounded() -> None:
    gate: FrameGate[str] = FrameGate(holdback=100.0, max_held=4)
    out = _feed(gate, 0.0, 2.0, 0.2)
    assert len(out) == 6 and gate.stats.forced_early == 6


def test_pause_drops_a_held_frame_whose_ms_pts_would_round_onto_the_pause() -> None:
    gate: FrameGate[str] = FrameGate(holdback=1.0)
    gate.offer(10.0, 1, "a")
    gate.offer(10.9997, 2, "b")  # 0.3 ms before the pause: its pts would round up onto it
    gate.pause(11.0)
    assert [r.ts for r in gate.release_all()] == [10.0]
