"""The legacy screen upload: ``PUT /api/interactions/{id}/screen``, one whole file per interaction.
Recorders now send segments by resumable upload (routes_screen_segments.py); this path stays for
recorders not yet updated, and its checks (recorder token, audit) are shared with that one.

Only a recorder token (from a recorder enrolment, never from a password login) of the call's
agent may upload, once per interaction; a stored screen recording is never replaced. The order of
work makes every outcome clean:

1. refusals that need no body (scope, owner, headers, time span, already stored) — audited;
2. a ``pending`` media row claims the interaction's screen (of two simultaneous uploads exactly
   one wins; the other gets ``409 upload_in_progress``, retryable);
3. the body is streamed to a temporary file, hashed and checked against the declared sha256,
   then validated with PyAV (server/media/screen_validation.py);
4. the file is moved into storage under a key that must not exist, and the row completed.

A failure after step 2 discards the partial file and the pending row; a crash is finished or rolled
back by start-up recovery (server/calls/media_store.py). File and database work runs in worker
threads: the event loop here also carries SIP.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, require_roles
from server.api.errors import ApiError
from server.calls.media_store import Claim
from server.errors import MediaBusyError, MediaExistsError, ScreenRejected, StorageError, StorageFullError
from server.media.screen_validation import check_time_span, validate_screen_file
from server.store import audit, models
from server.store.db import session_scope
from tandem_protocol.payloads import UploadHeaders

router = APIRouter(prefix="/api")
log = logging.getLogger(__name__)
# The route checks the scope itself, so a wrong-scope upload is refused and audited as an upload.
agent_only = require_roles("agent", allow_recorder=True)

RECORDER_SCOPE = "recorder"
WRITE_BATCH = 1 << 20  # bytes gathered before one write in a worker thread (bounds memory too)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Refusals of who/what/when are "denied"; a body that is not what it claims is "failed".
DENIED_STATUSES = frozenset({401, 403, 404, 409})


class _AlreadyStored(Exception):
    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256


@dataclass(frozen=True, slots=True)
class _Declared:
    started_at: float
    sha256: str


def _declared(request: Request) -> _Declared:
    raw_start = request.headers.get(UploadHeaders.STARTED_AT)
    raw_sha = request.headers.get(UploadHeaders.SHA256)
    if raw_start is None or raw_sha is None:
        raise ApiError(
            400, "bad_upload", f"headers {UploadHeaders.STARTED_AT} and {UploadHeaders.SHA256} are required"
        )
    try:
        started_at = float(raw_start)
    except ValueError as exc:
        raise ApiError(
            400, "bad_started_at", f"{UploadHeaders.STARTED_AT} must be Unix seconds, not {raw_start[:40]!r}"
        ) from exc
    if not math.isfinite(started_at):
        raise ApiError(
            400,
            "bad_started_at",
            f"{UploadHeaders.STARTED_AT} must be a finite number, not {raw_start[:40]!r}",
        )
    sha = raw_sha.strip().lower()
    if not _SHA256.match(sha):
        raise ApiError(400, "bad_upload", f"{UploadHeaders.SHA256} must be 64 hex digits")
    return _Declared(started_at, sha)


def require_recorder_token(user: AuthUser) -> None:
    if user.client != RECORDER_SCOPE:
        raise ApiError(
            403,
            "recorder_token_required",
            "screen recordings are uploaded only by an enrolled recorder service (a recorder token); "
            f"a {user.client} login cannot upload",
        )


def _span(ctx: ServerContext, interaction_id: str, user: AuthUser) -> tuple[float, float]:
    """Who may upload here, and the interaction's span [start, end of ACW (or now)]."""
    with session_scope(ctx.sessions) as s:
        row = s.get(models.Interaction, interaction_id)
        if row is None:
            raise ApiError(404, "unknown_interaction", f"no interaction {interaction_id}")
        if row.agent_id != user.user_id:
            raise ApiError(403, "forbidden", "that interaction belongs to another agent")
        if not row.screen_decision:
            raise ApiError(
                409, "screen_not_requested", "no screen recording was requested for this interaction"
            )
        stored = next((m for m in row.media if m.kind == "screen"), None)
        if stored is not None:
            raise _AlreadyStored(stored.sha256)
        return row.started_at, row.acw_ended_at or row.ended_at or time.time()


def audit_upload(
    ctx: ServerContext,
    user: AuthUser,
    interaction_id: str,
    outcome: str,
    detail: str,
    addr: str,
    *,
    action: str = "screen.upload",
) -> None:
    """One audit record of a screen upload (this route's, or a segment's: ``screen.segment``)."""
    with session_scope(ctx.sessions) as s:
        audit.record(
            s,
            action=action,
            outcome=outcome,
            user_id=user.user_id,
            username=user.username,
            target_type="interaction",
            target_id=interaction_id[:64],
            detail=f"client={user.client}: {detail}",
            remote_addr=addr,
        )


def _already_uploaded(sha256: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": "already_uploaded",
            "message": "the screen recording of this interaction is already stored; it is never replaced",
            "sha256": sha256,
        },
        status_code=409,
    )


@router.put("/interactions/{interaction_id}/screen", status_code=201)
async def upload_screen(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    addr = client_addr(request)
    settings = ctx.settings
    try:
        require_recorder_token(user)
        declared = _declared(request)
        span_start, span_end = await asyncio.to_thread(_span, ctx, interaction_id, user)
        try:  # the start alone, before a byte of the body is read; the end once it is decoded
            check_time_span(
                declared.started_at,
                0.0,
                span_start,
                span_end,
                slack=settings.screen_time_slack_seconds,
                end_tolerance=settings.screen_end_tolerance_seconds,
            )
        except ScreenRejected as exc:
            raise ApiError(422, exc.code, exc.message) from exc
        try:
            claim = await asyncio.to_thread(
                ctx.repo.media_store.claim,
                interaction_id,
                "screen",
                "screen.mp4",
                "video/mp4",
                declared.started_at,
                declared.sha256,
            )
        except MediaExistsError as exc:
            raise _AlreadyStored(exc.sha256) from exc
        except MediaBusyError as exc:
            raise ApiError(
                409, "upload_in_progress", "another upload of this screen recording is under way; retry later"
            ) from exc
        size = await _store(request, ctx, claim, declared, span_start, span_end)
    except _AlreadyStored as exc:
        await asyncio.to_thread(
            audit_upload, ctx, user, interaction_id, "denied", f"already stored (sha256 {exc.sha256})", addr
        )
        return _already_uploaded(exc.sha256)
    except ApiError as exc:
        outcome = "denied" if exc.status in DENIED_STATUSES else "failed"
        await asyncio.to_thread(
            audit_upload, ctx, user, interaction_id, outcome, f"{exc.code}: {exc.message}", addr
        )
        raise
    except Exception as exc:  # a fault of ours (database, disk): still on the record, then a 500
        log.exception("upload of the screen of %s failed", interaction_id)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                audit_upload, ctx, user, interaction_id, "failed", f"server error: {type(exc).__name__}", addr
            )
        raise
    await asyncio.to_thread(
        audit_upload, ctx, user, interaction_id, "allowed", f"{size} bytes, sha256 {declared.sha256}", addr
    )
    await ctx.coordinator.screen_uploaded(interaction_id)
    return {"key": f"screen:{interaction_id}", "size": size, "sha256": declared.sha256}


async def _store(
    request: Request,
    ctx: ServerContext,
    claim: Claim,
    declared: _Declared,
    span_start: float,
    span_end: float,
) -> int:
    """Body → temporary file → checks → storage → row completed. Undoes the claim on any failure."""
    settings = ctx.settings
    tmp: Path | None = None
    try:
        tmp = await asyncio.to_thread(_new_tmp, settings.tmp_dir)
        digest, size = await _receive(request, tmp, settings.max_upload_bytes)
        if digest != declared.sha256:
            raise ApiError(
                400,
                "checksum_mismatch",
                f"body sha256 {digest} does not match the declared "
                f"{declared.sha256} ({size} bytes received): upload truncated or corrupted",
            )
        try:
            media = await asyncio.to_thread(validate_screen_file, tmp)
            check_time_span(
                declared.started_at,
                media.duration,
                span_start,
                span_end,
                slack=settings.screen_time_slack_seconds,
                end_tolerance=settings.screen_end_tolerance_seconds,
            )
        except ScreenRejected as exc:
            raise ApiError(422, exc.code, exc.message) from exc
        store = ctx.repo.media_store
        try:
            await asyncio.to_thread(store.annotate, claim, size, media.duration)
            stored = await asyncio.to_thread(store.put, claim, tmp)
            await asyncio.to_thread(store.complete, claim, stored)
        except StorageFullError as exc:
            raise ApiError(507, "storage_full", str(exc)) from exc
        except StorageError as exc:
            raise ApiError(500, "storage_error", str(exc)) from exc
        return stored
    except BaseException:
        # Shielded: a cancelled request still cleans up (else start-up recovery would).
        await asyncio.shield(asyncio.to_thread(_undo, ctx, claim))
        raise
    finally:
        if tmp is not None:
            await asyncio.shield(asyncio.to_thread(tmp.unlink, missing_ok=True))


def _undo(ctx: ServerContext, claim: Claim) -> None:
    try:
        ctx.repo.media_store.abandon(claim)
    except Exception:
        log.exception("upload of %s: could not undo its claim; start-up recovery will", claim.interaction_id)


def _new_tmp(tmp_dir: Path) -> Path:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".mp4", dir=tmp_dir)
    os.close(fd)
    return Path(name)


def _write(out: IO[bytes], digest: Any, data: bytes) -> None:
    digest.update(data)
    out.write(data)


def _finish(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())


async def _receive(request: Request, path: Path, limit: int) -> tuple[str, int]:
    """Stream the body to ``path``: chunks are gathered up to WRITE_BATCH on the loop (memory stays
    bounded), hashed and written in a worker thread; never read whole into memory."""
    digest = hashlib.sha256()
    size = 0
    batch = bytearray()
    out = await asyncio.to_thread(open, path, "wb")
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", f"upload exceeds the limit of {limit} bytes")
            batch += chunk
            if len(batch) >= WRITE_BATCH:
                data, batch = bytes(batch), bytearray()
                await asyncio.to_thread(_write, out, digest, data)
        if batch:
            await asyncio.to_thread(_write, out, digest, bytes(batch))
        await asyncio.to_thread(_finish, out)
    except ClientDisconnect as exc:
        raise ApiError(
            400, "bad_upload", f"client disconnected after {size} bytes: upload truncated"
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ApiError(507, "storage_full", "the server's disk is full; retry later") from exc
        raise ApiError(500, "io_error", f"could not write the upload: {exc.strerror}") from exc
    finally:
        await asyncio.shield(asyncio.to_thread(out.close))
    return digest.hexdigest(), size
