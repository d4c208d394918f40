"""MaskingGrabber: grab → list windows → black out; fail closed; refresh cadence; auto-pause."""

from __future__ import annotations

import numpy as np
import pytest

from recorder_service.capture import MssGrabber
from recorder_service.frame_pipeline import MaskingGrabber, MssCanvas, auto_pause_of, build_grabber
from recorder_service.masking import Canvas
from recorder_service.windows import WindowInfo, WindowListError
from tandem_protocol.recorder_policy import MaskRule, RecorderPolicy

CARD = MaskRule.from_dict({"name": "card", "kind": "window", "title": "card payment"})
BANK = MaskRule.from_dict({"name": "bank", "kind": "window", "title": "bank", "action": "pause"})
REGION = MaskRule.from_dict({"name": "r", "kind": "region", "rect": [0, 0, 2, 2]})


class FakeGrabber:
    def __init__(self, w: int = 40, h: int = 30) -> None:
        self.shape = (h, w, 4)
        self.closed = False

    def grab(self) -> np.ndarray:
        return np.full(self.shape, 99, dtype=np.uint8)

    def close(self) -> None:
        self.closed = True


class FakeLister:
    def __init__(self, windows: list[WindowInfo]) -> None:
        self.windows = windows
        self.fail: Exception | None = None
        self.calls = 0
        self.dirty = False
        self.closed = False

    def list_windows(self) -> list[WindowInfo]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return list(self.windows)

    def changed(self) -> bool:
        dirty, self.dirty = self.dirty, False
        return dirty

    def close(self) -> None:
        self.closed = True


class FixedCanvas:
    def __init__(self, canvas: Canvas | None) -> None:
        self.value = canvas
        self.closed = False
        self.fresh: list[bool] = []

    def canvas(self, frame_size: tuple[int, int], *, fresh: bool = False) -> Canvas | None:
        self.fresh.append(fresh)
        return self.value

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


RIGHT = Canvas(1000, 0, 40, 30)  # the grabbed monitor sits right of another one


def make(
    rules: list[MaskRule], windows: list[WindowInfo], canvas: Canvas | None = RIGHT
) -> tuple[MaskingGrabber, FakeLister, Clock]:
    lister = FakeLister(windows)
    clock = Clock()
    g = MaskingGrabber(
        FakeGrabber(), rules, canvas=FixedCanvas(canvas), lister_factory=lambda: lister, clock=clock
    )
    return g, lister, clock


def black(frame: np.ndarray) -> np.ndarray:
    mask: np.ndarray = (frame[..., :3] == 0).all(axis=-1)
    return mask


def test_window_masked_at_its_place_on_the_canvas() -> None:
    g, _, _ = make([CARD], [WindowInfo("Card payment", "app", (1010, 5, 10, 8))])
    frame = g.grab()
    expected = np.zeros((30, 40), dtype=bool)
    expected[5:13, 10:20] = True
    assert (black(frame) == expected).all()
    assert g.auto_pause is None and g.error == ""


def test_a_window_that_moves_just_before_the_screenshot_is_masked_where_it_went() -> None:
    """The list is read before the grab; the window moves; the grab shows it at its new place:
    the lister reports the change, the grabber lists again and masks both places and the way."""
    g, lister, _ = make([CARD], [WindowInfo("Card payment", "", (1000, 0, 4, 4), wid=7)])
    g.grab()  # the list is now cached

    class MovingGrabber(FakeGrabber):
        def grab(self) -> np.ndarray:
            lister.windows = [WindowInfo("Card payment", "", (1030, 20, 4, 4), wid=7)]
            lister.dirty = True
            return super().grab()

    g._inner = MovingGrabber()
    masked = black(g.grab())
    assert masked[20:24, 30:34].all()  # where the screenshot shows it
    assert masked[0:4, 0:4].all() and masked[10, 15]  # where it was, and on the way
    assert lister.calls == 2


def test_a_window_mapped_just_before_the_screenshot_is_masked() -> None:
    g, lister, _ = make([CARD], [])
    g.grab()

    class MappingGrabber(FakeGrabber):
        def grab(self) -> np.ndarray:
            lister.windows = [WindowInfo("Card payment", "", (1002, 2, 5, 5), wid=9)]
            lister.dirty = True
            return super().grab()

    g._inner = MappingGrabber()
    assert black(g.grab()).sum() == 25


def test_listing_failure_blacks_out_the_whole_frame_and_recovers() -> None:
    g, lister, clock = make([CARD], [])
    lister.fail = WindowListError("X went away")
    assert black(g.grab()).all()
    assert "X went away" in g.error
    lister.fail = None
    clock.now += 0.05
    assert black(g.grab()).all()  # not re-listed yet: still unknown, still black
    clock.now += 0.2
    assert not black(g.grab()).any()
    assert g.error == ""


def test_a_lister_that_cannot_even_be_made_fails_closed() -> None:
    def broken() -> FakeLister:
        raise ImportError("no module named Xlib")

    g = MaskingGrabber(FakeGrabber(), [CARD], canvas=FixedCanvas(Canvas(0, 0, 40, 30)), lister_factory=broken)
    assert black(g.grab()).all()
    assert "Xlib" in g.error


def test_unknown_canvas_fails_closed() -> None:
    g, _, _ = make([CARD], [], canvas=None)
    assert black(g.grab()).all()
    assert "position" in g.error


def test_region_rules_alone_need_no_window_list() -> None:
    def never() -> FakeLister:
        raise AssertionError("no window rule: no lister")

    g = MaskingGrabber(FakeGrabber(), [REGION], canvas=FixedCanvas(None), lister_factory=never)
    frame = g.grab()
    assert black(frame)[:2, :2].all() and black(frame).sum() == 4


def test_windows_are_relisted_every_200_ms_or_when_the_desktop_changed() -> None:
    g, lister, clock = make([CARD], [])
    g.grab()
    g.grab()
    assert lister.calls == 1  # cached
    assert g._canvas.fresh == [True, False]  # type: ignore[attr-defined]  # layout re-read with the list
    lister.windows = [WindowInfo("card payment", "", (1000, 0, 5, 5))]
    lister.dirty = True  # e.g. X11 MapNotify: re-listed at once
    assert black(g.grab()).sum() == 25
    assert lister.calls == 2
    clock.now += 0.21
    lister.windows = []
    assert not black(g.grab()).any()
    assert lister.calls == 3


def test_pause_rule_blacks_out_everything_and_sets_auto_pause() -> None:
    seen: list[str | None] = []
    g, lister, clock = make([CARD, BANK], [WindowInfo("My Bank", "", (1000, 0, 4, 4))])
    g.on_auto_pause = seen.append
    assert black(g.grab()).all()
    assert g.auto_pause == "bank" and auto_pause_of(g) == "bank"
    lister.windows = []
    clock.now += 0.3
    assert not black(g.grab()).any()
    assert g.auto_pause is None
    assert seen == ["bank", None]


def test_auto_pause_kept_while_the_list_is_unknown() -> None:
    g, lister, clock = make([BANK], [WindowInfo("bank", "", (1000, 0, 4, 4))])
    g.grab()
    lister.fail = WindowListError("gone")
    clock.now += 0.3
    assert black(g.grab()).all()
    assert g.auto_pause == "bank"  # not lifted on a guess


def test_close_closes_everything() -> None:
    lister = FakeLister([])
    inner, canvas = FakeGrabber(), FixedCanvas(Canvas(0, 0, 40, 30))
    g = MaskingGrabber(inner, [CARD], canvas=canvas, lister_factory=lambda: lister)
    g.grab()
    g.close()
    assert inner.closed and lister.closed and canvas.closed


def test_build_grabber_wraps_only_when_the_policy_masks() -> None:
    assert isinstance(build_grabber(RecorderPolicy()), MssGrabber)
    masked = RecorderPolicy.from_dict({"masking": [{"kind": "window", "title": "x"}], "monitors": "primary"})
    g = build_grabber(masked)
    assert isinstance(g, MaskingGrabber)
    assert auto_pause_of(g) is None and auto_pause_of(MssGrabber(0)) is None


def test_mss_canvas_without_a_display_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    canvas = MssCanvas(0)
    assert canvas.canvas((640, 480)) is None
    assert "monitor layout unavailable" in canvas.error
    canvas.close()


def test_mss_canvas_follows_the_layout_and_refuses_a_frame_it_does_not_describe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mss

    layouts = [
        [
            {"left": -1280, "top": 0, "width": 3200, "height": 1080},
            {"left": 0, "top": 0, "width": 1920, "height": 1080},
        ],
    ]
    opened: list[int] = []

    class FakeMss:
        def __init__(self) -> None:
            opened.append(1)
            self.monitors = layouts[-1]

        def close(self) -> None:
            pass

    monkeypatch.setattr(mss, "MSS", FakeMss, raising=False)
    clock = Clock()
    primary = MssCanvas(1, clock=clock)
    assert primary.canvas((1920, 1080)) == Canvas(0, 0, 1920, 1080)
    assert MssCanvas(0, clock=clock).canvas((3200, 1080)) == Canvas(-1280, 0, 3200, 1080)
    # A monitor was plugged in left of the primary: the frame's size changed, the layout is re-read.
    layouts.append(
        [
            {"left": 0, "top": 0, "width": 4480, "height": 1080},
            {"left": 2560, "top": 0, "width": 1920, "height": 1080},
        ]
    )
    assert primary.canvas((1920, 1080), fresh=True) == Canvas(2560, 0, 1920, 1080)  # with each window list
    layouts.append(layouts[0])
    assert primary.canvas((1920, 1080)) == Canvas(2560, 0, 1920, 1080)  # cached otherwise…
    clock.now += 2.5
    assert primary.canvas((1920, 1080)) == Canvas(0, 0, 1920, 1080)  # …for a few seconds at most
    assert primary.canvas((1280, 1024)) is None  # a frame the layout does not describe
    assert "not the 1280x1024 frame" in primary.error
    primary.close()


def test_unknown_canvas_reason_is_in_the_error() -> None:
    canvas = FixedCanvas(None)
    canvas.error = "monitor layout unavailable: boom"  # type: ignore[attr-defined]
    g = MaskingGrabber(FakeGrabber(), [CARD], canvas=canvas, lister_factory=lambda: FakeLister([]))
    assert black(g.grab()).all()
    assert "boom" in g.error
