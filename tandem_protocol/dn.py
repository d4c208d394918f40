"""The DN grammar shared by the server and the agent desktop (stdlib only). Why it is what it
is: see ``server/services/dn.py``, which applies it to every DN the server takes in; the call
path (``server.calls``) looks numbers up by ``lookup_key``."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DIGITS = 32
_SEPARATORS = re.compile(r"[ \-.()]")
_DN = re.compile(rf"^\+?[0-9]{{1,{MAX_DIGITS}}}$")
RULE = f"a DN is 1-{MAX_DIGITS} digits with an optional leading + (spaces, -, ., ( and ) are ignored)"


class DnError(ValueError):
    """Not a DN; the message quotes what was given and states the rule."""


def normalise(raw: str) -> str:
    """The DN's one written form: surrounding whitespace and visual separators dropped."""
    dn = _SEPARATORS.sub("", raw.strip())
    if _DN.match(dn):
        return dn
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    raise DnError(f"{shown!r} is not a DN: {RULE}")


def lookup_key(raw: str) -> str:
    """The form to look a number from the network up by: normalised when it is a DN, else as
    given (stripped) — a SIP user part like ``rec`` is not an error, it just matches no DN."""
    try:
        return normalise(raw)
    except DnError:
        return raw.strip()


# -- matching a number from the network to a DN ----------------------------------------------
MAX_PREFIXES = 10
MAX_PREFIX_DIGITS = 8
MIN_LAST_DIGITS = 3  # fewer would let unrelated numbers (…1, …01) reach the same agent
_PREFIX = re.compile(rf"^\+?[0-9]{{1,{MAX_PREFIX_DIGITS}}}$")


@dataclass(frozen=True, slots=True)
class MatchRule:
    """The admin's rule for matching the numbers a call names to DNs, beyond the exact match
    (which always applies and always wins): both sides lose the first of ``strip_prefixes``
    they start with (longest first: "+1" before "+"; e.g. "+1", "0", "9" — an outside-line or
    trunk prefix, a national or country prefix), then any leading "+"; with ``last_digits`` = N
    > 0 only their last N digits are compared (N = 0: the whole number)."""

    strip_prefixes: tuple[str, ...] = ()
    last_digits: int = 0

    @property
    def exact_only(self) -> bool:
        return not self.strip_prefixes and not self.last_digits

    def key(self, raw: str) -> str:
        """The form two numbers are compared in under this rule ("" when nothing is left)."""
        number = lookup_key(raw)
        if not _DN.match(number):
            return ""  # not a number (a SIP user like "rec"): matches nothing by rule
        for prefix in sorted(self.strip_prefixes, key=len, reverse=True):
            if number.startswith(prefix) and len(number) > len(prefix):
                number = number[len(prefix) :]
                break
        number = number.lstrip("+")
        return number[-self.last_digits :] if self.last_digits else number

    def matches(self, number: str, dn: str) -> bool:
        key = self.key(number)
        return bool(key) and key == self.key(dn)


def match_rule(strip_prefixes: list[str] | tuple[str, ...], last_digits: int) -> MatchRule:
    """A checked ``MatchRule``; ``DnError`` says what is wrong with it."""
    prefixes: list[str] = []
    for raw in strip_prefixes:
        prefix = _SEPARATORS.sub("", str(raw).strip())
        if not _PREFIX.match(prefix):
            raise DnError(
                f"{str(raw)[:20]!r} is not a prefix: 1-{MAX_PREFIX_DIGITS} digits with an optional leading +"
            )
        if prefix not in prefixes:
            prefixes.append(prefix)
    if len(prefixes) > MAX_PREFIXES:
        raise DnError(f"at most {MAX_PREFIXES} prefixes to strip")
    if isinstance(last_digits, bool) or not isinstance(last_digits, int):
        raise DnError("last_digits must be a whole number")
    if last_digits and not MIN_LAST_DIGITS <= last_digits <= MAX_DIGITS:
        raise DnError(
            f"last_digits is 0 (compare whole numbers) or {MIN_LAST_DIGITS}-{MAX_DIGITS}: "
            f"fewer digits would give one agent other people's calls"
        )
    return MatchRule(tuple(prefixes), last_digits)
