"""SIPREC offers captured from real SBCs/PBXs (shared test data), each wrapped in an INVITE and
read through ``parse_offer``; plus classification, error statuses and the multi-stream answer."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import NamedTuple

import pytest

from server.errors import SiprecError
from server.sip.message import SipRequest, parse_message
from server.sip.sdp import audio_streams, build_multistream_answer, parse_sdp
from server.sip.siprec import RecordingOffer, is_siprec_request, parse_offer

OFFERS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "siprec" / "offers"


class Who(NamedTuple):
    aor: str
    name: str | None
    sends: tuple[str, ...]


class Expected(NamedTuple):
    siprec: bool
    deferred: bool
    labels: tuple[str, ...]
    codecs: tuple[str, ...]
    participants: tuple[Who, ...]
    basis: str | None  # how stream senders are known: "metadata", "order" or None
    session_id: str | None


_CONNECTEL = (Who("sip:0760516936@sip-cust1.connectel.io", None, ("2",)),)
EXPECTED = {
    "acme-siprec-offer.txt": Expected(
        True,
        False,
        ("16777227", "16777228"),
        ("PCMU", "PCMU"),
        (
            Who("sip:9000@192.168.50.102", "9000", ("16777227",)),
            Who("sip:1002@192.168.50.10", "1002", ("16777228",)),
        ),
        "metadata",
        "AavRXwIIQj1Q39eJulTipQ==",
    ),
    "broadworks-offer-2.txt": Expected(
        True,
        False,
        ("10", "20"),
        ("PCMA", "PCMA"),
        (Who("sip:9878942259@212.188.68.145", None, ("10",)), Who("sip:ASBCE@asbce.com", None, ("20",))),
        "metadata",
        "00FA0800705D4C5DCAAC41",
    ),
    "broadworks-offer.txt": Expected(True, False, ("1",), ("PCMA",), (), None, None),
    "cisco-siprec-offer.txt": Expected(
        True,
        False,
        ("1", "2"),
        ("PCMU", "PCMU"),
        (Who("sip:7301@35.162.237.204", None, ("1",)), Who("sip:7300@35.162.237.204", "7300", ("2",))),
        "metadata",
        "kQNhKFdEEeeJ9tD/VsPGWA==",
    ),
    "connectel-offer.txt": Expected(
        True,
        False,
        ("1", "2"),
        ("PCMU", "PCMA"),
        (Who("sip:0771121212@52.57.92.239", "test_user;lang=en-US;id=22", ("1",)), *_CONNECTEL),
        "order",
        "2+hKdGY+QvCKu8HYTdBouQ==",
    ),
    "connectel-offer2.txt": Expected(
        True,
        False,
        ("1", "2"),
        ("PCMU", "PCMA"),
        (Who("sip:0771121212@52.57.92.239", "test_user;lang=en-US", ("1",)), *_CONNECTEL),
        "order",
        "2+hKdGY+QvCKu8HYTdBouQ==",
    ),
    "connectel-offer3.txt": Expected(
        True,
        False,
        ("1", "2"),
        ("PCMU", "PCMA"),
        (Who("sip:0771121212@52.57.92.239", "test_user", ("1",)), *_CONNECTEL),
        "order",
        "2+hKdGY+QvCKu8HYTdBouQ==",
    ),
    "inactive-sdp-offer.txt": Expected(
        True,
        True,
        ("1", "2"),
        ("PCMU", "PCMU"),
        (
            Who("sip:0733165805@192.168.40.34", None, ("1",)),
            Who("sip:+972546136443@192.168.10.140", None, ("2",)),
        ),
        "order",
        "GZBIusaXEeuxxK1dFIaIyA==",
    ),
    "non-siprec-payload.txt": Expected(False, False, ("1",), ("PCMU",), (), None, None),
    "procomm-siprec-offer.txt": Expected(
        True,
        False,
        ("a_leg", "b_leg"),
        ("PCMA", "PCMA"),
        (
            Who("sip:016190200@87.252.209.116", "016190200", ("a_leg",)),
            Who("Extension-016190619@speechpath.ie", "Speechpath-Main-Line 016190619", ("b_leg",)),
        ),
        "metadata",
        "ho9aUhEQTRS+31th7sHStA==",
    ),
    "sonus-siprec-offer.txt": Expected(
        True,
        False,
        ("1", "2"),
        ("PCMU", "PCMU"),
        (
            Who("2249888500@172.16.198.55", "Extension 8500", ("2",)),
            Who("2249888012@172.16.195.72", None, ("1",)),
        ),
        "metadata",
        "MTQ3YzA3YzEtNjdkNy0xMA==",
    ),
}


def invite(body: bytes, content_type: str, *extra: str) -> SipRequest:
    head = "\r\n".join(
        [
            "INVITE sip:srs@127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
            "From: <sip:src@127.0.0.1>;tag=1",
            "To: <sip:srs@127.0.0.1>",
            "Call-ID: c1",
            "CSeq: 1 INVITE",
            "Max-Forwards: 70",
            f"Content-Type: {content_type}",
            *extra,
            f"Content-Length: {len(body)}",
        ]
    )
    req = parse_message(head.encode() + b"\r\n\r\n" + body)
    assert isinstance(req, SipRequest) and req.body == body
    return req


def offer_of(req: SipRequest) -> RecordingOffer:
    require = ", ".join(req.get_all("require")) or None
    return parse_offer(req.get("content-type") or "", req.body, require, req.get("contact"))


def load(name: str) -> SipRequest:
    body = (OFFERS / name).read_bytes()
    first = re.search(rb"^--(\S+?)\s*$", body, re.MULTILINE)
    ctype = f'multipart/mixed;boundary="{first.group(1).decode()}"' if first else "application/sdp"
    return invite(body, ctype)


def test_every_offer_file_has_expectations() -> None:
    assert OFFERS.is_dir(), f"shared test data missing at {OFFERS}"
    assert sorted(p.name for p in OFFERS.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offer_file(name: str) -> None:
    want = EXPECTED[name]
    offer = offer_of(load(name))
    assert (offer.siprec, offer.deferred, offer.session_id) == (want.siprec, want.deferred, want.session_id)
    assert tuple(s.label for s in offer.streams) == want.labels
    assert tuple(s.audio.codec for s in offer.streams) == want.codecs
    assert all(s.audio.accepted and s.audio.port > 0 for s in offer.streams)
    got = tuple(Who(p.aor or "", p.name, p.sends) for p in offer.participants)
    assert got == want.participants
    for who, participant in zip(want.participants, offer.participants, strict=True):
        (label,) = who.sends
        assert offer.sender_of(label) is participant
    assert {s.sender_basis for s in offer.streams} == {want.basis}
    if want.basis == "order":
        assert any("assuming document order" in w for w in offer.warnings)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_answer_has_one_recvonly_line_per_stream(name: str) -> None:
    offer = offer_of(load(name))
    ports = {s.audio.index: 30000 + 2 * i for i, s in enumerate(offer.streams)}
    answer = parse_sdp(offer.answer("127.0.0.1", ports))
    streams = audio_streams(answer)
    assert [s.label for s in streams] == [s.label for s in offer.streams]
    assert [s.port for s in streams] == list(ports.values())
    assert [s.codec for s in streams] == [s.audio.codec for s in offer.streams]
    assert {s.direction for s in streams} == {"inactive" if offer.deferred else "recvonly"}


def test_receivers_and_vendor_hints() -> None:
    cisco = offer_of(load("cisco-siprec-offer.txt"))
    assert [p.receives for p in cisco.participants] == [("2",), ("1",)]
    acme = offer_of(load("acme-siprec-offer.txt"))
    assert [p.calling_party for p in acme.participants] == [True, False]
    sonus = offer_of(load("sonus-siprec-offer.txt"))
    assert sonus.metadata is not None and "Extension 8500" in sonus.metadata.extensions[0]
    assert [p.order for p in sonus.participants] == [0, 1]


def test_damaged_broadworks_metadata_records_audio_and_warns() -> None:
    offer = offer_of(load("broadworks-offer.txt"))
    assert offer.siprec and offer.metadata is not None
    (stream,) = offer.streams
    assert (stream.audio.port, stream.audio.codec, stream.sender) == (22294, "PCMA", None)
    assert offer.participants == () and offer.warnings
    assert "application/ +xml" in " ".join(offer.warnings)
    assert offer.metadata.root == "recording_metadata"
    assert "sip:+1MYPHONENUMBER@SBC_IP" in offer.metadata.salvaged_uris


def test_plain_payload_is_not_siprec() -> None:
    offer = offer_of(load("non-siprec-payload.txt"))
    assert not offer.siprec and offer.metadata is None and offer.participants == ()
    assert offer.warnings == ()


def test_siprec_markers_on_a_plain_sdp_offer() -> None:
    body = (OFFERS / "non-siprec-payload.txt").read_bytes()
    offer = offer_of(invite(body, "application/sdp", "Require: 100rel, siprec"))
    assert offer.siprec and "SIPREC offer without recording metadata" in offer.warnings
    assert offer_of(invite(body, "application/sdp", "Contact: <sip:src@127.0.0.1>;+sip.src")).siprec
    assert is_siprec_request(None, '"SRC" <sip:a@b>;expires=3;+SIP.SRC;x')
    assert not is_siprec_request("100rel, siprecx", "<sip:a@b>;+sip.srcx")
    assert not is_siprec_request(None, None)


SDP2 = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\n"
    b"m=audio 4002 RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n"
)
META = (
    b"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
    b"<stream stream_id='s1'><label>1</label></stream>"
    b"<participant participant_id='p1'><nameID aor='sip:1@x'/><send>s1</send></participant></recording>"
)


def multipart(*parts: tuple[str, bytes]) -> bytes:
    out = b"".join(b"--XyZ\r\n" + head.encode() + b"\r\n\r\n" + body + b"\r\n" for head, body in parts)
    return out + b"--XyZ--\r\n"


def test_metadata_first_partial_associations_and_required_known_part() -> None:
    body = multipart(
        ("Content-Type: application/rs-metadata", META),
        ("Content-Type: text/plain", b"ignored"),
        ("Content-Type: application/sdp\r\nContent-Disposition: session;handling=required", SDP2),
    )
    offer = parse_offer("multipart/mixed; boundary=XyZ", body, None, None)
    assert offer.siprec and [s.sender for s in offer.streams] == ["p1", None]
    assert [s.sender_basis for s in offer.streams] == ["metadata", None]
    assert "label '2' is not described in the metadata" in offer.warnings


def test_hostile_metadata_does_not_fail_the_offer() -> None:
    evil = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><recording>&x;</recording>'
    body = multipart(
        ("Content-Type: application/sdp", SDP2), ("Content-Type: application/rs-metadata+xml", evil)
    )
    offer = parse_offer("multipart/mixed;boundary=XyZ", body, None, None)
    assert offer.siprec and len(offer.accepted_streams) == 2 and offer.participants == ()
    assert any("DOCTYPE" in w for w in offer.warnings)


@pytest.mark.parametrize(
    ("ctype", "body", "status", "reason"),
    [
        ("", SDP2, 400, "without Content-Type"),
        ('multipart/mixed;boundary="XyZ', SDP2, 400, "malformed Content-Type"),
        ("text/plain", SDP2, 415, "unsupported body type"),
        ("multipart/mixed", multipart(("Content-Type: application/sdp", SDP2)), 400, "no boundary"),
        (
            "multipart/mixed;boundary=other",
            multipart(("Content-Type: application/sdp", SDP2)),
            400,
            "does not occur",
        ),
        (
            "multipart/mixed;boundary=XyZ",
            multipart(
                ("Content-Type: application/sdp", SDP2),
                (
                    "Content-Type: application/isup\r\nContent-Disposition: signal;handling=required",
                    b"\x01\x02",
                ),
            ),
            415,
            "required body part",
        ),
        ("application/sdp", SDP2.replace(b"RTP/AVP 0", b"RTP/AVP 18"), 488, "no common codec"),
        ("application/sdp", SDP2.replace(b"m=audio", b"m=video"), 488, "no m=audio line"),
        ("application/sdp", b"v=0\r\nthis is not sdp\r\n", 488, "unusable SDP"),
    ],
)
def test_refused_offers(ctype: str, body: bytes, status: int, reason: str) -> None:
    with pytest.raises(SiprecError, match=reason) as info:
        parse_offer(ctype, body, "siprec", None)
    assert info.value.status == status and isinstance(info.value, ValueError)


def test_unknown_multipart_subtype_is_read_as_mixed() -> None:
    body = multipart(
        ("Content-Type: application/sdp", SDP2), ("Content-Type: application/rs-metadata+xml", META)
    )
    assert parse_offer("multipart/related;boundary=XyZ", body, None, None).participants[0].aor == "sip:1@x"


MIXED = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 9 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=label:A\r\na=sendonly\r\n"
    b"m=video 4002 RTP/AVP 31\r\n"
    b"m=audio 4004 RTP/AVP 18\r\na=label:B\r\n"
    b"m=audio 0 RTP/AVP 0\r\na=label:C\r\n"
    b"m=audio 4008 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=label:D\r\n"
)


def test_multistream_sdp_parsing_and_answer() -> None:
    sdp = parse_sdp(MIXED)
    assert audio_streams(sdp)[0].codec == "G722"  # recordable by default, first in the offer
    streams = audio_streams(sdp, ("PCMU", "PCMA"))
    assert [(s.index, s.label) for s in streams] == [(0, "A"), (2, "B"), (3, "C"), (4, "D")]
    a, b, c, d = streams
    assert a.codecs == ((9, "G722"), (8, "PCMA"), (101, "TELEPHONE-EVENT")) and a.telephone_event == 101
    assert (a.codec, a.payload_type, a.direction, a.deferred) == ("PCMA", 8, "sendonly", False)
    assert b.refusal is not None and "no common codec" in b.refusal and not b.accepted
    assert c.refusal is not None and "port 0" in c.refusal
    assert (d.accepted, d.deferred, d.remote_host) == (True, True, "0.0.0.0")
    assert audio_streams(sdp, ("G722", "PCMU"))[0].codec == "G722"
    answer = build_multistream_answer(sdp, streams, "127.0.0.1", {0: 30000, 4: 30002}).decode()
    m_lines = [line for line in answer.split("\r\n") if line.startswith("m=")]
    assert m_lines == [
        "m=audio 30000 RTP/AVP 8 101",  # every decodable type (PCMA here) and telephone-event
        "m=video 0 RTP/AVP 31",
        "m=audio 0 RTP/AVP 18",
        "m=audio 0 RTP/AVP 0",
        "m=audio 30002 RTP/AVP 0",
    ]
    assert "a=label:A\r\na=recvonly\r\n" in answer and "a=label:D\r\na=recvonly\r\n" in answer
    assert "a=label:B" not in answer and "c=IN IP4 127.0.0.1\r\n" in answer


def test_offer_with_one_held_stream_is_not_deferred() -> None:
    body = MIXED.replace(b"m=video 4002 RTP/AVP 31\r\n", b"")
    offer = parse_offer("application/sdp", body, None, None)
    assert not offer.deferred and len(offer.accepted_streams) == 2
    assert any("refused: no common codec" in w for w in offer.warnings)
    held = body.replace(b"a=sendonly", b"a=inactive")
    assert parse_offer("application/sdp", held, None, None).deferred


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_damaged_offers_raise_only_siprec_errors(name: str) -> None:
    """Truncated and bit-flipped captures: an answerable SiprecError or an offer, never a crash."""
    rng = random.Random(name)
    req = load(name)
    ctype = req.get("content-type") or ""
    outcomes = {"offer": 0, "refused": 0}
    for _ in range(150):
        body = bytearray(req.body)
        if rng.random() < 0.3:
            del body[rng.randrange(1, len(body)) :]
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(body) + 1)
            body[pos:pos] = rng.choice(
                [
                    b"<",
                    b">",
                    b"\r",
                    b"\n",
                    b"--",
                    b"&",
                    b'"',
                    b"\x00",
                    b"\xc3",
                    b"<!DOCTYPE x>",
                    b"encoding='x'",
                ]
            )
        try:
            parse_offer(ctype, bytes(body), "siprec", None)
            outcomes["offer"] += 1
        except SiprecError as exc:
            assert exc.status in (400, 415, 488) and exc.reason
            outcomes["refused"] += 1
    assert outcomes["offer"] > 0  # tolerant: light damage (e.g. in metadata) still records
