"""Xvfb and the scripted desktop, started and stopped for the screen benchmark's runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

WIDTH, HEIGHT = 1920, 1080


@contextmanager
def xvfb(width: int = WIDTH, height: int = HEIGHT) -> Iterator[str]:
    """An Xvfb of our own; it picks a free display itself (-displayfd) and tells us which."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{width}x{height}x24",
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
    try:
        if not number:
            raise RuntimeError("Xvfb did not report a display")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def desktop(display: str, workload: str, duration: float, lead: float = 4.0) -> Iterator[float]:
    """Start the scripted desktop; yields the Unix time ``t0`` at which its script starts (the
    caller starts its capture then). The window is on screen before ``t0``."""
    t0 = time.time() + lead
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.screen.desktop",
            workload,
            "--t0",
            f"{t0:.3f}",
            "--duration",
            str(duration),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the benchmark desktop did not start")
        if time.time() > t0 - 0.5:
            raise RuntimeError("the benchmark desktop took too long to start; raise lead")
        time.sleep(max(0.0, t0 - time.time()))
        yield t0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
