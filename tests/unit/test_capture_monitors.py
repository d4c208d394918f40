"""Which region the grabber captures (all monitors / the primary) and how it follows a monitor
added, removed or resized mid-call: the pure rules, and MssGrabber driven through a fake mss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recorder_service.capture import ChangeDetector, MssGrabber
from recorder_service.errors import CaptureError
from recorder_service.monitors import LayoutClock, Region, select_region

ONE = [
    {"left": 0, "top": 0, "width": 1920, "height": 1080},
    {"left": 0, "top": 0, "width": 1920, "height": 1080, "is_primary": False},
]
TWO_PRIMARY_RIGHT = [
    {"left": 0, "top": 0, "width": 3840, "height": 1200},
    {"left": 0, "top": 0, "width": 1920, "height": 1200, "is_primary": False},
    {"left": 1920, "top": 0, "width": 1920, "height": 1080, "is_primary": True},
]


def test_all_is_the_whole_virtual_screen() -> None:
    assert select_region(TWO_PRIMARY_RIGHT, "all") == Region(0, 0, 3840, 1200)
    assert select_region(TWO_PRIMARY_RIGHT, 0) == Region(0, 0, 3840, 1200)


def test_primary_is_the_flagged_monitor_else_the_first_else_the_screen() -> None:
    assert select_region(TWO_PRIMARY_RIGHT, "primary") == Region(1920, 0, 1920, 1080)
    unflagged = [dict(m, is_primary=False) for m in TWO_PRIMARY_RIGHT]
    assert select_region(unflagged, "primary") == Region(0, 0, 1920, 1200)
    assert select_region(ONE[:1], "primary") == Region(0, 0, 1920, 1080)  # no per-monitor list


def test_bad_choices_and_empty_layouts_are_refused() -> None:
    with pytest.raises(CaptureError, match="no screen"):
        select_region([], "all")
    with pytest.raises(ValueError, match="monitors"):
        select_region(ONE, "left")
    # An mss index that vanished (monitor unplugged) falls back to the whole screen.
    assert select_region(ONE, 5) == Region(0, 0, 1920, 1080)


def test_layout_clock_rereads_every_interval_and_after_invalidate() -> None:
    clock = LayoutClock(2.0)
    assert clock.due(100.0)
    clock.read(100.0)
    assert not clock.due(101.9)
    assert clock.due(102.0)
    clock.read(102.0)
    clock.invalidate()
    assert clock.due(102.1)


class FakeShot:
    def __init__(self, region: dict[str, int]) -> None:
        self.width, self.height = region["width"], region["height"]
        self.raw = bytearray(self.width * self.height * 4)


class FakeScreen:
    """What the X server shows: a layout the test changes, and the handles opened on it. Like
    mss, a handle reads the layout once and keeps it; grabbing outside the screen fails."""

    def __init__(self, layout: list[dict[str, Any]]) -> None:
        self.layout = layout
        self.opened = 0
        self.open_handles = 0
        self.grabs: list[dict[str, int]] = []

    def factory(self) -> FakeHandle:
        self.opened += 1
        self.open_handles += 1
        return FakeHandle(self)


class FakeHandle:
    def __init__(self, screen: FakeScreen) -> None:
        self._screen = screen
        self.monitors = [dict(m) for m in screen.layout]  # read once, cached (as mss does)

    def grab(self, region: dict[str, int]) -> FakeShot:
        root = self._screen.layout[0]
        if (
            region["left"] + region["width"] > root["width"]
            or region["top"] + region["height"] > root["height"]
        ):
            raise OSError("BadMatch: region outside the screen")
        self._screen.grabs.append(region)
        return FakeShot(region)

    def close(self) -> None:
        self._screen.open_handles -= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _grabber(screen: FakeScreen, choice: str, clock: Clock) -> MssGrabber:
    return MssGrabber(choice, layout_refresh=2.0, factory=screen.factory, clock=clock)


def test_a_monitor_added_mid_call_is_picked_up_at_the_next_layout_read() -> None:
    screen, clock = FakeScreen(ONE), Clock()
    grabber = _grabber(screen, "all", clock)
    assert grabber.grab().shape == (1080, 1920, 4)
    screen.layout = TWO_PRIMARY_RIGHT  # a second monitor plugged in
    clock.now += 1.0
    assert grabber.grab().shape == (1080, 1920, 4)  # not re-read yet: within the interval
    clock.now += 1.0
    assert grabber.grab().shape == (1200, 3840, 4)  # 2 s after the last read: the new canvas
    assert grabber.layout_changes == 1
    grabber.close()
    assert screen.open_handles == 0  # layout probes and replaced handles all closed


def test_primary_follows_a_resize_and_an_unplugged_monitor_at_once() -> None:
    screen, clock = FakeScreen(TWO_PRIMARY_RIGHT), Clock()
    grabber = _grabber(screen, "primary", clock)
    assert grabber.grab().shape == (1080, 1920, 4)
    assert grabber.region == Region(1920, 0, 1920, 1080)
    clock.now += 2.0
    screen.layout = [
        {"left": 0, "top": 0, "width": 4480, "height": 1440},
        {"left": 0, "top": 0, "width": 1920, "height": 1200, "is_primary": False},
        {"left": 1920, "top": 0, "width": 2560, "height": 1440, "is_primary": True},
    ]
    assert grabber.grab().shape == (1440, 2560, 4)  # the primary was switched to 2560×1440
    # The right monitor unplugged: its region is off the screen, the grab fails, and the
    # grabber reads the layout at once instead of failing the capture or waiting 2 s.
    screen.layout = ONE
    clock.now += 0.1
    assert grabber.grab().shape == (1080, 1920, 4)
    assert grabber.region == Region(0, 0, 1920, 1080)
    assert grabber.layout_changes == 2
    grabber.close()


def test_a_grab_that_fails_on_a_fresh_layout_is_a_capture_error() -> None:
    screen, clock = FakeScreen(ONE), Clock()

    def broken() -> FakeHandle:
        handle = screen.factory()
        handle.monitors = [{"left": 0, "top": 0, "width": 9999, "height": 9999}]
        return handle

    grabber = MssGrabber("all", factory=broken, clock=clock)
    with pytest.raises(CaptureError, match="screen grab failed"):
        grabber.grab()
    grabber.close()


def test_grabber_choice_is_checked() -> None:
    with pytest.raises(ValueError):
        MssGrabber("left")
    with pytest.raises(ValueError):
        MssGrabber(-1)


def test_change_detector_sees_one_changed_pixel_and_size_changes() -> None:
    detector = ChangeDetector()
    a = np.zeros((1080, 1920, 4), np.uint8)
    assert detector.changed(a)  # the first frame is always new
    assert not detector.changed(a.copy())
    b = a.copy()
    b[1079, 1919, 0] = 1  # the very last byte
    assert detector.changed(b)
    assert not detector.changed(b.copy())
    assert detector.changed(np.zeros((1081, 1919, 4), np.uint8))  # odd sizes compare bytewise
    first = detector.digest(np.zeros((3, 3, 4), np.uint8))
    assert detector.digest(np.zeros((3, 3, 4), np.uint8)) == first
    assert detector.digest(np.ones((3, 3, 4), np.uint8)) != first
