"""Shared fixtures: paths to the shared test data and a free-port helper."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

# Qt widgets under test render offscreen; the screen the recorder captures is a real Xvfb.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = (ROOT / ".." / "shared" / "testdata").resolve()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def shared_testdata() -> Path:
    if not SHARED_TESTDATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_TESTDATA} (expected ../shared/testdata)")
    return SHARED_TESTDATA
