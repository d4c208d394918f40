"""RTP packet parsing and serialisation (RFC 3550 section 5.1).

Datagrams come from the network, so every length field is checked before it is trusted and
every malformed case raises ``RtpPacketError`` with a reason a log reader can act on. RTCP that
shares the port (RFC 5761 multiplexing) is recognised by ``is_rtcp`` so it is never decoded as
audio.

``RtpPacket`` is a ``NamedTuple`` rather than a frozen dataclass: it is built for every received
packet, and a frozen dataclass's ``__init__`` costs about a microsecond more per packet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from server.errors import RtpPacketError

RTP_VERSION = 2
FIXED_HEADER_LEN = 12
# RFC 5761 section 4: a second octet of 192..223 is an RTCP packet type (SR=200 ... APP=204 and
# the feedback types), never an RTP marker+payload-type combination.
_RTCP_SECOND_OCTET = range(192, 224)

_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The RFC 3550 header extension: a profile-defined id and its data (a multiple of 4 bytes)."""

    profile: int
    data: bytes


class RtpPacket(NamedTuple):
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0  # number of padding octets after the payload, including the count octet

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one datagram; raise ``RtpPacketError`` if it is not a well-formed RTP packet."""
        size = len(data)
        if size < FIXED_HEADER_LEN:
            raise RtpPacketError(f"datagram of {size} bytes is shorter than the 12-byte RTP header")
        first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
        if first == 0x80 and second not in _RTCP_SECOND_OCTET:
            # Version 2 without padding, extension or CSRCs: nearly every packet takes this path.
            payload = bytes(data[FIXED_HEADER_LEN:])
            return cls(second & 0x7F, sequence, timestamp, ssrc, payload, second > 0x7F)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpPacketError(f"RTP version {version}, expected {RTP_VERSION}")
        if second in _RTCP_SECOND_OCTET:
            raise RtpPacketError(f"RTCP packet (type {second}), not RTP")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        csrc_count = first & 0x0F
        offset = FIXED_HEADER_LEN + 4 * csrc_count
        if offset > size:
            raise RtpPacketError(f"CSRC count {csrc_count} needs {offset} bytes, datagram has {size}")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, FIXED_HEADER_LEN) if csrc_count else ()
        extension = None
        if has_extension:
            if offset + _EXT_HEADER.size > size:
                raise RtpPacketError("extension bit set but the extension header is truncated")
            profile, words = _EXT_HEADER.unpack_from(data, offset)
            ext_start = offset + _EXT_HEADER.size
            offset = ext_start + 4 * words
            if offset > size:
                raise RtpPacketError(f"extension of {words} words runs past the end of the datagram")
            extension = RtpExtension(profile, bytes(data[ext_start:offset]))
        end = size
        padding = 0
        if has_padding:
            padding = data[-1]
            if padding == 0:
                raise RtpPacketError("padding bit set but the padding count is 0")
            if offset + padding > size:
                raise RtpPacketError(f"padding count {padding} is longer than the space after the header")
            end = size - padding
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        """The packet as it goes on the wire; raise ``RtpPacketError`` for out-of-range fields."""
        if not 0 <= self.payload_type <= 127:
            raise RtpPacketError(f"payload type {self.payload_type} is outside 0..127")
        second = (0x80 if self.marker else 0) | self.payload_type
        if second in _RTCP_SECOND_OCTET:
            raise RtpPacketError(f"payload type {self.payload_type} with this marker collides with RTCP")
        if not 0 <= self.sequence <= 0xFFFF:
            raise RtpPacketError(f"sequence {self.sequence} is outside 0..65535")
        fields32 = (("timestamp", self.timestamp), ("SSRC", self.ssrc), *(("CSRC", c) for c in self.csrcs))
        for name, value in fields32:
            if not 0 <= value <= 0xFFFFFFFF:
                raise RtpPacketError(f"{name} {value} does not fit 32 bits")
        if len(self.csrcs) > 15:
            raise RtpPacketError(f"{len(self.csrcs)} CSRCs, at most 15 fit")
        if not 0 <= self.padding <= 255:
            raise RtpPacketError(f"padding {self.padding} is outside 0..255")
        first = (RTP_VERSION << 6) | (0x20 if self.padding else 0) | len(self.csrcs)
        parts = [
            b"",
            struct.pack(f"!{len(self.csrcs)}I", *self.csrcs),
        ]
        if self.extension is not None:
            ext = self.extension
            if len(ext.data) % 4 or len(ext.data) // 4 > 0xFFFF or not 0 <= ext.profile <= 0xFFFF:
                raise RtpPacketError("extension data must be a multiple of 4 bytes, at most 65535 words")
            first |= 0x10
            parts.append(_EXT_HEADER.pack(ext.profile, len(ext.data) // 4) + ext.data)
        parts[0] = _FIXED.pack(first, second, self.sequence, self.timestamp, self.ssrc)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def is_rtcp(data: bytes) -> bool:
    """True for a datagram that looks like RTCP multiplexed on the RTP port (RFC 5761)."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and data[1] in _RTCP_SECOND_OCTET
