"""The suite's file-descriptor guard (tests/fd_guard.py), run as the plugin it is on a small suite of
its own in a pytest subprocess: a module that leaks is named in the summary, and crossing the
ceiling fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LEAKY = """
import os

KEPT = []


def test_leaks_descriptors():
    KEPT.extend(os.open(os.devnull, os.O_RDONLY) for _ in range({n}))
"""
CLEAN = """
def test_nothing_left_open():
    with open(__file__) as fh:
        assert fh.read()
"""


def run_suite(tmp_path: Path, leak: int, ceiling: int) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_a_clean.py").write_text(CLEAN)
    (tmp_path / "test_b_leaky.py").write_text(LEAKY.format(n=leak))
    (tmp_path / "test_c_clean.py").write_text(CLEAN)
    env = {**os.environ, "TANDEM_TEST_FD_CEILING": str(ceiling), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.fd_guard",
            "-q",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_leaking_module_is_named_and_the_run_passes_under_the_ceiling(tmp_path: Path) -> None:
    result = run_suite(tmp_path, leak=30, ceiling=10_000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "modules that left more than 20 file descriptors open" in result.stdout
    named = [line for line in result.stdout.splitlines() if "->" in line and ".py" in line]
    assert len(named) == 1 and "test_b_leaky.py" in named[0], result.stdout
    assert "file descriptors open at the end:" in result.stdout


def test_a_clean_suite_names_no_module(tmp_path: Path) -> None:
    result = run_suite(tmp_path, leak=0, ceiling=10_000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "left more than" not in result.stdout


def test_crossing_the_ceiling_fails_the_module_that_crossed_it_once(tmp_path: Path) -> None:
    # The subprocess inherits only stdin/out/err (close_fds) and starts with a few more: the clean
    # module stays under 100, the leaky one ends above it.
    result = run_suite(tmp_path, leak=200, ceiling=100)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "ERROR at teardown of test_leaks_descriptors" in result.stdout, (
        result.stdout
    )
    assert "test_b_leaky.py" in result.stdout and "select() refuses >= 1024" in result.stdout
