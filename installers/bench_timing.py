"""What the start benches share (bench_start.py: the recorder bundle, bench_desktop_start.py: the
agent desktop bundle): their ``--runs`` option and bundle check, the page-cache drop that makes a
start "cold", the clock from process start to the bundle's sign that it is ready, and the one-line
median/min/max that benchmarks/RESULTS.md quotes."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.e2e.harness import stop_process


def bench_runs(bundle: Path, description: str) -> int:
    """The ``--runs`` asked for; exits with the build step to run when the bundle is not built."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=5, help="how many starts to time (default 5)")
    args = parser.parse_args()
    if not bundle.exists():
        raise SystemExit(f"no bundle at {bundle}: run installers/build --bundles-only")
    runs: int = args.runs
    return runs


def drop_caches() -> bool:
    """Drops the page cache (a cold start reads the bundle from disk); False when this process
    may not (not root), and the start that follows is a warm one."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def time_to_ready(
    argv: Sequence[str],
    env: dict[str, str],
    log: Path,
    ready: Callable[[], bool],
    what: str,
    sign: str,
    poll: float,
    timeout: float = 120,
) -> float:
    """Seconds from starting ``argv`` (its output to ``log``) until ``ready()``; the process is
    stopped either way. Exits with the log when it ends first, and names ``sign`` (what ``ready``
    waits for) when it does not come within ``timeout``."""
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(argv), env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while time.monotonic() < started + timeout:
            if ready():
                return time.monotonic() - started
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited {proc.returncode}:\n{log.read_text(errors='replace')}")
            time.sleep(poll)
        raise SystemExit(f"no {sign} within {timeout:.0f} s")
    finally:
        stop_process(proc)


def spread(times: Sequence[float]) -> str:
    """``median 1.37 s, min 1.19 s, max 1.53 s``: the figures as benchmarks/RESULTS.md quotes them."""
    return f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s"
