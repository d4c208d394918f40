"""The server's event loop: uvloop when it can be imported (it carries every RTP datagram),
asyncio with a warning otherwise."""

from __future__ import annotations

import logging
import sys

import pytest

from server.cli import event_loop_name


def test_uvloop_when_installed() -> None:
    import uvloop  # the server extra requires it: its absence here is a broken install

    assert uvloop is not None
    assert event_loop_name() == "uvloop"


def test_asyncio_with_a_warning_when_uvloop_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes ``import uvloop`` raise ImportError
    monkeypatch.setattr(sys, "platform", "linux")
    with caplog.at_level(logging.WARNING, logger="server.cli"):
        assert event_loop_name() == "asyncio"
    assert "uvloop unavailable" in caplog.text


def test_uvicorn_runs_uvloop_for_the_name() -> None:
    import uvicorn
    import uvloop

    factory = uvicorn.Config(app=lambda *_: None, loop=event_loop_name()).get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
