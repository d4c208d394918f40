"""Refused device enrolments, as the fleet page shows them.

A PC whose enrolment token is expired, revoked, used up or unknown (or whose recorder's per-agent
enrolment code is used, expired or unknown) never gets a credential, so it
never sends a heartbeat: without this module IT would see nothing on the fleet page, only an audit
record. Each refusal is kept (host and OS user the recorder sent, source address, which token,
why, when) and listed as a problem row until that host enrols or the row ages out.

Bounded on purpose — a misconfigured image on 500 PCs retrying, or someone flooding the endpoint,
must not grow the database: the newest ``PER_HOST`` rows per host, none older than ``MAX_AGE``,
at most ``MAX_ROWS`` in all; and ``SourceLimiter`` turns away a source address that keeps being
refused (the route answers 429 before any token is looked at).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.security.tokens import normalise_enrolment_code, token_digest
from server.store import audit, models

PER_HOST = 20  # attempts kept per host name
MAX_AGE = 7 * 86400  # a refusal nobody acted on in a week is no longer news
MAX_ROWS = 2000  # in all: a flood of invented host names stays bounded too
LIMIT_REFUSALS = 30  # refusals from one source address ...
LIMIT_WINDOW = 600.0  # ... within this many seconds, then 429 until the window has room

# Why, in the words the fleet row uses ("enrolment refused: token expired").
REASONS = {
    "enrolment_token_expired": "token expired",
    "enrolment_token_revoked": "token revoked",
    "enrolment_token_used_up": "token used up",
    "invalid_enrolment_token": "unknown token",
    # A per-agent enrolment code (``POST /api/recorders/enroll``): same rows, "code" not "token".
    "enrolment_code_expired": "code expired",
    "enrolment_code_used": "code already used",
    "invalid_enrolment_code": "unknown code",
    "user_inactive": "the code's agent is no longer an active agent",
}
CODE_REASONS = frozenset(
    {"enrolment_code_expired", "enrolment_code_used", "invalid_enrolment_code", "user_inactive"}
)
CODE_PREFIX = 5  # a code's first group of five: tells IT which code, leaves 100 of its 125 bits


@dataclass(frozen=True, slots=True)
class RefusedHost:
    """One host's latest refused enrolment, with how often it was refused (kept rows)."""

    hostname: str
    os_user: str
    remote_addr: str
    token_id: int | None
    token_prefix: str
    reason: str
    reason_text: str
    message: str
    at: float
    attempts: int
    credential: str = "token"  # or "code": which kind of enrolment secret was refused


def reason_text(code: str) -> str:
    return REASONS.get(code, code.replace("_", " "))


def token_prefix(token: str) -> str:
    """Enough of the token to tell IT which one the PC has ("tet_AbCd…"), far too little to use it."""
    return token.strip()[:8]


class SourceLimiter:
    """Refusals per source address in a sliding window (pure: the caller passes the time)."""

    def __init__(self, limit: int = LIMIT_REFUSALS, window: float = LIMIT_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, source: str, now: float) -> deque[float]:
        times = self._seen.setdefault(source, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, source: str, now: float) -> bool:
        blocked = len(self._recent(source, now)) >= self.limit
        if not self._seen.get(source):
            self._seen.pop(source, None)  # an address with nothing recent costs no memory
        return blocked

    def refused(self, source: str, now: float) -> None:
        self._recent(source, now).append(now)


def refused(
    session: Session,
    limiter: SourceLimiter,
    *,
    hostname: str,
    os_user: str,
    remote_addr: str,
    token: str,
    reason: str,
    message: str,
    now: float,
    credential: str,
    action: str,
    who: str,
    target_type: str,
) -> None:
    """One refused enrolment, for either route (a ``tet_`` token or a per-agent code): counted
    against the source address, kept for the fleet page, and the refusal that fills the
    address's budget audited once (not every later 429: a flood must not grow the audit log)."""
    limiter.refused(remote_addr, now)
    record(
        session,
        hostname=hostname,
        os_user=os_user,
        remote_addr=remote_addr,
        token=token,
        reason=reason,
        message=message,
        now=now,
        credential=credential,
    )
    if limiter.blocked(remote_addr, now):
        audit.record(
            session,
            action=action,
            outcome="denied",
            username=who[:100],
            target_type=target_type,
            detail=f"{remote_addr} refused {limiter.limit} times in {limiter.window:.0f} s: rate-limited",
            remote_addr=remote_addr,
        )


def record(
    session: Session,
    *,
    hostname: str,
    os_user: str,
    remote_addr: str,
    token: str,
    reason: str,
    message: str,
    now: float | None = None,
    credential: str = "token",
) -> None:
    """Keep one refused enrolment and prune (per host, by age, in total). The caller commits.
    ``credential`` "code": ``token`` is a per-agent enrolment code (no token id, a shorter prefix)."""
    now = time.time() if now is None else now
    host = hostname.strip()[:200] or "unknown"
    if credential == "code":
        token_id = None
        prefix = normalise_enrolment_code(token)[:CODE_PREFIX]
    else:
        token_id = session.execute(
            select(models.EnrolmentToken.id).where(
                models.EnrolmentToken.token_hash == token_digest(token.strip())
            )
        ).scalar()
        prefix = token_prefix(token)
    session.add(
        models.EnrolmentRefusal(
            at=now,
            hostname=host,
            os_user=os_user.strip()[:100],
            remote_addr=remote_addr[:64],
            token_id=token_id,
            token_prefix=prefix,
            reason=reason[:40],
            message=message[:200],
        )
    )
    session.flush()
    _prune(session, host, now)


def _prune(session: Session, host: str, now: float) -> None:
    table = models.EnrolmentRefusal
    session.execute(delete(table).where(table.at < now - MAX_AGE))
    keep_host = select(table.id).where(table.hostname == host).order_by(table.id.desc()).limit(PER_HOST)
    session.execute(delete(table).where(table.hostname == host, table.id.not_in(keep_host)))
    total = session.execute(select(func.count()).select_from(table)).scalar_one()
    if total > MAX_ROWS:
        keep_all = select(table.id).order_by(table.id.desc()).limit(MAX_ROWS)
        session.execute(delete(table).where(table.id.not_in(keep_all)))


def forget_host(session: Session, hostname: str) -> None:
    """The host enrolled: its refusals are answered. The caller commits."""
    host = hostname.strip()[:200] or "unknown"
    session.execute(delete(models.EnrolmentRefusal).where(models.EnrolmentRefusal.hostname == host))


def refused_hosts(session: Session, now: float | None = None) -> list[RefusedHost]:
    """Each host still refused (its latest attempt, newest first), ignoring rows past ``MAX_AGE``."""
    now = time.time() if now is None else now
    table = models.EnrolmentRefusal
    rows = session.execute(select(table).where(table.at >= now - MAX_AGE).order_by(table.id.desc())).scalars()
    latest: dict[str, RefusedHost] = {}
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.hostname] = counts.get(row.hostname, 0) + 1
        if row.hostname not in latest:
            latest[row.hostname] = RefusedHost(
                hostname=row.hostname,
                os_user=row.os_user,
                remote_addr=row.remote_addr,
                token_id=row.token_id,
                token_prefix=row.token_prefix,
                reason=row.reason,
                reason_text=reason_text(row.reason),
                message=row.message,
                at=row.at,
                attempts=0,
                credential="code" if row.reason in CODE_REASONS else "token",
            )
    return [replace(h, attempts=counts[h.hostname]) for h in latest.values()]
