"""Masking's pure part: rules + windows + canvas → what to black out; the black fill; the
auto-pause messages."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recorder_service.masking import (
    AutoPauseTracker,
    Canvas,
    MaskPlan,
    apply_mask,
    clip,
    hull,
    merge_listings,
    plan_mask,
)
from recorder_service.windows import WindowInfo
from tandem_protocol.events import ScreenAutoPause
from tandem_protocol.recorder_policy import MaskRule

CARD = MaskRule.from_dict({"name": "card", "kind": "window", "title": r"card payment"})
BANK = MaskRule.from_dict({"name": "bank", "kind": "window", "app": r"^bankapp\b", "action": "pause"})
REGION = MaskRule.from_dict({"name": "clock", "kind": "region", "rect": [10, 20, 30, 40]})
SCREEN = Canvas(0, 0, 1920, 1080)


def win(title: str, rect: tuple[int, int, int, int], app: str = "x X") -> WindowInfo:
    return WindowInfo(title, app, rect)


def test_clip_moves_by_the_canvas_origin_and_cuts_to_it() -> None:
    right_monitor = Canvas(1920, 0, 1280, 1024)
    assert clip((2000, 100, 300, 200), right_monitor) == (80, 100, 300, 200)
    assert clip((1800, -50, 300, 200), right_monitor) == (0, 0, 180, 150)  # straddles two monitors
    assert clip((100, 100, 300, 200), right_monitor) is None  # on the other monitor only
    assert clip((3100, 900, 500, 500), right_monitor) == (1180, 900, 100, 124)
    # Windows' virtual screen may start left of 0 (a monitor left of the primary).
    assert clip((-1500, 10, 100, 100), Canvas(-1920, 0, 3840, 1080)) == (420, 10, 100, 100)


def test_a_matching_window_is_masked_others_are_not() -> None:
    windows = [
        win("Terminal", (0, 0, 800, 600)),
        win("Card Payment — Checkout", (100, 200, 640, 480)),  # case-insensitive search
        win("Notes", (900, 0, 200, 200)),
    ]
    plan = plan_mask([CARD], windows, SCREEN)
    assert plan == MaskPlan(((100, 200, 640, 480),))


def test_app_rules_and_region_rules() -> None:
    windows = [
        win("Statement", (50, 60, 70, 80), app="bankapp BankApp"),
        win("x", (0, 0, 5, 5), "notbankapp"),
    ]
    plan = plan_mask([REGION, BANK], windows, SCREEN)
    assert plan.rects == ((10, 20, 30, 40), (50, 60, 70, 80))
    assert plan.full and plan.pause_rule == "bank"


def test_region_rules_are_canvas_pixels_and_clipped() -> None:
    rule = MaskRule.from_dict({"name": "edge", "kind": "region", "rect": [1900, 1000, 500, 500]})
    plan = plan_mask([rule], [], Canvas(1920, 0, 1920, 1080))  # origin does not move regions
    assert plan.rects == ((1900, 1000, 20, 80),)
    gone = MaskRule.from_dict({"name": "off", "kind": "region", "rect": [5000, 0, 10, 10]})
    assert plan_mask([gone], [], SCREEN) == MaskPlan()


def test_merge_listings_covers_both_places_the_way_between_and_both_titles() -> None:
    a = WindowInfo("Card payment", "x", (0, 0, 10, 10), wid=5)
    b = WindowInfo("Receipt", "x", (100, 50, 10, 10), wid=5)  # moved and renamed
    other = WindowInfo("Notes", "x", (0, 0, 1, 1), wid=6)
    assert merge_listings([a, other], [a, other]) == [a, other]
    merged = merge_listings([a, other], [other, b])
    assert a in merged and b in merged
    assert WindowInfo("Card payment", "x", (0, 0, 110, 60), wid=5) in merged
    assert plan_mask([CARD], merged, SCREEN).rects == ((0, 0, 10, 10), (0, 0, 110, 60))
    assert hull((0, 0, 1, 1), (5, 5, 1, 1)) == (0, 0, 6, 6)


def test_unknown_window_list_fails_closed_only_with_window_rules() -> None:
    assert plan_mask([CARD], None, SCREEN).full
    assert plan_mask([REGION], None, SCREEN) == MaskPlan(((10, 20, 30, 40),))


def test_a_pause_window_off_the_canvas_pauses_nothing() -> None:
    windows = [win("Statement", (2500, 0, 100, 100), app="bankapp")]
    assert plan_mask([BANK], windows, SCREEN) == MaskPlan()
    assert plan_mask([BANK], windows, Canvas(0, 0, 3840, 1080)).pause_rule == "bank"


def test_apply_blacks_out_exactly_the_rectangles_in_place() -> None:
    frame = np.full((100, 200, 4), 200, dtype=np.uint8)
    out = apply_mask(frame, MaskPlan(((10, 20, 30, 40), (190, 90, 10, 10))))
    assert out is frame  # in place: no copy of a 1080p frame per grab
    black = np.zeros((100, 200), dtype=bool)
    black[20:60, 10:40] = True
    black[90:100, 190:200] = True
    assert (frame[black][:, :3] == 0).all() and (frame[black][:, 3] == 255).all()
    assert (frame[~black] == 200).all()


def test_apply_full_and_read_only_frames() -> None:
    frame = np.full((10, 20, 4), 7, dtype=np.uint8)
    frame.flags.writeable = False
    out = apply_mask(frame, MaskPlan(full=True))
    assert out is not frame and (out[..., :3] == 0).all() and (frame == 7).all()
    assert apply_mask(frame, MaskPlan()) is frame


def test_auto_pause_tracker_opens_and_closes_spans() -> None:
    t = AutoPauseTracker("i-1")
    assert t.update(None, 1.0) == []
    assert t.update("bank", 2.0) == [ScreenAutoPause("i-1", "bank", 2.0)]
    assert t.update("bank", 2.2) == []
    assert t.active == "bank"
    # Another pause rule takes over: the first span ends where the second starts.
    assert t.update("vault", 3.0) == [
        ScreenAutoPause("i-1", "bank", 2.0, 3.0),
        ScreenAutoPause("i-1", "vault", 3.0),
    ]
    assert t.update(None, 4.5) == [ScreenAutoPause("i-1", "vault", 3.0, 4.5)]
    assert t.close(5.0) == []
    t.update("bank", 6.0)
    assert t.spans()[-1] == ScreenAutoPause("i-1", "bank", 6.0)  # open, to resend on reconnect
    assert t.close(7.0) == [ScreenAutoPause("i-1", "bank", 6.0, 7.0)]
    assert t.active is None
    assert t.spans() == [
        ScreenAutoPause("i-1", "bank", 2.0, 3.0),
        ScreenAutoPause("i-1", "vault", 3.0, 4.5),
        ScreenAutoPause("i-1", "bank", 6.0, 7.0),
    ]


@pytest.mark.parametrize("n_windows", [20])
def test_masking_cost_per_1080p_frame(n_windows: int) -> None:
    """Benchmark print, not a timed assert (the machine is shared): plan + black fill of a
    1920×1080 BGRA frame with two masked windows among ``n_windows`` and a region."""
    rules = [CARD, REGION, BANK.__class__.from_dict({"name": "v", "kind": "window", "title": "vault"})]
    windows = [win(f"window {i}", (i * 40, i * 20, 800, 600)) for i in range(n_windows)]
    windows[3] = win("Card payment", (300, 200, 900, 700))
    windows[9] = win("Vault", (1500, 800, 600, 400))
    frame = np.random.default_rng(1).integers(0, 255, (1080, 1920, 4), dtype=np.uint8)
    runs = 200
    start = time.process_time()
    for _ in range(runs):
        plan = plan_mask(rules, windows, SCREEN)
        apply_mask(frame, plan)
    per_frame_ms = (time.process_time() - start) / runs * 1000
    print(f"\nmasking 1920x1080, {n_windows} windows, 3 rects: {per_frame_ms:.3f} ms CPU per frame")
    assert len(plan.rects) == 3
