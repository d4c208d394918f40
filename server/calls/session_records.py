"""Database side of recording sessions: who the recording-enabled party of a call is, the
interaction's SIPREC metadata (participants, streams, RTP statistics, warnings), and the audit
record every session start, update, pause, resume, stop and end leaves. Synchronous; the
coordinator runs it in worker threads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.calls.repository import BoundAgent
from server.policy.dn_matching import DN_MATCHING_KEY, DnMatchingPolicy, parse_stored
from server.store import audit, models
from server.store.db import session_scope
from tandem_protocol import dn as dn_rules
from tandem_protocol.dn import MatchRule

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "sip"  # the audit username of changes the SIP side made
MAX_META_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RecordingParty:
    agent: BoundAgent
    dn: str
    full_time: bool  # recorded by the agent's full-time DN setting, not a logged-in desktop
    number: str = ""  # the number from the call that matched ``dn``


def dn_candidates(number: str) -> list[str]:
    """A party's number as DNs may be written: as is, without "+", without a tel prefix."""
    number = dn_rules.lookup_key(number)  # the form logins and full-time DNs are stored in
    out = [number]
    bare = number.lstrip("+")
    if bare != number:
        out.append(bare)
    return out


class SessionRecords:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def recording_party(self, numbers: Iterable[str]) -> RecordingParty | None:
        """The first number (in the given order) that is a DN with a logged-in agent; else the
        first that is an agent's full-time recording DN. Exact forms first (two queries whatever
        the count); only if none matches, the admin's matching rule (prefixes, last N digits)."""
        numbers = [n for n in numbers if n]
        candidates = list(dict.fromkeys(dn for n in numbers for dn in dn_candidates(n)))
        if not candidates:
            return None
        with session_scope(self._factory) as s:
            found = _exact(s, numbers, candidates)
            if found is not None:
                return found
            rule = _policy(s).rule()
            return None if rule.exact_only else _by_rule(s, numbers, rule)

    def dn_policy(self) -> DnMatchingPolicy:
        """The admin's DN matching policy (read for every call that names no known party)."""
        with session_scope(self._factory) as s:
            return _policy(s)

    def describe(
        self,
        interaction_id: str,
        *,
        kind: str,
        session_id: str | None,
        source: str,
        participants: list[dict[str, Any]],
        meta: dict[str, Any],
        parent_interaction_id: str | None = None,
    ) -> None:
        with session_scope(self._factory) as s:
            row = s.get(models.Interaction, interaction_id)
            if row is None:
                return
            row.parent_interaction_id = parent_interaction_id
            row.kind = kind
            row.session_id = session_id
            row.source = source[:64]
            row.participants = _dump(participants)
            row.recording_meta = _dump(meta)

    def update_meta(
        self,
        interaction_id: str,
        *,
        participants: list[dict[str, Any]] | None = None,
        patch: dict[str, Any] | None = None,
    ) -> None:
        with session_scope(self._factory) as s:
            row = s.get(models.Interaction, interaction_id)
            if row is None:
                return
            if participants is not None:
                row.participants = _dump(participants)
            if patch:
                meta = json.loads(row.recording_meta or "{}")
                meta.update(patch)
                row.recording_meta = _dump(meta)

    def audit(
        self,
        action: str,
        interaction_id: str,
        detail: str,
        *,
        user_id: int | None = None,
        username: str = SYSTEM_ACTOR,
        outcome: str = "allowed",
    ) -> None:
        with session_scope(self._factory) as s:
            audit.record(
                s,
                action=action,
                outcome=outcome,
                user_id=user_id,
                username=username,
                target_type="interaction",
                target_id=interaction_id,
                detail=detail,
            )

    def set_full_time_dn(self, user_id: int, dn: str | None) -> bool:
        with session_scope(self._factory) as s:
            user = s.get(models.User, user_id)
            if user is None:
                return False
            user.full_time_dn = dn or None
            return True


def _policy(s: Session) -> DnMatchingPolicy:
    row = s.get(models.Setting, DN_MATCHING_KEY)
    return parse_stored(row.value if row else None)


def _exact(s: Session, numbers: list[str], candidates: list[str]) -> RecordingParty | None:
    rank = {dn: i for i, dn in enumerate(candidates)}

    def number_of(dn: str) -> str:
        return next(n for n in numbers if dn in dn_candidates(n))

    bound = s.execute(
        select(models.DnBinding.dn, models.User, models.Team)
        .join(models.User, models.DnBinding.user_id == models.User.id)
        .outerjoin(models.Team, models.Team.id == models.User.team_id)
        .where(
            models.DnBinding.dn.in_(candidates),
            models.DnBinding.released_at.is_(None),
            models.User.active.is_(True),
        )
        .order_by(models.DnBinding.bound_at.desc())
    ).all()
    if bound:
        dn, user, team = min(bound, key=lambda row: rank[row[0]])  # stable: newest binding first
        return RecordingParty(_bound(user, team), dn, False, number_of(dn))
    full_time = s.execute(
        select(models.User, models.Team)
        .outerjoin(models.Team, models.Team.id == models.User.team_id)
        .where(models.User.full_time_dn.in_(candidates), models.User.active.is_(True))
    ).all()
    if full_time:
        user, team = min(full_time, key=lambda row: rank[row[0].full_time_dn or ""])
        dn = user.full_time_dn or ""
        return RecordingParty(_bound(user, team), dn, True, number_of(dn))
    return None


def _by_rule(s: Session, numbers: list[str], rule: MatchRule) -> RecordingParty | None:
    """Every live DN compared under the rule (a site has hundreds, not millions). A number that
    matches two agents' DNs matches neither: the call must not go to a guessed agent."""
    bound = s.execute(
        select(models.DnBinding.dn, models.User, models.Team)
        .join(models.User, models.DnBinding.user_id == models.User.id)
        .outerjoin(models.Team, models.Team.id == models.User.team_id)
        .where(models.DnBinding.released_at.is_(None), models.User.active.is_(True))
        .order_by(models.DnBinding.bound_at.desc())
    ).all()
    full_time = s.execute(
        select(models.User, models.Team)
        .outerjoin(models.Team, models.Team.id == models.User.team_id)
        .where(models.User.full_time_dn.is_not(None), models.User.active.is_(True))
    ).all()
    bound_rows = [(dn, user, team, False) for dn, user, team in bound]
    full_rows = [(user.full_time_dn or "", user, team, True) for user, team in full_time]
    for rows in (bound_rows, full_rows):
        for number in numbers:
            key = rule.key(number)
            hits = [row for row in rows if key and rule.key(row[0]) == key]
            users = {row[1].id for row in hits}
            if len(users) > 1:
                log.warning(
                    "number %r matches the DNs of %d agents under the matching rule: none is chosen",
                    number[:40],
                    len(users),
                )
                continue
            if hits:
                dn, user, team, full = hits[0]
                return RecordingParty(_bound(user, team), dn, full, number)
    return None


def _bound(user: models.User, team: models.Team | None) -> BoundAgent:
    return BoundAgent(user.id, user.username, user.team_id, team.screen_percentage if team else None)


def _dump(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text) > MAX_META_BYTES:  # metadata from the network is bounded like everything else
        text = json.dumps({"truncated": True, "size": len(text)})
    return text
