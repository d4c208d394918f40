"""The screen upload (recorder service): ``PUT /api/interactions/{id}/screen``."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, require_roles
from server.api.errors import ApiError
from server.store import audit, models
from server.store.db import session_scope
from server.store.storage import StorageFullError
from tandem_protocol.payloads import UploadHeaders

router = APIRouter(prefix="/api")
log = logging.getLogger(__name__)
agent_only = require_roles("agent")


def _check_upload_target(
    session: Session, interaction_id: str, user: AuthUser, addr: str
) -> models.Interaction:
    row = session.get(models.Interaction, interaction_id)

    def refuse(status: int, code: str, message: str) -> ApiError:
        audit.record(
            session,
            action="screen.upload",
            outcome="denied",
            user_id=user.user_id,
            username=user.username,
            target_type="interaction",
            target_id=interaction_id[:64],
            detail=message,
            remote_addr=addr,
        )
        session.commit()
        return ApiError(status, code, message)

    if row is None:
        raise refuse(404, "unknown_interaction", f"no interaction {interaction_id}")
    if row.agent_id != user.user_id:
        raise refuse(403, "forbidden", "that interaction belongs to another agent")
    if not row.screen_decision:
        raise refuse(409, "screen_not_requested", "no screen recording was requested for this interaction")
    if any(m.kind == "screen" for m in row.media):
        raise refuse(409, "already_uploaded", "the screen recording of this interaction is already stored")
    return row


@router.put("/interactions/{interaction_id}/screen", status_code=201)
async def upload_screen(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    addr = client_addr(request)
    with session_scope(ctx.sessions) as s:
        _check_upload_target(s, interaction_id, user, addr)
    try:
        started_at = float(request.headers[UploadHeaders.STARTED_AT])
        expected_sha = request.headers[UploadHeaders.SHA256].strip().lower()
    except (KeyError, ValueError) as exc:
        raise ApiError(
            400, "bad_upload", f"headers {UploadHeaders.STARTED_AT} and {UploadHeaders.SHA256} are required"
        ) from exc
    ctx.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="upload-", suffix=".mp4", dir=ctx.settings.tmp_dir)
    tmp = Path(tmp_name)
    try:
        digest, size = await _receive(request, fd, ctx.settings.max_upload_bytes)
        if digest != expected_sha:
            raise ApiError(
                400,
                "checksum_mismatch",
                f"body sha256 {digest} does not match the declared "
                f"{expected_sha} ({size} bytes received): upload truncated or corrupted",
            )
        await asyncio.to_thread(_validate_mp4, tmp)
        try:
            await asyncio.to_thread(
                ctx.repo.store_media,
                interaction_id,
                "screen",
                tmp,
                "screen.mp4",
                "video/mp4",
                started_at,
                None,
                digest,
            )
        except StorageFullError as exc:
            raise ApiError(507, "storage_full", str(exc)) from exc
    except ApiError as exc:
        await asyncio.to_thread(_audit_upload, ctx, user, interaction_id, "failed", exc.message, addr)
        raise
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    await asyncio.to_thread(_audit_upload, ctx, user, interaction_id, "allowed", f"{size} bytes", addr)
    await ctx.coordinator.screen_uploaded(interaction_id)
    return {"key": f"screen:{interaction_id}", "size": size}


async def _receive(request: Request, fd: int, limit: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "too_large", f"upload exceeds the limit of {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except ClientDisconnect as exc:
        raise ApiError(
            400, "bad_upload", f"client disconnected after {size} bytes: upload truncated"
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ApiError(507, "storage_full", "the server's disk is full; retry later") from exc
        raise ApiError(500, "io_error", f"could not write the upload: {exc.strerror}") from exc
    return digest.hexdigest(), size


def _validate_mp4(path: Path) -> None:
    import av  # PyAV only loads once an upload arrives

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ApiError(400, "bad_upload", "the upload has no video stream")
            for _packet in container.demux(container.streams.video[0]):
                return
    except av.FFmpegError as exc:
        raise ApiError(400, "bad_upload", f"the upload is not a readable MP4: {exc}") from exc
    raise ApiError(400, "bad_upload", "the upload holds no video frames")


def _audit_upload(
    ctx: ServerContext, user: AuthUser, interaction_id: str, outcome: str, detail: str, addr: str
) -> None:
    with session_scope(ctx.sessions) as s:
        audit.record(
            s,
            action="screen.upload",
            outcome=outcome,
            user_id=user.user_id,
            username=user.username,
            target_type="interaction",
            target_id=interaction_id[:64],
            detail=detail,
            remote_addr=addr,
        )
