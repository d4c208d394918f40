"""Recorder enrolment over HTTP: an administrator issues a one-time code for an agent's recorder;
the recorder exchanges it for its token. The rules are in server/services/enrolment.py."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, get_db, require_roles
from server.api.errors import ApiError
from server.api.routes_auth import user_info
from server.api.routes_devices import enrol_limiter
from server.errors import EnrolmentError
from server.services import enrolment_refusals
from server.services.enrolment import issue_code, redeem_code
from tandem_protocol.payloads import (
    LoginResponse,
    RecorderEnrolmentCode,
    RecorderEnrolmentRequest,
)

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")


class EnrollBody(BaseModel):
    """``RecorderEnrollRequest`` (tandem_protocol.payloads), with its limits: the host name and OS
    user are shown to IT on the fleet page when the code is refused."""

    code: str = Field(max_length=100)
    hostname: str = Field("", max_length=200)
    os_user: str = Field("", max_length=100)

    @field_validator("hostname", "os_user")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(not ch.isprintable() for ch in value):
            raise ValueError("must not contain control characters")
        return value.strip()


@router.post("/admin/recorders/enrolments", status_code=201, response_model=RecorderEnrolmentCode)
def create_enrolment(
    body: RecorderEnrolmentRequest,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    try:
        issued = issue_code(
            session,
            body.username,
            ttl_seconds=ctx.settings.recorder_enrolment_ttl_hours * 3600,
            by_user_id=user.user_id,
            by_username=user.username,
            remote_addr=client_addr(request),
        )
    except EnrolmentError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return asdict(RecorderEnrolmentCode(issued.code, issued.username, issued.expires_at))


@router.post("/recorders/enroll", response_model=LoginResponse)
def enroll(
    body: EnrollBody,
    request: Request,
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    addr = client_addr(request)
    now = time.time()
    limiter = enrol_limiter(request)  # shared with device tokens: one budget per source address
    if limiter.blocked(addr, now):
        raise ApiError(
            429,
            "too_many_refused_enrolments",
            "too many refused enrolments from this address; wait a few minutes and check the code",
        )
    try:
        got = redeem_code(
            session,
            body.code,
            token_ttl_seconds=ctx.settings.recorder_token_ttl_days * 86400,
            remote_addr=addr,
            now=now,
        )
    except EnrolmentError as exc:
        # redeem_code audited and committed the refusal; the fleet page gets it too, named by the
        # host the recorder sent (an old recorder sends none: "unknown").
        enrolment_refusals.refused(
            session,
            limiter,
            hostname=body.hostname,
            os_user=body.os_user,
            remote_addr=addr,
            token=body.code,
            reason=exc.code,
            message=exc.message,
            now=now,
            credential="code",
            action="recorder.enroll",
            who=f"host {body.hostname}",
            target_type="recorder_enrolment",
        )
        session.commit()
        raise ApiError(exc.status, exc.code, exc.message) from exc
    if body.hostname.strip():  # this host is enrolled now: its refusals are answered
        enrolment_refusals.forget_host(session, body.hostname)
    session.flush()
    return asdict(LoginResponse(got.token, got.expires_at, user_info(session, got.user)))
