"""Recorder enrolment: how a recorder service gets its credential.

IT pairs a recorder with an agent: an administrator issues a one-time code bound to the agent
(``POST /api/admin/recorders/enrolments`` or ``tandem-server enroll-recorder``); the recorder
exchanges it once (``POST /api/recorders/enroll``, ``tandem-recorder login --enroll-code``) for a
token of scope "recorder". Codes are stored only as a SHA-256 hash, expire (24 h by default) and
are consumed atomically: of two exchanges of one code exactly one gets a token. Every issue,
exchange and refusal is audited. Used by the API and the CLI alike, so both follow one set of rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.errors import EnrolmentError
from server.security.tokens import (
    RECORDER_SCOPE,
    enrolment_code_digest,
    new_enrolment_code,
    new_token,
    token_digest,
)
from server.store import audit, models


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str  # shown once; only its hash is kept
    username: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class RecorderToken:
    token: str
    expires_at: float
    user: models.User


def issue_code(
    session: Session,
    username: str,
    *,
    ttl_seconds: float,
    by_user_id: int | None,
    by_username: str,
    remote_addr: str = "",
    now: float | None = None,
) -> IssuedCode:
    """A one-time enrolment code for the agent ``username``. Audited; the caller commits."""
    now = time.time() if now is None else now
    user = session.execute(select(models.User).where(models.User.username == username)).scalar()

    def refuse(status: int, code: str, message: str) -> EnrolmentError:
        audit.record(
            session,
            action="recorder.enrolment.issue",
            outcome="denied",
            user_id=by_user_id,
            username=by_username,
            target_type="user",
            target_id=username[:64],
            detail=message,
            remote_addr=remote_addr,
        )
        session.commit()
        return EnrolmentError(status, code, message)

    if user is None or not user.active:
        raise refuse(404, "unknown_user", f"no active user named {username!r}")
    if user.role != "agent":
        raise refuse(
            422,
            "not_an_agent",
            f"{username} has the role {user.role}: recorders are enrolled for agents only",
        )
    code = new_enrolment_code()
    expires_at = now + ttl_seconds
    session.add(
        models.RecorderEnrolment(
            code_hash=enrolment_code_digest(code),
            user_id=user.id,
            created_by=by_username[:100],
            created_at=now,
            expires_at=expires_at,
        )
    )
    audit.record(
        session,
        action="recorder.enrolment.issue",
        outcome="allowed",
        user_id=by_user_id,
        username=by_username,
        target_type="user",
        target_id=username[:64],
        detail=f"one-time recorder enrolment code for {username}, valid until {expires_at:.0f}",
        remote_addr=remote_addr,
    )
    return IssuedCode(code, user.username, expires_at)


def redeem_code(
    session: Session,
    code: str,
    *,
    token_ttl_seconds: float,
    remote_addr: str = "",
    now: float | None = None,
) -> RecorderToken:
    """Exchange a code for a recorder token, once. Audited; the caller commits."""
    now = time.time() if now is None else now
    digest = enrolment_code_digest(code)
    # The conditional UPDATE is the atomic consumption: of two exchanges racing for one code, the
    # database lets exactly one change the row (rowcount 1); the other sees used_at already set.
    consumed = session.execute(
        update(models.RecorderEnrolment)
        .where(
            models.RecorderEnrolment.code_hash == digest,
            models.RecorderEnrolment.used_at.is_(None),
            models.RecorderEnrolment.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    won = int(getattr(consumed, "rowcount", 0)) == 1
    enrolment = session.execute(
        select(models.RecorderEnrolment).where(models.RecorderEnrolment.code_hash == digest)
    ).scalar()
    user = session.get(models.User, enrolment.user_id) if enrolment is not None else None
    refusal: tuple[int, str, str] | None = None
    if enrolment is None:
        refusal = (401, "invalid_enrolment_code", "unknown enrolment code")
    elif not won and enrolment.used_at is not None:
        refusal = (401, "enrolment_code_used", "this enrolment code was already used; ask IT for a new one")
    elif not won:
        refusal = (401, "enrolment_code_expired", "this enrolment code has expired; ask IT for a new one")
    elif user is None or not user.active or user.role != "agent":
        refusal = (403, "user_inactive", "the agent this code was issued for is no longer an active agent")
    if refusal is not None or enrolment is None or user is None:
        status, err, message = refusal or (401, "invalid_enrolment_code", "unknown enrolment code")
        who = (user.id, user.username) if user is not None else (None, "")
        target = str(enrolment.id) if enrolment is not None else ""
        session.rollback()  # a code refused for its user stays unused
        audit.record(
            session,
            action="recorder.enroll",
            outcome="denied",
            user_id=who[0],
            username=who[1],
            target_type="recorder_enrolment",
            target_id=target,
            detail=message,
            remote_addr=remote_addr,
        )
        session.commit()
        raise EnrolmentError(status, err, message)
    token = new_token()
    expires_at = now + token_ttl_seconds
    tok = models.ApiToken(
        token_hash=token_digest(token),
        user_id=user.id,
        client=RECORDER_SCOPE,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(tok)
    session.flush()
    enrolment.token_id = tok.id
    audit.record(
        session,
        action="recorder.enroll",
        outcome="allowed",
        user_id=user.id,
        username=user.username,
        target_type="recorder_enrolment",
        target_id=str(enrolment.id),
        detail=(
            f"recorder token for {user.username} (code issued by {enrolment.created_by}), "
            f"valid until {expires_at:.0f}"
        ),
        remote_addr=remote_addr,
    )
    return RecorderToken(token, expires_at, user)
