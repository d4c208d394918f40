"""SIP message parser, header grammar and builders."""

from __future__ import annotations

import pytest

from server.errors import SipParseError
from server.sip.builders import build_request, build_response
from server.sip.headers import parse_name_addr, parse_via, split_list
from server.sip.message import MAX_HEADERS, SipRequest, SipResponse, parse_message
from server.sip.salvage import error_response_for
from server.sip.uri import parse_uri

INVITE = (
    b"INVITE sip:1001@127.0.0.1:5060;transport=udp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-a1;rport\r\n"
    b"v: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-b2, SIP/2.0/UDP 10.0.0.3;branch=z9hG4bK-c3\r\n"
    b"Max-Forwards: 70\r\n"
    b'f: "Alice, A." <sip:+15550100@10.0.0.1>;tag=abc\r\n'
    b"t: <sip:1001@127.0.0.1>\r\n"
    b"i: call-1@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"m: <sip:+15550100@10.0.0.1:5062>\r\n"
    b"Subject: a very\r\n long\r\n\tsubject\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\r\nEXTRA"
)


def test_request_fields() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE" and msg.uri.user == "1001" and msg.uri.port == 5060
    assert msg.uri.params == {"transport": "udp"}
    assert msg.call_id == "call-1@10.0.0.1"
    assert [v.branch for v in msg.vias] == ["z9hG4bK-a1", "z9hG4bK-b2", "z9hG4bK-c3"]
    assert msg.vias[0].sent_by == "10.0.0.1:5062" and msg.vias[0].params["rport"] is None
    assert msg.from_ is not None and msg.from_.display == "Alice, A." and msg.from_.tag == "abc"
    assert msg.to is not None and msg.to.tag is None
    assert msg.get("SUBJECT") == "a very long subject"
    assert msg.content_type == "application/sdp"
    assert msg.body == b"v=0\r"  # octets beyond Content-Length are ignored


def test_bare_lf_and_leading_crlf_are_tolerated() -> None:
    msg = parse_message(b"\r\n" + INVITE.replace(b"\r\n", b"\n").replace(b"l: 4", b"l: 3"))
    assert isinstance(msg, SipRequest) and msg.body == b"v=0"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty line"),
        (b"garbage\x00\xff", "empty line"),
        (INVITE[:200], "empty line"),
        (INVITE.replace(b"l: 4", b"l: 40"), "exceeds"),
        (INVITE.replace(b"l: 4", b"l: 4x"), "Content-Length"),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "does not match"),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), "Max-Forwards"),
        (INVITE.replace(b"i: call-1", b"Call-ID: x\r\ni: call-1"), "more than once"),
        (INVITE.replace(b"SIP/2.0\r\n", b"SIP/2.0 \r\n", 1), "request line"),
        (INVITE.replace(b"Via: ", b" Via: ", 1), "continuation"),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards 70"), "':'"),
        (INVITE.replace(b'"Alice, A."', b'"Alice'), "quoted"),
        (INVITE.replace(b"SIP/2.0/UDP 10.0.0.1:5062", b"SIP/2.0/UDP 10.0.0.1:99999"), "port"),
        (b"SIP/2.0 99 Odd\r\nCSeq: 1 INVITE\r\n\r\n", "status code"),
    ],
)
def test_malformed_messages_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(SipParseError, match=fragment):
        parse_message(data)


def test_bounds() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVITE + b"x" * (64 * 1024))
    assert info.value.status == 513
    many = INVITE.replace(b"Max-Forwards: 70\r\n", b"X-A: 1\r\n" * (MAX_HEADERS + 1))
    with pytest.raises(SipParseError, match="header fields"):
        parse_message(many)


def test_version_error_is_505() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVITE.replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
    assert info.value.status == 505


def test_response_parse() -> None:
    msg = parse_message(
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        b"CSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(msg, SipResponse) and msg.status == 180 and msg.reason == "Ringing"


def test_build_response_copies_dialog_headers() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, SipRequest)
    resp = build_response(
        req, 200, to_tag="ourtag", headers=(("contact", "<sip:rec@127.0.0.1>"),), body=b"v=0\r\n"
    )
    again = parse_message(resp.to_bytes())
    assert isinstance(again, SipResponse) and again.status == 200 and again.reason == "OK"
    assert again.lines("via") == req.lines("via")
    assert again.to is not None and again.to.tag == "ourtag"
    assert again.from_ == req.from_ and again.call_id == req.call_id and again.cseq == req.cseq
    assert again.get("content-length") == "5" and again.body == b"v=0\r\n"
    assert again.content_type == "application/sdp"
    trying = build_response(req, 100, to_tag="ourtag")
    assert trying.to is not None and trying.to.tag is None  # 100 never carries a To tag
    assert b"Content-Length: 0\r\n" in trying.to_bytes()


def test_build_request_round_trip() -> None:
    req = build_request(
        "BYE",
        "sip:+15550100@10.0.0.1:5062",
        via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKq",
        from_="<sip:1001@127.0.0.1>;tag=a",
        to="<sip:+15550100@10.0.0.1>;tag=b",
        call_id="c1",
        cseq=2,
    )
    again = parse_message(req.to_bytes())
    assert isinstance(again, SipRequest) and again.method == "BYE"
    assert again.cseq is not None and again.cseq.number == 2 and again.cseq.method == "BYE"
    assert again.get("max-forwards") == "70"


def test_salvaged_400_for_request_with_bad_content_length() -> None:
    data = INVITE.replace(b"l: 4", b"l: 400")
    reply = error_response_for(data, 400)
    assert reply is not None
    msg = parse_message(reply)
    assert isinstance(msg, SipResponse) and msg.status == 400 and msg.call_id == "call-1@10.0.0.1"
    assert error_response_for(data.replace(b"i: call-1@10.0.0.1\r\n", b""), 400) is None
    assert error_response_for(b"SIP/2.0 200 OK\r\n\r\n", 400) is None


def test_header_helpers() -> None:
    assert split_list('"a,b" <sip:x>, <sip:y;p=1,2>, z') == ['"a,b" <sip:x>', "<sip:y;p=1,2>", "z"]
    na = parse_name_addr("sip:+1555@example.com;user=phone;tag=t1")
    assert na.uri.raw == "sip:+1555@example.com" and na.params == {"user": "phone", "tag": "t1"}
    assert parse_name_addr("Bob <sip:bob@h>").display == "Bob"
    via = parse_via("SIP / 2.0 / UDP [2001:db8::1]:5060 ; branch = z9hG4bKv")
    assert via.host == "[2001:db8::1]" and via.port == 5060 and via.branch == "z9hG4bKv"
    with pytest.raises(SipParseError):
        parse_via("SIP/2.0/UDP host;;branch=z9hG4bK1")
    assert parse_uri("tel:+15550100").scheme == "tel" and not parse_uri("tel:+1").is_sip
    with pytest.raises(SipParseError):
        parse_uri("<sip:x@y>")
