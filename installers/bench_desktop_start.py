"""Start time of the bundled agent desktop: process start -> its window ("Tandem", the login form)
mapped on an X screen.

    .venv/bin/python -m installers.bench_desktop_start [--runs 5]

Needs the bundles (installers/build --bundles-only), Xvfb and xdotool. Each run starts the bundle
with a fresh HOME on its own Xvfb screen (no server needed: the login form is the first window)
and polls xdotool for a visible window named "Tandem". "cold" runs follow a page-cache drop when
this process may write /proc/sys/vm/drop_caches (root), else every run is warm and is labelled so.
The recorder's start is installers/bench_start.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from installers.bench_timing import bench_runs, drop_caches, spread, time_to_ready
from tests.e2e.harness import ROOT, stop_process

BUNDLE = ROOT / "build" / "installers" / "dist" / "tandem-agent" / "tandem-agent"


def _start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on a display number it picks itself (-displayfd): a number that looks free here may
    be another namespace's (abstract sockets are shared)."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        stop_process(xvfb)
        raise SystemExit("Xvfb did not start")
    return xvfb, f":{number}"


def _window_shown(display: str) -> bool:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "^Tandem$"],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
    )
    return found.returncode == 0 and bool(found.stdout.strip())


def _start_once(display: str) -> float:
    with tempfile.TemporaryDirectory(prefix="tandem-desktop-bench-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "XDG_RUNTIME_DIR": home,
            "DISPLAY": display,
            "LANG": "C.UTF-8",
        }
        log = Path(home) / "desktop.log"
        return time_to_ready(
            [str(BUNDLE)], env, log, lambda: _window_shown(display), "desktop", "window", 0.02
        )


def main() -> None:
    runs = bench_runs(BUNDLE, "The agent desktop bundle's start time, to its window on an X screen.")
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        raise SystemExit("needs Xvfb and xdotool")
    xvfb, display = _start_xvfb()
    try:
        times, cold = [], True
        for _ in range(runs):
            cold = drop_caches() and cold
            times.append(_start_once(display))
        label = "cold" if cold else "warm (not root: page cache not dropped)"
        print(f"desktop start to window, {runs} {label} starts: {spread(times)}")
    finally:
        stop_process(xvfb)


if __name__ == "__main__":
    main()
