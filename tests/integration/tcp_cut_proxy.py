"""A TCP proxy a test can cut: the network between the recorder and the server.

It listens on a port the OS picks and forwards every connection to the target. ``cut()`` resets
every open connection at once (RST, as a dropped VPN or a pulled cable ends in), ``cut_every(n)``
does it each time another ``n`` bytes went towards the server, so the cuts fall during uploads
whatever the machine's speed, and ``down()``/``up()`` make it refuse connections (the server
unreachable). It counts the bytes it forwarded each way.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

_BUF = 64 * 1024


def _reset(sock: socket.socket) -> None:
    """Close with RST, not FIN: the peer sees a connection reset, as after a real cut.

    SHUT_RD first: a pump thread blocked in ``recv`` on this socket would otherwise keep the
    kernel socket alive (and the peer's connection open) after ``close``; SHUT_RD wakes it without
    sending anything, and the socket's last release then sends the RST (linger 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class CutProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._refusing = False
        self._every = 0
        self._next_cut = 0
        self._max_cuts = 0
        self.upstream = 0  # bytes forwarded towards the server
        self.downstream = 0
        self.cuts = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept, name="cut-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> CutProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        self.cut(count=False)

    # -- what the test does to the line ---------------------------------------------------------
    def cut(self, *, count: bool = True) -> int:
        """Reset every open connection; returns how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            if count and pairs:
                self.cuts += 1
        for a, b in pairs:
            _reset(a)
            _reset(b)
        return len(pairs)

    def cut_every(self, upstream_bytes: int, times: int) -> None:
        """Cut all connections each time another ``upstream_bytes`` went to the server, ``times``
        times in all."""
        with self._lock:
            self._every = upstream_bytes
            self._next_cut = self.upstream + upstream_bytes
            self._max_cuts = self.cuts + times

    def down(self) -> None:
        """Refuse new connections and cut the open ones (the server is unreachable)."""
        with self._lock:
            self._refusing = True
        self.cut(count=False)

    def retarget(self, port: int, host: str = "127.0.0.1") -> None:
        """New connections go there (the server came back on another port)."""
        with self._lock:
            self._target = (host, port)

    def up(self) -> None:
        with self._lock:
            self._refusing = False

    # -- the plumbing --------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                refusing, target = self._refusing, self._target
            if refusing:
                self.refused += 1
                _reset(client)
                continue
            try:
                server = socket.create_connection(target, timeout=10)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, towards_server: bool) -> None:
        try:
            while data := src.recv(_BUF):
                dst.sendall(data)
                if towards_server:
                    self._count_up(len(data))
                else:
                    with self._lock:
                        self.downstream += len(data)
        except OSError:
            pass
        finally:  # one side ended: end the other (a half-open pair would hang the client)
            with self._lock:
                pair = next((p for p in self._pairs if src in p), None)
                if pair is not None:
                    self._pairs.remove(pair)
            if pair is not None:
                for s in pair:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                    with contextlib.suppress(OSError):
                        s.close()

    def _count_up(self, n: int) -> None:
        with self._lock:
            self.upstream += n
            due = self._every and self.cuts < self._max_cuts and self.upstream >= self._next_cut
            if due:
                self._next_cut = self.upstream + self._every
        if due:
            self.cut()
