"""RTCP compound parsing (RFC 3550 §6): hand-built packets, packets captured from FFmpeg's RTP
muxer, malformed input, and folding reports into ``RtpStats``."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from server.errors import RtcpPacketError
from server.rtp.rtcp import (
    Goodbye,
    OtherRtcp,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    parse_compound,
    record,
)
from server.rtp.stats import RtpStats

# Captured on loopback from ``ffmpeg -re -f lavfi -i sine=... -c:a pcm_mulaw -f rtp -rtpflags
# send_bye rtp://127.0.0.1:PORT`` (FFmpeg 7): its first SR, and the SR + BYE it sends at the end
# after 82 packets / 12000 octets.
FFMPEG_FIRST_SR = bytes.fromhex("80c800061ea9764deeabdd9771a9fbe7dc3db5eb0000000000000000")
FFMPEG_LAST_SR_BYE = bytes.fromhex("80c800061ea9764deeabdd98f0e56041dc3de4b30000005200002ee081cb00011ea9764d")


def header(packet_type: int, count: int, body: bytes, padding: int = 0) -> bytes:
    total = len(body) + padding
    assert total % 4 == 0
    first = 0x80 | (0x20 if padding else 0) | count
    pad = bytes(padding - 1) + bytes([padding]) if padding else b""
    return struct.pack("!BBH", first, packet_type, total // 4) + body + pad


def block(ssrc: int, fraction: int, lost: int, highest: int = 1000, jitter: int = 40) -> bytes:
    return struct.pack("!IIIIII", ssrc, (fraction << 24) | (lost & 0xFFFFFF), highest, jitter, 7, 9)


def sender_report(ssrc: int = 0xAAAA, packets: int = 500, octets: int = 80000, blocks: bytes = b"") -> bytes:
    info = struct.pack("!IQIII", ssrc, 0x1122334455667788, 123456, packets, octets)
    return header(200, len(blocks) // 24, info + blocks)


def sdes(ssrc: int, items: list[tuple[int, bytes]]) -> bytes:
    chunk = struct.pack("!I", ssrc) + b"".join(bytes([t, len(v)]) + v for t, v in items) + b"\x00"
    chunk += bytes(-len(chunk) % 4)
    return header(202, 1, chunk)


def bye(ssrcs: list[int], reason: bytes | None = None) -> bytes:
    body = b"".join(struct.pack("!I", s) for s in ssrcs)
    if reason is not None:
        body += bytes([len(reason)]) + reason
        body += bytes(-len(body) % 4)
    return header(203, len(ssrcs), body)


def test_sender_report_with_block() -> None:
    (sr,) = parse_compound(sender_report(blocks=block(0xBBBB, 64, 12)))
    assert sr == SenderReport(
        0xAAAA, 0x1122334455667788, 123456, 500, 80000, (ReportBlock(0xBBBB, 64, 12, 1000, 40, 7, 9),)
    )


def test_receiver_report_negative_cumulative_loss() -> None:
    rr = header(201, 2, struct.pack("!I", 0xCCCC) + block(1, 0, -3) + block(2, 255, 0x7FFFFF))
    (packet,) = parse_compound(rr)
    assert isinstance(packet, ReceiverReport)
    assert packet.ssrc == 0xCCCC
    assert [(b.ssrc, b.fraction_lost, b.cumulative_lost) for b in packet.reports] == [
        (1, 0, -3),
        (2, 255, 0x7FFFFF),
    ]


def test_compound_sr_sdes_bye_app() -> None:
    data = (
        sender_report()
        + sdes(0xAAAA, [(2, b"Alice"), (1, b"alice@host.example"), (6, b"tool")])
        + header(204, 0, b"\x00\x00\x00\x01name" + b"data")  # APP: recognised, skipped
        + bye([0xAAAA, 0xDDDD], b"call ended")
    )
    sr, description, app, goodbye = parse_compound(data)
    assert isinstance(sr, SenderReport) and sr.reports == ()
    assert description == SourceDescription(((0xAAAA, "alice@host.example"),))
    assert app == OtherRtcp(204)
    assert goodbye == Goodbye((0xAAAA, 0xDDDD), "call ended")


def test_sdes_chunk_ending_on_word_boundary_needs_a_full_null_word() -> None:
    # 4 (SSRC) + 2 + 2 = 8 bytes of items: the END item takes a whole extra word.
    data = sdes(0x1, [(1, b"ab")])
    assert len(data) == 4 + 12
    assert parse_compound(data) == [SourceDescription(((1, "ab"),))]


def test_padding_on_last_packet() -> None:
    data = sender_report() + header(203, 1, struct.pack("!I", 5), padding=8)
    assert parse_compound(data)[-1] == Goodbye((5,), None)


def test_ffmpeg_captured_packets() -> None:
    (first,) = parse_compound(FFMPEG_FIRST_SR)
    assert isinstance(first, SenderReport)
    assert (first.ssrc, first.packet_count, first.octet_count) == (0x1EA9764D, 0, 0)
    last, goodbye = parse_compound(FFMPEG_LAST_SR_BYE)
    assert isinstance(last, SenderReport) and (last.packet_count, last.octet_count) == (82, 12000)
    assert last.ntp_timestamp > first.ntp_timestamp
    assert goodbye == Goodbye((0x1EA9764D,), None)
    stats = RtpStats()
    record(stats, [first])
    record(stats, [last, goodbye])
    assert (stats.rtcp_sr, stats.sender_ssrc, stats.sender_packets, stats.sender_octets) == (
        2,
        0x1EA9764D,
        82,
        12000,
    )
    assert stats.rtcp_bye


def test_record_reports_into_stats() -> None:
    stats = RtpStats()
    rr = header(201, 1, struct.pack("!I", 0xCCCC) + block(0xAAAA, 128, 40, jitter=77))
    record(stats, parse_compound(rr + sdes(0xCCCC, [(1, b"bob@example")])))
    assert stats.rtcp_rr == 1 and stats.rtcp_sr == 0
    assert (stats.report_ssrc, stats.fraction_lost, stats.cumulative_lost, stats.jitter) == (
        0xAAAA,
        0.5,
        40,
        77,
    )
    assert stats.rtcp_cname == "bob@example"
    assert not stats.rtcp_bye
    as_dict = stats.as_dict()
    assert as_dict["fraction_lost"] == 0.5 and as_dict["rtcp_rr"] == 1 and as_dict["sender_packets"] is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than an RTCP header"),
        (b"\x80\xc8\x00", "shorter than an RTCP header"),
        (b"\x40\xc8\x00\x00", "version 1"),
        (b"\x80\x00\x00\x00", "packet type 0 in packet 0 is not RTCP"),  # RTP on the RTCP port
        (b"\x80\xc8\x00\x06" + bytes(20), "claims 28 bytes, 24 left"),
        (b"\x80\xc8\x00\x01" + bytes(4), "shorter than its sender info"),
        (b"\x81\xc8\x00\x06" + bytes(24), "1 report blocks do not fit"),
        (b"\x80\xc9\x00\x00", "without its SSRC"),
        (b"\x81\xca\x00\x01\x00\x00\x00\x01", "no END item"),
        (b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09abcd", "runs past the packet"),
        (b"\x81\xca\x00\x00", "chunk 0 is truncated"),
        (b"\x82\xcb\x00\x01\x00\x00\x00\x01", "BYE with 2 SSRCs"),
        (b"\x81\xcb\x00\x02\x00\x00\x00\x01\x09abc", "BYE reason runs past"),
        (b"\xa0\xcb\x00\x01\x00\x00\x00\x00", "bad padding count 0"),
        (b"\xa0\xcb\x00\x01\x00\x00\x00\x09", "bad padding count 9"),
        (sender_report() + b"\x80\xcb", "2 trailing bytes"),
        (header(203, 0, b"") * 33, "more than 32 packets"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpPacketError, match=reason):
        parse_compound(data)


def test_malformed_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_compound(b"\x80\xc8\x00\x10")


def test_random_bytes_raise_only_rtcp_errors() -> None:
    rng = np.random.default_rng(3)
    valid = sender_report(blocks=block(1, 2, 3)) + sdes(1, [(1, b"x")]) + bye([1], b"r")
    parsed = 0
    for _ in range(3000):
        if rng.random() < 0.5:  # mutate a valid compound: reaches the deeper checks
            data = bytearray(valid[: int(rng.integers(0, len(valid) + 1))])
            for _ in range(int(rng.integers(1, 4))):
                if data:
                    data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        else:
            data = bytearray(rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8).tobytes())
            if data:
                data[0] = 0x80 | (data[0] & 0x3F)
        try:
            parse_compound(bytes(data))
            parsed += 1
        except RtcpPacketError:
            pass
    assert parsed > 0  # some mutations stay valid: the fuzzing reached the success path too
