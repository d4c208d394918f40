"""bind_pair: even RTP port + odd RTCP port, skipping pairs of which either port is taken."""

from __future__ import annotations

import asyncio
import socket

import pytest

from server.errors import PortRangeExhaustedError, RtpSessionError
from server.rtp import ports
from tests.loops import run_on
from tests.ports import free_ports


def _taken(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    return sock


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_pairs_skip_taken_ports_and_continue_after_the_last_one(loop: str) -> None:
    low = free_ports(12)  # a range of its own: no other test or process binds in it
    high = low + 11
    ports._cursors.pop(("127.0.0.1", low, high), None)
    blockers = [_taken(low), _taken(low + 3)]  # the RTP port of pair 1, the RTCP port of pair 2

    async def body() -> list[int]:
        protocols = (asyncio.DatagramProtocol(), asyncio.DatagramProtocol())
        got = []
        bound: list[asyncio.BaseTransport] = []
        try:
            for _ in range(3):
                port, (rtp, rtcp) = await ports.bind_pair("127.0.0.1", low, high, protocols)
                bound += [rtp, rtcp]
                assert rtp.get_extra_info("sockname")[1] == port
                assert rtcp.get_extra_info("sockname")[1] == port + 1
                got.append(port)
            with pytest.raises(PortRangeExhaustedError):  # low + 10 left; then the range is used up
                bound += (await ports.bind_pair("127.0.0.1", low, high, protocols))[1]
                await ports.bind_pair("127.0.0.1", low, high, protocols)
        finally:
            for transport in bound:
                transport.close()
        return got

    try:
        got = run_on(loop, body())
    finally:
        for sock in blockers:
            sock.close()
    assert got == [low + 4, low + 6, low + 8]


def test_a_bind_error_other_than_in_use_is_a_session_error() -> None:
    async def body() -> None:
        protocols = (asyncio.DatagramProtocol(), asyncio.DatagramProtocol())
        await ports.bind_pair("192.0.2.1", 43200, 43210, protocols)  # not an address of this host

    with pytest.raises(RtpSessionError, match="cannot bind"):
        asyncio.run(body())


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.got.append(data)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_each_port_of_a_pair_feeds_its_own_protocol(loop: str) -> None:
    async def body() -> tuple[list[bytes], list[bytes]]:
        rtp_side, rtcp_side = _Collect(), _Collect()
        low = free_ports(100)
        port, transports = await ports.bind_pair("127.0.0.1", low, low + 99, (rtp_side, rtcp_side))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sender.sendto(b"rtp", ("127.0.0.1", port))
            sender.sendto(b"rtcp", ("127.0.0.1", port + 1))
            for _ in range(100):
                if rtp_side.got and rtcp_side.got:
                    break
                await asyncio.sleep(0.01)
        finally:
            sender.close()
            for transport in transports:
                transport.close()
        return rtp_side.got, rtcp_side.got

    got = run_on(loop, body())
    assert got == ([b"rtp"], [b"rtcp"])
