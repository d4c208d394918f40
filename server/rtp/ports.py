"""RTP/RTCP port pairs: an even port for RTP and the odd one above it for RTCP (RFC 3550 §11).

The pair is taken from an inclusive range, skipping pairs of which either port is in use, so
many concurrent sessions share one configured range without coordinating. The RTCP port may be
``high + 1`` when the range ends on an even port.

The search starts after the pair handed out last in the same range (wrapping around), not at
its start: with 2000 streams recording, scanning from the bottom would try ~2000 binds per new
stream on the event loop, and a port just released is not reused at once (a late packet of the
old call must not land in the new one).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import NamedTuple

from server.errors import PortRangeExhaustedError, RtpSessionError

_MAX_CURSORS = 64  # ranges remembered; a server has one or two
_cursors: dict[tuple[str, int, int], int] = {}  # (host, low, high) → next even port to try


class ReservedPair(NamedTuple):
    """An even RTP port and the odd RTCP port above it, bound but not yet handed to the loop."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


def reserve_pair(bind_host: str, low: int, high: int) -> ReservedPair:
    """Bind the next even port of ``low..high`` free together with the odd port after it.

    Synchronous, so the pairs a caller reserves one after the other are adjacent whatever else
    the loop is doing: a call's streams get neighbouring ports (load tools such as SIPp's pcap
    play rely on it), and a port in use costs one failed ``bind`` call, not a round through the
    loop's address resolution (which, under load, made opening a call's media take a noticeable
    part of a second)."""
    family = _family(bind_host)
    first = low + (low % 2)
    pairs = max(0, (high - first) // 2 + 1)
    key = (bind_host, low, high)
    start = _cursors.get(key, first)
    for attempt in range(pairs):
        port = first + (start - first + 2 * attempt) % (2 * pairs)
        bound = _bind_both(family, bind_host, port)
        if bound is None:
            continue
        if key not in _cursors and len(_cursors) >= _MAX_CURSORS:
            del _cursors[next(iter(_cursors))]
        _cursors[key] = port + 2 if port + 2 <= high else first
        return ReservedPair(port, *bound)
    raise PortRangeExhaustedError(f"no free even RTP port (and next odd one) in {low}-{high} on {bind_host}")


async def attach_pair(
    pair: ReservedPair, protocols: tuple[asyncio.DatagramProtocol, asyncio.DatagramProtocol]
) -> tuple[asyncio.DatagramTransport, asyncio.DatagramTransport]:
    """Hand a reserved pair to the loop with ``protocols`` (RTP, RTCP); on failure (or
    cancellation) both sockets are closed."""
    loop = asyncio.get_running_loop()
    # Both at once: each creation awaits a loop iteration, which is long on a busy worker.
    tasks = [
        asyncio.ensure_future(loop.create_datagram_endpoint(_returning(protocol), sock=sock))
        for protocol, sock in zip(protocols, (pair.rtp, pair.rtcp), strict=True)
    ]
    completed = False
    try:
        await asyncio.wait(tasks)
        completed = all(task.exception() is None for task in tasks)
    finally:
        if not completed:  # a failure, or we were cancelled: nothing stays open
            for task, sock in zip(tasks, (pair.rtp, pair.rtcp), strict=True):
                if task.done() and not task.cancelled() and task.exception() is None:
                    task.result()[0].close()
                else:
                    task.cancel()
                    sock.close()
    if not completed:
        raise next(error for task in tasks if (error := task.exception()) is not None)
    return tasks[0].result()[0], tasks[1].result()[0]


def _returning(protocol: asyncio.DatagramProtocol) -> Callable[[], asyncio.DatagramProtocol]:
    return lambda: protocol


async def bind_pair(
    bind_host: str, low: int, high: int, protocols: tuple[asyncio.DatagramProtocol, asyncio.DatagramProtocol]
) -> tuple[int, tuple[asyncio.DatagramTransport, asyncio.DatagramTransport]]:
    """``reserve_pair`` and ``attach_pair`` in one: the even port and the two transports."""
    pair = reserve_pair(bind_host, low, high)
    return pair.port, await attach_pair(pair, protocols)


def _family(bind_host: str) -> socket.AddressFamily:
    try:
        address = ipaddress.ip_address(bind_host.split("%", 1)[0])
    except ValueError:  # a name: resolved once per call set-up, not per port tried
        try:
            infos = socket.getaddrinfo(bind_host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise RtpSessionError(f"cannot resolve RTP bind address {bind_host}: {exc}") from exc
        return infos[0][0]
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def _bind_both(
    family: socket.AddressFamily, host: str, port: int
) -> tuple[socket.socket, socket.socket] | None:
    """Two non-blocking UDP sockets bound to ``port`` and ``port + 1``; None if either is in use."""
    bound: list[socket.socket] = []
    try:
        for number in (port, port + 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            bound.append(sock)
            sock.setblocking(False)
            sock.bind((host, number))
    except OSError as exc:
        for sock in bound:
            sock.close()
        if _in_use(exc):
            return None
        raise RtpSessionError(f"cannot bind RTP/RTCP ports {host}:{port}: {exc}") from exc
    return bound[0], bound[1]


def _in_use(exc: OSError) -> bool:
    """EADDRINUSE, also as uvloop reports it: OSError("could not bind ...") from the real one."""
    cause = exc.__cause__
    return exc.errno == errno.EADDRINUSE or (isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE)


def resume_after(bind_host: str, low: int, high: int, port: int) -> None:
    """Continue the search of ``low..high`` after ``port``: a process that takes over a range from
    one that died must not hand out at once the ports whose calls may still be sending."""
    first = low + (low % 2)
    if first <= port <= high:
        following = port - port % 2 + 2
        _cursors[(bind_host, low, high)] = following if following <= high else first
