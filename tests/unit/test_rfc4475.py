"""RFC 4475 torture messages: every ``parse`` file parses, every ``reject`` file is refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from server.errors import SipParseError
from server.sip.message import SipMessage, SipRequest, parse_message
from server.sip.salvage import error_response_for

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "sip" / "rfc4475"


def _cases() -> list[tuple[str, str]]:
    with (DATA / "EXPECTED.tsv").open(newline="") as fh:
        return [(row["file"], row["expected"]) for row in csv.DictReader(fh, delimiter="\t")]


CASES = _cases() if DATA.is_dir() else []


def test_the_torture_set_is_present() -> None:
    assert len(CASES) == 49


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_torture_message(name: str, expected: str) -> None:
    data = (DATA / name).read_bytes()
    if expected == "parse":
        msg = parse_message(data)
        # What we parsed must serialise to something we parse again the same way.
        again = parse_message(msg.to_bytes())

        def fields(m: SipMessage) -> list[tuple[str, str]]:
            return [h for h in m.headers if h[0] != "content-length"]

        assert fields(again) == fields(msg)
        assert again.body == msg.body
    else:
        with pytest.raises(SipParseError) as info:
            parse_message(data)
        assert info.value.reason


def test_bad_version_asks_for_505() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message((DATA / "badvers.dat").read_bytes())
    assert info.value.status == 505
    reply = error_response_for((DATA / "badvers.dat").read_bytes(), info.value.status)
    assert reply is not None and reply.startswith(b"SIP/2.0 505 ")


def test_content_length_overrides_trailing_octets() -> None:
    msg = parse_message((DATA / "dblreq.dat").read_bytes())
    assert isinstance(msg, SipRequest)
    assert msg.method == "REGISTER" and msg.body == b""


def test_wsinv_folded_and_compact_headers() -> None:
    msg = parse_message((DATA / "wsinv.dat").read_bytes())
    assert isinstance(msg, SipRequest)
    assert msg.to is not None and msg.to.tag == "1918181833n"
    assert msg.from_ is not None and msg.from_.tag == "98asjd8"
    assert msg.cseq is not None and (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert [v.branch for v in msg.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert msg.vias[1].transport == "TCP" and msg.vias[2].host == "192.168.255.111"
    assert msg.get("max-forwards") == "0068"
    assert len(msg.get_all("contact")) == 1
    assert len(msg.body) == 150


def test_escaped_user_part_is_decoded() -> None:
    msg = parse_message((DATA / "esc01.dat").read_bytes())
    assert isinstance(msg, SipRequest)
    assert msg.uri.user == "sips:user@example.com"
    assert msg.to is not None and msg.to.uri.user == "user"


def test_missing_headers_parse_but_cannot_be_answered() -> None:
    msg = parse_message((DATA / "insuf.dat").read_bytes())
    assert msg.call_id is None and msg.from_ is None
    assert error_response_for((DATA / "insuf.dat").read_bytes(), 400) is None
