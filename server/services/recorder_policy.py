"""The admin's recorder policy (``tandem_protocol.recorder_policy.RecorderPolicy``): read and set,
validated and audited with the values before and after — one use case for the API, the admin
web page and ``tandem-server recorder-policy``. Stored as the setting ``recorder_policy`` (JSON of
``RecorderPolicy.to_dict()``); delivered to recorders in every ``screen.start`` and pushed to
the connected ones on change (``server.calls.recorder_link``).

Admin only: any other role is refused and the refusal audited, whichever door it came through.
Unlike the recorder (which keeps fields a newer server sends), the server refuses a field it does
not know: an admin's typo ("fsp") must not be stored as if it meant something.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from server.errors import Forbidden, InvalidInput
from server.services.actor import Actor, record, refuse
from server.store import models
from tandem_protocol.recorder_policy import PolicyError, RecorderPolicy

KEY = "recorder_policy"
ACTION = "policy.recorder"
READ_ACTION = "policy.recorder.read"
TARGET = {"target_type": "policy", "target_id": "recorder"}
log = logging.getLogger(__name__)


def initial(screen_fps: float | None = None) -> RecorderPolicy:
    """The policy before an admin stored one: the defaults, at the server's ``screen_fps``
    setting (its initial value, as ``screen_percentage`` is the sampling's)."""
    if screen_fps is None:
        return RecorderPolicy()
    return RecorderPolicy(fps=min(30.0, max(0.2, float(screen_fps))))


def load(session: Session, defaults: RecorderPolicy | None = None) -> RecorderPolicy:
    """The stored policy, for the server's own use (no actor: screen.start, the fleet's
    thresholds). A stored value this version cannot read is logged and the defaults used, so a
    bad row never stops calls from being recorded."""
    fallback = defaults or RecorderPolicy()
    row = session.get(models.Setting, KEY)
    if row is None:
        return fallback
    try:
        return RecorderPolicy.from_dict(json.loads(row.value))
    except (ValueError, json.JSONDecodeError) as exc:
        log.error("stored recorder policy unreadable, using the defaults: %s", exc)
        return fallback


def _require_admin(session: Session, actor: Actor, action: str) -> None:
    if actor.role != "admin":
        error = Forbidden("forbidden", "only an administrator may see or change the recorder policy")
        raise refuse(session, actor, error, action=action, **TARGET)


def read(session: Session, actor: Actor, defaults: RecorderPolicy | None = None) -> RecorderPolicy:
    _require_admin(session, actor, READ_ACTION)
    return load(session, defaults)


def validate(raw: Any) -> RecorderPolicy:
    """``RecorderPolicy`` from an admin's input; ``PolicyError`` names the first bad field."""
    if not isinstance(raw, dict):
        raise PolicyError("policy: must be an object")
    known = set(RecorderPolicy.__dataclass_fields__) - {"extra"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PolicyError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
    return RecorderPolicy.from_dict(raw)


def set_policy(
    session: Session, actor: Actor, raw: Any, defaults: RecorderPolicy | None = None
) -> RecorderPolicy:
    """Validate, store and audit the whole policy (fields left out take their defaults); a
    refusal (role or value) is audited as denied and changes nothing. Returns what was stored."""
    _require_admin(session, actor, ACTION)
    try:
        policy = validate(raw)
    except PolicyError as exc:
        error = InvalidInput("invalid_recorder_policy", str(exc))
        raise refuse(session, actor, error, action=ACTION, **TARGET) from exc
    before = load(session, defaults).to_dict()
    after = policy.to_dict()
    value = json.dumps(after, sort_keys=True)
    row = session.get(models.Setting, KEY)
    if row is None:
        session.add(models.Setting(key=KEY, value=value))
    else:
        row.value = value
    record(session, actor, action=ACTION, detail=json.dumps(changes(before, after)), **TARGET)
    session.flush()
    return policy


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The audit detail: each changed field's value before and after (all fields would drown
    the one that changed)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {"before": {k: before.get(k) for k in keys}, "after": {k: after[k] for k in keys}}


def assignments(current: dict[str, Any], pairs: Iterable[str]) -> dict[str, Any]:
    """``key=value`` changes (the CLI's ``--set``) applied to ``current``: the value is read as
    JSON (``fps=2``, ``endpoint_audio=true``, ``upload_window=["18:00","07:00"]``) and taken as
    a plain string when it is not JSON (``monitors=primary``). ``InvalidInput`` for a pair with
    no ``=``."""
    merged = dict(current)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput("invalid_recorder_policy", f"{pair!r}: expected key=value")
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            value = text
        merged[key.strip()] = value
    return merged
