"""Writing the append-only audit log: every read of a recording and every refusal."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from server.store.models import AuditRecord


def record(
    session: Session,
    *,
    action: str,
    outcome: str,
    user_id: int | None = None,
    username: str = "",
    target_type: str = "",
    target_id: str = "",
    detail: str = "",
    remote_addr: str = "",
) -> None:
    if outcome not in ("allowed", "denied", "failed"):
        raise ValueError(f"bad audit outcome {outcome!r}")
    session.add(
        AuditRecord(
            at=time.time(),
            user_id=user_id,
            username=username,
            action=action,
            target_type=target_type,
            target_id=target_id,
            outcome=outcome,
            detail=detail[:2000],
            remote_addr=remote_addr,
        )
    )
