"""What IT sees of devices and enrolment tokens (the Recorders page, ``GET /api/admin/devices``,
``tandem-server devices list|tokens``): states derived from the rows, never the secrets."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.store import models


def list_devices(session: Session) -> list[dict[str, object]]:
    """Every device with its state: revoked, paired (with whom, from which OS account) or idle."""
    paired = {
        p.device_id: (username, p.os_user)  # os_user: stored with the pairing (revision 0019)
        for p, username in session.execute(
            select(models.DevicePairing, models.User.username)
            .join(models.User, models.User.id == models.DevicePairing.agent_id)
            .where(models.DevicePairing.ended_at.is_(None))
        ).all()
    }
    out: list[dict[str, object]] = []
    for d in session.execute(select(models.Device).order_by(models.Device.id)).scalars():
        state = "revoked" if d.revoked_at is not None else ("paired" if d.id in paired else "idle")
        out.append(
            {
                "id": d.id,
                "hostname": d.hostname,
                "scope": d.scope,
                "state": state,
                "agent": paired[d.id][0] if d.id in paired else None,
                "os_user": paired[d.id][1] if d.id in paired else "",  # the pairing's OS account
                "enrolled_at": d.enrolled_at,
                "last_seen_at": d.last_seen_at,
                "revoked_at": d.revoked_at,
                "revoked_by": d.revoked_by,
            }
        )
    return out


def list_enrolment_tokens(session: Session, now: float | None = None) -> list[dict[str, object]]:
    now = time.time() if now is None else now
    out: list[dict[str, object]] = []
    for t in session.execute(select(models.EnrolmentToken).order_by(models.EnrolmentToken.id)).scalars():
        if t.revoked_at is not None:
            state = "revoked"
        elif t.expires_at <= now:
            state = "expired"
        elif t.uses >= t.max_uses:
            state = "used_up"
        else:
            state = "active"
        out.append(
            {
                "id": t.id,
                "scope": t.scope,
                "state": state,
                "uses": t.uses,
                "max_uses": t.max_uses,
                "created_by": t.created_by,
                "created_at": t.created_at,
                "expires_at": t.expires_at,
            }
        )
    return out
