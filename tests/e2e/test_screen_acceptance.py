"""Issue 12 acceptance, screen timing, end to end against the real server: real capture on Xvfb
of a pattern that draws the server time into each frame (``time_pattern``), a SIPp call with a
REST pause, ACW and Done; then the stored segments and the muxed file read frame by frame.

* The stored segments decode; no frame's drawn time (nor its stamp) falls inside the pause; the
  frames cover the call and ACW up to Done with no gap over 2 frame intervals but the pause; every
  frame's timestamp (segment ``started_at`` + pts) matches the time drawn in it within 20 ms.
* A ``screen.pause`` held back 2 s on the way to the recorder (a proxy on its event channel): no
  frame inside the pause is uploaded (the server refused nothing) or muxed, and the recorder's
  ack says what it cut.

Done → playable (the muxed file GET and decoded) is printed for the log only: the CPU is shared.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import pytest

from tests.e2e.screen_call import CallRun, Frame, Stack, run_call, screen_stack
from tests.e2e.time_pattern import Draws, draw_log, read_frame, render

pytestmark = pytest.mark.e2e

FPS = 5.0
INTERVAL = 1 / FPS
TOLERANCE = 0.020  # the bound: frame timestamp vs the server time drawn in it


@dataclass
class Timing:
    errors: list[tuple[float, Frame]]  # (stamp − drawn, frame) for every frame grabbed as it was
    repeats: list[Frame]  # a picture written again (segment end/start, the stop): not a grab
    unreadable: list[Frame]

    def worst(self, skip_first: bool = False) -> tuple[float, Frame]:
        errors = self.errors[1:] if skip_first else self.errors
        return max(errors, key=lambda e: abs(e[0]))

    def summary(self) -> str:
        if not self.errors:
            return "no frames"
        values = [e for e, _ in self.errors]
        q = np.percentile(np.abs(values), [50, 99])
        return (
            f"{len(values)} frames: stamp − drawn median {statistics.median(values) * 1000:+.1f} ms, "
            f"|err| p50 {q[0] * 1000:.1f} ms, p99 {q[1] * 1000:.1f} ms, "
            f"worst {self.worst()[0] * 1000:+.1f} ms, "
            f"worst after the first frame {self.worst(True)[0] * 1000:+.1f} ms; "
            f"{len(self.repeats)} repeated pictures, {len(self.unreadable)} unreadable"
        )


def timing(frames: list[Frame]) -> Timing:
    """Compare each frame's stamp with the time drawn in it. A frame showing the same picture as
    the one before is a repeat the segment writer made (a segment's end frame 2 ms before the
    next, a still boundary, the stop), stamped later than its grab on purpose: left out."""
    out = Timing([], [], [])
    previous: float | None = None
    for frame in sorted(frames, key=lambda f: f.stamp):
        if frame.drawn is None:
            out.unreadable.append(frame)
            continue
        if frame.drawn == previous:
            out.repeats.append(frame)
        else:
            out.errors.append((frame.stamp - frame.drawn, frame))
        previous = frame.drawn
    return out


def replaced_at(frame: Frame, draws: Draws) -> float | None:
    """By when the window had drawn over the picture in ``frame`` (the next picture's flush)."""
    assert frame.drawn is not None
    return draws.replaced_at(round(frame.drawn * 1000))


def on_screen_error(frame: Frame, draws: Draws) -> float | None:
    """How far the stamp lies outside the time the picture was on screen [drawn, replaced]: the
    recorder's own error, without the pattern window's lag in redrawing."""
    replaced = replaced_at(frame, draws)
    if frame.drawn is None or replaced is None:
        return None
    return min(0.0, frame.stamp - frame.drawn) + max(0.0, frame.stamp - replaced)


@dataclass
class Bounds:
    bad: list[str]  # stamp more than 20 ms off the picture it holds, the pattern's lag aside
    late_grabs: list[str]  # of which: pixels read more than 20 ms after the stamp
    note: str

    def check(self, frames: int) -> None:
        """Every frame within 20 ms, but for at most 1 % (at least 1) read late after its stamp,
        by < 250 ms. Why: the recorder stamps a frame *before* ``grab()`` (session.py), so whatever
        delays the pixel read after the stamp — its grab thread waiting for a core or the GIL on a
        loaded machine (−70 ms seen with two more recorder stacks running), a layout re-read —
        counts in full. Any other miss (a stamp after the picture was gone) fails at once."""
        others = [b for b in self.bad if b not in self.late_grabs]
        assert not others, f"{len(others)} frames off by more than 20 ms: {others[:5]}; {self.note}"
        allowed = max(1, frames // 100)
        assert len(self.late_grabs) <= allowed, f"{len(self.late_grabs)} late grabs: {self.late_grabs[:5]}"


def out_of_bound(t: Timing, draws: Draws, skip_first: bool) -> Bounds:
    """Frames whose stamp is more than 20 ms from the time drawn in them, and a note on how many
    the pattern window excuses: a picture left on screen longer than usual (the window was late to
    redraw on a loaded machine) is older than the grab through no fault of the recorder, so a
    stamp up to 20 ms past the picture's *replacement* (the next picture's flush) is fine."""
    bad, late, excused = [], [], 0
    errors = t.errors[1:] if skip_first else t.errors
    for err, frame in errors:
        if abs(err) <= TOLERANCE:
            continue
        replaced = replaced_at(frame, draws)
        if err > 0 and replaced is not None and frame.stamp - replaced <= TOLERANCE:
            excused += 1
            continue
        assert frame.drawn is not None
        on_screen = "?" if replaced is None else f"{(replaced - frame.drawn) * 1000:.0f} ms"
        bad.append(
            f"{frame.segment} stamp {frame.stamp:.3f} drawn {frame.drawn:.3f}"
            f" ({err * 1000:+.1f} ms, on screen {on_screen})"
        )
        if -0.250 < err < 0:
            late.append(bad[-1])
    own = [abs(e) for _, f in errors if (e := on_screen_error(f, draws)) is not None]
    note = (
        f"{excused} over 20 ms excused by the pattern's own lag, {len(late)} grabbed late; stamp "
        f"outside the picture's time on screen: p99 {np.percentile(own, 99) * 1000:.1f} ms, "
        f"worst {max(own) * 1000:.1f} ms"
        if own
        else "no draw log"
    )
    return Bounds(bad, late, note)


def playable(run: CallRun) -> str:
    """Done → playable, for the log only (not asserted: the CPU is shared)."""
    first = (
        "the whole recording" if run.first_mux == run.complete_mux else "missing segments uploaded after it"
    )
    return (
        f"Done → whole muxed file playable {run.playable_after:.2f} s; "
        f"first muxed file after {run.first_mux_after:.2f} s ({first})"
    )


def pause_span(inter: dict[str, Any]) -> tuple[float, float]:
    (pause,) = inter["pauses"]
    return float(pause["started_at"]), float(pause["ended_at"])


def in_pause(frames: list[Frame], p0: float, p1: float, draws: Draws) -> list[Frame]:
    """Frames of the pause [p0, p1): stamped inside it, or showing a picture drawn inside it that
    was gone again before it ended (so it can only have been grabbed during the pause). A picture
    drawn just before the resume and still on screen after it (the window redraws every few ms,
    later on a loaded machine) is what the screen showed after the resume: not of the pause."""

    def of_pause(f: Frame) -> bool:
        if p0 <= f.stamp < p1:
            return True
        if f.drawn is None or not p0 <= f.drawn < p1:
            return False
        replaced = replaced_at(f, draws)
        return replaced is None or replaced <= p1

    return [f for f in frames if of_pause(f)]


def test_pattern_survives_the_recorders_encoder() -> None:
    """The decoder reads the pattern back through H.264 at the recorder's settings, at any size."""
    from recorder_service.encoder import DEFAULT_SETTINGS

    values = [1_765_000_000_000 + k * 37 for k in range(10)]
    frames = []
    for width in (800, 640):
        height = width * 3 // 4
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.options = DEFAULT_SETTINGS.codec_options()
        decoder = av.CodecContext.create("h264", "r")
        for i, ms in enumerate(values):
            gray = render(ms, width, height)
            frame = av.VideoFrame.from_ndarray(np.dstack([gray] * 3), format="rgb24").reformat(
                format="yuv420p"
            )
            frame.pts = i
            packets = codec.encode(frame)
            frames += [f for p in packets for f in decoder.decode(p)]
        frames += [f for p in [*codec.encode(None), None] for f in decoder.decode(p)]
    assert [read_frame(f) for f in frames] == values + values
    assert (
        read_frame(av.VideoFrame.from_ndarray(np.full((600, 800, 3), 128, np.uint8), format="rgb24")) is None
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with screen_stack(tmp_path_factory.mktemp("screen-acceptance"), fps=FPS, segment_seconds=10) as s:
        yield s


@pytest.fixture(scope="module")
def paused_call(stack: Stack) -> CallRun:
    return run_call(stack, call_seconds=20, pause_after=5, pause_seconds=3, acw_seconds=3)


def test_stored_segments_decode_and_hold_no_frame_of_the_pause(paused_call: CallRun, stack: Stack) -> None:
    run = paused_call
    p0, p1 = pause_span(run.interaction)
    print(f"\n{playable(run)}")
    assert len({f.segment for f in run.segments}) >= 3, "expected segments by time and after the resume"
    unreadable = [f for f in run.segments if f.drawn is None]
    assert not unreadable, f"{len(unreadable)} frames without a readable pattern: {unreadable[:3]}"
    inside = in_pause(run.segments, p0, p1, draw_log(stack.pattern_log))
    assert not inside, f"frames of the pause [{p0:.3f}, {p1:.3f}) stored: {inside[:3]}"


def test_stored_frames_cover_the_call_and_acw_up_to_done(paused_call: CallRun) -> None:
    run, inter = paused_call, paused_call.interaction
    p0, p1 = pause_span(inter)
    stamps = sorted(f.stamp for f in run.segments)
    assert stamps[0] <= float(inter["answered_at"]) + 1.5, (stamps[0], inter["answered_at"])
    assert stamps[-1] >= run.done_at - 0.05, (stamps[-1], run.done_at)  # the stop's frame
    grabbed = max(f.drawn for f in run.segments if f.drawn is not None)
    assert grabbed >= run.done_at - 2 * INTERVAL - 0.3, (grabbed, run.done_at)  # + the hold-back
    gaps = [(a, b) for a, b in itertools.pairwise(stamps) if b - a > 2 * INTERVAL]
    pause_gap = [(a, b) for a, b in gaps if a < p0 and b >= p1]
    assert len(pause_gap) == 1, f"the pause [{p0:.3f}, {p1:.3f}) is not one gap: {gaps}"
    # The capture stops at the pause and starts again at the resume (the next tick).
    # (the resume travels REST → server → event channel → recorder: up to 1 s on a loaded machine)
    assert pause_gap[0][0] >= p0 - 2 * INTERVAL and pause_gap[0][1] <= p1 + 1.0, (pause_gap, p0, p1)
    assert [g for g in gaps if g not in pause_gap] == [], f"gaps over 2 frame intervals: {gaps}"


def test_stored_frame_stamps_match_the_drawn_server_time(paused_call: CallRun, stack: Stack) -> None:
    """Every frame after a capture's first: stamp within 20 ms of the server time drawn in it
    (at most 1 % read late after its stamp on a loaded machine: ``Bounds.check``)."""
    t = timing(paused_call.segments)
    bounds = out_of_bound(t, draw_log(stack.pattern_log), skip_first=True)
    print(f"\nstored segments: {t.summary()}; {bounds.note}")
    print(f"recorder clock accuracy before the call: ±{stack.clock_accuracy * 1000:.1f} ms")
    bounds.check(len(t.errors))
    assert t.repeats and all(f.first or f.last for f in t.repeats), t.repeats


def test_first_frame_stamp_matches_the_drawn_server_time(paused_call: CallRun, stack: Stack) -> None:
    """The capture's first frame too (it was stamped before the display was opened: 25-230 ms
    early; test_capture_stamp.py), with the same allowance for the pattern's own redraw lag."""
    t = timing(paused_call.segments)
    err, first = t.errors[0]
    replaced = replaced_at(first, draw_log(stack.pattern_log))
    excused = err > 0 and replaced is not None and first.stamp - replaced <= TOLERANCE
    assert first.first and (abs(err) <= TOLERANCE or excused), (
        f"first frame {err * 1000:+.1f} ms off: {first}"
    )


def test_muxed_file_has_no_frame_of_the_pause_and_keeps_the_stamps(
    paused_call: CallRun, stack: Stack
) -> None:
    run = paused_call
    p0, p1 = pause_span(run.interaction)
    t = timing(run.muxed)
    print(f"\nmuxed: {t.summary()}")
    assert not t.unreadable, t.unreadable[:3]
    # Every picture stored is in the muxed file (nothing of the call's screen lost in the join).
    lost = {f.drawn for f in run.segments if f.drawn} - {f.drawn for f in run.muxed if f.drawn}
    assert not lost, f"{len(lost)} stored pictures not muxed, e.g. drawn at {sorted(lost)[:3]}"
    assert not in_pause(run.muxed, p0, p1, draw_log(stack.pattern_log))
    bounds = out_of_bound(t, draw_log(stack.pattern_log), skip_first=True)
    print(f"muxed: {bounds.note}")
    bounds.check(len(t.errors))


@pytest.fixture(scope="module")
def late_pause_call(stack: Stack, paused_call: CallRun) -> CallRun:
    return run_call(stack, call_seconds=14, pause_after=4, pause_seconds=4, acw_seconds=2, delay_pause=2.0)


def test_pause_delayed_2_s_uploads_and_muxes_no_frame_inside_it(
    late_pause_call: CallRun, stack: Stack
) -> None:
    run = late_pause_call
    iid = str(run.interaction["id"])
    p0, p1 = pause_span(run.interaction)
    held = run.held
    assert held is not None and held.message is not None
    # The command reached the recorder 2 s after the pause began.
    assert held.message["data"]["interaction_id"] == iid
    assert float(held.message["data"]["at"]) == pytest.approx(p0, abs=0.002)
    assert held.released - p0 >= 1.95, (held.released, p0)
    # The agent's pause request said the screen had not confirmed (within the server's 1 s).
    assert run.pause_answer["status"] == 504, run.pause_answer
    # Frames past the pause time were encoded by then; the recorder cut them and said so.
    acks = [
        m["data"]
        for m in stack.proxy.messages_sent("screen.status")
        if m["data"]["interaction_id"] == iid and m["data"]["state"] == "paused"
    ]
    assert acks and acks[0]["detail"].startswith("cut "), acks
    # Nothing with a frame inside the pause was uploaded: the server refused no segment.
    with stack.server.client("admin") as admin:
        records = admin.get("/api/audit", params={"target_id": iid, "limit": 1000}).json()
    segment_records = [r for r in records if r["action"] == "screen.segment"]
    assert segment_records and all(r["outcome"] == "allowed" for r in segment_records), segment_records
    draws = draw_log(stack.pattern_log)
    assert not in_pause(run.segments, p0, p1, draws), in_pause(run.segments, p0, p1, draws)[:3]
    assert not in_pause(run.muxed, p0, p1, draws), in_pause(run.muxed, p0, p1, draws)[:3]
    # And what is stored reaches up to the pause: only what lay inside it was cut.
    before = max(f.stamp for f in run.segments if f.stamp < p0)
    assert before >= p0 - 2 * INTERVAL, (before, p0)
    print(f"\nlate pause: {acks[0]['detail']}; {playable(run)}")
