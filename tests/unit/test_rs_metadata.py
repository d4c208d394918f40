"""Recording metadata (RFC 7865 and legacy shapes): reading, damage tolerance, hostile XML."""

from __future__ import annotations

import time

import pytest

from server.sip.rs_metadata import parse_metadata
from server.sip.rs_xml import MAX_DEPTH, MAX_ELEMENTS

RFC7865 = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <dataMode>complete</dataMode>
  <group group_id="7+OTCyoxTmqmqyA/1weDAg==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
    <call-center xmlns='urn:ietf:params:xml:ns:callcenter'><supervisor>sip:alice@atlanta.com</supervisor>\
</call-center>
  </group>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
    <group-ref>7+OTCyoxTmqmqyA/1weDAg==</group-ref>
  </session>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>i1Pz3to5hGk8fuXl+PbwCw==</send>
    <recv>8zc6e0lYTlWIINA6GR+3ag==</recv>
  </participantstreamassoc>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <nameID aor="sip:bob@biloxi.com"><name xml:lang="it">Bob</name></nameID>
    <nameID aor="sip:bob@example.net"/>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="sip:alice@atlanta.com"><name xml:lang="en">Alice</name></nameID>
    <send>8zc6e0lYTlWIINA6GR+3ag==</send>
  </participant>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>96</label></stream>
  <stream stream_id="8zc6e0lYTlWIINA6GR+3ag==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>97</label></stream>
  <sessionrecordingassoc session_id="hVpd7YQgRW2nD22h7q60JQ=="/>
</recording>"""


def test_rfc7865_document() -> None:
    md = parse_metadata(RFC7865)
    assert md.namespace == "urn:ietf:params:xml:ns:recording:1" and md.root == "recording"
    assert md.datamode == "complete" and md.group_ids == ["7+OTCyoxTmqmqyA/1weDAg=="]
    assert [s.session_id for s in md.sessions] == ["hVpd7YQgRW2nD22h7q60JQ=="]
    assert md.sessions[0].group_ref == "7+OTCyoxTmqmqyA/1weDAg=="
    assert md.sessions[0].sip_session_ids[0].startswith("ab30317f")
    assert md.recording_session_ids == ["hVpd7YQgRW2nD22h7q60JQ=="]
    bob, alice = md.participants  # an association may come before the participant it names
    assert bob.aors == ["sip:bob@biloxi.com", "sip:bob@example.net"] and bob.names == ["Bob"]
    assert bob.sends == ["i1Pz3to5hGk8fuXl+PbwCw=="] and bob.receives == ["8zc6e0lYTlWIINA6GR+3ag=="]
    assert bob.declared and alice.aors == ["sip:alice@atlanta.com"] and alice.names == ["Alice"]
    assert alice.sends == ["8zc6e0lYTlWIINA6GR+3ag=="]  # legacy: <send> inside <participant>
    assert [(s.stream_id[:4], s.label) for s in md.streams] == [("i1Pz", "96"), ("8zc6", "97")]
    # Extension data is kept verbatim (namespace declaration and all).
    assert md.extensions == [
        "<call-center xmlns='urn:ietf:params:xml:ns:callcenter'>"
        "<supervisor>sip:alice@atlanta.com</supervisor></call-center>"
    ]
    assert md.warnings == []


def test_legacy_draft_shape_prefixed_namespace_and_mixed_case() -> None:
    doc = b"""<?xml version='1.0'?>
<r:Recording xmlns:r='urn:ietf:params:xml:ns:recording'>
 <r:DataMode>partial</r:DataMode>
 <r:session id="S1"><r:participant id="P1" session="S1"><r:aor>sip:100@pbx</r:aor>
   <r:name>Agent 100</r:name><r:send>T1</r:send>
   <r:extensiondata><v:callingParty xmlns:v="urn:x">false</v:callingParty></r:extensiondata>
 </r:participant>
 <r:stream id="T1" session="S1"><r:label>L1</r:label><r:mode>mixed</r:mode></r:stream></r:session>
 <r:participant-stream-assoc participant-id="P1"><r:recv>T9</r:recv></r:participant-stream-assoc>
</r:Recording>"""
    md = parse_metadata(doc)
    assert md.datamode == "partial" and md.root == "Recording"
    (p,) = md.participants
    assert (p.participant_id, p.aors, p.names, p.sends, p.receives) == (
        "P1",
        ["sip:100@pbx"],
        ["Agent 100"],
        ["T1"],
        ["T9"],
    )
    assert p.session_ids == ["S1"] and p.calling_party is False
    assert p.extensions and p.extensions[0].startswith("<r:extensiondata>")
    assert (md.streams[0].label, md.streams[0].session_id, md.streams[0].mode) == ("L1", "S1", "mixed")
    assert md.warnings == ["participant 'P1' names unknown stream 'T9'"]


def test_missing_ids_and_labels_are_warnings() -> None:
    doc = b"""<recording><participant><nameID aor="sip:a@b"/></participant><stream><label>1</label></stream>
<stream stream_id="x"/><participantstreamassoc><send>x</send></participantstreamassoc>
<participantsessionassoc participant_id="ghost" session_id="s"/></recording>"""
    md = parse_metadata(doc)
    assert md.participants[0].participant_id == "#1" and md.participants[0].aors == ["sip:a@b"]
    assert md.participants[1].participant_id == "ghost" and not md.participants[1].declared
    assert [s.stream_id for s in md.streams] == ["x"]
    text = " | ".join(md.warnings)
    for needle in (
        "no participant_id",
        "<stream> has no stream_id",
        "'x' has no label",
        "<participantstreamassoc> has no participant_id",
        "'ghost' is only named",
    ):
        assert needle in text


def test_tagless_text_is_salvaged_not_raised() -> None:
    doc = (
        b'<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec">'
        b"completesip:a_b2019sip:+15551234@sbc.example;user=phoneurn:uuid:1sip:bob@host</recording_metadata>"
    )
    md = parse_metadata(doc)
    assert md.participants == [] and md.root == "recording_metadata"
    assert md.salvaged_uris == ["sip:+15551234@sbc.example", "sip:bob@host"]
    assert not any("unexpected metadata root" in w for w in md.warnings)  # BroadWorks' legacy root
    assert any("no participants" in w for w in md.warnings)
    assert any("salvaged 2 URI" in w for w in md.warnings)


def test_unknown_root_is_a_warning() -> None:
    md = parse_metadata(b"<foo><participant participant_id='p'><aor>sip:x@y</aor></participant></foo>")
    assert md.participants[0].aors == ["sip:x@y"]
    assert md.warnings == ["unexpected metadata root element 'foo'"]


def test_truncated_xml_keeps_what_was_read() -> None:
    doc = RFC7865[: RFC7865.index(b"<stream stream_id")] + b"<stream stream_id='z'><lab"
    md = parse_metadata(doc)
    assert [p.aors[0] for p in md.participants] == ["sip:bob@biloxi.com", "sip:alice@atlanta.com"]
    assert any("malformed" in w and "line" in w for w in md.warnings)


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"not xml at all",
        b"\xff\xfe\x00garbage",
        b"<?xml version='1.0'?>",
        b"<?xml version='1.0' encoding='UTF-9'?><recording/>",
    ],
)
def test_not_xml_never_raises(doc: bytes) -> None:
    md = parse_metadata(doc)
    assert md.participants == [] and md.warnings


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<recording><participant participant_id="p"><nameID aor="&lol9;"/></participant></recording>"""


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (BILLION_LAUGHS, "DOCTYPE"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<recording><participant participant_id="p"><name>&x;</name></participant></recording>',
            "DOCTYPE",
        ),
        (b'<!DOCTYPE recording SYSTEM "http://127.0.0.1:9/evil.dtd"><recording/>', "DOCTYPE"),
        (
            (
                '<?xml version="1.0" encoding="UTF-16"?>'
                '<!DOCTYPE r [<!ENTITY a "b">]><recording>&a;</recording>'
            ).encode("utf-16"),
            "DOCTYPE",
        ),
        (b"<recording>" + b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1) + b"</recording>", "depth"),
        (b"<recording>" + b"<x/>" * MAX_ELEMENTS + b"</recording>", "elements"),
    ],
)
def test_hostile_xml_is_refused(doc: bytes, reason: str) -> None:
    started = time.monotonic()
    md = parse_metadata(doc)
    assert time.monotonic() - started < 1.0
    assert md.participants == [] and md.streams == []
    assert len(md.warnings) == 1 and "refused" in md.warnings[0] and reason in md.warnings[0]


def test_undefined_entity_is_malformed_not_expanded() -> None:
    md = parse_metadata(
        b'<recording><participant participant_id="p"><name>&x;</name></participant></recording>'
    )
    assert [(p.participant_id, p.names) for p in md.participants] == [("p", [])]  # read up to the error
    assert "malformed" in md.warnings[0] and "undefined entity" in md.warnings[0]


def test_predefined_entities_and_self_closing_extension_raw() -> None:
    doc = (
        b'<recording><participant participant_id="p"><name>A &amp; B</name>'
        b'<ext:tag xmlns:ext="urn:e" a="x/>y"/></participant>'
        b'<vendor:x xmlns:vendor="urn:v"></vendor:x></recording>'
    )
    md = parse_metadata(doc)
    assert md.participants[0].names == ["A & B"]
    assert md.participants[0].extensions == ['<ext:tag xmlns:ext="urn:e" a="x/>y"/>']
    assert md.extensions == ['<vendor:x xmlns:vendor="urn:v"></vendor:x>']


def test_warnings_are_bounded() -> None:
    doc = b"<recording>" + b"<stream stream_id='s'/>" * 200 + b"</recording>"
    md = parse_metadata(doc)
    assert len(md.streams) == 200 and len(md.warnings) == 32
