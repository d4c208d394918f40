"""An RTP session's sockets and voice file, made for ``RtpSession.open`` (server.rtp.session).

The even/odd port pair is bound (or a reserved one taken over, server.rtp.ports), the mono WAV
created off the loop unless a sink is given, and the pair handed to the loop with the datagram
protocols below, which pass each datagram to the session once it exists. Whatever fails, all
made so far is closed. The protocols are typed against ``ReceivingSession`` rather than the
session class so that this module does not import the session (no import cycle).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from server.errors import RtpSessionError, WavWriterError
from server.ratelog import RateLimitedLog
from server.rtp.offloop import create_off_loop
from server.rtp.ports import ReservedPair, attach_pair, reserve_pair
from server.rtp.sink import VoiceSink
from server.rtp.source import Address
from server.rxstamp import receive_clock
from server.voice.wav_writer import WavWriter


class ReceivingSession(Protocol):
    """What a receiver calls on its session (``server.rtp.session.RtpSession``)."""

    port: int
    _ratelog: RateLimitedLog

    def _on_datagram(self, data: bytes, addr: Address) -> None: ...

    def _on_rtcp_datagram(self, data: bytes, addr: Address) -> None: ...

    def _on_srtp(self, data: bytes, addr: Address, rtcp_port: bool) -> None: ...


class Receiver(asyncio.DatagramProtocol):
    def __init__(self, is_rtcp_port: bool) -> None:
        self.session: ReceivingSession | None = None  # set once the ports are bound and the sink exists
        self._is_rtcp_port = is_rtcp_port

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.session is not None:
            if self._is_rtcp_port:
                self.session._on_rtcp_datagram(data, addr)
            else:
                self.session._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (e.g. port unreachable for our own sends) are harmless for a receiver.
        if self.session is not None:
            self.session._ratelog.warning("icmp", "RTP port %d: socket error %s", self.session.port, exc)


class SrtpReceiver(Receiver):
    """An SRTP stream's socket: every datagram is unprotected first (``RtpSession._on_srtp``); the
    plain path keeps its own receiver, without even this method call's test."""

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.session is not None:
            self.session._on_srtp(data, addr, self._is_rtcp_port)


@dataclass(frozen=True, slots=True)
class SessionSockets:
    transports: tuple[asyncio.DatagramTransport, asyncio.DatagramTransport]
    port: int
    writer: VoiceSink
    receivers: tuple[Receiver, Receiver]  # give them the session: ``receiver.session = ...``
    arrival_clock: Callable[[], float]


async def open_sockets(
    bind_host: str,
    port_range: tuple[int, int],
    reserved: ReservedPair | None,
    voice_path: Path | None,
    writer: VoiceSink | None,
    rate: int,
    clock: Callable[[], float] | None,
    srtp: bool,
) -> SessionSockets:
    """The pair (``reserved``, else a free one of ``port_range``) attached to the loop, and the
    ``writer`` (else a WAV at ``voice_path`` of ``rate`` Hz). ``reserved`` is this function's
    from then on: closed if it fails. Without a ``clock``, arrivals off the fast path are the
    kernel's receive stamps (server.rxstamp)."""
    pair, made_writer = reserved, False
    try:
        if pair is None:
            pair = reserve_pair(bind_host, *port_range)  # bound: packets now wait in the kernel
        if writer is None:
            assert voice_path is not None
            try:
                created: WavWriter = await create_off_loop(
                    lambda: WavWriter(voice_path, sample_rate=rate), WavWriter.close
                )
                writer = created
            except WavWriterError as exc:
                raise RtpSessionError(str(exc)) from exc
            made_writer = True
        arrival_clock = clock or receive_clock(pair.rtp, time.time)
        kind = SrtpReceiver if srtp else Receiver
        receivers = (kind(is_rtcp_port=False), kind(is_rtcp_port=True))
        port, attaching, pair = pair.port, pair, None
        transports = await attach_pair(attaching, receivers)  # closes the pair itself on failure
    except BaseException:
        if pair is not None:
            pair.close()
        if made_writer and writer is not None:
            with contextlib.suppress(WavWriterError):
                writer.close()
        raise
    return SessionSockets(transports, port, writer, receivers, arrival_clock)
