"""poll-based select: works for descriptors ≥ 1024, where select.select raises."""

from __future__ import annotations

import os
import resource
import socket

import pytest

from agent_app.hotkey.poll_select import poll_select


def test_ready_sockets_and_a_timeout() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert poll_select([a], [], [], 0) == ([], [], [])
        b.send(b"x")
        r, w, _ = poll_select([a], [a], [], 1.0)
        assert r == [a] and w == [a]


def test_a_descriptor_above_1023() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip("the hard limit on open files is below 1100")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    a, b = socket.socketpair()
    high = os.dup2(a.fileno(), 1050)
    try:
        b.send(b"x")
        with pytest.raises(ValueError):
            import select

            select.select([high], [], [], 0)
        assert poll_select([high], [], [], 1.0)[0] == [high]
    finally:
        os.close(high)
        a.close()
        b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
