"""The SIP UAS of the recording server: receives INVITEs over UDP, TCP and optionally TLS, asks
the ``CallListener`` whether to record, answers ``recvonly`` and drives the call's
``MediaSession`` until BYE, RTP timeout or shutdown.

Every transport feeds the same ``_on_message``; replies go back to the request's source address,
which for TCP/TLS is a ``StreamPeer`` bound to the connection the request came on.

Dispatch, validation and out-of-dialog requests live here; the INVITE/ACK/BYE/CANCEL dialog
logic lives in ``server.sip.uas`` so each module stays one concept.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from server.errors import SipError, SipFramingError, SipParseError, SipTransportError
from server.ratelog import RateLimitedLog
from server.sip.builders import ALLOW
from server.sip.dialog import MediaFactory, MediaState, rtp_session_factory
from server.sip.digest import DigestAuth
from server.sip.listener import CallListener
from server.sip.message import SipRequest, SipResponse, parse_message
from server.sip.recording_request import RequestPolicy
from server.sip.refusals import RefusalSink
from server.sip.salvage import error_response_for, is_ack
from server.sip.siprec import ACCEPT
from server.sip.stats import SipStats
from server.sip.tcp import StreamLimits, StreamStats, StreamTransport
from server.sip.transport import StreamPeer, UdpTransport
from server.sip.trust import DEFAULT_TRUSTED, TrustedSources
from server.sip.uas import CallManager
from server.sip.wiretext import display_text

_logger = logging.getLogger(__name__)
MAX_INFLIGHT = 1024
SUPPORTED_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO"})
SUPPORTED_EXTENSIONS = frozenset({"siprec"})  # RFC 7866 §6.1.1: Require: siprec
BIND_ATTEMPTS = 20  # ephemeral UDP ports tried until the same TCP port is free too


class SipService:
    def __init__(
        self,
        listener: CallListener,
        *,
        host: str,
        port: int,
        advertised_host: str,
        rtp_host: str,
        rtp_port_range: tuple[int, int],
        voice_dir: Path | None = None,
        rtp_timeout: float = 60.0,
        media_factory: MediaFactory | None = None,
        tcp: bool = True,
        tls_context: ssl.SSLContext | None = None,
        tls_port: int | None = None,
        stream_limits: StreamLimits | None = None,
        policy: RequestPolicy | None = None,
        latching: bool = True,
        max_dialogs_per_source: int = 2000,
        trusted: TrustedSources | None = None,
        digest: DigestAuth | None = None,
        refusals: RefusalSink | None = None,
    ) -> None:
        self._host = host
        self._trusted = trusted if trusted is not None else TrustedSources.parse(DEFAULT_TRUSTED)
        self._requested_port = port
        self.port = port
        self._tcp_enabled = tcp
        self._tls_context = tls_context
        # RFC 3263 convention: TLS one above the UDP/TCP port (5061 for 5060); ephemeral for port 0.
        self._requested_tls_port = tls_port if tls_port is not None else (port + 1 if port else 0)
        self._stream_limits = stream_limits or StreamLimits()
        self._tcp: StreamTransport | None = None
        self._tls: StreamTransport | None = None
        self.stats = SipStats()
        self._log = RateLimitedLog(_logger)
        self._transport: UdpTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._rtp_timeout = rtp_timeout
        self._calls = CallManager(
            listener,
            send=self._send,
            stats=self.stats,
            log=self._log,
            advertised_host=advertised_host,
            rtp_host=rtp_host,
            rtp_port_range=rtp_port_range,
            voice_dir=voice_dir,
            media_factory=media_factory or rtp_session_factory,
            spawn=self._spawn,
            policy=policy,
            latching=latching,
            max_dialogs_per_source=max_dialogs_per_source,
            digest=digest,
            refusals=refusals,
        )

    @property
    def active_calls(self) -> int:
        return self._calls.active

    @property
    def tcp_port(self) -> int | None:
        return self._tcp.port if self._tcp is not None else None

    @property
    def tls_port(self) -> int | None:
        return self._tls.port if self._tls is not None else None

    @property
    def stream_stats(self) -> dict[str, StreamStats]:
        """Connection counters by transport name ("TCP", "TLS")."""
        return {t.name: t.stats for t in (self._tcp, self._tls) if t is not None}

    async def start(self) -> None:
        try:
            await self._open_udp_and_tcp()
            if self._tls_context is not None:
                self._tls = await StreamTransport.open(
                    self._host,
                    self._requested_tls_port,
                    self._on_message,
                    self._on_bad_frame,
                    limits=self._stream_limits,
                    tls_context=self._tls_context,
                )
        except SipTransportError:
            await self._close_transports()
            raise
        self._calls.local_port = self.port
        self._watchdog = asyncio.create_task(self._rtp_watchdog())
        _logger.info(
            "SIP UAS listening on %s:%d/udp%s%s",
            self._host,
            self.port,
            "+tcp" if self._tcp else "",
            f", {self.tls_port}/tls" if self._tls else "",
        )

    async def _open_udp_and_tcp(self) -> None:
        """UDP and TCP on the same port number (RFC 3261 §18.2.1); with port 0 the kernel picks a
        UDP port and we retry if that number is taken for TCP."""
        attempts = BIND_ATTEMPTS if self._requested_port == 0 and self._tcp_enabled else 1
        for attempt in range(attempts):
            udp = await UdpTransport.open(self._host, self._requested_port, self._on_message)
            if not self._tcp_enabled:
                self._transport, self.port = udp, udp.port
                return
            try:
                self._tcp = await StreamTransport.open(
                    self._host, udp.port, self._on_message, self._on_bad_frame, limits=self._stream_limits
                )
            except SipTransportError:
                udp.close()
                if attempt + 1 == attempts:
                    raise
                continue
            self._transport, self.port = udp, udp.port
            return

    async def _close_transports(self) -> None:
        for stream in (self._tcp, self._tls):
            if stream is not None:
                await stream.close()
        self._tcp = self._tls = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await self._calls.end_all("shutdown")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_transports()

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if isinstance(addr, StreamPeer):
            addr.write(data)  # the connection counts a reply it can no longer deliver
        elif self._transport is not None:
            self._transport.send(data, addr)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats.handler_errors += 1
            self._log.warning("task", "SIP handler failed: %r", task.exception())

    # ---- message dispatch (all transports) ----------------------------------------------------
    def _on_bad_frame(self, exc: SipFramingError, peer: StreamPeer) -> None:
        """A stream that cannot be framed: answer if the head allows it; the connection closes."""
        self.stats.received += 1
        self.stats.malformed += 1
        self._log.warning("framing", "unframeable SIP on %s from %s: %s", peer.transport, peer, exc.reason)
        if exc.head and is_ack(exc.head):
            self._dropped_ack(peer, exc.reason)
            return
        reply = error_response_for(exc.head, exc.status) if exc.head else None
        if reply is None:
            self.stats.dropped += 1
        else:
            self.stats.responses[exc.status] += 1
            self._send(reply, peer)

    def _on_message(self, data: bytes, addr: tuple[str, int], arrived: float | None = None) -> None:
        """One datagram (with its receive time) or one framed stream message. Never raises:
        every failure is counted and logged (rate-limited)."""
        self.stats.received += 1
        if not data.strip(b"\r\n"):
            return  # CRLF keep-alive (RFC 5626 §4.4.1)
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.stats.malformed += 1
            if is_ack(data):
                self._dropped_ack(addr, exc.reason)
                return
            self._log.warning("malformed", "malformed SIP from %s: %s", addr, exc.reason)
            reply = error_response_for(data, exc.status)
            if reply is None:
                self.stats.dropped += 1
            else:
                self.stats.responses[exc.status] += 1
                self._send(reply, addr)
            return
        except Exception as exc:  # a parser bug must not kill the socket
            self.stats.malformed += 1
            self.stats.dropped += 1
            self._log.warning("parser-bug", "parser error on message from %s: %r", addr, exc)
            return
        if not self._trusted.allows(addr[0]):
            self._refuse_untrusted(msg, addr)
            return
        if isinstance(msg, SipResponse):
            self._calls.on_response(msg)
            return
        if len(self._tasks) >= MAX_INFLIGHT:
            self.stats.dropped += 1
            self._log.warning(
                "overload", "dropping %s from %s: %d requests in flight", msg.method, addr, len(self._tasks)
            )
            return
        # The arrival time, not the time a busy loop gets to it, is when a BYE ended the call.
        self._spawn(self._handle_request(msg, addr, time.time() if arrived is None else arrived))

    def _dropped_ack(self, addr: tuple[str, int], why: str) -> None:
        """An ACK is never answered (RFC 3261 §17): one that cannot be read is dropped, logged
        and counted; the 2xx it was for is resent until an ACK that can be read, or a re-INVITE
        or BYE in the dialog, arrives."""
        self.stats.dropped += 1
        self.stats.tolerated["malformed-ack"] += 1
        self._log.warning(
            "malformed-ack", "dropped a malformed ACK from %s (ACKs are never answered): %s", addr, why
        )

    def _refuse_untrusted(self, msg: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        """A message from a host outside ``sip_trusted_sources``: answered on the spot (no task,
        no transaction, no dialog, no RTP port), so a flood of them costs one parse and one reply
        each. OPTIONS gets 403 too: a 200 would tell a scanner that a recorder listens here and
        what it supports, while an SBC the operator forgot to list sees the 403 in its own log at
        its first keep-alive, long before the first call goes unrecorded."""
        self.stats.untrusted += 1
        if isinstance(msg, SipResponse):
            self.stats.dropped += 1
            return
        if msg.method == "ACK" or any(not msg.get(h) for h in ("via", "from", "to", "call-id", "cseq")):
            self.stats.dropped += 1  # nothing answers an ACK; without these headers no reply can be built
            self._log.warning("untrusted", "dropped %s from untrusted source %s", msg.method, addr[0])
            return
        try:
            # An INVITE's refusal is logged, counted and stored by the call manager (why=...).
            self._calls.respond(msg, addr, 403, reason="Forbidden", why="untrusted-source")
        except (SipError, ValueError) as exc:
            self.stats.dropped += 1
            self._log.warning(
                "untrusted", "dropped %s from untrusted source %s: %s", msg.method, addr[0], exc
            )
            return
        if msg.method != "INVITE":
            self._log.warning("untrusted", "refused %s from untrusted source %s (403)", msg.method, addr[0])

    async def _handle_request(self, req: SipRequest, addr: tuple[str, int], arrived: float) -> None:
        try:
            await self._dispatch(req, addr, arrived)
        except (SipError, ValueError) as exc:
            # Header parsed lazily (e.g. Contact) turned out malformed: answer 400 if we can.
            self.stats.malformed += 1
            if req.method == "ACK":
                self._dropped_ack(addr, str(exc))
                return
            self._log.warning("bad-request", "bad %s from %s: %s", req.method, addr, exc)
            self.respond(req, addr, 400)

    def respond(
        self, req: SipRequest, addr: tuple[str, int], status: int, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self._calls.respond(req, addr, status, headers=headers)

    async def _dispatch(self, req: SipRequest, addr: tuple[str, int], arrived: float) -> None:
        missing = [h for h in ("via", "from", "to", "call-id", "cseq") if not req.get(h)]
        if missing:
            # A response needs exactly these headers (RFC 3261 §8.2.6.2), so none can be built.
            self.stats.malformed += 1
            self.stats.dropped += 1
            self._log.warning(
                "missing", "dropping %s from %s without %s", req.method, addr, ", ".join(missing)
            )
            return
        if req.method not in SUPPORTED_METHODS:
            self.respond(req, addr, 501, (("allow", ALLOW),))
            return
        if req.method == "ACK":
            await self._calls.on_ack(req)
            return
        if req.method == "CANCEL":
            self._calls.on_cancel(req, addr)
            return
        if self._calls.resend_if_retransmission(req, addr):
            return
        if not req.uri.is_sip:
            self.respond(req, addr, 416)
            return
        unsupported = [t for t in req.get_all("require") if t.strip().lower() not in SUPPORTED_EXTENSIONS]
        if unsupported and req.method != "BYE":
            self.respond(req, addr, 420, (("unsupported", ", ".join(unsupported)),))
            return
        to = req.to
        in_dialog = to is not None and to.tag is not None
        if req.method == "OPTIONS" and not in_dialog:
            self.respond(req, addr, 200, (("allow", ALLOW), ("accept", ACCEPT), ("supported", "siprec")))
        elif req.method == "INVITE":
            await self._calls.on_invite(req, addr, in_dialog)
        elif req.method == "BYE":
            await self._calls.on_bye(req, addr, arrived)
        elif req.method == "UPDATE":
            await self._calls.on_update(req, addr)
        elif req.method == "INFO":
            await self._calls.midcall.on_info(req, addr)
        else:  # in-dialog OPTIONS
            if self._calls.find_dialog(req) is None:
                self.respond(req, addr, 481)
            else:
                self.respond(req, addr, 200, (("allow", ALLOW), ("accept", ACCEPT)))

    async def _rtp_watchdog(self) -> None:
        interval = max(0.05, min(1.0, self._rtp_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for call in self._calls.live_calls():
                # Only flowing media can time out: not a deferred, paused, held or stopped one.
                if not call.media_started or call.media_state is not MediaState.ACTIVE or call.stopped_at:
                    continue
                baseline = call.active_since or call.answered_at or now
                last = max(call.media.last_packet_at or baseline, baseline)
                if now - last > self._rtp_timeout:
                    self._log.warning(
                        "rtp-timeout",
                        "call %s: no RTP on a stream for %.0f s; ending it",
                        display_text(call.call_id),
                        now - last,
                    )
                    self._spawn(self._calls.end_call(call, now, "rtp timeout", send_bye=True))
