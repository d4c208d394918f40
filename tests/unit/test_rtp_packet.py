"""RTP packet parsing and serialisation (RFC 3550) and RTCP recognition."""

from __future__ import annotations

import struct

import pytest

from server.errors import RtpPacketError
from server.rtp.packet import RtpExtension, RtpPacket, is_rtcp


def _packet(**kwargs: object) -> RtpPacket:
    fields: dict[str, object] = {
        "payload_type": 0,
        "sequence": 1000,
        "timestamp": 160000,
        "ssrc": 0xDEADBEEF,
        "payload": b"\xff" * 160,
    }
    fields.update(kwargs)
    return RtpPacket(**fields)  # type: ignore[arg-type]


def test_parse_known_bytes() -> None:
    data = bytes([0x80, 0x88, 0x12, 0x34]) + struct.pack("!II", 0x01020304, 0xA1B2C3D4) + b"\x55\xd5"
    packet = RtpPacket.parse(data)
    assert packet.payload_type == 8
    assert packet.marker is True
    assert packet.sequence == 0x1234
    assert packet.timestamp == 0x01020304
    assert packet.ssrc == 0xA1B2C3D4
    assert packet.payload == b"\x55\xd5"
    assert packet.csrcs == () and packet.extension is None and packet.padding == 0


@pytest.mark.parametrize(
    "packet",
    [
        _packet(),
        _packet(marker=True, payload_type=8, sequence=65535, timestamp=0xFFFFFFFF),
        _packet(csrcs=(1, 2, 3)),
        _packet(extension=RtpExtension(0xBEDE, b"\x10\x01\x00\x00")),
        _packet(padding=4),
        _packet(padding=1, csrcs=(7,), extension=RtpExtension(1, b""), payload=b"x"),
    ],
)
def test_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.serialize()) == packet


def test_serialized_layout() -> None:
    data = _packet(csrcs=(9,), padding=3).serialize()
    assert data[0] == 0x80 | 0x20 | 1
    assert len(data) == 12 + 4 + 160 + 3
    assert data[-3:] == b"\x00\x00\x03"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 12-byte"),
        (b"\x80\x00" + bytes(9), "shorter than the 12-byte"),
        (b"\x40\x00" + bytes(10) + b"x", "version 1"),
        (b"\x00\x00" + bytes(10) + b"x", "version 0"),
        (b"\x83\x00" + bytes(10) + bytes(8), "CSRC count 3"),
        (b"\x90\x00" + bytes(10) + b"\x00\x01", "extension header is truncated"),
        (b"\x90\x00" + bytes(10) + b"\x00\x01\x00\x02" + bytes(4), "extension of 2 words"),
        (b"\xa0\x00" + bytes(10) + b"abc\x00", "padding count is 0"),
        (b"\xa0\x00" + bytes(10) + b"ab\x09", "padding count 9"),
        (b"\x80\xc8" + bytes(10), "RTCP"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(RtpPacketError, match=reason):
        RtpPacket.parse(data)


def test_malformed_is_value_error() -> None:
    with pytest.raises(ValueError):
        RtpPacket.parse(b"junk")


def test_padding_may_consume_whole_payload() -> None:
    packet = RtpPacket.parse(b"\xa0\x00" + bytes(10) + b"\x00\x00\x03")
    assert packet.payload == b"" and packet.padding == 3


@pytest.mark.parametrize("packet_type", [200, 201, 202, 203, 204, 205, 206])
def test_rtcp_recognised(packet_type: int) -> None:
    sr = bytes([0x81, packet_type]) + struct.pack("!H", 6) + bytes(24)
    assert is_rtcp(sr)
    with pytest.raises(RtpPacketError, match="RTCP"):
        RtpPacket.parse(sr)


def test_audio_is_not_rtcp() -> None:
    assert not is_rtcp(_packet().serialize())
    assert not is_rtcp(_packet(marker=True, payload_type=8).serialize())
    assert not is_rtcp(b"\x80")


@pytest.mark.parametrize(
    "bad",
    [
        {"payload_type": 128},
        {"payload_type": 72, "marker": True},  # second octet 200: would read as an RTCP SR
        {"sequence": 65536},
        {"timestamp": -1},
        {"ssrc": 1 << 32},
        {"csrcs": tuple(range(16))},
        {"padding": 256},
        {"extension": RtpExtension(1, b"abc")},
    ],
)
def test_serialize_rejects_out_of_range(bad: dict[str, object]) -> None:
    with pytest.raises(RtpPacketError):
        _packet(**bad).serialize()
