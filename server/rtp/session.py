"""One received RTP stream recorded into a voice sink: the adapter between two UDP sockets (RTP on
an even port, RTCP on the next odd one) and the voice timeline and writer.

What happens to each datagram — the packet checks, payload types, and the G.711 fast path of
runs — is ``server.rtp.session_receive.ReceivePath``, which ``RtpSession`` inherits; this module
is the session's life: opening its sockets and voice file, start (with what arrived before it),
pause and resume, relatch, the periodic tick and close.

A periodic tick lets the timeline fill silence and the writer sync while no packets arrive, so
the file keeps pace with the call even during hold or silence suppression. The tick flushes
silence only up to the time of the *previous* tick: the loop has polled the sockets since then,
whereas datagrams that arrived during a stall of the loop are still unread when the timers due
during it run (libuv runs timers before polling), and flushing up to "now" would turn them into
late packets.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import RtpSessionError
from server.ratelog import RateLimitedLog
from server.rtp.codecs import AudioCodec
from server.rtp.decoder import PayloadDecoder
from server.rtp.offloop import finalise_off_loop
from server.rtp.packet import RtpPacket
from server.rtp.payload_types import PayloadTypes, payload_decoders
from server.rtp.placement import Placement
from server.rtp.ports import ReservedPair
from server.rtp.run import RunBuffer
from server.rtp.session_args import validated_arguments
from server.rtp.session_receive import RUN_CODECS, ReceivePath
from server.rtp.session_sockets import open_sockets
from server.rtp.sink import VoiceSink
from server.rtp.source import Address, SourceFilter
from server.rtp.stats import RtpStats

if TYPE_CHECKING:
    from server.rtp.srtp import SrtpReceivePath

log = logging.getLogger(__name__)


class RtpSession(ReceivePath):
    """Receives one RTP stream on its own even port and records it; use ``await RtpSession.open``."""

    def __init__(
        self,
        transports: tuple[asyncio.DatagramTransport, asyncio.DatagramTransport],
        port: int,
        writer: VoiceSink,
        decoder: PayloadDecoder,
        sources: SourceFilter,
        payload_type: int,
        telephone_event_pt: int | None,
        clock: Callable[[], float],
        tick_interval: float,
        arrival_clock: Callable[[], float] | None = None,
        payload_codecs: Mapping[int, AudioCodec] | None = None,
        comfort_noise: frozenset[int] = frozenset(),
    ) -> None:
        self.port = port
        self.rtcp_port = port + 1
        self.codec: AudioCodec = decoder.codec
        self.sample_rate = decoder.output_rate  # of the voice file (the sink)
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.stats = RtpStats()
        self._ratelog = RateLimitedLog(log)
        self.last_packet_at: float | None = None  # any RTP from the source, DTMF and CN included
        self.last_rtcp_at: float | None = None
        self._transports = transports
        self._writer = writer
        self._decoder = decoder
        self._sources = sources
        self._clock = clock
        # For packets off the fast path (a stream's first, anchoring one among them): when the
        # datagram arrived, not when a busy loop read it (server.rxstamp).
        self._arrival_clock = arrival_clock or clock
        self._tick_interval = tick_interval
        self._placement = Placement(port, writer, decoder, self.stats, self._ratelog)
        self._early: collections.deque[tuple[RtpPacket, float]] = collections.deque()
        self._pending_pauses: list[tuple[str, float]] = []
        self._tick_handle: asyncio.TimerHandle | None = None
        self._previous_tick_at = -math.inf  # the loop has polled the sockets since then
        self._run = RunBuffer()
        self._runs = decoder.codec.name in RUN_CODECS
        self._closed = False
        self._types = PayloadTypes(
            port, self.stats, self._ratelog, clock, decoder, payload_type, payload_codecs, comfort_noise
        )
        self._srtp: SrtpReceivePath | None = None  # RTP/SAVP: set by ``open`` (server.rtp.srtp)

    @classmethod
    async def open(
        cls,
        bind_host: str,
        port_range: tuple[int, int],
        voice_path: Path | None,
        codec: str,
        *,
        writer: VoiceSink | None = None,
        sample_rate: int | None = None,
        payload_type: int | None = None,
        telephone_event_pt: int | None = None,
        latching: bool = True,
        expected_source: tuple[str, int] | None = None,
        peer_host: str | None = None,
        clock: Callable[[], float] | None = None,
        tick_interval: float = 0.1,
        reserved: ReservedPair | None = None,
        payload_codecs: Mapping[int, str] | None = None,
        srtp: tuple[str, bytes] | None = None,
    ) -> RtpSession:
        """Bind a free even port (and the odd one after it, for RTCP) of the inclusive range
        (``server.rtp.ports``), and create the mono WAV at ``voice_path`` unless a ``writer`` is
        given (``server.rtp.session_sockets``).

        ``sample_rate`` is the sink's rate (default: the codec's audio rate); a codec with a
        lower audio rate is upsampled to it. ``payload_type`` overrides the codec's static one.
        A given ``writer`` is the session's from then on: ``close`` closes it. Without a
        ``clock`` the session runs on ``time.time`` and takes the arrival of packets off the fast
        path from the kernel's receive stamps; a given ``clock`` (tests) is used for everything.
        A ``reserved`` pair (``server.rtp.ports.reserve_pair``) is used instead of binding one;
        ``open`` owns it from then on, and closes it if it fails. ``peer_host`` (the signalling
        peer's IP) restricts latching to it and the SDP's host (``server.rtp.source``).
        ``payload_codecs`` (PT → codec name) are the other offered types to decode, packet by packet,
        and any dynamic comfort-noise type (``CN``). ``srtp`` (SDES suite, master key || salt):
        the stream is SRTP, unprotected before anything else (server.rtp.srtp).
        """
        try:
            audio_pt, decoder = validated_arguments(
                codec, port_range, voice_path, writer, sample_rate, payload_type, telephone_event_pt
            )
            sources = SourceFilter(latching, expected_source, peer_host)
        except BaseException:
            if reserved is not None:
                reserved.close()
            raise
        sockets = await open_sockets(
            bind_host, port_range, reserved, voice_path, writer, decoder.output_rate, clock, srtp is not None
        )
        port = sockets.port
        session = cls(
            sockets.transports,
            port,
            sockets.writer,
            decoder,
            sources,
            audio_pt,
            telephone_event_pt,
            clock or time.time,
            tick_interval,
            sockets.arrival_clock,
            payload_decoders(audio_pt, decoder.codec, payload_codecs, telephone_event_pt),
            frozenset(pt for pt, name in (payload_codecs or {}).items() if name.upper() == "CN"),
        )
        if srtp is not None:
            try:
                from server.rtp.srtp import SrtpInbound, SrtpReceivePath  # only SRTP calls load libsrtp

                inbound = SrtpInbound(srtp[0], srtp[1], session.stats, session._clock)
                session._srtp = SrtpReceivePath(
                    inbound, sources, session._ratelog, port, session._on_datagram, session._on_rtcp_datagram
                )
            except BaseException:
                await session.close(0.0)
                raise
        for receiver in sockets.receivers:
            receiver.session = session
        return session

    @property
    def voice_path(self) -> Path:
        return self._writer.path

    @property
    def samples_written(self) -> int:
        return self._writer.samples_written

    @property
    def error(self) -> str | None:
        """Why the voice file could no longer be written, if it could not."""
        return self._placement.error

    @property
    def source(self) -> Address | None:
        """The address media is recorded from (latched, or the expected one once it sent)."""
        return self._sources.source

    def relatch(self, expected_source: tuple[str, int] | None = None) -> None:
        """The stream moved (a re-INVITE): with latching the next valid packet's address becomes
        the source; without, ``expected_source`` (if given) replaces the expected address."""
        if self._placement.timeline is not None and not self._closed:
            self._place_run()
        self._run.disarm()
        self._sources.relatch(expected_source)

    def start(self, answered_at: float) -> None:
        """The call is answered: ``answered_at`` (server time) is sample 0 of the voice file."""
        if self._placement.timeline is not None or self._closed:
            raise RtpSessionError("RTP session already started or closed")
        self._placement.begin(answered_at)
        self._previous_tick_at = self._clock()
        for action, at in self._pending_pauses:
            if action == "pause":
                self.pause(at)
            else:
                self.resume(at)
        self._pending_pauses.clear()
        while self._early:
            packet, arrival = self._early.popleft()
            if packet.payload_type != self.payload_type:
                self._switch(packet.payload_type)
            self._place(packet, arrival)
        self._schedule_tick()

    def pause(self, at: float) -> None:
        """Write silence for every sample from server time ``at`` on, whatever arrives."""
        timeline = self._placement.timeline
        if timeline is None:
            self._pending_pauses.append(("pause", at))
            return
        if self._closed:
            return
        self._place_run()
        self._placement.pause(at)

    def resume(self, at: float) -> None:
        """Record received audio again from server time ``at`` on."""
        timeline = self._placement.timeline
        if timeline is None:
            self._pending_pauses.append(("resume", at))
            return
        if not self._closed:
            self._place_run()
            timeline.resume(at)

    @property
    def paused(self) -> bool:
        timeline = self._placement.timeline
        return timeline is not None and timeline.paused

    async def close(self, ended_at: float) -> None:
        """Stop receiving and finalise the voice sink, padded with silence to ``ended_at``; idempotent."""
        if self._closed:
            return
        if self._placement.timeline is not None:
            self._place_run()
        self._run.disarm()
        self._closed = True
        for transport in self._transports:
            transport.close()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self._placement.finish(ended_at)  # never answered: an empty but valid file
        # The final fsyncs take long under load: on the loop they held every other call's media.
        await finalise_off_loop(self._placement.close_sink)

    def _schedule_tick(self) -> None:
        # A timer callback rather than a task looping on sleep: a few µs less per tick, and with
        # thousands of sessions ticking ten times a second that is a noticeable share of a core.
        self._tick_handle = asyncio.get_running_loop().call_later(self._tick_interval, self._tick)

    def _tick(self) -> None:
        placement = self._placement
        if self._closed or placement.timeline is None:
            return
        try:
            now = self._clock()
            self._place_run()
            # Only up to the previous tick: see the module docstring (loop stalls).
            polled_at, self._previous_tick_at = self._previous_tick_at, now
            # While packets flow, each push already emits all that is final; flushing only
            # matters once the stream has gone quiet (hold, silence suppression, loss).
            if now - placement.last_audio_at >= self._tick_interval:
                placement.flush(min(now, polled_at))
            placement.guard(self._writer.maybe_sync)
            self.stats.samples_written = self._writer.samples_written  # per tick, not per packet
        except Exception:  # a bug must not stop the file from keeping pace with the call
            log.exception("RTP port %d: unexpected error in the periodic tick", self.port)
        finally:
            self._schedule_tick()
