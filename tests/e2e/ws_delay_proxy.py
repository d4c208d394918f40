"""A TCP proxy between the recorder and the server that can hold back one event-channel command.

Every connection is forwarded as it is, except the event channel (the one whose request is
``GET /api/events``): its compression offer is taken out of the handshake so the frames are
readable, the server's messages to the recorder are parsed (unmasked WebSocket frames) and the
recorder's to the server too (masked), both kept in ``received``/``sent`` for the test. After
``delay_next(kind, seconds)`` the next message of that type (e.g. ``screen.pause``) waits
``seconds`` before it goes on; what follows it on the same connection waits behind it, in order,
as on a slow network. Nothing else is changed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

_BUF = 64 * 1024


@dataclass
class Held:
    kind: str
    seconds: float
    message: dict[str, Any] | None = None
    arrived: float = 0.0  # wall clock when the server sent it through the proxy
    released: float = 0.0  # wall clock when the proxy passed it on
    done: threading.Event = field(default_factory=threading.Event)


def _frames(buf: bytearray) -> list[tuple[int, bool, bytes, bytes]]:
    """Complete frames at the front of ``buf`` (removed from it): (opcode, fin, payload, raw)."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        length, pos = b1 & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                break
            length, pos = struct.unpack(">H", buf[2:4])[0], 4
        elif length == 127:
            if len(buf) < 10:
                break
            length, pos = struct.unpack(">Q", buf[2:10])[0], 10
        key = b""
        if b1 & 0x80:
            key, pos = bytes(buf[pos : pos + 4]), pos + 4
        if len(buf) < pos + length:
            break
        payload = bytes(buf[pos : pos + length])
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        out.append((b0 & 0x0F, bool(b0 & 0x80), payload, bytes(buf[: pos + length])))
        del buf[: pos + length]
    return out


def _head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read up to the end of an HTTP head: (head, bytes after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(_BUF)
        if not chunk:
            return data, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


class EventDelayProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._pending: Held | None = None
        self.received: list[dict[str, Any]] = []  # server → recorder messages, in order
        self.sent: list[dict[str, Any]] = []  # recorder → server messages
        self._thread = threading.Thread(target=self._accept, name="delay-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> EventDelayProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def delay_next(self, kind: str, seconds: float) -> Held:
        """Hold the next server message of type ``kind`` for ``seconds``."""
        held = Held(kind, seconds)
        with self._lock:
            self._pending = held
        return held

    def messages_sent(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.sent if m.get("type") == kind]

    # -- forwarding -------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self._target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._socks += [client, server]
            ws = threading.Event()
            head_seen = threading.Event()
            threading.Thread(target=self._up, args=(client, server, ws, head_seen), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, ws, head_seen), daemon=True).start()

    def _up(
        self, src: socket.socket, dst: socket.socket, ws: threading.Event, head_seen: threading.Event
    ) -> None:
        try:
            head, rest = _head(src)
            if head.startswith(b"GET /api/events"):
                ws.set()
                lines = head.split(b"\r\n")
                head = b"\r\n".join(
                    line for line in lines if not line.lower().startswith(b"sec-websocket-extensions:")
                )
            head_seen.set()
            dst.sendall(head + rest)
            buf = bytearray(rest)
            self._parse(buf, self.sent, ws.is_set())
            while chunk := src.recv(_BUF):
                dst.sendall(chunk)
                if ws.is_set():
                    buf += chunk
                    self._parse(buf, self.sent, True)
        except OSError:
            pass
        finally:
            head_seen.set()
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _down(
        self, src: socket.socket, dst: socket.socket, ws: threading.Event, head_seen: threading.Event
    ) -> None:
        try:
            head_seen.wait(30)
            if not ws.is_set():
                while chunk := src.recv(_BUF):
                    dst.sendall(chunk)
                return
            head, rest = _head(src)
            dst.sendall(head)
            buf = bytearray(rest)
            hold_until = 0.0
            while True:
                for opcode, _fin, payload, raw in _frames(buf):
                    message = self._message(opcode, payload)
                    if message is not None:
                        with self._lock:
                            self.received.append(message)
                            pending = self._pending
                            if pending is not None and message.get("type") == pending.kind:
                                self._pending = None
                                pending.message, pending.arrived = message, time.time()
                                hold_until = time.monotonic() + pending.seconds
                            else:
                                pending = None
                    else:
                        pending = None
                    wait = hold_until - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    dst.sendall(raw)
                    if pending is not None:
                        pending.released = time.time()
                        pending.done.set()
                chunk = src.recv(_BUF)
                if not chunk:
                    return
                buf += chunk
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _parse(self, buf: bytearray, into: list[dict[str, Any]], ws: bool) -> None:
        if not ws:
            buf.clear()
            return
        for opcode, _fin, payload, _raw in _frames(buf):
            message = self._message(opcode, payload)
            if message is not None:
                with self._lock:
                    into.append(message)

    @staticmethod
    def _message(opcode: int, payload: bytes) -> dict[str, Any] | None:
        """A text frame's JSON object (the tandem envelopes are each one frame), else None."""
        if opcode != 1:
            return None
        try:
            value = json.loads(payload)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
