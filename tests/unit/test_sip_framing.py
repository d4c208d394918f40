"""Stream framing of SIP (RFC 3261 §18.3): Content-Length cuts the byte stream into messages."""

from __future__ import annotations

import pytest

from server.errors import SipFramingError
from server.sip.framing import StreamFramer, content_length
from server.sip.message import SipRequest, parse_message


def _msg(call_id: str, body: bytes = b"", cl: str | None = None, extra: str = "") -> bytes:
    length = str(len(body)) if cl is None else cl
    head = (
        f"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
        f"CSeq: 1 OPTIONS\r\n{extra}Content-Length: {length}\r\n\r\n"
    )
    return head.encode() + body


def _drain(framer: StreamFramer) -> list[bytes]:
    out = []
    while (message := framer.pop()) is not None:
        out.append(message)
    return out


def test_two_messages_in_one_chunk_then_keepalives() -> None:
    first, second = _msg("a", b"hello\r\n\r\nworld"), _msg("b")
    framer = StreamFramer()
    framer.feed(first + b"\r\n\r\n" + second + b"\r\n")
    assert _drain(framer) == [first, second]
    assert framer.at_boundary and framer.keepalives == 2
    parsed = parse_message(first)
    assert isinstance(parsed, SipRequest) and parsed.body == b"hello\r\n\r\nworld"


def test_message_split_byte_by_byte() -> None:
    data = _msg("split", b"v=0\r\n")
    framer = StreamFramer()
    got: list[bytes] = []
    for i in range(len(data)):
        framer.feed(data[i : i + 1])
        got += _drain(framer)
        if i < len(data) - 1:
            assert got == [] and not framer.at_boundary
    assert got == [data] and framer.at_boundary


def test_compact_and_folded_content_length() -> None:
    assert content_length(b"INVITE x SIP/2.0\r\nl: 12") == 12
    assert content_length(b"INVITE x SIP/2.0\r\ncontent-LENGTH :\r\n  7\r\nTo: x") == 7
    assert content_length(b"INVITE x SIP/2.0\nContent-Length: 3") == 3


@pytest.mark.parametrize(
    ("extra_cl", "reason"),
    [
        (None, "required"),
        ("-999", "bad Content-Length"),
        ("12 bytes", "bad Content-Length"),
    ],
)
def test_unframeable_heads_ask_for_400_and_keep_the_head(extra_cl: str | None, reason: str) -> None:
    data = _msg("bad", cl=extra_cl or "0")
    if extra_cl is None:
        data = data.replace(b"Content-Length: 0\r\n", b"")
    framer = StreamFramer()
    framer.feed(data)
    with pytest.raises(SipFramingError) as info:
        framer.pop()
    assert info.value.status == 400 and reason in info.value.reason
    assert info.value.head.startswith(b"OPTIONS ") and info.value.head.endswith(b"\r\n\r\n")


def test_two_content_lengths_cannot_be_framed() -> None:
    framer = StreamFramer()
    framer.feed(_msg("two", b"abcde", extra="l: 13\r\n"))
    with pytest.raises(SipFramingError) as info:
        framer.pop()
    assert info.value.status == 400 and "2 Content-Length" in info.value.reason


def test_oversize_message_is_513_before_its_body_is_buffered() -> None:
    framer = StreamFramer(max_message=1024)
    framer.feed(_msg("big", cl="5000"))
    with pytest.raises(SipFramingError) as info:
        framer.pop()
    assert info.value.status == 513 and info.value.head


def test_endless_header_section_is_513() -> None:
    framer = StreamFramer(max_message=1024)
    framer.feed(b"INVITE sip:x SIP/2.0\r\n" + b"X-Junk: aaaaaaaaaaaaaaaa\r\n" * 30)
    assert framer.pop() is None  # still under the limit
    framer.feed(b"X-Junk: aaaaaaaaaaaaaaaa\r\n" * 20)
    with pytest.raises(SipFramingError) as info:
        framer.pop()
    assert info.value.status == 513


def test_buffer_is_bounded() -> None:
    framer = StreamFramer(max_message=1024)
    framer.feed(b"INVITE sip:x SIP/2.0\r\n" + b"a" * 1000)
    with pytest.raises(SipFramingError):
        framer.feed(b"b" * 1100)
    assert framer.buffered <= framer.max_buffer
