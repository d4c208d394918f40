"""How the numbers a call names are matched to agents' DNs, and what happens to a call that
names no known party: the stored setting and its checks. Pure (no database): the service
(``server.services.dn_matching``) reads and writes it, the call path reads it per offer.

- ``strip_prefixes`` / ``last_digits``: ``tandem_protocol.dn.MatchRule`` (the exact match always
  applies first; this rule only adds matches).
- ``record_unassigned``: a call naming no known party is still recorded, as an interaction with
  no agent (GIR records 100 %: a missing DN mapping must not lose the call). Off: it is refused
  (404) and stored as a missed recording, as before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from tandem_protocol import dn as dn_rules

log = logging.getLogger(__name__)

DN_MATCHING_KEY = "dn_matching"  # Setting row: JSON object, the fields below


@dataclass
class DnMatchingPolicy:
    """``GET/PUT /api/admin/dn-matching``: prefixes stripped from both sides before comparing
    (e.g. "+1", "0", "9"), compare only the last N digits (0 = the whole number), and whether a
    call naming no known party is recorded as "unassigned" instead of refused."""

    strip_prefixes: list[str] = field(default_factory=list)
    last_digits: int = 0
    record_unassigned: bool = False

    def rule(self) -> dn_rules.MatchRule:
        return dn_rules.MatchRule(tuple(self.strip_prefixes), self.last_digits)


def validate(strip_prefixes: list[str], last_digits: int, record_unassigned: bool) -> DnMatchingPolicy:
    """The policy in its one written form; ``DnError`` says what is wrong."""
    if not isinstance(record_unassigned, bool):
        raise dn_rules.DnError("record_unassigned is true or false")
    rule = dn_rules.match_rule(strip_prefixes, last_digits)
    return DnMatchingPolicy(list(rule.strip_prefixes), rule.last_digits, record_unassigned)


def dump(policy: DnMatchingPolicy) -> str:
    return json.dumps(
        {
            "strip_prefixes": policy.strip_prefixes,
            "last_digits": policy.last_digits,
            "record_unassigned": policy.record_unassigned,
        }
    )


def parse_stored(value: str | None) -> DnMatchingPolicy:
    """The stored policy; a damaged value is logged and read as the default (exact match,
    refuse unknown parties) rather than failing every call."""
    if value is None:
        return DnMatchingPolicy()
    try:
        data: Any = json.loads(value)
        return validate(
            list(data.get("strip_prefixes", [])),
            int(data.get("last_digits", 0)),
            bool(data.get("record_unassigned", False)),
        )
    except (ValueError, TypeError, AttributeError, dn_rules.DnError) as exc:
        log.error("stored DN matching policy %r is unreadable (%s): exact matching is used", value[:200], exc)
        return DnMatchingPolicy()
