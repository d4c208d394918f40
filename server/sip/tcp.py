"""asyncio adapter for SIP over TCP and TLS (RFC 3261 §18, RFC 5630 for TLS).

It accepts connections within limits, cuts each byte stream into messages with
``StreamFramer`` and hands every message, with a ``StreamPeer`` naming its connection, to the same
handler the UDP socket feeds, so the UAS has one dispatch path for all transports. What an
untrusted peer can make us hold is bounded: connections per source IP and in total, bytes
buffered per connection (in and out), and time spent without completing a message (slowloris).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from server.errors import SipFramingError, SipTransportError
from server.ratelog import RateLimitedLog
from server.sip.framing import StreamFramer
from server.sip.message import MAX_MESSAGE_BYTES
from server.sip.transport import StreamPeer

MessageHandler = Callable[[bytes, StreamPeer], None]
# Called with the framing error before the connection is closed, so an error reply can be written.
BadFrameHandler = Callable[[SipFramingError, StreamPeer], None]
_log = RateLimitedLog(logging.getLogger(__name__))


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_message: int = MAX_MESSAGE_BYTES
    max_per_ip: int = 64
    max_total: int = 1024
    # A connection must complete a message (or a keep-alive) this often, else it is closed: this
    # ends idle connections and slow-drip (slowloris) senders alike.
    idle_timeout: float = 120.0
    # After the peer's EOF or a framing error nothing more is read, but replies to the messages
    # already handed on may still be on their way: the connection stays open this long for them.
    linger: float = 4.0
    max_write_buffer: int = 256 * 1024  # a peer that does not read its replies is cut off
    tls_handshake_timeout: float = 10.0


@dataclass
class StreamStats:
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # "per-ip" / "total"
    # by reason: "peer" (EOF), "idle", "bad-frame", "write-buffer", "lost", "shutdown"
    closed: Counter[str] = field(default_factory=Counter)
    truncated: int = 0  # peer closed in the middle of a message
    send_errors: int = 0  # reply to a connection that is already gone


class _Connection(asyncio.Protocol):
    def __init__(self, owner: StreamTransport) -> None:
        self._owner = owner
        self._transport: asyncio.Transport | None = None
        self._framer = StreamFramer(owner.limits.max_message)
        self._timer: asyncio.TimerHandle | None = None
        self._ip = ""
        self._admitted = False
        self._peer: StreamPeer | None = None
        self._reading = True
        self._reason = "lost"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, but not necessarily an ``asyncio.Transport`` subclass: uvloop's
        # TCPTransport and its TLS transport implement the same methods without inheriting from
        # it (an isinstance check here reset every connection under ``tandem-server run``).
        self._transport = stream = cast(asyncio.Transport, transport)
        peername = stream.get_extra_info("peername") or ("?", 0)
        self._ip = str(peername[0])
        refusal = self._owner.admit(self._ip)
        if refusal is not None:
            self._reason = "refused"
            stream.abort()
            return
        self._admitted = True
        self._owner.connections.add(self)
        self._peer = StreamPeer(
            self._ip,
            int(peername[1]),
            transport=self._owner.name,
            local_port=self._owner.port,
            write=self.write,
        )
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if self._peer is None or self._transport is None or not self._reading:
            return
        step = self._framer.max_message
        try:
            for start in range(0, len(data), step):
                self._framer.feed(data[start : start + step])
                while (message := self._framer.pop()) is not None:
                    self._owner.on_message(message, self._peer)
                    if self._transport is None or self._transport.is_closing():
                        return
        except SipFramingError as exc:
            self._owner.on_bad_frame(exc, self._peer)
            self._linger("bad-frame")
            return
        if self._framer.at_boundary:
            self._arm_timer()

    def eof_received(self) -> bool:
        if not self._framer.at_boundary:
            self._owner.stats.truncated += 1
            _log.warning(
                "truncated",
                "%s connection from %s closed mid-message (%d bytes dropped)",
                self._owner.name,
                self._ip,
                self._framer.buffered,
            )
        self._linger("peer")
        # Keep our side open for the replies still due (closed after the linger). TLS cannot
        # half-close (asyncio warns and closes anyway), so there the EOF closes at once.
        return self._owner.name != "TLS"

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # StreamPeers (in transactions, dialogs) outlive the connection: keep nothing big alive.
        self._transport = None
        self._framer.reset()
        if self._admitted:
            self._admitted = False
            self._owner.release(self, self._ip, self._reason)

    def write(self, data: bytes) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing():
            self._owner.stats.send_errors += 1
            _log.warning("send", "reply to closed %s connection from %s dropped", self._owner.name, self._ip)
            return False
        transport.write(data)
        if transport.get_write_buffer_size() > self._owner.limits.max_write_buffer:
            _log.warning(
                "write-buffer", "%s peer %s does not read its replies; closing", self._owner.name, self._ip
            )
            self._reason = "write-buffer"
            transport.abort()
        return True

    def close(self, reason: str) -> None:
        """Close after flushing what was written (e.g. the error reply)."""
        self._reason = reason
        if self._transport is not None:
            self._transport.close()

    def _linger(self, reason: str) -> None:
        """Read nothing more; close once replies still due have had ``linger`` seconds to go out."""
        if not self._reading or self._transport is None:
            return
        self._reading = False
        self._reason = reason
        if reason != "peer":  # after EOF there is nothing left to pause
            self._transport.pause_reading()
        self._arm_timer(self._owner.limits.linger)

    def _arm_timer(self, delay: float | None = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            self._owner.limits.idle_timeout if delay is None else delay, self._on_timer
        )

    def _on_timer(self) -> None:
        self._timer = None
        if not self._reading:
            self.close(self._reason)
            return
        _log.warning(
            "idle",
            "closing %s connection from %s: no complete message for %.1f s",
            self._owner.name,
            self._ip,
            self._owner.limits.idle_timeout,
        )
        self.close("idle")


class StreamTransport:
    """One listening TCP or TLS socket and its connections."""

    def __init__(
        self, name: str, limits: StreamLimits, on_message: MessageHandler, on_bad_frame: BadFrameHandler
    ) -> None:
        self.name = name
        self.limits = limits
        self.on_message = on_message
        self.on_bad_frame = on_bad_frame
        self.stats = StreamStats()
        self.port = 0
        self.connections: set[_Connection] = set()
        self._per_ip: Counter[str] = Counter()
        self._server: asyncio.Server | None = None

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        on_message: MessageHandler,
        on_bad_frame: BadFrameHandler,
        *,
        limits: StreamLimits | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> StreamTransport:
        self = cls(
            "TLS" if tls_context is not None else "TCP", limits or StreamLimits(), on_message, on_bad_frame
        )
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Connection(self),
                host,
                port,
                ssl=tls_context,
                ssl_handshake_timeout=self.limits.tls_handshake_timeout if tls_context else None,
                reuse_address=True,
            )
        except OSError as exc:
            raise SipTransportError(f"cannot listen on {self.name} {host}:{port}: {exc}") from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def active(self) -> int:
        return len(self.connections)

    def admit(self, ip: str) -> str | None:
        """Take a connection slot for ``ip``; the reason it is refused otherwise."""
        refusal = None
        if len(self.connections) >= self.limits.max_total:
            refusal = "total"
        elif self._per_ip[ip] >= self.limits.max_per_ip:
            refusal = "per-ip"
        if refusal is not None:
            self.stats.refused[refusal] += 1
            _log.warning(
                f"refused-{refusal}",
                "refusing %s connection from %s: %s limit reached",
                self.name,
                ip,
                refusal,
            )
            return refusal
        self._per_ip[ip] += 1
        self.stats.accepted += 1
        return None

    def release(self, conn: _Connection, ip: str, reason: str) -> None:
        self.connections.discard(conn)
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]
        self.stats.closed[reason] += 1

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close("shutdown")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        # Give the closing transports one loop turn to flush and report connection_lost.
        await asyncio.sleep(0)
