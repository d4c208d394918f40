"""The admin's DN matching policy (``server.policy.dn_matching``): read and set, audited —
the same use case for the API, the admin web page and the CLI."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from server.errors import InvalidInput
from server.policy import dn_matching
from server.policy.dn_matching import DnMatchingPolicy
from server.services.actor import Actor, record, refuse
from server.store import models
from tandem_protocol.dn import DnError

ACTION = "policy.dn_matching"


def read(session: Session) -> DnMatchingPolicy:
    row = session.get(models.Setting, dn_matching.DN_MATCHING_KEY)
    return dn_matching.parse_stored(row.value if row else None)


def set_policy(
    session: Session, actor: Actor, strip_prefixes: list[str], last_digits: int, record_unassigned: bool
) -> DnMatchingPolicy:
    """Store the policy and audit it (a refusal is audited as denied); returns what was stored."""
    try:
        policy = dn_matching.validate(strip_prefixes, last_digits, record_unassigned)
    except DnError as exc:
        error = InvalidInput("invalid_dn_matching", str(exc))
        raise refuse(
            session, actor, error, action=ACTION, target_type="policy", target_id="dn_matching"
        ) from exc
    before = json.loads(dn_matching.dump(read(session)))  # the audit keeps the values before and after
    value = dn_matching.dump(policy)
    row = session.get(models.Setting, dn_matching.DN_MATCHING_KEY)
    if row is None:
        session.add(models.Setting(key=dn_matching.DN_MATCHING_KEY, value=value))
    else:
        row.value = value
    detail = json.dumps({"before": before, "after": json.loads(value)})
    record(session, actor, action=ACTION, target_type="policy", target_id="dn_matching", detail=detail)
    session.flush()
    return policy
