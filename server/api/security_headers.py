"""Security headers on every HTTP response (web UI, static files, API).

The web UI loads only its own files — one module script, one stylesheet, no inline script or
style attribute (positions are set through the CSSOM, which CSP does not govern) — so the
policy needs no 'unsafe-inline'. Media plays from /api URLs on the same origin.

``Referrer-Policy: same-origin`` rather than ``no-referrer``: with ``no-referrer`` browsers
send ``Origin: null`` on the UI's own POST/PUT/DELETE (Fetch standard, "serializing a request
origin"), which the CSRF check would have to refuse; ``same-origin`` still sends nothing to
any other site.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000"


def security_headers(hsts: bool) -> list[tuple[str, str]]:
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
    ]
    if hsts:  # only when served over HTTPS (secure_cookies): HSTS over plain HTTP is ignored at best
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.headers = security_headers(hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
                # API answers (JSON, error bodies) are per user: never kept by a browser or proxy
                # cache. Media keeps the "private" its route sets, so seeking does not re-fetch.
                if is_api and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
