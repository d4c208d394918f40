"""Masking at capture on a real X desktop: Xvfb, a real window manager (openbox) or none, Qt
windows with known tile patterns, the real grabber from ``build_grabber(policy)``.

A window titled like a card-payment form, under a mask rule: no pixel of its pattern in any
frame the grabber returns nor in the encoded segment decoded back, while another window and the
desktop stay intact; the mask follows the window when it moves and covers the window manager's
title bar; a pause rule's window sets ``auto_pause`` while shown and clears it when closed.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import av
import numpy as np
import pytest

from recorder_service.capture import MssGrabber
from recorder_service.encoder import ScreenEncoder
from recorder_service.frame_pipeline import MaskingGrabber, build_grabber
from recorder_service.windows import WindowInfo
from recorder_service.windows.x11 import X11WindowLister
from tandem_protocol.recorder_policy import RecorderPolicy

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="X11"),
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (scripts/system-packages test)"),
    pytest.mark.e2e,  # Xvfb, a window manager and Qt windows as subprocesses
]

WIDTH, HEIGHT = 1280, 720
ROOT_RGB = (48, 80, 112)  # xsetroot -solid "#305070"
CARD_RGB = [(255, 0, 255), (0, 255, 255), (0, 255, 0), (255, 128, 0)]  # masking_window.PATTERNS
NOTES_RGB = [(255, 255, 0), (0, 0, 128)]
CARD_TITLE = "Card payment — Checkout"
HELPER = Path(__file__).with_name("masking_window.py")
DEADLINE = 30.0  # generous: a shared, loaded machine


def count_rgb(frame: np.ndarray, colours: list[tuple[int, int, int]], tol: int, bgr: bool = True) -> int:
    """Pixels within ``tol`` (every channel) of any of the colours."""
    pixels = frame[..., :3].astype(np.int16)
    if bgr:
        pixels = pixels[..., ::-1]
    hits = np.zeros(frame.shape[:2], dtype=bool)
    for colour in colours:
        hits |= (np.abs(pixels - np.array(colour, dtype=np.int16)) <= tol).all(axis=-1)
    return int(hits.sum())


def wait_for(what: str, check: Callable[[], bool], deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb picks a free display itself (-displayfd) and writes its number to our pipe.
    -noreset: without a window manager, the server would reset (root colour lost, connections
    refused for a moment) each time its last client disconnects."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{WIDTH}x{HEIGHT}x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not report a display")
    return proc, f":{number}"


def wm_running(display: str) -> bool:
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    try:
        root = d.screen().root
        prop = root.get_full_property(d.intern_atom("_NET_SUPPORTING_WM_CHECK"), X.AnyPropertyType)
        return prop is not None
    finally:
        d.close()


def set_root(display: str) -> bool:
    subprocess.run(["xsetroot", "-display", display, "-solid", "#305070"], check=True)
    grabber = MssGrabber(0)
    try:
        return count_rgb(grabber.grab(), [ROOT_RGB], tol=2) > WIDTH * HEIGHT // 2
    finally:
        grabber.close()


@pytest.fixture(params=["openbox", "no-wm"])
def desktop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    wm = request.param
    if wm == "openbox" and shutil.which("openbox") is None:
        pytest.skip("needs openbox (scripts/system-packages test)")
    xvfb, display = start_xvfb()
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setenv("HOME", str(tmp_path))  # openbox writes its session files there
    procs: list[subprocess.Popen[bytes]] = [xvfb]
    try:
        if wm == "openbox":
            procs.append(
                subprocess.Popen(
                    ["openbox", "--sm-disable"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
            wait_for("openbox to manage the screen", lambda: wm_running(display))
        # After the WM (openbox clears the root's background when it starts), and again until it
        # shows: right after Xvfb starts, a first xsetroot may not take.
        wait_for("the desktop's colour", lambda: set_root(display))
        yield wm
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class PatternWindow:
    """masking_window.py as a subprocess; commands on its stdin, answers on its stdout."""

    def __init__(self, title: str, pattern: str, rect: tuple[int, int, int, int]) -> None:
        env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER), title, pattern, *map(str, rect)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.title = title

    def __enter__(self) -> PatternWindow:
        self.expect("shown")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def send(self, command: str) -> None:
        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(command.encode() + b"\n")
        stdin.flush()

    def expect(self, line: str) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(stdout, selectors.EVENT_READ)
            if not sel.select(DEADLINE):
                raise AssertionError(f"{self.title!r}: no {line!r} within {DEADLINE} s")
        got = stdout.readline().decode().strip()
        assert got == line, f"{self.title!r} said {got!r}, expected {line!r}"


def listed(title: str) -> WindowInfo | None:
    lister = X11WindowLister()
    try:
        return next((w for w in lister.list_windows() if w.title == title), None)
    finally:
        lister.close()


def card_policy() -> RecorderPolicy:
    return RecorderPolicy.from_dict(
        {"masking": [{"name": "card", "kind": "window", "title": r"card\s+payment"}]}
    )


def test_masked_window_never_recorded_follows_moves_and_survives_encoding(
    desktop: str, tmp_path: Path
) -> None:
    raw = MssGrabber(0)
    grabber = build_grabber(card_policy())
    assert isinstance(grabber, MaskingGrabber)
    try:
        assert count_rgb(raw.grab(), CARD_RGB, tol=8) == 0  # the card's colours are nowhere else
        frames: list[np.ndarray] = []
        with (
            PatternWindow(CARD_TITLE, "card", (100, 120, 320, 240)) as card,
            PatternWindow("Notes", "notes", (700, 300, 300, 200)),
        ):
            # Unmasked, the card's content is on the screen: the checks below can fail.
            wait_for("the card window on screen", lambda: count_rgb(raw.grab(), CARD_RGB, 8) >= 300 * 220)
            wait_for("the notes window on screen", lambda: count_rgb(raw.grab(), NOTES_RGB, 8) >= 280 * 180)
            info = listed(CARD_TITLE)
            assert info is not None
            if desktop == "openbox":  # the WM's decorations (the title bar shows the title) count
                assert info.rect[3] > 240 and info.rect[1] <= 120, info.rect

            for _ in range(5):
                frame = grabber.grab().copy()
                frames.append(frame)
                assert count_rgb(frame, CARD_RGB, tol=8) == 0
                assert count_rgb(frame, NOTES_RGB, tol=8) >= 280 * 180  # the rest stays intact
                assert count_rgb(frame, [ROOT_RGB], tol=2) > WIDTH * HEIGHT // 2
                x, y, w, h = info.rect
                assert (frame[y : y + h, x : x + w, :3] == 0).all()  # decorations included

            card.send("move 150 430")
            card.expect("moved 150 430")

            def moved() -> bool:
                frame = grabber.grab().copy()
                frames.append(frame)
                assert count_rgb(frame, CARD_RGB, tol=8) == 0  # not one frame leaks while it moves
                new = listed(CARD_TITLE)
                return (
                    new is not None and new.rect != info.rect and count_rgb(raw.grab(), CARD_RGB, 8) > 60000
                )

            wait_for("the card window at its new place", moved)
            frame = grabber.grab().copy()
            frames.append(frame)
            new = listed(CARD_TITLE)
            assert new is not None
            nx, ny, nw, nh = new.rect
            assert (frame[ny : min(ny + nh, HEIGHT), nx : min(nx + nw, WIDTH), :3] == 0).all()
            x, y, w, h = info.rect
            old_area = frame[y : y + h, x : x + w]
            assert count_rgb(old_area, [ROOT_RGB], tol=2) > 0.9 * w * h  # the old place is desktop again

            if desktop == "openbox":  # minimising needs a window manager
                card.send("minimize")
                card.expect("ok minimize")
                wait_for("the minimised card window off the list", lambda: listed(CARD_TITLE) is None)
                card.send("restore")
                card.expect("ok restore")
                wait_for("the card window back", lambda: count_rgb(raw.grab(), CARD_RGB, 8) > 60000)
            for _ in range(3):
                frame = grabber.grab().copy()
                frames.append(frame)
                assert count_rgb(frame, CARD_RGB, tol=8) == 0
    finally:
        grabber.close()
        raw.close()

    # Encoded and decoded back: still nothing of the card (chroma is subsampled: wider tolerance).
    path = tmp_path / "segment.mp4"
    encoder = ScreenEncoder(path, fps=5)
    for i, frame in enumerate(frames):
        encoder.encode(frame, i * 200)
    encoder.close()
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) >= 5
    for picture in decoded:
        assert count_rgb(picture, CARD_RGB, tol=40, bgr=False) == 0
    assert count_rgb(decoded[0], NOTES_RGB, tol=40, bgr=False) > 250 * 150


def test_pause_rule_sets_auto_pause_while_its_window_is_shown(desktop: str) -> None:
    policy = RecorderPolicy.from_dict(
        {"masking": [{"name": "bank", "kind": "window", "title": "online bank", "action": "pause"}]}
    )
    grabber = build_grabber(policy)
    assert isinstance(grabber, MaskingGrabber)
    changes: list[str | None] = []
    grabber.on_auto_pause = changes.append
    try:
        frame = grabber.grab()
        assert grabber.auto_pause is None and count_rgb(frame, [ROOT_RGB], 2) > 0
        with PatternWindow("Online Bank — Statement", "card", (200, 200, 300, 200)):

            def paused() -> bool:
                frame = grabber.grab()
                if grabber.auto_pause is None:
                    return False
                assert (frame[..., :3] == 0).all()  # fully black while the pause rule's window shows
                return True

            wait_for("auto_pause on", paused)
            assert grabber.auto_pause == "bank"
        wait_for("auto_pause off", lambda: grabber.grab() is not None and grabber.auto_pause is None)
        assert count_rgb(grabber.grab(), [ROOT_RGB], 2) > WIDTH * HEIGHT // 2
        assert changes == ["bank", None]
    finally:
        grabber.close()


def test_x11_lister_reports_changes_that_matter_and_ignores_the_others(desktop: str) -> None:
    from Xlib import Xatom
    from Xlib import display as xdisplay

    lister = X11WindowLister()
    other = xdisplay.Display()
    try:
        with PatternWindow(CARD_TITLE, "card", (100, 120, 200, 100)) as card:
            wait_for("the window listed", lambda: listed(CARD_TITLE) is not None)
            info = next(w for w in lister.list_windows() if w.title == CARD_TITLE)
            # The WM and the toolkit may still be settling the new window: wait for quiet.
            wait_for("a quiet desktop", lambda: not lister.changed())
            window = other.create_resource_object("window", info.wid)

            # A property masking does not read (the toolkit sets this one on every key press).
            window.change_property(other.intern_atom("_NET_WM_USER_TIME"), Xatom.CARDINAL, 32, [12345])
            other.sync()
            assert not lister.changed()

            window.change_property(
                other.intern_atom("_NET_WM_NAME"), other.intern_atom("UTF8_STRING"), 8, b"Receipt"
            )
            other.sync()
            assert lister.changed()  # renamed: the next frame lists again
            wait_for("the new title", lambda: any(w.title == "Receipt" for w in lister.list_windows()))

            card.send("move 400 300")
            card.expect("moved 400 300")
            wait_for("the move reported", lister.changed)
    finally:
        other.close()
        lister.close()
