"""How the screen-segment upload routes (routes_screen_segments.py) audit and answer: every
refusal is audited (``screen.segment``, denied or failed) and answered with the tus headers and a
JSON body (none for HEAD); a fault of ours is audited as failed before it becomes a 500; a stored
segment is audited once (allowed) by the routes through ``audited``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr
from server.api.errors import ApiError
from server.api.routes_screen_upload import DENIED_STATUSES, audit_upload
from server.calls.segment_uploads import AlreadyStored
from tandem_protocol.tus import TUS_VERSION, TusHeaderError

ACTION = "screen.segment"
TUS = {"Tus-Resumable": TUS_VERSION}


class Refused(Exception):
    """A refusal with a body of its own (already_uploaded, frames_in_pause): audited, then sent."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body["message"])
        self.status = status
        self.body = body
        self.headers = headers or {}


# What ``refuse`` answers: audited (denied or failed) and sent, nothing stored.
REFUSALS = (AlreadyStored, ApiError, TusHeaderError, Refused)


def already_uploaded(sha256: str) -> Refused:
    return Refused(
        409,
        {
            "error": "already_uploaded",
            "message": "this segment is already stored; a stored segment is never replaced",
            "sha256": sha256,
        },
    )


async def audited(
    ctx: ServerContext, user: AuthUser, interaction_id: str, outcome: str, detail: str, request: Request
) -> None:
    await asyncio.to_thread(
        audit_upload, ctx, user, interaction_id, outcome, detail, client_addr(request), action=ACTION
    )


async def refuse(
    ctx: ServerContext, user: AuthUser, target: str, exc: Exception, request: Request, what: str
) -> Response:
    """Audit the refusal (one of ``REFUSALS``), then answer it (tus headers on every answer)."""
    if isinstance(exc, AlreadyStored):
        exc = already_uploaded(exc.sha256)
    if isinstance(exc, Refused):
        status, body, headers = exc.status, exc.body, exc.headers
    elif isinstance(exc, ApiError):
        status, headers = exc.status, exc.headers or {}
        body = {"error": exc.code, "message": exc.message}
    elif isinstance(exc, TusHeaderError):
        status, headers = exc.status, {"Tus-Version": TUS_VERSION} if exc.status == 412 else {}
        body = {"error": exc.code, "message": exc.message}
    else:
        raise exc
    outcome = "denied" if status in DENIED_STATUSES or status == 412 else "failed"
    await audited(ctx, user, target, outcome, f"{what}: {body['error']}: {body['message']}", request)
    headers = {**TUS, **headers}
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def audit_fault(
    ctx: ServerContext, user: AuthUser, target: str, exc: Exception, request: Request, what: str
) -> None:
    """A fault of ours (database, disk), not a refusal: still on the record; the caller logs it
    and re-raises it (a 500)."""
    with contextlib.suppress(Exception):
        await audited(ctx, user, target, "failed", f"{what}: server error: {type(exc).__name__}", request)
