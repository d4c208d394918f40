"""Pure decisions on an offered call: which party is the agent, who the caller is, which
streams are the agent's, and when several reasons to pause overlap, whether the recording is
paused. No database, no clock: the coordinator feeds the facts in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server.sip.listener import CallOffer, Party


@dataclass(frozen=True, slots=True)
class Roles:
    agent: Party | None  # the participant resolved to the agent (None for a plain INVITE)
    agent_dn: str
    caller: str  # for display: "Name <number>"
    callee: str
    agent_streams: frozenset[int]


def numbers_to_try(offer: CallOffer) -> list[tuple[Party | None, str]]:
    """(party, number) pairs in the order they are tried against DNs. SIPREC: every participant's
    AOR numbers — a party the SRC marks as the recorded one first (Metaswitch ``recordedParty``:
    the SRC knows whose recording this is; "the first DN wins" does not), a party it marks as
    not recorded last, else the "called party"-looking ones (not the calling party) first; then
    the Request-URI DN (some SRCs put the recorded DN there). Plain INVITE: the DN."""
    pairs: list[tuple[Party | None, str]] = []
    ordered = sorted(
        offer.participants,
        key=lambda p: (p.recorded is not True, p.recorded is False, p.calling_party is True),
    )
    for party in ordered:
        pairs.extend((party, n) for n in party.numbers)
    if offer.dn:
        pairs.append((None, offer.dn))
    return pairs


def assign_roles(offer: CallOffer, agent: Party | None, agent_dn: str) -> Roles:
    """With the agent's party known, the caller is the first other party (the calling party
    when the metadata says so). The agent's streams are the ones their party sends; for a
    plain INVITE with two streams the core leaves it to offer order (second = agent)."""
    if agent is None:
        return Roles(None, agent_dn, offer.caller, offer.callee, frozenset())
    others = [p for p in offer.participants if p.participant_id != agent.participant_id]
    others.sort(key=lambda p: p.calling_party is not True)
    caller = others[0].display() if others else offer.caller
    streams = frozenset(agent.sends)
    if not streams and len(offer.streams) == 2:
        # Metadata without stream associations: the non-agent's stream (if known) is the caller's.
        other_sends = {i for p in others for i in p.sends}
        streams = frozenset(s.index for s in offer.streams if s.index not in other_sends and other_sends)
    return Roles(agent, agent_dn, caller, agent.display(), streams)


def offer_direction(offer: CallOffer, agent: Party | None) -> str:
    """The call's direction, "inbound", "outbound" or "" (not known): a ``direction`` recording
    parameter (X-header) wins, else the SIPREC metadata's calling-party hint."""
    said = dict(offer.params).get("direction", "").strip().lower()
    if said in ("in", "inbound", "incoming"):
        return "inbound"
    if said in ("out", "outbound", "outgoing"):
        return "outbound"
    if agent is not None and agent.calling_party is not None:
        if agent.calling_party:
            return "outbound"
        if any(p.calling_party for p in offer.participants if p.participant_id != agent.participant_id):
            return "inbound"
    return ""


def party_record(party: Party, role: str, at: float) -> dict[str, Any]:
    return {
        "id": party.participant_id,
        "aor": party.aor,
        "name": party.name,
        "numbers": list(party.numbers),
        "sends": list(party.sends),
        "role": role,
        "seen_at": at,
    }


def merge_parties(
    roster: list[dict[str, Any]], update: tuple[Party, ...], at: float, role_of: Callable[[Party], str]
) -> list[dict[str, Any]]:
    """Add newly named parties to the roster (a transfer target, a conference member); a known
    participant whose address changed keeps its earlier addresses in ``previous``."""
    merged = [dict(r) for r in roster]
    by_id = {r["id"]: r for r in merged}
    for party in update:
        record = party_record(party, role_of(party), at)
        known = by_id.get(party.participant_id)
        if known is None:
            merged.append(record)
            by_id[party.participant_id] = record
        elif known.get("aor") != party.aor:
            previous = [
                *known.get("previous", []),
                {"aor": known.get("aor"), "name": known.get("name"), "role": known.get("role")},
            ]
            known.update(record, previous=previous)
    return merged


@dataclass
class PauseReasons:
    """Pause reasons that may overlap (the agent's secure pause, the SRC's ``a=inactive``, a
    hold): the recording is paused while any is present, so a SIP-side resume never lifts an
    agent's pause."""

    active: set[str] = field(default_factory=set)

    def add(self, reason: str) -> bool:
        """True when this starts a pause."""
        was = bool(self.active)
        self.active.add(reason)
        return not was

    def remove(self, *reasons: str) -> bool:
        """True when this ends the pause."""
        was = bool(self.active)
        self.active.difference_update(reasons)
        return was and not self.active
