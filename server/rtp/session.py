"""One received RTP stream recorded into one WAV: the adapter between a UDP socket and the voice
timeline and writer.

Datagram → RTCP check → source latch → RTP parse → payload-type check → G.711 decode →
``VoiceTimeline`` → ``WavWriter``. Nothing a sender does can raise out of
``datagram_received``: every rejected packet is counted in ``stats`` and logged rate-limited. A
periodic tick lets the timeline fill silence and the writer sync its header while no packets
arrive, so the file keeps pace with the call even during hold or silence suppression.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from server.rtp.codecs import AudioCodec, codec_by_name
from server.rtp.errors import PortRangeExhaustedError, RtpPacketError, RtpSessionError
from server.rtp.packet import RtpPacket, is_rtcp
from server.rtp.ratelog import RateLimitedLog
from server.rtp.stats import RtpStats
from server.voice.errors import WavWriterError
from server.voice.timeline import Chunk, Verdict, VoiceTimeline
from server.voice.wav_writer import WavWriter

log = logging.getLogger(__name__)

# Packets that arrive between our 200 OK and ``start`` (the ACK) are kept, not lost: 2 s at 20 ms.
_EARLY_PACKETS = 100


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.session: RtpSession | None = None  # set once the port is bound and the WAV created

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.session is not None:
            self.session._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (e.g. port unreachable for our own sends) are harmless for a receiver.
        if self.session is not None:
            self.session._ratelog.warning("icmp", "RTP port %d: socket error %s", self.session.port, exc)


class RtpSession:
    """Receives one RTP stream on its own even port and records it; use ``await RtpSession.open``."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        port: int,
        writer: WavWriter,
        codec: AudioCodec,
        clock: Callable[[], float],
        tick_interval: float,
    ) -> None:
        self.port = port
        self.codec = codec
        self.stats = RtpStats()
        self.last_packet_at: float | None = None
        self.source: tuple[str | object, ...] | None = None
        self.error: str | None = None  # set when the voice file could no longer be written
        self._transport = transport
        self._writer = writer
        self._clock = clock
        self._tick_interval = tick_interval
        self._timeline: VoiceTimeline | None = None
        self._early: collections.deque[tuple[RtpPacket, float]] = collections.deque()
        self._pending_pauses: list[tuple[str, float]] = []
        self._tick_task: asyncio.Task[None] | None = None
        self._closed = False
        self._ratelog = RateLimitedLog(log)

    @classmethod
    async def open(
        cls,
        bind_host: str,
        port_range: tuple[int, int],
        voice_path: Path,
        codec: str,
        *,
        clock: Callable[[], float] = time.time,
        tick_interval: float = 0.1,
    ) -> RtpSession:
        """Bind the first free even port of the inclusive range and create the WAV."""
        audio_codec = codec_by_name(codec)
        low, high = port_range
        if not 0 < low <= high <= 65535:
            raise RtpSessionError(f"invalid RTP port range {low}-{high}")
        loop = asyncio.get_running_loop()
        transport: asyncio.DatagramTransport | None = None
        receiver = _Receiver()
        port = low + (low % 2)
        while port <= high:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: receiver, local_addr=(bind_host, port)
                )
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise RtpSessionError(f"cannot bind RTP port {bind_host}:{port}: {exc}") from exc
            port += 2
        if transport is None:
            raise PortRangeExhaustedError(f"no free even RTP port in {low}-{high} on {bind_host}")
        try:
            writer = WavWriter(voice_path, sample_rate=audio_codec.clock_rate)
        except WavWriterError as exc:
            transport.close()
            raise RtpSessionError(str(exc)) from exc
        session = cls(transport, port, writer, audio_codec, clock, tick_interval)
        receiver.session = session
        return session

    @property
    def voice_path(self) -> Path:
        return self._writer.path

    @property
    def samples_written(self) -> int:
        return self._writer.samples_written

    def start(self, answered_at: float) -> None:
        """The call is answered: ``answered_at`` (server time) is sample 0 of the WAV."""
        if self._timeline is not None or self._closed:
            raise RtpSessionError("RTP session already started or closed")
        self._timeline = VoiceTimeline(answered_at, sample_rate=self.codec.clock_rate)
        for action, at in self._pending_pauses:
            if action == "pause":
                self.pause(at)
            else:
                self.resume(at)
        self._pending_pauses.clear()
        while self._early:
            packet, arrival = self._early.popleft()
            self._place(packet, arrival)
        self._tick_task = asyncio.get_running_loop().create_task(self._tick(), name=f"rtp-tick-{self.port}")

    def pause(self, at: float) -> None:
        """Write silence for every sample from server time ``at`` on, whatever arrives."""
        if self._timeline is None:
            self._pending_pauses.append(("pause", at))
            return
        if self._closed:
            return
        for start, end in self._timeline.pause(at):
            self._guard_write(self._writer.zero, start, end)

    def resume(self, at: float) -> None:
        """Record received audio again from server time ``at`` on."""
        if self._timeline is None:
            self._pending_pauses.append(("resume", at))
            return
        if not self._closed:
            self._timeline.resume(at)

    @property
    def paused(self) -> bool:
        return self._timeline is not None and self._timeline.paused

    async def close(self, ended_at: float) -> None:
        """Stop receiving and finalise the WAV, padded with silence to ``ended_at``; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        timeline = self._timeline
        if timeline is None:  # never answered: an empty but valid WAV
            timeline = self._timeline = VoiceTimeline(ended_at, sample_rate=self.codec.clock_rate)
        result = timeline.finish(ended_at)
        self._write(result.chunks)
        self._guard_write(self._writer.truncate, result.length)
        try:
            self._writer.close()
        except WavWriterError as exc:
            self.error = str(exc)
            log.error("RTP port %d: voice file not finalised: %s", self.port, exc)
        self.stats.samples_written = self._writer.samples_written

    def _on_datagram(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            self._receive(data, addr)
        except Exception:  # a bug must not kill the socket's receive loop; keep recording
            self.stats.dropped_malformed += 1
            log.exception("RTP port %d: unexpected error handling a packet", self.port)

    def _receive(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.stats.received += 1
        if self._closed:
            return
        arrival = self._clock()
        if is_rtcp(data):
            self.stats.rtcp += 1
            return
        if self.source is not None and addr != self.source:
            self.stats.dropped_foreign += 1
            self._ratelog.warning("foreign", "RTP port %d: dropped packet from %s", self.port, addr)
            return
        try:
            packet = RtpPacket.parse(data)
            if not packet.payload:
                raise RtpPacketError("empty payload")
        except RtpPacketError as exc:
            self.stats.dropped_malformed += 1
            self._ratelog.warning(
                "malformed", "RTP port %d: malformed packet from %s: %s", self.port, addr, exc
            )
            return
        if packet.payload_type != self.codec.payload_type:
            self.stats.dropped_payload_type += 1
            self._ratelog.warning(
                "payload_type", "RTP port %d: dropped payload type %d", self.port, packet.payload_type
            )
            return
        if self.source is None:
            self.source = addr
        self.last_packet_at = arrival
        if self._timeline is None:
            if len(self._early) == _EARLY_PACKETS:
                self._early.popleft()
                self.stats.dropped_early += 1
            self._early.append((packet, arrival))
            return
        self._place(packet, arrival)

    def _place(self, packet: RtpPacket, arrival: float) -> None:
        assert self._timeline is not None
        timeline = self._timeline
        before = (timeline.stats.ssrc_changes, timeline.stats.reanchors)
        result = timeline.push(packet.ssrc, packet.timestamp, self.codec.decode(packet.payload), arrival)
        self.stats.ssrc_changes = timeline.stats.ssrc_changes
        self.stats.reanchors = timeline.stats.reanchors
        if (timeline.stats.ssrc_changes, timeline.stats.reanchors) != before:
            self._ratelog.warning("anchor", "RTP port %d: re-anchored the voice timeline", self.port)
        if result.verdict is Verdict.ACCEPTED:
            self.stats.written += 1
        elif result.verdict is Verdict.LATE:
            self.stats.dropped_late += 1
        elif result.verdict is Verdict.DUPLICATE:
            self.stats.dropped_duplicate += 1
        elif result.verdict is Verdict.AFTER_END:
            self.stats.dropped_after_end += 1
        self._write(result.chunks)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            if self._timeline is not None and not self._closed:
                self._write(self._timeline.flush(self._clock()))
                self._guard_write(self._writer.maybe_sync)

    def _write(self, chunks: Iterable[Chunk]) -> None:
        for chunk in chunks:
            if not self._guard_write(self._writer.write, chunk.samples):
                return
        self.stats.samples_written = self._writer.samples_written

    def _guard_write(self, action: Callable[..., None], *args: Any) -> bool:
        """Run a writer operation; after a failure stop writing (positions would be wrong)."""
        if self.error is not None:
            return False
        try:
            action(*args)
        except WavWriterError as exc:
            self.error = str(exc)
            log.error("RTP port %d: voice file write failed, recording stops: %s", self.port, exc)
            return False
        return True
