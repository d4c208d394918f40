"""Shared fixtures: paths to the shared test data; ports come from ``tests.ports``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ports import free_port

__all__ = ["free_port"]  # the old import path; new code imports tests.ports

# Qt widgets under test render offscreen; the screen the recorder captures is a real Xvfb.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = (ROOT / ".." / "shared" / "testdata").resolve()


@pytest.fixture
def shared_testdata() -> Path:
    if not SHARED_TESTDATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_TESTDATA} (expected ../shared/testdata)")
    return SHARED_TESTDATA
