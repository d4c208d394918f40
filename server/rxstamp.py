"""When a UDP datagram really arrived: the kernel's receive timestamp, not the time a busy event
loop got round to reading it.

Under load a process can be tens or hundreds of milliseconds behind its sockets. Stamping a BYE or
a stream's first RTP packet with ``time.time()`` at the moment it is read then moves the end of
the call, or the whole stream's audio, by that lag (a stream anchored late has its last packets
fall after the BYE and cut). ``SIOCGSTAMP`` returns the kernel's receive time of the last datagram
read from a socket; asyncio's datagram protocols are called straight after each read, so inside
``datagram_received`` that is the datagram in hand. The first ``SIOCGSTAMP`` on a socket turns
the stamping on (and fails with ENOENT: nothing stamped yet), so ``enable`` makes that call when
the socket is created. (``SO_TIMESTAMP`` is not the way: with it set the kernel hands the stamp
over as ancillary data, which asyncio drops, and no longer records it for ``SIOCGSTAMP``.) One
``ioctl`` costs 2–3 µs from Python, so callers ask only for the datagrams whose time matters (SIP
requests, an RTP stream's slow path).

Linux only; elsewhere, or when the kernel has no stamp, the fallback clock is used. Both are the
wall clock (``CLOCK_REALTIME``), the clock ``time.time()`` reads.
"""

from __future__ import annotations

import errno
import fcntl
import struct
import sys
from collections.abc import Callable
from typing import Protocol

SIOCGSTAMP = 0x8906  # linux/sockios.h: struct timeval of the last datagram read
_TIMEVAL = struct.Struct("@ll")  # time_t, suseconds_t: both long on Linux
_TIMEVAL_BUFFER = bytes(_TIMEVAL.size)


class _Socket(Protocol):  # socket.socket, or the wrappers asyncio transports hand out
    def fileno(self) -> int: ...


def enable(sock: _Socket) -> bool:
    """Have the kernel stamp every datagram ``sock`` receives from now on; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fcntl.ioctl(sock.fileno(), SIOCGSTAMP, _TIMEVAL_BUFFER)
    except OSError as exc:
        return exc.errno == errno.ENOENT  # the usual answer: on now, nothing received yet
    return True


class ReceiveClock:
    """``clock()`` for datagrams read from one socket: the kernel's receive time of the last one
    read, or ``fallback()`` when there is none (timestamps off, or nothing read yet)."""

    __slots__ = ("_fallback", "_fd", "failures")

    def __init__(self, fd: int, fallback: Callable[[], float]) -> None:
        self._fd = fd
        self._fallback = fallback
        self.failures = 0  # ioctls that failed: the fallback was used

    def __call__(self) -> float:
        try:
            seconds, micros = _TIMEVAL.unpack(fcntl.ioctl(self._fd, SIOCGSTAMP, _TIMEVAL_BUFFER))
        except OSError:  # ENOENT: no stamp yet; EBADF: closed under us
            self.failures += 1
            return self._fallback()
        return float(seconds + micros * 1e-6)  # struct.unpack is untyped


def receive_clock(sock: _Socket | None, fallback: Callable[[], float]) -> Callable[[], float]:
    """The receive clock of ``sock`` if the kernel stamps its datagrams, else ``fallback``."""
    if sock is None or not enable(sock):
        return fallback
    return ReceiveClock(sock.fileno(), fallback)
