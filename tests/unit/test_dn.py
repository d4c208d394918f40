"""The DN grammar (server/services/dn.py): one written form per DN, clear refusals."""

from __future__ import annotations

import pytest

from server.errors import InvalidInput
from server.services import dn


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("1001", "1001"),
        ("1001 ", "1001"),  # the trailing space that let a second agent take DN 1001
        ("\t 1001\n", "1001"),
        ("61 00", "6100"),
        ("61-00", "6100"),
        ("+1 (555) 010.2000", "+15550102000"),
        ("+4930123456", "+4930123456"),
        ("0", "0"),
        ("1" * 32, "1" * 32),
    ],
)
def test_normal_form(raw: str, normal: str) -> None:
    assert dn.normalise(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "not a dn!!",
        "bad dn!",
        "10a1",
        "*67",
        "1001#",
        "1+001",
        "++1001",
        "+",
        "-",
        "1" * 33,
        "１００１",
    ],
)
def test_refused_with_a_message_naming_the_rule(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        dn.normalise(raw)
    assert refused.value.code == "invalid_dn"
    assert "digits with an optional leading +" in refused.value.message
    assert repr(raw) in refused.value.message


def test_plus_and_bare_stay_different_dns() -> None:
    assert dn.normalise("+1001") != dn.normalise("1001")


def test_lookup_key_normalises_dns_and_passes_other_user_parts() -> None:
    assert dn.lookup_key(" 10-01 ") == "1001"
    assert dn.lookup_key("rec") == "rec"  # a SIP user part that is no DN is not an error
    assert dn.lookup_key(" rec ") == "rec"
