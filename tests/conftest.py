"""Shared fixtures: paths to the shared test data; ports come from ``tests.ports``."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The file-descriptor guard: a module that leaves many open is named in the summary, and the one
# that brings the process to the ceiling fails (tests/fd_guard.py).
from tests.fd_guard import _fd_watch, pytest_terminal_summary
from tests.ports import free_port

__all__ = ["_fd_watch", "free_port", "pytest_terminal_summary"]  # free_port: the old import path

# Qt widgets under test render offscreen; the screen the recorder captures is a real Xvfb.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A recorder that a test stops on purpose (exit 2) writes its problem file under the user's state
# directory (tandem_protocol/recorder_problem.py): not the real user's, where his desktop would
# report it. Subprocesses inherit this; the harness strips only TANDEM_* variables.
os.environ["XDG_STATE_HOME"] = _STATE = tempfile.mkdtemp(prefix="tandem-test-state-")
atexit.register(shutil.rmtree, _STATE, ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = (ROOT / ".." / "shared" / "testdata").resolve()


@pytest.fixture
def shared_testdata() -> Path:
    if not SHARED_TESTDATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_TESTDATA} (expected ../shared/testdata)")
    return SHARED_TESTDATA
