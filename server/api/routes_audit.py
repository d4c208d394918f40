"""Checking the audit log from the API: the same verification as ``tandem-server audit verify``,
against the server's own checkpoint directory when one is configured. The audit trail itself
(``GET /api/audit``) stays in routes_admin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from server.api.context import ServerContext
from server.api.deps import AuthUser, client_addr, get_context, get_db, require_roles
from server.errors import CheckpointError
from server.store import audit
from server.store.audit_chain import Anchor, Finding
from server.store.audit_checkpoint import load_or_create_key, read_checkpoints

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
