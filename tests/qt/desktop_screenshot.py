"""Draw the real agent window (Qt's xcb platform on an X server, fake server behind it) in one
scene of tests/qt/scenes.py and save what the X server shows of it; with ``--bar`` the compact
call bar instead. Also reports every label whose text does not fit (see `fit.clipped`).

``python -m tests.qt.desktop_screenshot OUT.png SCENE [--bar]`` with DISPLAY set (xvfb-run);
QT_SCALE_FACTOR=1.5 scales it. Run by tests/qt/test_call_bar.py and test_accessibility.py;
``TANDEM_WRITE_SCREENSHOTS=1`` there stores the pictures in docs/screenshots/desktop-*.png."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from PySide6.QtWidgets import QApplication, QWidget

from agent_app import i18n
from tests.qt import scenes
from tests.qt.conftest import Fakes
from tests.qt.fit import clipped


def wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("the window did not reach the scene in time")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(seconds: float) -> None:
    """Let the X server map and paint the window (a picture, not an assertion)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def main(out: str, scene: str, bar: bool) -> int:
    app = QApplication([sys.argv[0]])
    i18n.install(os.environ.get("TANDEM_LANGUAGE", "en"))  # "de": the shipped German translation
    fakes = Fakes()
    window = scenes.make_window(fakes)
    window.show()
    scenes.enter(scene, window, fakes, wait)
    shown: QWidget = window
    if bar:
        window.show_call_bar()
        shown = window.call_bar
    settle(0.8)
    problems = clipped(shown)
    if not shown.screen().availableGeometry().contains(shown.frameGeometry()):
        problems.append(f"the window {shown.frameGeometry()} is not all on the screen")
    picture = shown.screen().grabWindow(shown.winId())
    if not picture.save(out):
        raise SystemExit(f"could not write {out}")
    print(f"{picture.width()}x{picture.height()}")
    for problem in problems:
        print(f"CLIPPED {problem}")
    window.shutdown()
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], "--bar" in sys.argv[3:]))
