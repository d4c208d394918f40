"""The audit log from the API: the audit viewer's filtered, paged reads and its streamed CSV export
(server/services/audit_query.py; both audited with their filter), and the same verification as
``tandem-server audit verify``, against the server's own checkpoint directory when one is
configured. The plain trail (``GET /api/audit``) stays in routes_admin."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, get_db, require_roles
from server.errors import CheckpointError, InvalidInput
from server.services import audit_query
from server.services.actor import record, refuse
from server.store import audit
from server.store.audit_chain import Anchor, Finding
from server.store.audit_checkpoint import load_or_create_key, read_checkpoints
from server.store.db import session_scope

router = APIRouter(prefix="/api")
auditors = require_roles("admin", "compliance")


@router.get("/audit/verify")
def verify_audit(
    request: Request,
    user: AuthUser = Depends(auditors),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """Recompute the whole chain; ``intact`` false and one finding per break otherwise."""
    anchors: list[Anchor] = []
    problems: list[str] = []
    out_dir = ctx.settings.audit_checkpoint_dir
    if out_dir is not None and out_dir.is_dir():
        try:
            read = read_checkpoints(out_dir, load_or_create_key(ctx.settings.data_dir).public_key())
            anchors, problems = read.anchors, read.problems
        except CheckpointError as exc:  # reported as a finding: the chain is still checked
            problems.append(str(exc))
    result = audit.verify(session, anchors)
    result.findings[:0] = [Finding("checkpoint", None, None, p) for p in problems]
    audit.record(
        session,
        action="audit.verify",
        outcome="allowed",
        user_id=user.user_id,
        username=user.username,
        target_type="audit",
        detail=result.summary(),
        remote_addr=client_addr(request),
    )
    return {**result.as_dict(), "checkpoint_dir": None if out_dir is None else str(out_dir)}


def _filter(request: Request, user: AuthUser, session: Session, action: str) -> audit_query.AuditFilter:
    """The viewer's filter from the query string; a bad one is refused (422) and audited."""
    try:
        return audit_query.parse_filter(dict(request.query_params))
    except InvalidInput as exc:
        raise refuse(session, actor_of(user, request), exc, action=action, target_type="audit") from None


@router.get("/audit/records")
def audit_records(
    request: Request,
    limit: str | None = None,
    before: int | None = None,
    user: AuthUser = Depends(auditors),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    """Newest first; filters ``user``, ``action`` (a family: ``share`` is every share.*),
    ``interaction``, ``target_type``, ``outcome``, ``since``/``until`` (Unix seconds or ISO 8601,
    UTC); ``before`` = the previous page's ``next_before``."""
    flt = _filter(request, user, session, "audit.read")
    try:
        size = audit_query.page_size(limit)
    except InvalidInput as exc:
        raise refuse(
            session, actor_of(user, request), exc, action="audit.read", target_type="audit"
        ) from None
    result = audit_query.page(session, flt, size, before)
    detail = json.dumps({"filter": flt.as_dict(), "before": before, "count": len(result.records)})
    record(session, actor_of(user, request), action="audit.read", target_type="audit", detail=detail)
    return {"records": result.records, "next_before": result.next_before, "filter": flt.as_dict()}


@router.get("/audit/export.csv")
def audit_export(
    request: Request,
    user: AuthUser = Depends(auditors),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """Every record the filter matches, oldest first, as CSV streamed row by row (a year of
    records is not built in memory). The export is audited (with its filter) before it starts."""
    flt = _filter(request, user, session, "audit.export")
    detail = json.dumps({"filter": flt.as_dict()})
    record(session, actor_of(user, request), action="audit.export", target_type="audit", detail=detail)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return StreamingResponse(
        _csv(ctx, flt),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="tandem-audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _csv(ctx: ServerContext, flt: audit_query.AuditFilter) -> Iterator[bytes]:
    # Its own session: the request's is closed once the route returns, before the body streams.
    yield audit_query.csv_line(list(audit_query.CSV_COLUMNS)).encode()
    with session_scope(ctx.sessions) as session:
        for row in audit_query.export_rows(session, flt):
            yield audit_query.csv_record(row).encode()
