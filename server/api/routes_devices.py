"""Devices over HTTP: enrolment tokens and devices for admins; enrolment, pairing and unpairing
for recorders (with their device credential as Bearer); the pairing ticket for an agent's
desktop. The rules and the audit records are in server/services/devices.py."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from server.api.context import ServerContext
from server.api.deps import (
    AuthUser,
    bearer_token,
    client_addr,
    current_user,
    get_context,
    get_db,
    require_roles,
)
from server.api.errors import ApiError
from server.api.routes_events import end_device_channels
from server.errors import EnrolmentError
from server.security.tickets import TicketBook
from server.services import device_listing, devices, enrolment_refusals
from server.store import audit

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")
PAIRING_TICKET_SECONDS = 120.0


class NewEnrolmentToken(BaseModel):
    scope: str = Field(description="team:NAME or site:LABEL")
    ttl_hours: float = 24.0
    max_uses: int = 1


class EnrolBody(BaseModel):
    token: str
    hostname: str = ""
    os_user: str = ""  # who ran the enrolment on the PC, for the fleet page when it is refused


class PairBody(BaseModel):
    ticket: str
    # The PC's OS account the pairing came from (the device broker's caller), shown on the fleet
    # page and in the audit record; limited as the enrol route's (routes_recorders.EnrollBody).
    os_user: str = Field("", max_length=100)

    @field_validator("os_user")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(not ch.isprintable() for ch in value):
            raise ValueError("must not contain control characters")
        return value.strip()


def _who(user: AuthUser, request: Request) -> devices.Who:
    return devices.Who(user.user_id, user.username, client_addr(request))


def _api(exc: EnrolmentError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def pairing_tickets(request: Request) -> TicketBook:
    book: TicketBook = request.app.state.pairing_tickets
    return book


@router.post("/admin/devices/enrolment-tokens", status_code=201)
def create_token(
    body: NewEnrolmentToken,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> dict[str, Any]:
    try:
        made = devices.create_enrolment_token(
            session,
            _who(user, request),
            scope=body.scope,
            ttl_seconds=body.ttl_hours * 3600,
            max_uses=body.max_uses,
        )
    except EnrolmentError as exc:
        raise _api(exc) from exc
    return asdict(made)


@router.get("/admin/devices/enrolment-tokens")
def list_tokens(
    _: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> dict[str, Any]:
    return {"tokens": device_listing.list_enrolment_tokens(session)}


@router.post("/admin/devices/enrolment-tokens/{token_id}/revoke", status_code=204)
def revoke_token(
    token_id: int,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> None:
    try:
        devices.revoke_enrolment_token(session, _who(user, request), token_id)
    except EnrolmentError as exc:
        raise _api(exc) from exc


@router.get("/admin/devices")
def list_devices(
    _: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> dict[str, Any]:
    return {"devices": device_listing.list_devices(session)}


@router.post("/admin/devices/{device_id}/revoke", status_code=204)
def revoke_device(
    device_id: int,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> None:
    try:
        token_ids = devices.revoke_device(session, _who(user, request), device_id)
    except EnrolmentError as exc:
        raise _api(exc) from exc
    session.commit()  # revoked first: a channel that reconnects at once is refused
    anyio.from_thread.run_sync(end_device_channels, ctx, token_ids, "this device was revoked by IT")


def enrol_limiter(request: Request) -> enrolment_refusals.SourceLimiter:
    """Refused enrolments per source address, shared by device tokens and per-agent codes."""
    state = request.app.state
    if getattr(state, "enrol_limiter", None) is None:
        state.enrol_limiter = enrolment_refusals.SourceLimiter()
    limiter: enrolment_refusals.SourceLimiter = state.enrol_limiter
    return limiter


@router.post("/devices/enroll")
def enroll(
    body: EnrolBody, request: Request, session: Session = Depends(get_db, scope="function")
) -> dict[str, Any]:
    addr = client_addr(request)
    now = time.time()
    limiter = enrol_limiter(request)
    if limiter.blocked(addr, now):
        # Audited once per window (the refusal that filled it, below), not per attempt: a flood
        # must not grow the audit log either.
        raise ApiError(
            429,
            "too_many_refused_enrolments",
            "too many refused enrolments from this address; wait a few minutes and check the token",
        )
    try:
        got = devices.enrol(session, body.token, body.hostname, addr, now)
    except EnrolmentError as exc:
        # devices.enrol audited and committed the refusal; the fleet page gets it too.
        enrolment_refusals.refused(
            session,
            limiter,
            hostname=body.hostname,
            os_user=body.os_user,
            remote_addr=addr,
            token=body.token,
            reason=exc.code,
            message=exc.message,
            now=now,
            credential="token",
            action="device.enroll",
            who=f"device {body.hostname}",
            target_type="device",
        )
        session.commit()
        raise _api(exc) from exc
    enrolment_refusals.forget_host(session, body.hostname)
    return asdict(got)


@router.post("/agent/pairing-ticket")
def pairing_ticket(
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> dict[str, Any]:
    """A one-time ticket (valid ``PAIRING_TICKET_SECONDS``) the desktop hands to the recorder on
    its PC, which trades it for a binding to this login session (``POST /api/devices/pair``)."""
    if user.role != "agent" or user.client != "desktop":
        audit.record(
            session,
            action="device.pairing_ticket",
            outcome="denied",
            user_id=user.user_id,
            username=user.username,
            detail=f"role {user.role}, {user.client} login: only an agent's desktop pairs a recorder",
            remote_addr=client_addr(request),
        )
        session.commit()
        raise ApiError(403, "not_an_agent_desktop", "only an agent's desktop login pairs a recorder")
    return {"ticket": pairing_tickets(request).issue(user.token_id), "expires_in": PAIRING_TICKET_SECONDS}


@router.post("/devices/pair")
def pair(
    body: PairBody,
    request: Request,
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> dict[str, Any]:
    addr = client_addr(request)
    try:
        device = devices.device_for(session, bearer_token(request), "device.pair", addr)
        agent_token_id = pairing_tickets(request).redeem(body.ticket)
        if agent_token_id is None:
            raise devices.refuse(
                session,
                devices.Who(None, f"device {device.hostname}", addr),
                "device.pair",
                str(device.id),
                401,
                "invalid_pairing_ticket",
                "unknown, used or expired pairing ticket: log in on the desktop again",
            )
        paired, ended = devices.pair(session, device, agent_token_id, addr, os_user=body.os_user)
    except EnrolmentError as exc:
        raise _api(exc) from exc
    session.commit()
    anyio.from_thread.run_sync(end_device_channels, ctx, ended, "another agent logged in on this PC")
    return asdict(paired)


@router.post("/devices/unpair", status_code=204)
def unpair(
    request: Request,
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> None:
    addr = client_addr(request)
    try:
        device = devices.device_for(session, bearer_token(request), "device.unpair", addr)
    except EnrolmentError as exc:
        raise _api(exc) from exc
    ended = devices.unpair(session, device, addr)
    session.commit()
    anyio.from_thread.run_sync(end_device_channels, ctx, ended, "the agent logged out on this PC")
