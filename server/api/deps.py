"""Request dependencies: the server context, a database session, and the authenticated user.

A request is authenticated by ``Authorization: Bearer`` or, for the web UI, the session
cookie — never by a ``?token=`` query parameter: query strings end up in access logs, proxy
logs and browser history. (The event WebSocket also takes a one-time ticket; see
``server.api.routes_events``.) Every refusal is written to the audit log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.api.context import ServerContext
from server.api.errors import ApiError
from server.policy.access import Viewer
from server.security.tokens import RECORDER_SCOPE, token_digest
from server.store import audit, models
from server.store.db import session_scope

SESSION_COOKIE = "tandem_session"


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def get_db(ctx: ServerContext = Depends(get_context)) -> Iterator[Session]:
    """One transaction per request. Routes take it with ``scope="function"`` so the commit happens
    before the response leaves: a client that uses a fresh token at once must find it saved."""
    with session_scope(ctx.sessions) as session:
        yield session


@dataclass(frozen=True, slots=True)
class AuthUser:
    user_id: int
    username: str
    role: str
    full_name: str
    team_id: int | None
    token_id: int
    client: str
    supervised_team_ids: frozenset[int]

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.user_id, self.role, self.supervised_team_ids)


def client_addr(request: Request) -> str:
    return request.client.host if request.client else ""


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def extract_token(conn: HTTPConnection) -> str | None:
    """The bearer token or, failing that, the session cookie (HTTP requests and WebSockets)."""
    return bearer_token(conn) or conn.cookies.get(SESSION_COOKIE) or None


def resolve_token(session: Session, token: str | None) -> AuthUser | None:
    if not token:
        return None
    return _resolve(session, models.ApiToken.token_hash == token_digest(token))


def resolve_token_id(session: Session, token_id: int) -> AuthUser | None:
    """The user of a token known by its id (a WebSocket ticket), if it is still valid."""
    return _resolve(session, models.ApiToken.id == token_id)


def _resolve(session: Session, which: ColumnElement[bool]) -> AuthUser | None:
    row = session.execute(
        select(models.ApiToken, models.User)
        .join(models.User, models.User.id == models.ApiToken.user_id)
        .where(which)
    ).first()
    if row is None:
        return None
    tok, user = row
    if tok.revoked_at is not None or tok.expires_at <= time.time() or not user.active:
        return None
    teams = frozenset(
        session.execute(select(models.TeamSupervisor.team_id).where(models.TeamSupervisor.user_id == user.id))
        .scalars()
        .all()
    )
    return AuthUser(
        user.id, user.username, user.role, user.full_name, user.team_id, tok.id, tok.client, teams
    )


def any_scope_user(request: Request, session: Session = Depends(get_db, scope="function")) -> AuthUser:
    """The token's user, whatever the token's scope: only for the few endpoints an enrolled recorder
    may call (logout, the screen upload); everything else takes ``current_user``."""
    token = extract_token(request)
    user = resolve_token(session, token)
    if user is None:
        reason = "no credentials" if not token else "invalid, revoked or expired token"
        audit.record(
            session,
            action="auth.rejected",
            outcome="denied",
            target_type="endpoint",
            target_id=request.url.path[:64],
            detail=reason,
            remote_addr=client_addr(request),
        )
        session.commit()
        raise ApiError(
            401, "invalid_token", f"authentication required: {reason}", {"WWW-Authenticate": "Bearer"}
        )
    return user


def current_user(
    request: Request,
    user: AuthUser = Depends(any_scope_user),
    session: Session = Depends(get_db, scope="function"),
) -> AuthUser:
    """The token's user, refusing recorder tokens: a recorder credential sits on the agent's PC
    and is for uploading screen recordings, not for acting as the agent (pause, stop, done) or
    reading recordings. The refusal is audited."""
    if user.client == RECORDER_SCOPE:
        audit.record(
            session,
            action="access.denied",
            outcome="denied",
            user_id=user.user_id,
            username=user.username,
            target_type="endpoint",
            target_id=request.url.path[:64],
            detail="recorder token used outside the recorder's endpoints",
            remote_addr=client_addr(request),
        )
        session.commit()
        raise ApiError(
            403,
            "recorder_token_not_allowed",
            "a recorder token only uploads screen recordings and keeps the event channel; "
            "log in on the desktop or the web for this",
        )
    return user


def require_roles(*roles: str, allow_recorder: bool = False) -> Callable[..., AuthUser]:
    """Dependency factory: the user must have one of ``roles``; a refusal is audited.
    ``allow_recorder`` lets recorder tokens through (the route then checks the scope itself)."""
    user_dependency = any_scope_user if allow_recorder else current_user

    def _check(
        request: Request,
        user: AuthUser = Depends(user_dependency),
        session: Session = Depends(get_db, scope="function"),
    ) -> AuthUser:
        if user.role not in roles:
            audit.record(
                session,
                action="access.denied",
                outcome="denied",
                user_id=user.user_id,
                username=user.username,
                target_type="endpoint",
                target_id=request.url.path[:64],
                detail=f"role {user.role} not in {', '.join(roles)}",
                remote_addr=client_addr(request),
            )
            session.commit()
            raise ApiError(403, "forbidden", f"this needs one of the roles: {', '.join(roles)}")
        return user

    return _check
