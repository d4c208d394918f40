"""Devices: recorders that belong to a PC, not to an agent, and follow whoever logs in there.

An admin creates an ENROLMENT TOKEN (scoped to a team or a site label, expiring, at most
``max_uses`` enrolments, revocable; only its SHA-256 kept). A recorder enrols once with it and
gets a DEVICE CREDENTIAL of its own. The agent's desktop on the same PC gets a short-lived
PAIRING TICKET for its login session and hands it to the recorder over local IPC; the recorder
presents credential + ticket, and the server binds device ↔ agent session with a recorder-scope
token for that agent (the one the event channel and the screen upload take, as before). Screen
commands reach a device only through that binding: unbound (logout, another agent's pairing, the
device revoked) the channel refuses it. Revoking a device revokes every token it was given, so its
next upload or connection is refused. Every refusal and change is audited; the caller commits.

The old per-agent recorder tokens (server/services/enrolment.py) keep working unchanged.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.errors import EnrolmentError
from server.security.tokens import RECORDER_SCOPE, new_token, token_digest
from server.services.device_channel import channel_refusal
from server.store import audit, models

__all__ = ["channel_refusal"]  # the event channel's rule, kept in device_channel.py

ENROLMENT_PREFIX = "tet_"
DEVICE_PREFIX = "tdc_"
UPLOAD_GRACE_SECONDS = 7 * 86400  # a paired token outlives the login: spooled segments still upload
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")


@dataclass(frozen=True, slots=True)
class Who:
    """Who acts (for the audit record)."""

    user_id: int | None
    username: str
    remote_addr: str = ""


@dataclass(frozen=True, slots=True)
class NewEnrolmentToken:
    id: int
    token: str  # shown once
    scope: str
    expires_at: float
    max_uses: int


@dataclass(frozen=True, slots=True)
class Enrolled:
    device_id: int
    credential: str  # shown once, kept by the recorder in the keyring
    scope: str


@dataclass(frozen=True, slots=True)
class Paired:
    device_id: int
    agent_id: int
    agent_username: str
    token: str  # recorder-scope token for this agent, while bound
    expires_at: float


def refuse(
    session: Session, who: Who, action: str, target: str, status: int, code: str, msg: str
) -> EnrolmentError:
    session.rollback()
    audit.record(
        session,
        action=action,
        outcome="denied",
        user_id=who.user_id,
        username=who.username,
        target_type="device",
        target_id=target[:64],
        detail=msg,
        remote_addr=who.remote_addr,
    )
    session.commit()
    return EnrolmentError(status, code, msg)


def validate_scope(session: Session, scope: str) -> str | None:
    """Why ``scope`` is not ``team:NAME`` (an existing team) or ``site:LABEL``; None if it is."""
    kind, _, value = scope.partition(":")
    if kind == "team":
        if session.execute(select(models.Team.id).where(models.Team.name == value)).scalar() is None:
            return f"no team named {value!r}"
        return None
    if kind == "site":
        return None if _SITE.match(value) else "a site label is 1-60 letters, digits, space . _ -"
    return "scope must be team:NAME or site:LABEL"


def create_enrolment_token(
    session: Session, who: Who, *, scope: str, ttl_seconds: float, max_uses: int, now: float | None = None
) -> NewEnrolmentToken:
    now = time.time() if now is None else now
    problem = validate_scope(session, scope)
    if problem is None and not 1 <= max_uses <= 10_000:
        problem = "max_uses must be 1..10000"
    if problem is None and not 60 <= ttl_seconds <= 90 * 86400:
        problem = "the token must be valid between 1 minute and 90 days"
    if problem is not None:
        raise refuse(
            session, who, "device.enrolment_token.create", scope, 422, "bad_enrolment_token", problem
        )
    token = ENROLMENT_PREFIX + secrets.token_urlsafe(24)
    row = models.EnrolmentToken(
        token_hash=token_digest(token),
        scope=scope,
        created_by=who.username[:100],
        created_at=now,
        expires_at=now + ttl_seconds,
        max_uses=max_uses,
        uses=0,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        action="device.enrolment_token.create",
        outcome="allowed",
        user_id=who.user_id,
        username=who.username,
        target_type="enrolment_token",
        target_id=str(row.id),
        detail=f"scope {scope}, {max_uses} use(s), valid until {row.expires_at:.0f}",
        remote_addr=who.remote_addr,
    )
    return NewEnrolmentToken(row.id, token, scope, row.expires_at, max_uses)


def revoke_enrolment_token(session: Session, who: Who, token_id: int, now: float | None = None) -> None:
    row = session.get(models.EnrolmentToken, token_id)
    if row is None:
        raise refuse(
            session,
            who,
            "device.enrolment_token.revoke",
            str(token_id),
            404,
            "not_found",
            "no such enrolment token",
        )
    if row.revoked_at is None:
        row.revoked_at = time.time() if now is None else now
    audit.record(
        session,
        action="device.enrolment_token.revoke",
        outcome="allowed",
        user_id=who.user_id,
        username=who.username,
        target_type="enrolment_token",
        target_id=str(token_id),
        remote_addr=who.remote_addr,
    )


def enrol(
    session: Session, token: str, hostname: str, remote_addr: str = "", now: float | None = None
) -> Enrolled:
    """One enrolment with ``token``; a clear refusal (audited) when it is unknown, revoked,
    expired or used up."""
    now = time.time() if now is None else now
    who = Who(None, f"device {hostname}"[:100], remote_addr)
    digest = token_digest(token.strip())
    # The conditional UPDATE counts the use atomically: two PCs racing for the last use cannot both win.
    counted = session.execute(
        update(models.EnrolmentToken)
        .where(
            models.EnrolmentToken.token_hash == digest,
            models.EnrolmentToken.revoked_at.is_(None),
            models.EnrolmentToken.expires_at > now,
            models.EnrolmentToken.uses < models.EnrolmentToken.max_uses,
        )
        .values(uses=models.EnrolmentToken.uses + 1)
        .execution_options(synchronize_session=False)
    )
    row = session.execute(
        select(models.EnrolmentToken).where(models.EnrolmentToken.token_hash == digest)
    ).scalar()
    if int(getattr(counted, "rowcount", 0)) != 1 or row is None:
        target = str(row.id) if row is not None else ""
        if row is None:
            err, msg = "invalid_enrolment_token", "unknown enrolment token: check it, or ask IT for a new one"
        elif row.revoked_at is not None:
            err, msg = "enrolment_token_revoked", "this enrolment token was revoked by IT; ask for a new one"
        elif row.expires_at <= now:
            err, msg = "enrolment_token_expired", "this enrolment token has expired; ask IT for a new one"
        else:
            err, msg = (
                "enrolment_token_used_up",
                f"this enrolment token was used {row.max_uses} time(s) already",
            )
        raise refuse(session, who, "device.enroll", target, 401, err, msg)
    credential = DEVICE_PREFIX + new_token()
    device = models.Device(
        credential_hash=token_digest(credential),
        hostname=hostname[:200] or "unknown",
        scope=row.scope,
        enrolment_token_id=row.id,
        enrolled_at=now,
    )
    session.add(device)
    session.flush()
    audit.record(
        session,
        action="device.enroll",
        outcome="allowed",
        username=who.username,
        target_type="device",
        target_id=str(device.id),
        detail=f"enrolled {device.hostname} with enrolment token {row.id} ({row.scope})",
        remote_addr=remote_addr,
    )
    return Enrolled(device.id, credential, row.scope)


def device_for(session: Session, credential: str | None, action: str, remote_addr: str = "") -> models.Device:
    """The device this credential belongs to; refused (audited) when unknown or revoked."""
    device = None
    if credential:
        device = session.execute(
            select(models.Device).where(models.Device.credential_hash == token_digest(credential))
        ).scalar()
    who = Who(None, f"device {device.hostname}" if device else "", remote_addr)
    if device is None:
        raise refuse(session, who, action, "", 401, "invalid_device_credential", "unknown device credential")
    if device.revoked_at is not None:
        raise refuse(
            session,
            who,
            action,
            str(device.id),
            401,
            "device_revoked",
            "this device's credential was revoked by IT: enrol it again with a new enrolment token",
        )
    return device


def _end_pairings(session: Session, device_id: int, now: float) -> list[int]:
    active = session.execute(
        select(models.DevicePairing).where(
            models.DevicePairing.device_id == device_id, models.DevicePairing.ended_at.is_(None)
        )
    ).scalars()
    ended = []
    for pairing in active:
        pairing.ended_at = now
        ended.append(pairing.recorder_token_id)
    return ended


def pair(
    session: Session,
    device: models.Device,
    agent_token_id: int,
    remote_addr: str = "",
    now: float | None = None,
    os_user: str = "",
) -> tuple[Paired, list[int]]:
    """Bind ``device`` to the agent session of ``agent_token_id`` (from a redeemed pairing ticket);
    the device's earlier binding ends (hot-desking). Returns the pairing and the recorder tokens
    whose channels must close. ``os_user``: the PC's OS account the pairing came from (the
    device broker's caller), for the audit record and the fleet page."""
    now = time.time() if now is None else now
    row = session.execute(
        select(models.ApiToken, models.User)
        .join(models.User, models.User.id == models.ApiToken.user_id)
        .where(models.ApiToken.id == agent_token_id)
    ).first()
    who = Who(None, f"device {device.hostname}", remote_addr)
    if row is None or row[0].revoked_at is not None or row[0].expires_at <= now or not row[1].active:
        raise refuse(
            session, who, "device.pair", str(device.id), 401, "session_ended", "the agent's login has ended"
        )
    agent_token, agent = row
    if agent.role != "agent" or agent_token.client == RECORDER_SCOPE:
        raise refuse(
            session,
            who,
            "device.pair",
            str(device.id),
            403,
            "not_an_agent_session",
            "only an agent's login pairs",
        )
    ended = _end_pairings(session, device.id, now)
    token = new_token()
    expires_at = agent_token.expires_at + UPLOAD_GRACE_SECONDS
    recorder_token = models.ApiToken(
        token_hash=token_digest(token),
        user_id=agent.id,
        client=RECORDER_SCOPE,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(recorder_token)
    session.flush()
    session.add(
        models.DevicePairing(
            device_id=device.id,
            agent_id=agent.id,
            agent_token_id=agent_token.id,
            recorder_token_id=recorder_token.id,
            paired_at=now,
            os_user=os_user[:100],  # the route allows 100 characters; the column holds that
        )
    )
    device.last_seen_at = now
    audit.record(
        session,
        action="device.pair",
        outcome="allowed",
        user_id=agent.id,
        username=agent.username,
        target_type="device",
        target_id=str(device.id),
        detail=f"{device.hostname} now records {agent.username}"
        + (f" (OS user {os_user})" if os_user else ""),
        remote_addr=remote_addr,
    )
    return Paired(device.id, agent.id, agent.username, token, expires_at), ended


def unpair(
    session: Session, device: models.Device, remote_addr: str = "", now: float | None = None
) -> list[int]:
    """End the device's binding (the agent logged out). Returns the recorder tokens to close."""
    now = time.time() if now is None else now
    ended = _end_pairings(session, device.id, now)
    audit.record(
        session,
        action="device.unpair",
        outcome="allowed",
        username=f"device {device.hostname}"[:100],
        target_type="device",
        target_id=str(device.id),
        detail=f"{len(ended)} binding(s) ended",
        remote_addr=remote_addr,
    )
    return ended


def revoke_device(session: Session, who: Who, device_id: int, now: float | None = None) -> list[int]:
    """Revoke the device's credential and every token it was given: its next connection and upload
    are refused. Returns the recorder tokens whose channels must close."""
    now = time.time() if now is None else now
    device = session.get(models.Device, device_id)
    if device is None:
        raise refuse(session, who, "device.revoke", str(device_id), 404, "not_found", "no such device")
    device.revoked_at = device.revoked_at or now
    device.revoked_by = who.username[:100]
    _end_pairings(session, device.id, now)
    token_ids = list(
        session.execute(
            select(models.DevicePairing.recorder_token_id).where(models.DevicePairing.device_id == device.id)
        ).scalars()
    )
    if token_ids:
        session.execute(
            update(models.ApiToken)
            .where(models.ApiToken.id.in_(token_ids), models.ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    audit.record(
        session,
        action="device.revoke",
        outcome="allowed",
        user_id=who.user_id,
        username=who.username,
        target_type="device",
        target_id=str(device.id),
        detail=f"{device.hostname}: credential and {len(token_ids)} recorder token(s) revoked",
        remote_addr=who.remote_addr,
    )
    return token_ids
