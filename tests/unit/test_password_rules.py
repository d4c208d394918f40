"""The password policy (server/policy/password_rules.py): parsing what an admin sends and what
a password must have under it."""

from __future__ import annotations

import pytest

from server.errors import PolicyError
from server.policy import password_rules
from server.policy.password_rules import PasswordPolicy


def test_default_keeps_the_old_floor_of_eight() -> None:
    policy = PasswordPolicy()
    assert password_rules.problems("1234567", policy) == ["at least 8 characters"]
    assert password_rules.problems("12345678", policy) == []


def test_each_rule_names_what_is_missing() -> None:
    policy = PasswordPolicy(
        min_length=12,
        require_lowercase=True,
        require_uppercase=True,
        require_digit=True,
        require_symbol=True,
        forbid_username=True,
    )
    assert password_rules.problems("ALICE", policy, "alice") == [
        "at least 12 characters",
        "a lower-case letter",
        "a digit",
        "a character that is neither a letter nor a digit",
        "no copy of the username",
    ]
    assert password_rules.problems("Correct-horse-9", policy, "alice") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_length": 7}, "between 8 and 128"),
        ({"min_length": 129}, "between 8 and 128"),
        ({"min_length": "12"}, "whole number"),
        ({"min_length": True}, "whole number"),
        ({"require_digit": "yes"}, "true or false"),
        ({"max_age_days": 90}, "unknown password policy field(s) max_age_days"),
        ([], "is an object"),
    ],
)
def test_bad_policies_are_refused(data: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        password_rules.parse(data)


def test_stored_round_trip_and_damaged_value_falls_back_to_default() -> None:
    policy = password_rules.parse({"min_length": 14, "require_digit": True})
    assert password_rules.load(password_rules.dump(policy)) == policy
    assert password_rules.load(None) == PasswordPolicy()
    assert password_rules.load("{not json") == PasswordPolicy()
