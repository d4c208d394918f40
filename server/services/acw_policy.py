"""The after-call-work limit: how long an agent's ACW may last before the server ends it. The
settings file's ``acw_limit_seconds`` is the initial value; an admin changes it at run time from
the web, the API or ``tandem-server acw-limit``, each change validated and audited (before and
after). The coordinator reads it when a call ends, so a change applies from the next call end."""

from __future__ import annotations

import json
import math

from sqlalchemy.orm import Session, sessionmaker

from server.errors import DomainError, InvalidInput
from server.services.actor import Actor, record, refuse
from server.store import models
from server.store.db import session_scope

KEY = "acw_limit_seconds"
ACTION = "policy.acw_limit"
MIN_SECONDS = 5.0  # shorter ends ACW before the agent can choose a disposition
MAX_SECONDS = 4 * 3600.0  # longer holds the agent's screen recording open for a shift


def _stored(session: Session) -> float | None:
    row = session.get(models.Setting, KEY)
    return float(json.loads(row.value)) if row else None


def read(session: Session, default: float) -> float:
    stored = _stored(session)
    return default if stored is None else stored


def current(factory: sessionmaker[Session], default: float) -> float:
    """The limit for a call ending now (the coordinator's view; its own short session)."""
    with session_scope(factory) as s:
        return read(s, default)


def set_limit(session: Session, actor: Actor, seconds: float, default: float) -> float:
    before = _stored(session)
    try:
        if not (math.isfinite(seconds) and MIN_SECONDS <= seconds <= MAX_SECONDS):
            raise InvalidInput(
                "invalid_acw_limit",
                f"the ACW limit must be from {MIN_SECONDS:g} to {MAX_SECONDS:g} seconds (4 hours),"
                f" got {seconds:g}",
            )
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=ACTION, target_type="policy", target_id="acw_limit"
        ) from None
    row = session.get(models.Setting, KEY)
    if row is None:
        session.add(models.Setting(key=KEY, value=json.dumps(seconds)))
    else:
        row.value = json.dumps(seconds)
    record(
        session,
        actor,
        action=ACTION,
        target_type="policy",
        target_id="acw_limit",
        detail=json.dumps({"before": before if before is not None else default, "after": seconds}),
    )
    session.flush()
    return seconds
