"""Ports for the tests, handed out from one place so that nothing a test starts can collide.

Every port comes from a *block* of ``BLOCK`` consecutive numbers below the kernel's ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``), so no ``bind(port 0)`` and no outgoing connection
on this machine is ever given one of them. A block belongs to one holder at a time, also across
pytest processes: the holder keeps an exclusive ``flock`` on ``<tmp>/tandem-test-ports/<base>.lock``
(the kernel drops it when the process dies, so a crashed run leaks nothing). Within a block the
holder lays out what it needs: a server's HTTP port, its SIP port (UDP and TCP share the number)
with TLS one above, and its RTP range never meet, whichever protocol each is bound with.

``free_port`` and ``free_ports`` hand out single ports and short runs round-robin from a block the
process keeps, each checked free on TCP and UDP both, so a number is not reused soon after;
``rtp_range`` does the same for in-process servers' RTP ranges from another block.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BLOCK = 500
FIRST = 10000  # below it: well-known and registered services a developer may run
LOCK_DIR = Path(tempfile.gettempdir()) / "tandem-test-ports"


class PortsExhaustedError(RuntimeError):
    """Every block is held (by this or another test process) or has a port in use."""


def _region() -> tuple[int, int]:
    """[FIRST, top): the block region, ending below the kernel's ephemeral range."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default; other systems' ranges start higher
    return FIRST, max(FIRST + BLOCK, low)


def bindable(port: int) -> bool:
    """Whether ``port`` is free on loopback for both TCP and UDP right now."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@dataclass(eq=False)
class PortBlock:
    """``BLOCK`` consecutive ports, ``base`` even, held until ``release``."""

    base: int
    _lock: IO[bytes] | None = field(repr=False)

    @property
    def end(self) -> int:
        """The last port of the block."""
        return self.base + BLOCK - 1

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None


def claim_block(check: range | None = None) -> PortBlock:
    """Take a free block; ``check`` (offsets into it, default all) must be bindable now."""
    LOCK_DIR.mkdir(mode=0o777, exist_ok=True)
    first, top = _region()
    bases = list(range(first, top - BLOCK + 1, BLOCK))
    start = random.randrange(len(bases))  # spread concurrent processes over the region
    for base in bases[start:] + bases[:start]:
        lock = open(LOCK_DIR / f"{base}.lock", "ab")  # held open: the open file is the claim
        with contextlib.suppress(OSError):
            os.chmod(lock.name, 0o666)  # another user's run may claim it after us
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if all(bindable(base + offset) for offset in (range(BLOCK) if check is None else check)):
            return PortBlock(base, lock)
        lock.close()
    raise PortsExhaustedError(f"no free block of {BLOCK} ports in {first}-{top - 1} (see {LOCK_DIR})")


@contextlib.contextmanager
def port_block(check: range | None = None) -> Iterator[PortBlock]:
    block = claim_block(check)
    try:
        yield block
    finally:
        block.release()


@dataclass(frozen=True, slots=True)
class ServerPorts:
    """A test server's ports, all in one block: nothing else is bound on any of them."""

    http: int
    sip: int  # UDP and TCP
    tls: int  # sip + 1: the server's default TLS port
    rtp: tuple[int, int]


def server_ports(block: PortBlock) -> ServerPorts:
    return ServerPorts(block.base, block.base + 2, block.base + 3, (block.base + 10, block.end))


class _Spares:
    """Single ports and short runs, round-robin from a block this process keeps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block: PortBlock | None = None
        self._next = 0

    def take(self, count: int, align: int) -> int:
        with self._lock:
            for _ in range(2):
                if self._block is None:
                    self._block = claim_block(check=range(0))
                    self._next = 0
                for _ in range(BLOCK):
                    offset = -(-self._next // align) * align
                    if offset + count > BLOCK:
                        self._next = 0
                        continue
                    self._next = offset + count
                    base = self._block.base + offset
                    if all(bindable(p) for p in range(base, base + count)):
                        return base
                self._block.release()  # nearly everything in it is in use: take another
                self._block = None
            raise PortsExhaustedError(f"no {count} free consecutive ports in two blocks")


_SPARES = _Spares()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on TCP and UDP alike (``kind`` is accepted for the callers' clarity only)."""
    del kind
    return _SPARES.take(1, 1)


def free_ports(count: int, align: int = 2) -> int:
    """The first of ``count`` consecutive free ports, a multiple of ``align`` (RTP wants even)."""
    return _SPARES.take(count, align)


_RTP = _Spares()  # apart from the single ports: a range is a fifth of a block


def rtp_range(size: int = 100) -> tuple[int, int]:
    """An RTP port range for an in-process server: free now, and no other holder's."""
    base = _RTP.take(size, 2)
    return (base, base + size - 1)
