"""Recorder enrolment over HTTP: an administrator issues a one-time code for an agent's recorder;
the recorder exchanges it for its token. The rules are in server/services/enrolment.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, get_db, require_roles
from server.api.errors import ApiError
from server.api.routes_auth import user_info
from server.errors import EnrolmentError
from server.services.enrolment import issue_code, redeem_code
from tandem_protocol.payloads import (
    LoginResponse,
    RecorderEnrollRequest,
    RecorderEnrolmentCode,
    RecorderEnrolmentRequest,
)

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")


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
    body: RecorderEnrollRequest,
    request: Request,
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    try:
        got = redeem_code(
            session,
            body.code,
            token_ttl_seconds=ctx.settings.recorder_token_ttl_days * 86400,
            remote_addr=client_addr(request),
        )
    except EnrolmentError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    session.flush()
    return asdict(LoginResponse(got.token, got.expires_at, user_info(session, got.user)))
