"""Login, logout and who-am-I. An agent's desktop login binds him to a DN until logout."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.api.context import ServerContext
from server.api.deps import (
    SESSION_COOKIE,
    AuthUser,
    any_scope_user,
    client_addr,
    current_user,
    get_context,
    get_db,
)
from server.api.errors import ApiError
from server.errors import PasswordCheckBusy
from server.security.passwords import verify_password
from server.security.throttle import LoginThrottle
from server.security.tokens import RECORDER_SCOPE, new_token, token_digest
from server.services import desktop_dn
from server.services.actor import Actor
from server.store import audit, models
from tandem_protocol.payloads import LoginRequest, LoginResponse, UserInfo

router = APIRouter(prefix="/api")


def user_info(session: Session, user: models.User) -> UserInfo:
    dn = session.execute(
        select(models.DnBinding.dn).where(
            models.DnBinding.user_id == user.id, models.DnBinding.released_at.is_(None)
        )
    ).scalar()
    return UserInfo(user.id, user.username, user.role, user.full_name, user.team_id, dn)


@router.post("/auth/login", response_model=LoginResponse)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    addr = client_addr(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    refusal = _throttled(throttle, body.username, addr)  # before any argon2 work
    if refusal is not None:
        _login_refused(session, body.username, addr, refusal.message)
        raise refusal
    user = session.execute(select(models.User).where(models.User.username == body.username)).scalar()
    try:
        verified = verify_password(user.password_hash if user else None, body.password)
    except PasswordCheckBusy as exc:
        _login_refused(session, body.username, addr, "server busy with other logins")
        raise ApiError(
            503, "busy", "too many logins at once; try again in a moment", {"Retry-After": "1"}
        ) from exc
    if not verified or user is None or not user.active:
        throttle.failed(body.username, addr)
        _login_refused(session, body.username, addr, "wrong username or password")
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    throttle.succeeded(body.username)
    now = time.time()
    if body.client == RECORDER_SCOPE:  # a password never yields a recorder token: enrolment does
        message = (
            "a recorder does not log in with a password: ask IT for an enrolment code and run "
            "`tandem-recorder login --enroll-code CODE`"
        )
        _login_refused(session, body.username, addr, f"client=recorder: {message}")
        raise ApiError(403, "recorder_enrolment_required", message)
    ttl = ctx.settings.token_ttl_hours * 3600
    dn: str | None = None  # normalised; the services refuse (and audit) a bad or taken DN
    if body.client == "desktop" and user.role == "agent":
        dn = desktop_dn.claim(session, _desktop_actor(user, addr), user.id, body.dn)
    token = new_token()
    tok = models.ApiToken(
        token_hash=token_digest(token),
        user_id=user.id,
        client=body.client,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(tok)
    session.flush()
    if dn is not None:
        desktop_dn.bind(session, _desktop_actor(user, addr), user.id, dn, tok.id, now)
    audit.record(
        session,
        action="auth.login",
        outcome="allowed",
        user_id=user.id,
        username=user.username,
        detail=f"client={body.client}" + (f" dn={dn}" if dn else ""),
        remote_addr=addr,
    )
    session.flush()
    if body.client == "web":
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(ttl),
            httponly=True,
            samesite="strict",
            secure=ctx.settings.secure_cookies,
            path="/",
        )
    return asdict(LoginResponse(token, now + ttl, user_info(session, user)))


def _throttled(throttle: LoginThrottle, username: str, addr: str) -> ApiError | None:
    wait = throttle.retry_after(username, addr)
    if wait <= 0:
        return None
    seconds = math.ceil(wait)
    return ApiError(
        429,
        "too_many_attempts",
        f"too many failed logins; try again in {seconds} s",
        {"Retry-After": str(seconds)},
    )


def _login_refused(session: Session, username: str, addr: str, detail: str) -> None:
    audit.record(
        session,
        action="auth.login",
        outcome="denied",
        username=username[:100],
        detail=detail,
        remote_addr=addr,
    )
    session.commit()


def _desktop_actor(user: models.User, addr: str) -> Actor:
    return Actor(user.id, user.username, user.role, "desktop", addr)


@router.post("/auth/logout", status_code=204)
def logout(
    request: Request,
    response: Response,
    user: AuthUser = Depends(any_scope_user),  # a recorder logs out too
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Response:
    now = time.time()
    tok = session.get(models.ApiToken, user.token_id)
    if tok is not None:
        tok.revoked_at = now
    for binding in session.execute(
        select(models.DnBinding).where(
            models.DnBinding.token_id == user.token_id, models.DnBinding.released_at.is_(None)
        )
    ).scalars():
        binding.released_at = now
    audit.record(
        session,
        action="auth.logout",
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        remote_addr=client_addr(request),
    )
    # Revoked first, then the sockets closed: one that reconnects at once is already refused.
    session.commit()
    anyio.from_thread.run_sync(ctx.hub.close_token, user.token_id)  # the hub lives on the loop
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=UserInfo)
def me(user: AuthUser = Depends(current_user), session: Session = Depends(get_db, scope="function")) -> Any:
    row = session.get(models.User, user.user_id)
    assert row is not None
    return asdict(user_info(session, row))
