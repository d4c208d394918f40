"""RTCP compound packets (RFC 3550 §6), read for statistics only: SR, RR, SDES, BYE.

The recorder never sends RTCP; it reads what the sender reports so a call record can say how many
packets the sender claims to have sent, what loss and jitter its peers reported, and whether it
said BYE. Every length is checked before it is trusted; anything malformed raises
``RtcpPacketError`` (a ``ValueError``) which the session counts. Packet types it does not read
(APP, feedback, XR) are skipped by their length. The work per datagram is bounded: at most
``MAX_PACKETS`` packets in a compound, 31 report blocks or SDES chunks each (a 5-bit count).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from server.errors import RtcpPacketError
from server.rtp.stats import RtpStats

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
SDES_CNAME = 1
MAX_PACKETS = 32  # far more than any real compound (SR + SDES + BYE); bounds work per datagram

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP timestamp, RTP timestamp, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")  # SSRC, lost, highest sequence, jitter, LSR, DLSR


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int  # the source this block reports on
    fraction_lost: int  # of 256, since the reporter's previous report
    cumulative_lost: int  # signed 24-bit: duplicates can make it negative
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # interarrival jitter, RTP timestamp units
    last_sr: int
    delay_since_last_sr: int


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...]


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...]


@dataclass(frozen=True, slots=True)
class SourceDescription:
    cnames: tuple[tuple[int, str], ...]  # (SSRC/CSRC, CNAME) of the chunks that carry one


@dataclass(frozen=True, slots=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: str | None


@dataclass(frozen=True, slots=True)
class OtherRtcp:
    packet_type: int  # APP, RTPFB, PSFB, XR, ...: recognised, not read


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | OtherRtcp


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """All packets of one RTCP datagram; ``RtcpPacketError`` if any part is malformed."""
    size = len(data)
    if size < _HEADER.size:
        raise RtcpPacketError(f"datagram of {size} bytes is shorter than an RTCP header")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        if len(packets) == MAX_PACKETS:
            raise RtcpPacketError(f"more than {MAX_PACKETS} packets in one compound")
        if offset + _HEADER.size > size:
            raise RtcpPacketError(f"{size - offset} trailing bytes after packet {len(packets)}")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtcpPacketError(f"RTCP version {first >> 6} in packet {len(packets)}, expected 2")
        if not 192 <= packet_type <= 223:  # RFC 5761 §4: e.g. RTP sent to the RTCP port
            raise RtcpPacketError(f"packet type {packet_type} in packet {len(packets)} is not RTCP")
        end = offset + 4 * (words + 1)
        if end > size:
            claimed = 4 * (words + 1)
            raise RtcpPacketError(f"packet {len(packets)} claims {claimed} bytes, {size - offset} left")
        body_end = end
        if first & 0x20:  # padding: only meaningful on the last packet, but checked wherever it is
            pad = data[end - 1]
            if pad == 0 or offset + _HEADER.size + pad > end:
                raise RtcpPacketError(f"bad padding count {pad} in packet {len(packets)}")
            body_end = end - pad
        packets.append(_parse_one(packet_type, first & 0x1F, data, offset + _HEADER.size, body_end))
        offset = end
    return packets


def _parse_one(packet_type: int, count: int, data: bytes, start: int, end: int) -> RtcpPacket:
    if packet_type == SR:
        if start + _SENDER_INFO.size > end:
            raise RtcpPacketError("sender report shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(data, start)
        blocks = _report_blocks(data, start + _SENDER_INFO.size, end, count)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks)
    if packet_type == RR:
        if start + 4 > end:
            raise RtcpPacketError("receiver report without its SSRC")
        (ssrc,) = struct.unpack_from("!I", data, start)
        return ReceiverReport(ssrc, _report_blocks(data, start + 4, end, count))
    if packet_type == SDES:
        return SourceDescription(_sdes_cnames(data, start, end, count))
    if packet_type == BYE:
        return _goodbye(data, start, end, count)
    return OtherRtcp(packet_type)


def _report_blocks(data: bytes, start: int, end: int, count: int) -> tuple[ReportBlock, ...]:
    # Profile-specific extensions may follow the blocks, so the packet may be longer than needed.
    if start + count * _REPORT_BLOCK.size > end:
        raise RtcpPacketError(f"{count} report blocks do not fit in {end - start} bytes")
    blocks = []
    for index in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, start + index * 24)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _sdes_cnames(data: bytes, start: int, end: int, count: int) -> tuple[tuple[int, str], ...]:
    cnames: list[tuple[int, str]] = []
    offset = start
    for index in range(count):
        if offset + 4 > end:
            raise RtcpPacketError(f"SDES chunk {index} is truncated")
        (ssrc,) = struct.unpack_from("!I", data, offset)
        offset += 4
        while True:  # items until the END item (type 0); each at most 257 bytes
            if offset >= end:
                raise RtcpPacketError(f"SDES chunk {index} has no END item")
            item_type = data[offset]
            if item_type == 0:
                offset = (offset + 4) & ~3  # the END item plus padding to the next 32-bit word
                break
            if offset + 2 > end or offset + 2 + data[offset + 1] > end:
                raise RtcpPacketError(f"SDES item of type {item_type} runs past the packet")
            length = data[offset + 1]
            if item_type == SDES_CNAME:
                text = bytes(data[offset + 2 : offset + 2 + length]).decode("utf-8", errors="replace")
                cnames.append((ssrc, text))
            offset += 2 + length
        if offset > end:
            raise RtcpPacketError(f"SDES chunk {index} padding runs past the packet")
    return tuple(cnames)


def _goodbye(data: bytes, start: int, end: int, count: int) -> Goodbye:
    reason_at = start + 4 * count
    if reason_at > end:
        raise RtcpPacketError(f"BYE with {count} SSRCs does not fit in {end - start} bytes")
    ssrcs = struct.unpack_from(f"!{count}I", data, start)
    reason = None
    if reason_at < end:
        length = data[reason_at]
        if reason_at + 1 + length > end:
            raise RtcpPacketError("BYE reason runs past the packet")
        reason = bytes(data[reason_at + 1 : reason_at + 1 + length]).decode("utf-8", errors="replace")
    return Goodbye(tuple(ssrcs), reason)


def record(stats: RtpStats, packets: list[RtcpPacket]) -> None:
    """Fold one compound's reports into the session's statistics (the latest report wins)."""
    for packet in packets:
        if isinstance(packet, SenderReport):
            stats.rtcp_sr += 1
            stats.sender_ssrc = packet.ssrc
            stats.sender_packets = packet.packet_count
            stats.sender_octets = packet.octet_count
            _record_blocks(stats, packet.reports)
        elif isinstance(packet, ReceiverReport):
            stats.rtcp_rr += 1
            _record_blocks(stats, packet.reports)
        elif isinstance(packet, SourceDescription):
            if packet.cnames:
                stats.rtcp_cname = packet.cnames[0][1]
        elif isinstance(packet, Goodbye):
            stats.rtcp_bye = True


def _record_blocks(stats: RtpStats, blocks: tuple[ReportBlock, ...]) -> None:
    if blocks:
        block = blocks[-1]
        stats.report_ssrc = block.ssrc
        stats.fraction_lost = block.fraction_lost / 256
        stats.cumulative_lost = block.cumulative_lost
        stats.jitter = block.jitter
