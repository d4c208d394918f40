"""What an RTP session does with each datagram it receives: the receive path of
``server.rtp.session.RtpSession``, which inherits it (the session's set-up, pause/resume, tick and
close stay in ``server.rtp.session``).

Datagram → RTCP check → source check → RTP parse → payload-type check (telephone-event and
comfort noise are counted, never written) → decode (and resample to the file's rate) →
``VoiceTimeline`` → ``VoiceSink``.

**Every decodable payload type** (``server.rtp.payload_types``) is decoded by its own payload
type, and a sender may switch between them at any packet. A switch places the pending run with
the old decoder, then changes the session's current payload type: the fast path below compares
that type as part of its 12-byte header check, so it costs nothing per packet.

Nothing a sender does can raise out of ``datagram_received``: every rejected packet is counted
in ``stats`` and logged rate-limited. RTCP (on the odd port or multiplexed on the RTP port) is
read for statistics only.

Decoding happens in arrival order, before the timeline sorts packets, so a reordered or
duplicated G.722 packet perturbs the ADPCM state for a few samples (it re-converges); G.711 has
no state and is unaffected.

**Runs (the G.711 fast path).** Nearly every packet of a live call is the plain continuation of
the one before: same source, same SSRC and payload type, same size, timestamp exactly one packet
on, no padding, extension or CSRC. Such a packet is checked on its first 12 bytes and appended to
the session's current run (``RunBuffer``) without being parsed, decoded or placed; the run goes
to the decoder and timeline as one piece at the next tick, at the first packet that is not a
continuation, on pause, resume, relatch and close, or once it holds ``RUN_MAX_PACKETS``. That
turns the per-packet cost of decode + timeline + writer into a per-run cost (figures in
benchmarks/RESULTS.md). Anything else takes the full path above, and a packet whose timestamp
falls inside a recently placed run is a duplicate, as it would be packet by packet. Counters
other than ``received`` reflect a run once it is placed. G.722 keeps the packet-by-packet path
(its decoder is stateful, and its load is not where the scale is).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from server.errors import RtcpPacketError, RtpPacketError
from server.ratelog import RateLimitedLog
from server.rtp import rtcp
from server.rtp.codecs import AudioCodec
from server.rtp.decoder import PayloadDecoder
from server.rtp.packet import RtpPacket, is_rtcp
from server.rtp.payload_types import PayloadTypes
from server.rtp.placement import Placement
from server.rtp.run import TIMESTAMP_SSRC, RunBuffer
from server.rtp.source import Address, SourceFilter
from server.rtp.stats import RtpStats

if TYPE_CHECKING:
    from server.rtp.srtp import SrtpReceivePath

log = logging.getLogger("server.rtp.session")  # one logger for the session and its parts

# Packets that arrive between our 200 OK and ``start`` (the ACK) are kept, not lost: 2 s at 20 ms.
_EARLY_PACKETS = 100
_TIMESTAMP_SSRC = TIMESTAMP_SSRC
RUN_CODECS = frozenset({"PCMU", "PCMA"})  # one byte per sample and per timestamp unit, no state


class ReceivePath:
    """The datagram handlers of ``RtpSession`` (its base class): the state they use is the
    session's, set up by ``RtpSession.__init__``; the annotations below name it."""

    port: int
    rtcp_port: int
    codec: AudioCodec
    payload_type: int
    telephone_event_pt: int | None
    stats: RtpStats
    last_packet_at: float | None  # any RTP from the source, DTMF and CN included
    last_rtcp_at: float | None
    _ratelog: RateLimitedLog
    _decoder: PayloadDecoder
    _sources: SourceFilter
    _clock: Callable[[], float]
    _arrival_clock: Callable[[], float]
    _placement: Placement
    _early: collections.deque[tuple[RtpPacket, float]]
    _run: RunBuffer
    _runs: bool  # the current codec takes the fast path (RUN_CODECS)
    _closed: bool
    _types: PayloadTypes
    _srtp: SrtpReceivePath | None

    def _on_datagram(self, data: bytes, addr: Address) -> None:
        run = self._run
        # The fast path (module docstring): the exact continuation of the armed packet.
        if addr == run.source and len(data) == run.size and data[0] == 0x80 and data[1] == run.second_octet:
            timestamp, ssrc = _TIMESTAMP_SSRC.unpack_from(data, 4)
            if timestamp == run.next_timestamp and ssrc == run.ssrc:
                self.stats.received += 1
                if run.append(data, timestamp, self._clock()):
                    self._guarded_place_run()
                return
        try:
            self._receive(data, addr)
        except Exception:  # a bug must not kill the socket's receive loop; keep recording
            self.stats.dropped_malformed += 1
            log.exception("RTP port %d: unexpected error handling a packet", self.port)

    def _on_srtp(self, data: bytes, addr: Address, rtcp_port: bool) -> None:
        """An SRTP session's datagram: unprotected, then handed to the plain path (server.rtp.srtp)."""
        if self._srtp is not None and not self._closed:
            self._srtp.datagram(data, addr, rtcp_port)

    def _on_rtcp_datagram(self, data: bytes, addr: Address) -> None:
        try:
            self._rtcp(data, addr)
        except Exception:
            self.stats.rtcp_malformed += 1
            log.exception("RTCP port %d: unexpected error handling a packet", self.rtcp_port)

    def _receive(self, data: bytes, addr: Address) -> None:
        stats = self.stats
        stats.received += 1
        if self._closed:
            return
        if is_rtcp(data):  # RFC 5761 multiplexing on the RTP port
            self._rtcp(data, addr)
            return
        sources = self._sources
        if addr != sources.source and not sources.accepts(addr):  # equal to the source: accepted
            stats.dropped_foreign += 1
            self._ratelog.warning("foreign", "RTP port %d: dropped packet from %s", self.port, addr)
            return
        try:
            packet = RtpPacket.parse(data)
            if not packet.payload:
                raise RtpPacketError("empty payload")
        except RtpPacketError as exc:
            stats.dropped_malformed += 1
            self._ratelog.warning(
                "malformed", "RTP port %d: malformed packet from %s: %s", self.port, addr, exc
            )
            return
        payload_type = packet.payload_type
        audio = True
        if payload_type != self.payload_type:
            if payload_type == self.telephone_event_pt:
                stats.dropped_dtmf += 1  # its span gets no audio packets: the timeline fills silence
                audio = False
            elif payload_type in self._types.comfort_noise:
                stats.dropped_cn += 1  # recorded as the silence the timeline fills the gap with
                audio = False
            elif payload_type not in self._types.codecs:
                self._types.undecodable(payload_type, self._run.pending)
                return
        arrival = self._arrival_clock()
        if sources.source is None:
            sources.latch(addr)
        self.last_packet_at = arrival
        if not audio:
            return
        self._types.undecodable_since = None
        if self._placement.timeline is None:
            if len(self._early) == _EARLY_PACKETS:
                self._early.popleft()
                stats.dropped_early += 1
            self._early.append((packet, arrival))
            return
        if payload_type != self.payload_type:
            self._switch(payload_type)
        if self._runs:
            run = self._run
            self._place_run()  # what came before this packet goes first
            if run.placed_recently(packet.ssrc, packet.timestamp):
                stats.dropped_duplicate += 1
                return
            written = stats.written
            self._place(packet, arrival)
            # Placed, with a plain header, and the stream's place is final: until then each packet
            # brings its own (kernel) arrival time, which may move the stream (VoiceTimeline).
            if stats.written != written and data[0] == 0x80 and self._placement.timeline.settled:
                run.arm(addr, len(data), payload_type, packet.ssrc, packet.timestamp, len(packet.payload))
            return
        self._place(packet, arrival)

    def _switch(self, payload_type: int) -> None:
        """The sender moved to another decodable payload type: what was received before it is
        placed with the old decoder, then this type's decoder (made once) is the current one."""
        if self._placement.timeline is not None:
            self._place_run()
        self._run.disarm()
        decoder = self._types.decoder(payload_type, self._decoder)
        self.stats.codec_changes += 1
        log.debug(
            "RTP port %d: payload type %d → %d (%s)",
            self.port,
            self.payload_type,
            payload_type,
            decoder.codec.name,
        )
        self.payload_type = payload_type
        self.codec = decoder.codec
        self._decoder = self._placement.decoder = decoder
        self._runs = decoder.codec.name in RUN_CODECS

    def _place(self, packet: RtpPacket, arrival: float) -> None:
        self._placement.place(packet.ssrc, packet.timestamp, packet.payload, arrival, 1, arrival)

    def _guarded_place_run(self) -> None:
        try:
            self._place_run()
        except Exception:  # as in _on_datagram: a bug must not stop the recording
            log.exception("RTP port %d: unexpected error placing a run of packets", self.port)

    def _place_run(self) -> None:
        """Decode and place the pending run of continuations (if any) as one piece."""
        run = self._run.take()
        if run is not None:
            now = self._clock()
            self.last_packet_at = now
            self._placement.place(run.ssrc, run.timestamp, run.payload, run.arrival, run.packets, now)

    def _rtcp(self, data: bytes, addr: Address) -> None:
        stats = self.stats
        if self._closed:
            return
        stats.rtcp += 1
        if not self._sources.accepts_rtcp(addr):
            stats.rtcp_foreign += 1
            self._ratelog.warning("rtcp_foreign", "RTCP port %d: dropped packet from %s", self.port + 1, addr)
            return
        try:
            packets = rtcp.parse_compound(data)
        except RtcpPacketError as exc:
            stats.rtcp_malformed += 1
            self._ratelog.warning("rtcp_malformed", "RTCP from %s malformed: %s", addr, exc)
            return
        rtcp.record(stats, packets)
        self.last_rtcp_at = self._clock()
