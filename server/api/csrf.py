"""CSRF defence for cookie-authenticated changes.

A browser attaches the session cookie to requests another site's page makes, so a POST, PUT,
PATCH or DELETE that carries the cookie (and no ``Authorization: Bearer``, which no other
site can make a browser send) must come from our own origin: its ``Origin`` header — or,
when a browser sent none, its ``Referer`` — must name this server, as the ``Host`` header or
``settings.public_url`` gives it. Anything else is refused with 403 ``csrf_refused`` and
audited. SameSite=Strict on the cookie already stops modern browsers; this is the check that
does not depend on the browser getting SameSite right.

A state-changing request without any credentials (the login) is refused only when it carries
a foreign ``Origin``: another site's page logging the user into an account of its choosing.
Programs (desktop, recorder, scripts) send no Origin and are not affected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.deps import SESSION_COOKIE
from server.api.errors import error_response
from server.store import audit
from server.store.db import session_scope

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _origin_of(url: str) -> tuple[str, str] | None:
    """(scheme, host[:port]) with the default port dropped; None if it is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return parts.scheme, host


def _host_of(host_header: str) -> str:
    host = host_header.strip().lower()
    for default in (":80", ":443"):
        if host.endswith(default):
            return host[: -len(default)]
    return host


def cross_site_refusal(headers: Mapping[str, str], public_url: str | None) -> str | None:
    """None when the request demonstrably comes from this server's own pages; else why not."""
    claimed = headers.get("origin")
    what = "Origin"
    if claimed is None:
        claimed, what = headers.get("referer"), "Referer"
    if claimed is None:
        return "no Origin or Referer header on a cookie-authenticated change"
    origin = _origin_of(claimed)
    if origin is None:
        return f"{what} {claimed[:100]!r} is not this server"
    if public_url and _origin_of(public_url) == origin:
        return None
    host = headers.get("host")
    if host and origin[1] == _host_of(host):
        return None
    return f"{what} {claimed[:100]!r} is not this server"


class CsrfMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get("authorization", "").lower().startswith("bearer "):
            await self.app(scope, receive, send)  # no other site can make a browser send this
            return
        has_cookie = SESSION_COOKIE in cookie_parser(headers.get("cookie", ""))
        if not has_cookie and "origin" not in headers:
            await self.app(scope, receive, send)
            return
        ctx: Any = scope["app"].state.ctx
        reason = cross_site_refusal(headers, ctx.settings.public_url)
        if reason is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        await anyio.to_thread.run_sync(_audit, ctx, scope["path"], reason, client[0] if client else "")
        response = error_response(
            403,
            "csrf_refused",
            "refused: this change did not come from Tandem's own pages "
            f"({reason}); reload the page and try again",
        )
        await response(scope, receive, send)


def _audit(ctx: Any, path: str, reason: str, addr: str) -> None:
    with session_scope(ctx.sessions) as s:
        audit.record(
            s,
            action="csrf.refused",
            outcome="denied",
            target_type="endpoint",
            target_id=path[:64],
            detail=reason,
            remote_addr=addr,
        )
