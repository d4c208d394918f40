"""Shared fixtures: paths to the shared test data; ports come from ``tests.ports``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The file-descriptor guard: a module that leaves many open is named in the summary, and the one
# that brings the process to the ceiling fails (tests/fd_guard.py).
from tests.fd_guard import _fd_watch, pytest_terminal_summary
from tests.ports import free_port

__all__ = ["_fd_watch", "free_port", "pytest_terminal_summary"]  # free_port: the old import path

# Qt widgets under test render offscreen; the screen the recorder captures is a real Xvfb.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = (ROOT / ".." / "shared" / "testdata").resolve()


@pytest.fixture
def shared_testdata() -> Path:
    if not SHARED_TESTDATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_TESTDATA} (expected ../shared/testdata)")
    return SHARED_TESTDATA
