"""The start benches' shared clock (installers/bench_timing.py) on real processes: it times a
process to its ready sign and stops it, exits with the process's own output when it dies first
or with the sign it waited for when that never comes, and prints the figures in the form
benchmarks/RESULTS.md quotes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from installers.bench_timing import spread, time_to_ready

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_times_the_process_to_its_ready_sign_and_stops_it(tmp_path: Path) -> None:
    log = tmp_path / "ready.log"
    code = "import os, time; print(os.getpid(), 'ready', flush=True); time.sleep(600)"
    seconds = time_to_ready(
        _python(code), ENV, log, lambda: b"ready" in log.read_bytes(), "bench", "ready", 0.01
    )
    assert 0 < seconds < 120
    pid = int(log.read_text().split()[0])
    assert _gone(pid), "the timed process was left running"


def test_a_process_that_ends_first_exits_with_its_output(tmp_path: Path) -> None:
    log = tmp_path / "dies.log"
    code = "import sys; print('no display here', flush=True); sys.exit(3)"
    with pytest.raises(SystemExit) as ended:
        time_to_ready(_python(code), ENV, log, lambda: False, "desktop", "window", 0.01)
    assert str(ended.value) == "desktop exited 3:\nno display here\n"


def test_no_sign_within_the_timeout_names_the_sign(tmp_path: Path) -> None:
    code = "import time; time.sleep(600)"
    with pytest.raises(SystemExit) as waited:
        time_to_ready(
            _python(code), ENV, tmp_path / "slow.log", lambda: False, "recorder", "ready line", 0.01, 1.0
        )
    assert str(waited.value) == "no ready line within 1 s"


def test_spread_is_the_line_results_md_quotes() -> None:
    assert spread([1.53, 1.19, 1.37]) == "median 1.37 s, min 1.19 s, max 1.53 s"
    assert spread([0.8]) == "median 0.80 s, min 0.80 s, max 0.80 s"
