"""The real window (xcb on Xvfb) with the recorder health panel, idle and with a recorder problem,
at 100 % and 150 % scaling: drawn, grabbed from the X server, checked for size and for the
warning's red. ``TANDEM_WRITE_SCREENSHOTS=1`` stores them in docs/screenshots/ (look at them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb"),
]
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        name = ":" + pipe.readline().strip()
    try:
        yield name
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def red_pixels(image: QImage) -> int:
    """Pixels of the warning's red (#b00020 border and headline)."""
    count = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            if c.red() > 150 and c.green() < 60 and c.blue() < 80:
                count += 1
    return count


@pytest.mark.parametrize("scale", ["1", "1.5"])
@pytest.mark.parametrize("scenario", ["idle", "problem"])
def test_health_panel_screenshot(display: str, tmp_path: Path, scenario: str, scale: str) -> None:
    out = tmp_path / "shot.png"
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "QT_SCALE_FACTOR": scale}
    done = subprocess.run(
        [sys.executable, "-m", "tests.qt.health_screenshot", str(out), scenario],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    image = QImage(str(out))
    factor = float(scale)
    assert (image.width(), image.height()) == (round(460 * factor), round(420 * factor))
    reds = red_pixels(image)
    assert (reds > 200) if scenario == "problem" else (reds == 0), reds
    if os.environ.get("TANDEM_WRITE_SCREENSHOTS") == "1":
        suffix = "" if scale == "1" else "-150"
        shutil.copyfile(out, DOCS / f"agent-health-{scenario}{suffix}.png")
