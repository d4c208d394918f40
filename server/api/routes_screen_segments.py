"""Resumable, checksummed upload of screen segments: tus 1.0.0 core + creation + checksum +
termination (docs/screen-segments.md). The recorder's current path; ``PUT …/screen``
(routes_screen_upload.py) is the legacy single-file one.

Who: a recorder token of the interaction's agent only (the same rules as the legacy upload).
Every refusal is audited (``screen.segment``, denied or failed: server/api/segment_refusals.py)
and leaves nothing stored; each stored segment is audited once (allowed). The state, partial
files and the store step are in server/calls/segment_uploads.py; file and database work runs in
worker threads (this event loop also carries SIP). Bodies go to the partial file through
server/api/segment_body.py (one writer per upload; a retry that arrives while a cut connection's
body is still read takes over).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request, Response

from server.api.context import ServerContext
from server.api.deps import AuthUser, get_context, require_roles
from server.api.errors import ApiError
from server.api.routes_screen_upload import require_recorder_token
from server.api.segment_body import WriterGate, append_body, check_room
from server.api.segment_refusals import REFUSALS, TUS, Refused, audit_fault, audited, refuse
from server.calls.segment_uploads import (
    AlreadyStored,
    DeclaredOtherwise,
    SegmentUploads,
    StoredSegment,
    Upload,
    UploadGone,
)
from server.errors import ScreenRejected, StorageError, StorageFullError
from server.media.segment_validation import FramesInPause, Span
from server.store import models
from server.store.db import session_scope
from tandem_protocol.tus import (
    CHECKSUM_ALGORITHMS,
    OFFSET_CONTENT_TYPE,
    TUS_EXTENSIONS,
    TUS_VERSION,
    SegmentDeclaration,
    TusHeaderError,
    check_version,
    parse_checksum,
    parse_declaration,
    parse_int,
    parse_metadata,
)

router = APIRouter(prefix="/api")
log = logging.getLogger(__name__)
agent_only = require_roles("agent", allow_recorder=True)


def _uploads(request: Request, ctx: ServerContext) -> tuple[SegmentUploads, WriterGate]:
    state = request.app.state
    if getattr(state, "segment_uploads", None) is None:  # made once per app, on its event loop
        state.segment_uploads = SegmentUploads(
            ctx.sessions,
            ctx.storage,
            ctx.settings.uploads_dir,
            expiry_seconds=ctx.settings.segment_upload_expiry_hours * 3600,
        )
        state.segment_gate = WriterGate()
    return state.segment_uploads, state.segment_gate


# -- checks --------------------------------------------------------------------------------------
def _common(request: Request, user: AuthUser) -> None:
    require_recorder_token(user)
    check_version(request.headers.get("tus-resumable"))


def _interaction_for(ctx: ServerContext, interaction_id: str, user: AuthUser) -> float:
    """Who may upload segments here; returns when the span ends (end of ACW, or 0: still on)."""
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
        return row.acw_ended_at or 0.0


def _own_upload(uploads: SegmentUploads, upload_id: str, user: AuthUser) -> Upload:
    upload = uploads.get(upload_id)
    if upload is None or upload.user_id != user.user_id:
        # Another agent's upload is answered like an unknown one: its id tells nothing.
        raise ApiError(
            404, "unknown_upload", f"no upload {upload_id[:40]} of yours (finished, expired or never made)"
        )
    return upload


def _live_pauses(ctx: ServerContext, user: AuthUser, interaction_id: str) -> list[Span]:
    """Pauses of the live call not stored yet (its database write may be queued)."""
    info = ctx.coordinator.current_call(user.user_id)
    if info is None or info.interaction_id != interaction_id:
        return []
    return [Span(p.started_at, p.ended_at) for p in info.pauses]


async def _checked_upload(
    ctx: ServerContext, uploads: SegmentUploads, upload_id: str, user: AuthUser, request: Request, what: str
) -> Upload | Response:
    """The caller's own upload, or the (audited) refusal to answer instead."""
    try:
        _common(request, user)
        return await asyncio.to_thread(_own_upload, uploads, upload_id, user)
    except (ApiError, TusHeaderError) as exc:
        return await refuse(ctx, user, f"upload:{upload_id}", exc, request, what)


# -- OPTIONS, POST (creation) ----------------------------------------------------------------------
@router.options("/uploads")
async def tus_options(ctx: ServerContext = Depends(get_context)) -> Response:
    return Response(
        status_code=204,
        headers={
            **TUS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
            "Tus-Max-Size": str(ctx.settings.segment_max_bytes),
        },
    )


@router.post("/interactions/{interaction_id}/screen/segments", status_code=201)
async def create_segment_upload(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Response:
    uploads, gate = _uploads(request, ctx)
    what = "create"
    try:
        _common(request, user)
        length = parse_int("Upload-Length", request.headers.get("upload-length"))
        decl = parse_declaration(
            parse_metadata(request.headers.get("upload-metadata")), length, ctx.settings.segment_max_bytes
        )
        what = f"create {decl.run}/{decl.seq}"
        acw_ended = await asyncio.to_thread(_interaction_for, ctx, interaction_id, user)
        high = acw_ended + ctx.settings.segment_end_slack_seconds
        if acw_ended and decl.started_at > high:  # no frame of it can be in the span: refuse before the bytes
            raise ApiError(
                422,
                "outside_interaction",
                f"the segment starts at {decl.started_at:.3f}, after the interaction's end {acw_ended:.3f} "
                f"(+{ctx.settings.segment_end_slack_seconds:g} s allowed)",
            )
        await _expire(uploads, gate)
        upload, created = await _create(uploads, gate, interaction_id, user, decl)
    except REFUSALS as exc:
        return await refuse(ctx, user, interaction_id, exc, request, what)
    except Exception as exc:
        log.exception("creating a segment upload for %s failed", interaction_id)
        await audit_fault(ctx, user, interaction_id, exc, request, what)
        raise
    if not created:
        log.info("segment upload %s: create retried, answered with the same upload", upload.id)
    return Response(
        status_code=201,
        headers={**TUS, "Location": f"/api/uploads/{upload.id}", "Upload-Offset": str(upload.offset)},
    )


async def _expire(uploads: SegmentUploads, gate: WriterGate) -> None:
    """Stale partials go at each creation; a failure here must not refuse the segment."""
    try:
        await asyncio.to_thread(uploads.expire, gate.busy())
    except Exception:
        log.exception("could not remove expired segment uploads; will try again at the next upload")


async def _create(
    uploads: SegmentUploads, gate: WriterGate, interaction_id: str, user: AuthUser, decl: SegmentDeclaration
) -> tuple[Upload, bool]:
    for _ in range(3):
        try:
            return await asyncio.to_thread(uploads.create, interaction_id, user.user_id, user.token_id, decl)
        except DeclaredOtherwise as exc:  # the recorder cut this segment again: its old partial goes
            async with gate.hold(exc.upload_id):
                await asyncio.to_thread(uploads.terminate, exc.upload_id)
    raise ApiError(409, "upload_in_progress", "this segment's upload keeps changing; retry later")


# -- HEAD, DELETE ------------------------------------------------------------------------------------
async def _settle(
    ctx: ServerContext,
    uploads: SegmentUploads,
    gate: WriterGate,
    upload: Upload,
    user: AuthUser,
    request: Request,
) -> bool:
    """Every byte is in but the segment is not stored: its last PATCH met a fault of ours, or the
    server died while storing it. Store (or refuse) it now, so a client that only asks HEAD after a
    cut is not left waiting. True when the upload is still there (a fault again: retry later)."""
    what = f"store {upload.run}/{upload.seq} ({upload.id}) on HEAD"
    try:
        async with gate.hold(upload.id):
            current = await asyncio.to_thread(uploads.get, upload.id)
            if current is None:
                return False  # the PATCH that completed it has just stored it
            stored = await _finish(ctx, uploads, current, user)
        await _record_stored(ctx, user, current, stored, request)
        return False
    except (AlreadyStored, ApiError, Refused) as exc:
        answer = await refuse(ctx, user, upload.interaction_id, exc, request, what)
        return answer.status_code >= 500


async def _record_stored(
    ctx: ServerContext, user: AuthUser, upload: Upload, stored: StoredSegment, request: Request
) -> None:
    """Audited once; the capture's last segment lets the mux be made."""
    await audited(
        ctx,
        user,
        stored.interaction_id,
        "allowed",
        f"segment {upload.run}/{upload.seq} stored: {stored.size} bytes, {stored.frames} frames, "
        f"sha256 {stored.sha256}{', final' if stored.final else ''}",
        request,
    )
    if stored.final:
        await ctx.coordinator.screen_uploaded(stored.interaction_id)


@router.head("/uploads/{upload_id}")
async def upload_offset(
    upload_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Response:
    uploads, gate = _uploads(request, ctx)
    upload = await _checked_upload(ctx, uploads, upload_id, user, request, "offset")
    if isinstance(upload, Response):
        return upload
    if upload.offset >= upload.length and not await _settle(ctx, uploads, gate, upload, user, request):
        return Response(status_code=404, headers=TUS)  # settled: POST again to learn how (409 or anew)
    return Response(
        status_code=200,
        headers={
            **TUS,
            "Upload-Offset": str(upload.offset),
            "Upload-Length": str(upload.length),
            "Cache-Control": "no-store",
        },
    )


@router.delete("/uploads/{upload_id}")
async def terminate_upload(
    upload_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Response:
    uploads, gate = _uploads(request, ctx)
    upload = await _checked_upload(ctx, uploads, upload_id, user, request, "terminate")
    if isinstance(upload, Response):
        return upload
    async with gate.hold(upload_id):
        await asyncio.to_thread(uploads.terminate, upload_id)
    log.info("segment upload %s (%s/%d) terminated by its recorder", upload_id, upload.run, upload.seq)
    return Response(status_code=204, headers=TUS)


# -- PATCH ----------------------------------------------------------------------------------------------
@router.patch("/uploads/{upload_id}")
async def append_to_upload(
    upload_id: str,
    request: Request,
    user: AuthUser = Depends(agent_only),
    ctx: ServerContext = Depends(get_context),
) -> Response:
    uploads, gate = _uploads(request, ctx)
    target = f"upload:{upload_id}"
    what = "append"
    try:
        _common(request, user)
        if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_CONTENT_TYPE:
            raise ApiError(415, "bad_content_type", f"a PATCH body is Content-Type: {OFFSET_CONTENT_TYPE}")
        offset = parse_int("Upload-Offset", request.headers.get("upload-offset"))
        checksum = parse_checksum(request.headers.get("upload-checksum"))
        upload = await asyncio.to_thread(_own_upload, uploads, upload_id, user)
        target, what = upload.interaction_id, f"append to {upload.run}/{upload.seq} ({upload_id})"
        async with gate.hold(upload_id) as stop:
            upload = await asyncio.to_thread(_own_upload, uploads, upload_id, user)  # its offset now
            if offset != upload.offset:
                raise ApiError(
                    409,
                    "offset_mismatch",
                    f"Upload-Offset {offset} is not the server's offset {upload.offset}: "
                    "continue from the server's (HEAD tells it)",
                    {"Upload-Offset": str(upload.offset)},
                )
            declared_size = request.headers.get("content-length")
            if declared_size is not None and declared_size.isdigit():
                check_room(upload, int(declared_size))
            held = await append_body(request, uploads, upload, checksum, stop)
            if held < upload.length:
                return Response(status_code=204, headers={**TUS, "Upload-Offset": str(held)})
            stored = await _finish(ctx, uploads, upload, user)
    except REFUSALS as exc:
        return await refuse(ctx, user, target, exc, request, what)
    except Exception as exc:
        log.exception("segment upload %s failed", upload_id)
        await audit_fault(ctx, user, target, exc, request, what)
        raise
    await _record_stored(ctx, user, upload, stored, request)
    return Response(
        status_code=204,
        headers={**TUS, "Upload-Offset": str(upload.length), "X-Tandem-Sha256": stored.sha256},
    )


async def _finish(
    ctx: ServerContext, uploads: SegmentUploads, upload: Upload, user: AuthUser
) -> StoredSegment:
    settings = ctx.settings
    try:
        return await asyncio.to_thread(
            uploads.finish,
            upload,
            user.token_id,
            live_pauses=_live_pauses(ctx, user, upload.interaction_id),
            start_slack=settings.segment_start_slack_seconds,
            end_slack=settings.segment_end_slack_seconds,
        )
    except FramesInPause as exc:
        raise Refused(
            422,
            {"error": exc.code, "message": exc.message, "spans": [s.to_dict() for s in exc.spans]},
        ) from exc
    except ScreenRejected as exc:
        raise ApiError(422, exc.code, exc.message) from exc
    except UploadGone as exc:
        raise ApiError(404, "unknown_upload", "the upload's bytes were lost; start again with POST") from exc
    except StorageFullError as exc:
        raise ApiError(507, "storage_full", str(exc)) from exc
    except StorageError as exc:
        log.error(
            "segment %s/%d of %s could not be stored: %s", upload.run, upload.seq, upload.interaction_id, exc
        )
        raise ApiError(500, "storage_error", str(exc)) from exc
