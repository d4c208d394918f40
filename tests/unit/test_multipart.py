"""RFC 2046 multipart parsing: boundaries, line ends, padding, bounds and malformed bodies."""

from __future__ import annotations

import pytest

from server.errors import MultipartError
from server.sip.multipart import MAX_BODY_BYTES, MAX_PARTS, boundary_of, parse_multipart, split_parameters

CT = "multipart/mixed;boundary=b1"


def _body(eol: str, close: bool = True) -> bytes:
    text = eol.join(
        [
            "preamble text",
            "--b1",
            "Content-Type: application/sdp",
            "",
            "v=0",
            "m=audio 1 RTP/AVP 0",
            "--b1",
            "Content-Type: application/rs-metadata+xml",
            "Content-Disposition: recording-session",
            "",
            "<recording/>",
            "--b1--" if close else "",
            "epilogue",
        ]
    )
    return text.encode()


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_two_parts_with_preamble_and_epilogue(eol: str) -> None:
    mp = parse_multipart(CT, _body(eol))
    assert [p.content_type for p in mp.parts] == ["application/sdp", "application/rs-metadata+xml"]
    # The line break before a delimiter belongs to the delimiter, not to the part.
    assert mp.parts[0].body == f"v=0{eol}m=audio 1 RTP/AVP 0".encode()
    assert mp.parts[1].body == b"<recording/>"
    assert mp.parts[1].disposition == "recording-session"
    assert mp.preamble == b"preamble text"
    assert mp.epilogue == b"epilogue"
    assert mp.closed


def test_mixed_line_ends_in_one_body() -> None:
    body = (
        b"--b1\r\nContent-Type: application/sdp\n\r\nv=0\r\nc=x\n--b1\nContent-Type: text/x\r\n\nhi\r\n--b1--"
    )
    mp = parse_multipart(CT, body)
    assert [p.body for p in mp.parts] == [b"v=0\r\nc=x", b"hi"]
    assert mp.parts[1].content_type == "text/x"


@pytest.mark.parametrize(
    "ctype",
    [
        'multipart/mixed; boundary="b1"',
        "multipart/mixed ; BOUNDARY=b1",
        'Multipart/Mixed;charset=x;boundary="b1"',
    ],
)
def test_boundary_parameter_forms(ctype: str) -> None:
    assert boundary_of(ctype) == "b1"
    assert len(parse_multipart(ctype, _body("\r\n")).parts) == 2


def test_quoted_boundary_with_specials() -> None:
    ctype = 'multipart/mixed;boundary="a b;c=d"'
    assert boundary_of(ctype) == "a b;c=d"
    mp = parse_multipart(ctype, b"--a b;c=d\r\n\r\nx\r\n--a b;c=d--\r\n")
    assert mp.parts[0].body == b"x" and mp.parts[0].content_type == "text/plain"


def test_transport_padding_after_delimiters_and_missing_close() -> None:
    body = b"--b1 \t\r\nContent-Type: a/b\r\n\r\none\r\n--b1  \r\n\r\ntwo\n"
    mp = parse_multipart(CT, body)
    assert [p.body for p in mp.parts] == [b"one", b"two\n"]
    assert not mp.closed and mp.epilogue == b""


def test_close_delimiter_with_padding() -> None:
    mp = parse_multipart(CT, b"--b1\r\n\r\nx\r\n--b1-- \r\n")
    assert mp.closed and mp.parts[0].body == b"x"


def test_boundary_as_prefix_of_a_content_line_is_content() -> None:
    body = b"--b1\r\n\r\n--b1x is not a delimiter\r\n--b1-extra\r\n--b1--"
    mp = parse_multipart(CT, body)
    assert len(mp.parts) == 1
    assert mp.parts[0].body == b"--b1x is not a delimiter\r\n--b1-extra"


def test_binary_content_is_kept_exactly() -> None:
    payload = bytes(range(256)).replace(b"\n", b"")
    head = b"--b1\r\nContent-Type: application/octet-stream\r\n\r\n"
    mp = parse_multipart(CT, head + payload + b"\r\n--b1--")
    assert mp.parts[0].body == payload


def test_part_headers_folding_no_space_content_id_and_handling() -> None:
    body = (
        b"--b1\r\nContent-Type:application/sdp\r\nContent-Disposition: session;\r\n handling=required\r\n"
        b"Content-ID: <sdp@x>\r\nContent-Length: 999\r\n\r\nv=0\r\n--b1--"
    )
    part = parse_multipart(CT, body).parts[0]
    assert part.content_type == "application/sdp"
    assert part.disposition == "session" and part.handling_required
    assert part.content_id == "sdp@x"
    assert part.header("content-length") == "999"  # kept, never trusted: parts end at the delimiter
    assert part.body == b"v=0"


def test_part_without_header_section_is_all_content() -> None:
    part = parse_multipart(CT, b"--b1\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n--b1--").parts[0]
    assert part.content_type == "text/plain" and part.body == b"v=0\r\no=- 1 1 IN IP4 1.2.3.4"


def test_empty_part_and_part_with_headers_only() -> None:
    mp = parse_multipart(CT, b"--b1\r\n--b1\r\nContent-Type: a/b\r\n--b1--")
    assert [p.body for p in mp.parts] == [b"", b""]
    assert mp.parts[1].content_type == "a/b"


def test_damaged_content_type_is_kept_as_sent() -> None:
    part = parse_multipart(CT, b"--b1\nContent-Type:application/ +xml\n\n<x/>\n--b1--").parts[0]
    assert part.content_type == "application/ +xml" and part.body == b"<x/>"


def test_split_parameters() -> None:
    parsed = split_parameters('A/B; x="1;2" ;y=\\z; q="a\\"b";;')
    assert parsed == ("a/b", {"x": "1;2", "y": "\\z", "q": 'a"b'})


@pytest.mark.parametrize(
    ("ctype", "body", "reason"),
    [
        ("multipart/mixed", b"--b1\r\n\r\nx\r\n--b1--", "no boundary"),
        ("multipart/mixed;boundary=", b"--\r\n", "no boundary"),
        ('multipart/mixed;boundary="b1', b"--b1\r\n", "unterminated"),
        ("multipart/mixed;boundary=" + "x" * 71, b"", "longer than 70"),
        ("multipart/mixed;boundary=b\x01", b"", "control"),
        ("application/sdp;boundary=b1", b"--b1\r\n", "not a multipart"),
        (CT, b"v=0\r\nno delimiter here\r\n", "does not occur"),
        (CT, b"--b2\r\n\r\nx\r\n--b2--", "does not occur"),
        (
            CT,
            b"--b1\r\nContent-Type: a/b\r\nthis is not a header\r\n\r\nx\r\n--b1--",
            "malformed body part header",
        ),
        (CT, b"--b1\r\n" + b"X-H: 1\r\n" * 40 + b"\r\nx\r\n--b1--", "more than 32 headers"),
        (CT, b"--b1\r\n" * (MAX_PARTS + 1) + b"--b1--", f"more than {MAX_PARTS} body parts"),
        (CT, b"--b1\r\n\r\n" + b"x" * MAX_BODY_BYTES + b"\r\n--b1--", "larger than"),
        ("multipart/mixed;=x;boundary=b1", b"--b1\r\n", "without a name"),
    ],
)
def test_malformed(ctype: str, body: bytes, reason: str) -> None:
    with pytest.raises(MultipartError, match=reason) as info:
        parse_multipart(ctype, body)
    assert isinstance(info.value, ValueError) and info.value.reason


def test_exactly_max_parts_is_accepted() -> None:
    mp = parse_multipart(CT, b"--b1\r\n\r\np\r\n" * MAX_PARTS + b"--b1--")
    assert len(mp.parts) == MAX_PARTS and all(p.body == b"p" for p in mp.parts)
