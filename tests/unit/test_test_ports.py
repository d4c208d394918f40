"""tests.ports: where every test's ports come from (issue 10: HTTP and SIP once both got 57881)."""

from __future__ import annotations

import fcntl
import itertools
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ports import (
    BLOCK,
    LOCK_DIR,
    bindable,
    claim_block,
    free_port,
    free_ports,
    port_block,
    rtp_range,
    server_ports,
)

ROOT = Path(__file__).resolve().parents[2]


def test_a_servers_ports_are_all_different_and_in_its_block() -> None:
    with port_block() as block:
        ports = server_ports(block)
        singles = [ports.http, ports.sip, ports.tls]
        assert len(set(singles)) == 3
        assert ports.tls == ports.sip + 1  # the server's default TLS port
        assert all(block.base <= p < ports.rtp[0] for p in singles)
        assert ports.rtp[0] % 2 == 0 and ports.rtp[1] == block.end
        assert all(bindable(p) for p in [*singles, *range(*ports.rtp)])


def test_blocks_are_below_the_ephemeral_range_and_never_shared() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    blocks = [claim_block() for _ in range(3)]
    try:
        spans = sorted((b.base, b.end) for b in blocks)
        assert all(end < low for _, end in spans)
        assert all(a_end < b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    finally:
        for block in blocks:
            block.release()


def test_a_block_held_by_another_process_is_not_handed_out() -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # The block is kept in a name: a temporary PortBlock is collected at once, and
            # collecting it closes its lock file, which drops the claim.
            "from tests.ports import claim_block; b = claim_block(); print(b.base, flush=True); input()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line.strip().isdigit(), f"the holder did not claim a block: {line!r}"
        held = int(line)
        with open(LOCK_DIR / f"{held}.lock", "ab") as probe:
            with pytest.raises(BlockingIOError):  # deterministic: the claim is really held
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        mine = [claim_block() for _ in range(3)]
        try:
            assert held not in {b.base for b in mine}
        finally:
            for block in mine:
                block.release()
    finally:
        _, errors = holder.communicate("\n", timeout=30)
    assert holder.returncode == 0, errors


def test_free_ports_are_free_on_tcp_and_udp_and_not_reused_at_once() -> None:
    # The old helper bound TCP or UDP only: a TCP port for HTTP and a "UDP" port for SIP (which
    # also listens on TCP) could be the same number.
    handed = [free_port(), free_port(socket.SOCK_DGRAM), free_port()]
    assert len(set(handed)) == 3
    assert all(bindable(p) for p in handed)
    run = free_ports(8)
    assert run % 2 == 0 and all(bindable(p) for p in range(run, run + 8))
    assert not set(handed) & set(range(run, run + 8))
    low, high = rtp_range()
    assert low % 2 == 0 and high - low + 1 == 100 < BLOCK
    assert not set(handed) & set(range(low, high + 1))


def test_a_port_in_use_is_skipped() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", port))
        assert not bindable(port)
