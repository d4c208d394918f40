"""The password policy an admin sets, and what a password must satisfy under it. Pure.

Stored as JSON in the ``settings`` table (``password_policy``); enforced wherever a password is
chosen: creating a user (web/API/CLI), changing one's own password, an admin's reset. The
minimum length never goes below 8, the floor ``server.security.passwords`` has always had, so
no policy can make passwords weaker than before it existed. Existing passwords are not
re-checked (we never see them again in clear); a stricter policy applies from the next change.
"""

from __future__ import annotations

import json
import logging
import string
from dataclasses import asdict, dataclass, fields
from typing import Any

from server.errors import PolicyError

log = logging.getLogger(__name__)

PASSWORD_POLICY_KEY = "password_policy"
MIN_LENGTH_FLOOR = 8
MIN_LENGTH_CEILING = 128  # argon2 takes longer, but no sane policy asks for more


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    min_length: int = MIN_LENGTH_FLOOR
    require_lowercase: bool = False
    require_uppercase: bool = False
    require_digit: bool = False
    require_symbol: bool = False  # anything that is not a letter or a digit
    forbid_username: bool = False  # the password may not contain the username (any case)


def parse(data: Any) -> PasswordPolicy:
    """A policy from JSON-like data; unknown keys and wrong types are refused."""
    if not isinstance(data, dict):
        raise PolicyError("a password policy is an object")
    known = {f.name: f for f in fields(PasswordPolicy)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise PolicyError(f"unknown password policy field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "min_length":
            if isinstance(value, bool) or not isinstance(value, int):
                raise PolicyError("min_length must be a whole number")
            if not MIN_LENGTH_FLOOR <= value <= MIN_LENGTH_CEILING:
                raise PolicyError(
                    f"min_length must be between {MIN_LENGTH_FLOOR} and {MIN_LENGTH_CEILING}, got {value}"
                )
        elif not isinstance(value, bool):
            raise PolicyError(f"{name} must be true or false")
        values[name] = value
    return PasswordPolicy(**values)


def load(stored: str | None) -> PasswordPolicy:
    """The stored policy, the default when none was set. A damaged value (only a hand edit of the
    database makes one) is logged and the default used: its floor still holds."""
    if stored is None:
        return PasswordPolicy()
    try:
        return parse(json.loads(stored))
    except ValueError as exc:  # JSONDecodeError and PolicyError are both ValueErrors
        log.error("setting %s is unusable (%s); using the default policy", PASSWORD_POLICY_KEY, exc)
        return PasswordPolicy()


def dump(policy: PasswordPolicy) -> str:
    return json.dumps(asdict(policy), sort_keys=True)


def problems(password: str, policy: PasswordPolicy, username: str = "") -> list[str]:
    """What this password lacks under the policy; empty when it is acceptable."""
    out: list[str] = []
    if len(password) < policy.min_length:
        out.append(f"at least {policy.min_length} characters")
    if policy.require_lowercase and not any(c.islower() for c in password):
        out.append("a lower-case letter")
    if policy.require_uppercase and not any(c.isupper() for c in password):
        out.append("an upper-case letter")
    if policy.require_digit and not any(c in string.digits for c in password):
        out.append("a digit")
    if policy.require_symbol and all(c.isalnum() for c in password):
        out.append("a character that is neither a letter nor a digit")
    if policy.forbid_username and username and username.casefold() in password.casefold():
        out.append("no copy of the username")
    return out


def describe(policy: PasswordPolicy) -> str:
    """The policy in one sentence, for error messages and the CLI."""
    parts = [f"at least {policy.min_length} characters"]
    for flag, text in (
        (policy.require_lowercase, "a lower-case letter"),
        (policy.require_uppercase, "an upper-case letter"),
        (policy.require_digit, "a digit"),
        (policy.require_symbol, "a symbol"),
        (policy.forbid_username, "not containing the username"),
    ):
        if flag:
            parts.append(text)
    return ", ".join(parts)
