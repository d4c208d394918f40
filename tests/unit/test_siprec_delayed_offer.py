"""Delayed offer (issue 11 item 4): an INVITE without SDP is read as our own offer to make —
two labelled recvonly streams for SIPREC (labels from the metadata, else 1 and 2), one for a
plain call — instead of 488. Pure: no sockets."""

from __future__ import annotations

import pytest

from server.errors import SiprecError
from server.sip.siprec import parse_offer

META = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <participant participant_id="p1"><nameID aor="sip:+15551230000@pstn.example.com"/></participant>
  <participant participant_id="p2"><nameID aor="sip:1001@ucm.example.com"/></participant>
  <stream stream_id="s1"><label>7</label></stream>
  <stream stream_id="s2"><label>8</label></stream>
  <participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>s2</send></participantstreamassoc>
</recording>
"""


def multipart(*parts: tuple[str, bytes]) -> bytes:
    out = b""
    for headers, body in parts:
        out += b"--XyZ\r\n" + headers.encode() + b"\r\n\r\n" + body + b"\r\n"
    return out + b"--XyZ--\r\n"


def m_lines(answer: bytes) -> list[str]:
    return [line for line in answer.decode().split("\r\n") if line.startswith("m=")]


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/rs-metadata+xml", META),
        (
            "multipart/mixed;boundary=XyZ",
            multipart(
                ("Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session", META)
            ),
        ),
    ],
)
def test_metadata_without_sdp_is_a_delayed_offer_labelled_as_the_metadata(ctype: str, body: bytes) -> None:
    offer = parse_offer(ctype, body, "siprec", None)
    assert offer.delayed and offer.siprec and not offer.deferred
    assert [s.label for s in offer.accepted_streams] == ["7", "8"]
    senders = [offer.participant(s.sender) for s in offer.streams]
    assert [p.aor if p else None for p in senders] == [
        "sip:+15551230000@pstn.example.com",
        "sip:1001@ucm.example.com",
    ]
    answer = offer.answer("127.0.0.1", {0: 30000, 1: 30002})
    assert m_lines(answer) == ["m=audio 30000 RTP/AVP 0 8 9 101 13", "m=audio 30002 RTP/AVP 0 8 9 101 13"]
    text = answer.decode()
    assert text.count("a=recvonly") == 2 and "a=label:7\r\n" in text and "a=label:8\r\n" in text
    assert "a=rtpmap:9 G722/8000\r\n" in text and "a=rtpmap:101 telephone-event/8000\r\n" in text


def test_no_body_siprec_offers_two_streams_labelled_1_and_2() -> None:
    offer = parse_offer("", b"", "siprec", None)
    assert offer.delayed and offer.siprec and offer.metadata is None
    assert [s.label for s in offer.accepted_streams] == ["1", "2"]


def test_no_body_plain_call_offers_one_unlabelled_stream() -> None:
    offer = parse_offer("", b"", None, "<sip:pbx@10.0.0.1>")
    assert offer.delayed and not offer.siprec
    assert [s.label for s in offer.accepted_streams] == [None]
    assert m_lines(offer.answer("127.0.0.1", {0: 30000})) == ["m=audio 30000 RTP/AVP 0 8 9 101 13"]


def test_multipart_with_neither_sdp_nor_metadata_is_still_refused() -> None:
    body = multipart(("Content-Type: application/gtd", b"IAM,"))
    with pytest.raises(SiprecError) as refused:
        parse_offer("multipart/mixed;boundary=XyZ", body, "siprec", None)
    assert refused.value.status == 488
