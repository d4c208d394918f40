"""The recorder's heartbeat (``recorder.heartbeat`` on its event channel): what an administrator's
fleet page needs to know about one agent PC's recorder, sent every ``heartbeat_seconds`` of the
recorder policy. Pure data + validation, shared by the recorder (which builds it) and the server
(which stores the latest per recorder). Sizes are bytes, times seconds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# What the recorder is doing. "spool_full": capture stopped because the spool reached its quota or
# the disk its free-space floor; "failed": capture cannot run (see last_error).
STATES = ("idle", "recording", "paused", "uploading", "spool_full", "failed", "stopping")
MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class UploadProgress:
    segment: str  # "<interaction>/<run>/<seq>" of the segment being sent
    offset: int  # bytes the server has confirmed
    length: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    version: str
    state: str
    host: str = ""
    interaction_id: str | None = None  # the interaction being captured, if any
    spool_bytes: int = 0
    segments_pending: int = 0  # finished segments not yet confirmed by the server
    upload: UploadProgress | None = None
    last_error: str = ""
    free_disk_bytes: int | None = None
    free_disk_percent: float | None = None
    clock_offset: float | None = None  # server − local, None before the first time.pong
    clock_accuracy: float | None = None  # ± seconds: half the round trip of the sample in use
    interval: float = 15.0  # seconds until the next heartbeat (the policy's, as this recorder has it)
    # the PC's last self-update check (recorder_service/updater/system.py): off, up_to_date,
    # waiting, applied, refused, rolled_back, failed; "" if none ran; and its one-line reason
    update_state: str = ""
    update_detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> Heartbeat:
        """Validated: ``ValueError`` naming the first bad field (a recorder of another version may
        send fields this one does not know: they are ignored)."""
        if not isinstance(raw, dict):
            raise ValueError("heartbeat: must be an object")
        state = raw.get("state")
        if state not in STATES:
            raise ValueError(f"heartbeat.state: one of {', '.join(STATES)}")
        upload_raw = raw.get("upload")
        upload = None
        if upload_raw is not None:
            if not isinstance(upload_raw, dict):
                raise ValueError("heartbeat.upload: an object or null")
            upload = UploadProgress(
                _text(upload_raw, "segment", 200),
                _count(upload_raw, "offset"),
                _count(upload_raw, "length"),
            )
        interaction = raw.get("interaction_id")
        if interaction is not None and not isinstance(interaction, str):
            raise ValueError("heartbeat.interaction_id: a string or null")
        percent = _real(raw, "free_disk_percent")
        if percent is not None and not 0.0 <= percent <= 100.0:
            raise ValueError("heartbeat.free_disk_percent: between 0 and 100")
        accuracy = _real(raw, "clock_accuracy")
        if accuracy is not None and accuracy < 0:
            raise ValueError("heartbeat.clock_accuracy: not negative")
        interval = _real(raw, "interval")
        if interval is not None and not 1.0 <= interval <= 3600.0:
            raise ValueError("heartbeat.interval: between 1 and 3600 seconds")
        free_bytes = raw.get("free_disk_bytes")
        return cls(
            version=_text(raw, "version", 40) or "unknown",
            state=state,
            host=_text(raw, "host", 255),
            interaction_id=interaction[:64] if interaction else None,
            spool_bytes=_count(raw, "spool_bytes"),
            segments_pending=_count(raw, "segments_pending"),
            upload=upload,
            last_error=_text(raw, "last_error", MAX_TEXT),
            free_disk_bytes=None if free_bytes is None else _count(raw, "free_disk_bytes"),
            free_disk_percent=percent,
            clock_offset=_real(raw, "clock_offset"),
            clock_accuracy=accuracy,
            interval=15.0 if interval is None else interval,
            update_state=_text(raw, "update_state", 20),
            update_detail=_text(raw, "update_detail", 300),
        )


def _text(raw: dict[str, Any], key: str, limit: int) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"heartbeat.{key}: a string")
    return value[:limit]


def _count(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"heartbeat.{key}: a whole number ≥ 0")
    return value


def _real(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"heartbeat.{key}: a finite number or null")
    return float(value)
