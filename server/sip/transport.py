"""Thin asyncio adapter around one UDP socket for SIP (RFC 3261 §18), and the peer address type
of stream connections (TCP and TLS live in ``server.sip.tcp``).

It hands every datagram to a callback, with the kernel's receive time (a BYE read late by a busy
loop still ends the call when it arrived), and sends bytes; all SIP logic lives elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from server.errors import SipTransportError
from server.ratelog import RateLimitedLog
from server.rxstamp import receive_clock

# (datagram, source, arrival): the kernel's receive time where available (server.rxstamp)
Handler = Callable[[bytes, tuple[str, int], float], None]
_log = RateLimitedLog(logging.getLogger(__name__))


class StreamPeer(tuple[str, int]):
    """The remote (host, port) of one TCP or TLS connection.

    It is a ``tuple[str, int]`` so the UAS, which answers "to where the request came from", stays
    transport-neutral; ``write`` sends over the very connection the request arrived on
    (RFC 3261 §18.2.2), so a reply can never leak out over UDP even if a UDP peer uses the same
    host and port. ``write`` returns False when that connection is gone.
    """

    transport: str  # "TCP" or "TLS", as written in Via and Contact
    local_port: int  # our listening port for this transport
    write: Callable[[bytes], bool]

    def __new__(
        cls, host: str, port: int, *, transport: str, local_port: int, write: Callable[[bytes], bool]
    ) -> StreamPeer:
        peer = super().__new__(cls, (host, port))
        peer.transport = transport
        peer.local_port = local_port
        peer.write = write
        return peer


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.arrival: Callable[[], float] = time.time

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.arrival = receive_clock(transport.get_extra_info("socket"), time.time)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._handler(data, (str(addr[0]), int(addr[1])), self.arrival())

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc. on a connectionless socket: nothing to do but note it.
        _log.warning("icmp", "UDP error: %s", exc)


class UdpTransport:
    def __init__(self, transport: asyncio.DatagramTransport, port: int) -> None:
        self._transport = transport
        self.port = port
        self.send_errors = 0

    @classmethod
    async def open(cls, host: str, port: int, handler: Handler) -> UdpTransport:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(handler), local_addr=(host, port)
            )
        except OSError as exc:
            raise SipTransportError(f"cannot bind UDP {host}:{port}: {exc}") from exc
        bound = transport.get_extra_info("sockname")
        return cls(transport, int(bound[1]))

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._transport.sendto(data, addr)
        except OSError as exc:
            self.send_errors += 1
            _log.warning("send", "UDP send to %s failed: %s", addr, exc)

    def close(self) -> None:
        self._transport.close()
