"""Header octets that are not UTF-8: kept exactly for SIP, decoded safely for people (issue 11
item 6); and the start line of something that may be an ACK (item 5: never answered)."""

from __future__ import annotations

import pytest

from server.sip.builders import build_response
from server.sip.listener import CallOffer, OfferedStream, Party
from server.sip.message import SipRequest, parse_message
from server.sip.rs_metadata import parse_metadata
from server.sip.salvage import error_response_for, is_ack, request_method
from server.sip.wiretext import display_text, safe_offer, wire_bytes

VIA = b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-\xe9t\xe9"
FROM = b'"M\xfcller, J\xf6rg" <sip:4930123@10.0.0.1>;tag=a\xff1'
TO = b'"Stra\xdfe" <sip:1001@10.0.0.2>'
CALL_ID = b"\x01abc\xff\xfe@10.0.0.1"


def _invite(**replace: bytes) -> bytes:
    fields = {"via": VIA, "from": FROM, "to": TO, "call-id": CALL_ID, **replace}
    return (
        b"INVITE sip:1001@10.0.0.2 SIP/2.0\r\nVia: "
        + fields["via"]
        + b"\r\nMax-Forwards: 70\r\nFrom: "
        + fields["from"]
        + b"\r\nTo: "
        + fields["to"]
        + b"\r\nCall-ID: "
        + fields["call-id"]
        + b"\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )


def _line(data: bytes, name: bytes) -> bytes:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(name.lower() + b": "):
            return line[len(name) + 2 :]
    raise AssertionError(f"no {name!r} in {data[:200]!r}")


def test_a_response_echoes_via_from_to_and_call_id_byte_for_byte() -> None:
    req = parse_message(_invite())
    assert isinstance(req, SipRequest)
    data = build_response(req, 200, to_tag="ourtag").to_bytes()
    assert _line(data, b"Via") == VIA
    assert _line(data, b"From") == FROM
    assert _line(data, b"To") == TO + b";tag=ourtag"
    assert _line(data, b"Call-ID") == CALL_ID
    assert wire_bytes(req.call_id or "") == CALL_ID


def test_the_parsed_values_read_safely() -> None:
    req = parse_message(_invite())
    assert isinstance(req, SipRequest) and req.from_ is not None and req.to is not None
    assert display_text(req.from_.display or "") == "Müller, Jörg"
    assert display_text(req.to.display or "") == "Straße"
    assert display_text(req.call_id or "") == "?abcÿþ@10.0.0.1"
    assert display_text(req.from_.tag or "") == "aÿ1"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"M\xc3\xbcller", "Müller"),  # valid UTF-8 stays UTF-8
        (b"M\xfcller", "Müller"),  # ISO-8859-1
        (b"\xc3\xbc and \xfc", "ü and ü"),  # mixed: octet by octet, no mojibake of the UTF-8 part
        (b"a\x00b\x1bc\x7fd\r\ne", "a?b?c?d??e"),  # C0, ESC, DEL, CR LF
        (b"x\xc2\x85y", "x?y"),  # C1 (NEL) as UTF-8
        (b"evil\xe2\x80\xaeoc.exe", "evil?oc.exe"),  # a bidi override spoofing what is shown
        (b"\xe2\x80\xa8", "?"),  # LINE SEPARATOR
        (b"caf\xe9 \xa0nbsp", "café \xa0nbsp"),  # Latin-1 NBSP is a space, not a control
    ],
)
def test_display_text(raw: bytes, shown: str) -> None:
    assert display_text(raw.decode("utf-8", "surrogateescape")) == shown


def test_display_text_is_capped() -> None:
    assert display_text("\udcfc" * 1000, 255) == "ü" * 255
    assert len(display_text("x" * 10_000)) == 255


def test_safe_offer_makes_every_stored_field_safe_and_capped() -> None:
    bad = "M\udcfcller\x01"
    offer = CallOffer(
        call_id="id\udcff\x02",
        dn="10\udce901",
        caller=bad + " <4930123>",
        callee="Stra\udcdfe",
        source=("10.0.0.1", 5060),
        codec="PCMU",
        session_id="s\udcff",
        participants=(Party("p\x01", "sip:x\udcff@h", bad, ("49\udcfc",), (0,), True),),
        streams=(OfferedStream(0, "l\x01", "PCMU", "p\x01"),),
        params=(("k\x01", "v\udcff" * 300),),
        warnings=("w\x1b",),
    )
    safe = safe_offer(offer)
    assert safe.call_id == "idÿ?" and safe.dn == "10é01"
    assert safe.caller == "Müller? <4930123>" and safe.callee == "Straße"
    assert safe.session_id == "sÿ"
    party = safe.participants[0]
    assert (party.participant_id, party.aor, party.name, party.numbers) == (
        "p?",
        "sip:xÿ@h",
        "Müller?",
        ("49ü",),
    )
    assert safe.streams[0].label == "l?" and safe.streams[0].sender == "p?"
    assert safe.params[0][0] == "k?" and len(safe.params[0][1]) == 255
    assert safe.warnings == ("w?",)
    for text in (safe.call_id, safe.caller, party.name or ""):
        text.encode("utf-8")  # storable: no lone surrogates left


@pytest.mark.parametrize(
    "data",
    [
        b"ACK sip:a@b SIP/2.0\r\n\r\n",
        b"\r\n\r\nACK sip:a@b SIP/9.9\r\nVia: x\r\n\r\n",
        b"ack  sip:a@b SIP/2.0\r\n",
        b"ACK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
    ],
)
def test_anything_that_reads_as_an_ack_is_never_answered(data: bytes) -> None:
    assert is_ack(data)
    salvageable = data.split(b"\r\n", 1)[0] + (
        b"\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\n"
        b"Call-ID: x\r\nCSeq: 1 ACK\r\n\r\n"
    )
    assert error_response_for(salvageable, 400) is None


def test_other_broken_requests_are_still_answered() -> None:
    data = (
        b"INVITE  sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    assert request_method(data) == "INVITE"
    reply = error_response_for(data, 400)
    assert reply is not None and reply.startswith(b"SIP/2.0 400 ")
    assert request_method(b"SIP/2.0 200 OK\r\n\r\n") is None
    assert request_method(b"\x00\xff garbage") is None


META = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<recording xmlns="urn:ietf:params:xml:ns:recording:1">'
    b'<participant participant_id="a"><nameID aor="sip:4930123@pbx"><name>NAME</name></nameID></participant>'
    b'<participant participant_id="b"><nameID aor="sip:1001@pbx"><name>Agent</name></nameID></participant>'
    b"</recording>"
)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (b"M\xfcller", "Müller"),  # ISO-8859-1 in a document that says (or is taken to be) UTF-8
        (b"M\xc3\xbcller", "Müller"),
        (b"Bell\x07\x01", "Bell??"),  # control characters XML forbids
    ],
)
def test_metadata_names_that_are_not_utf8_keep_every_participant(name: bytes, shown: str) -> None:
    md = parse_metadata(META.replace(b"NAME", name))
    assert [(p.participant_id, p.names) for p in md.participants] == [("a", [shown]), ("b", ["Agent"])]


def test_metadata_in_a_declared_encoding_is_read_in_it() -> None:
    doc = META.replace(b"UTF-8", b"ISO-8859-1").replace(b"NAME", b"M\xfcller")
    md = parse_metadata(doc)
    assert md.participants[0].names == ["Müller"] and not md.warnings
