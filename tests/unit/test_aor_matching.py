"""Every form of AOR real SRCs write finds its number, and the admin's DN matching rule (prefixes
to strip, last N digits) matches national, E.164 and dialled forms of one agent's DN — and
nobody else's. Pure functions, tested with tables of real-world forms."""

from __future__ import annotations

import pytest

from server.calls.session_records import dn_candidates
from server.sip.aor import aor_number
from tandem_protocol.dn import DnError, MatchRule, match_rule

# (AOR as written, the number it names): forms from Metaswitch, BroadWorks, Cisco, Avaya,
# Oracle/Acme, Sonus metadata and from RFC 3261 / 3966 / 7865.
AORS = [
    ("7602922410", "7602922410"),  # Metaswitch <nameID aor="7602922410">
    ("sip:8638254725", "8638254725"),  # BroadWorks host-less URI
    ("sips:8638254725", "8638254725"),
    ("SIP:1001@pbx.example.com", "1001"),
    ("sip:1001@192.168.50.10:5060;transport=tcp", "1001"),
    ("sip:+15550102000@gw.example.com;user=phone", "+15550102000"),
    ("sip:+1-555-010-2000@gw.example.com;user=phone", "+1-555-010-2000"),
    ("sip:1001;phone-context=example.com@pbx;user=phone", "1001"),
    ("sip:%2B4930123456@gw", "+4930123456"),
    ("tel:+1-555-010-2000", "+1-555-010-2000"),
    ("tel:1001;phone-context=example.com", "1001"),
    ("TEL:+4930123456;ext=12", "+4930123456"),
    ("2249888500@172.16.198.55", "2249888500"),  # Sonus: no scheme
    ("<sip:7300@35.162.237.204>", "7300"),
    ('"Agent Smith" <sip:7300@35.162.237.204;user=phone>', "7300"),
    ("+1 (555) 010-2000", "+1 (555) 010-2000"),  # a bare number with visual separators
    ("  0760516936  ", "0760516936"),
    ("sip:alice@pbx.example.com", "alice"),  # a name: no DN, but not an error
    ("sip:pbx.example.com", None),
    ("sip:10.0.0.1", None),  # an IP is never a number
    ("urn:service:sos", None),
    ("", None),
    ("<>", None),
]


@pytest.mark.parametrize(("aor", "number"), AORS)
def test_every_aor_form_names_its_number(aor: str, number: str | None) -> None:
    assert aor_number(aor) == number


@pytest.mark.parametrize(
    ("aor", "dn"),
    [
        ("7602922410", "7602922410"),
        ("sip:8638254725", "8638254725"),
        ("tel:+1-555-010-2000", "+15550102000"),
        ("sip:+1-555-010-2000@gw;user=phone", "15550102000"),
        ("+1 (555) 010-2000", "+15550102000"),
    ],
)
def test_exact_candidates_of_every_form_include_the_dn(aor: str, dn: str) -> None:
    number = aor_number(aor)
    assert number is not None and dn in dn_candidates(number)


NANP = match_rule(["+1", "1", "9"], 0)  # a US site: E.164, long-distance and outside-line prefixes
LAST7 = match_rule([], 7)
UK = match_rule(["+44", "0"], 0)


@pytest.mark.parametrize(
    ("rule", "number", "dn", "match"),
    [
        (NANP, "+15550102000", "5550102000", True),  # E.164 vs national
        (NANP, "15550102000", "5550102000", True),
        (NANP, "95550102000", "5550102000", True),  # dialled with the outside-line 9
        (NANP, "5550102000", "+15550102000", True),  # the rule applies to the DN too
        (NANP, "+15550102001", "5550102000", False),
        (NANP, "5550102000", "5550102000", True),
        (UK, "+442071234567", "02071234567", True),
        (UK, "+442071234567", "2071234567", True),
        (UK, "+4402071234567", "2071234567", False),  # one prefix only, never two
        (LAST7, "+4930551001234", "551001234", True),
        (LAST7, "+4930551001234", "1001234", True),
        (LAST7, "+4930551001234", "1001235", False),
        (LAST7, "rec", "rec", False),  # not a number: never matched by the rule
        (MatchRule(), "+15550102000", "5550102000", False),  # exact only: as before
    ],
)
def test_match_rule(rule: MatchRule, number: str, dn: str, match: bool) -> None:
    assert rule.matches(number, dn) is match


def test_longest_prefix_is_stripped_first() -> None:
    rule = match_rule(["0", "00"], 0)  # national "0", international "00"
    assert rule.key("00493012345") == "493012345"
    assert rule.key("03012345") == "3012345"


@pytest.mark.parametrize(
    ("prefixes", "last", "message"),
    [
        (["abc"], 0, "not a prefix"),
        (["123456789"], 0, "not a prefix"),
        ([str(n) for n in range(11)], 0, "at most 10"),
        ([], 2, "0 (compare whole numbers) or 3-32"),
        ([], 33, "0 (compare whole numbers) or 3-32"),
        ([], -1, "0 (compare whole numbers) or 3-32"),
    ],
)
def test_a_bad_rule_is_refused_with_its_reason(prefixes: list[str], last: int, message: str) -> None:
    with pytest.raises(DnError, match=message.replace("(", r"\(").replace(")", r"\)")):
        match_rule(prefixes, last)


def test_prefixes_are_written_in_one_form() -> None:
    assert match_rule([" +1 ", "0", "0"], 0).strip_prefixes == ("+1", "0")


RECORDED = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1" xmlns:ms="urn:example:metaswitch">
  <datamode>complete</datamode>
  <participant participant_id="a">
    <nameID aor="7602922410"/>
    <extensiondata><ms:recordedParty>true</ms:recordedParty></extensiondata>
  </participant>
  <participant participant_id="b" recorded="false"><nameID aor="sip:8638254725"/></participant>
  <participant participant_id="c"><nameID aor="tel:+15550102000"/></participant>
</recording>
"""


def test_the_recorded_party_mark_is_read_and_tried_first() -> None:
    from server.calls.offer_policy import numbers_to_try
    from server.sip.listener import CallOffer
    from server.sip.recording_request import metadata_parties
    from server.sip.rs_metadata import parse_metadata

    parties = metadata_parties(parse_metadata(RECORDED))
    assert [(p.participant_id, p.recorded) for p in parties] == [("a", True), ("b", False), ("c", None)]
    assert [p.numbers for p in parties] == [("7602922410",), ("8638254725",), ("+15550102000",)]
    offer = CallOffer("c-1", "", "", "", ("127.0.0.1", 5060), "PCMU", True, participants=parties[::-1])
    assert [n for _, n in numbers_to_try(offer)] == ["7602922410", "+15550102000", "8638254725"]
