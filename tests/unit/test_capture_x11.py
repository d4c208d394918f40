"""MssGrabber on a real X server (Xvfb) while the monitor layout changes mid-capture.

Xvfb's RandR cannot add monitors or shrink the screen here, so the layout mss reports is
replaced (the handles are real mss handles on a large Xvfb screen: real XShm grabs of every
region size, the handle replaced when the region changes)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from recorder_service.capture import MssGrabber

pytestmark = pytest.mark.e2e  # a real Xvfb: outside the fast selection


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "2560x1440x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    assert number, "Xvfb did not report a display"
    monkeypatch.setenv("DISPLAY", f":{number}")
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


class Layout:
    """The layout the test says the X server has; real mss handles otherwise."""

    def __init__(self) -> None:
        self.monitors: list[dict[str, Any]] = []
        self.handles = 0

    def factory(self) -> Any:
        import mss

        layout = self

        class Handle:
            def __init__(self) -> None:
                self._real = mss.MSS()
                self.monitors = [dict(m) for m in layout.monitors]
                layout.handles += 1

            def grab(self, region: dict[str, int]) -> Any:
                return self._real.grab(region)

            def close(self) -> None:
                self._real.close()
                layout.handles -= 1

        return Handle()


def test_real_grabs_follow_layout_changes(display: str) -> None:
    subprocess.run(["xsetroot", "-display", display, "-solid", "#3060c0"], check=True)
    layout = Layout()
    layout.monitors = [
        {"left": 0, "top": 0, "width": 1920, "height": 1080},
        {"left": 0, "top": 0, "width": 1920, "height": 1080, "is_primary": True},
    ]
    grabber = MssGrabber("primary", layout_refresh=0.2, factory=layout.factory)
    shapes = []
    try:
        assert grabber.grab().shape == (1080, 1920, 4)
        # A second, larger monitor to the right becomes the primary one.
        layout.monitors = [
            {"left": 0, "top": 0, "width": 2560, "height": 1440},
            {"left": 0, "top": 0, "width": 1280, "height": 1024, "is_primary": False},
            {"left": 1280, "top": 0, "width": 1280, "height": 1440, "is_primary": True},
        ]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            image = grabber.grab()
            shapes.append(image.shape)
            if image.shape == (1440, 1280, 4):
                break
            time.sleep(0.05)
        assert shapes[-1] == (1440, 1280, 4), shapes
        blue = image[700, 600, :3]
        assert np.array_equal(blue, [0xC0, 0x60, 0x30]), blue  # BGRA: what xsetroot painted
        # Back to one small monitor: smaller again, same handle machinery.
        layout.monitors = [{"left": 0, "top": 0, "width": 800, "height": 600}]
        deadline = time.monotonic() + 10
        while grabber.grab().shape != (600, 800, 4):
            assert time.monotonic() < deadline, "the smaller layout was never picked up"
            time.sleep(0.05)
        assert grabber.layout_changes == 2
    finally:
        grabber.close()
    assert layout.handles == 0
