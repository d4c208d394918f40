"""The event channel's rule for a device's recorder token: bound through which agent login, and
refused why (server/api/routes_events.py asks it on every connection)."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.store import models


def channel_refusal(session: Session, recorder_token_id: int) -> tuple[int | None, str | None]:
    """For a recorder token on the event channel: (the agent token it is bound through, or None
    for an old per-agent recorder token; why it is refused, or None)."""
    row = session.execute(
        select(models.DevicePairing, models.Device)
        .join(models.Device, models.Device.id == models.DevicePairing.device_id)
        .where(models.DevicePairing.recorder_token_id == recorder_token_id)
    ).first()
    if row is None:
        return None, None  # an old per-agent recorder token: no device, as before
    pairing, device = row
    if device.revoked_at is not None:
        return pairing.agent_token_id, "this device was revoked by IT"
    if pairing.ended_at is not None:
        return pairing.agent_token_id, "this device is no longer paired with this agent's login"
    agent_token = session.get(models.ApiToken, pairing.agent_token_id)
    if agent_token is None or agent_token.revoked_at is not None or agent_token.expires_at <= time.time():
        return pairing.agent_token_id, "the agent's login this device was paired with has ended"
    device.last_seen_at = time.time()
    return pairing.agent_token_id, None
