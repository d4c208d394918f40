"""Admin-defined codes and the agent's wrap-up (issue 13 items 3 and 5, issue 14 item 6).

Reason codes (why an agent is Not Ready) and disposition codes (the outcome an agent gives a
call in after-call work) are one kind of thing, managed by one use case for the web page, the
API and the CLI: validated, audited with before/after. A code is never deleted, only
deactivated, because state history and interactions keep naming it. Whether a disposition is
required before Done is one setting; the wrap-up (code and free notes) is stored on the
interaction, where supervisors' search finds it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import DomainError, Forbidden, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.store import models

KINDS = ("reason", "disposition", "pause")  # pause: why an agent paused (pause_reasons)
CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MAX_LABEL = 80
MAX_NOTES = 4000
REQUIRED_KEY = "disposition_required"
CODES_ACTION = "policy.agent_codes"
WRAPUP_ACTION = "interaction.wrapup"


@dataclass(frozen=True, slots=True)
class Code:
    kind: str
    code: str
    label: str
    active: bool


@dataclass(frozen=True, slots=True)
class Wrapup:
    interaction_id: str
    disposition_code: str | None
    notes: str


def list_codes(session: Session, kind: str | None = None, *, active_only: bool = False) -> list[Code]:
    query = select(models.AgentCode).order_by(models.AgentCode.kind, models.AgentCode.label)
    if kind is not None:
        query = query.where(models.AgentCode.kind == kind)
    if active_only:
        query = query.where(models.AgentCode.active.is_(True))
    return [Code(r.kind, r.code, r.label, r.active) for r in session.execute(query).scalars()]


def find_code(session: Session, kind: str, code: str) -> Code | None:
    row = session.execute(
        select(models.AgentCode).where(models.AgentCode.kind == kind, models.AgentCode.code == code)
    ).scalar_one_or_none()
    return None if row is None else Code(row.kind, row.code, row.label, row.active)


def _validate(kind: str, code: str, label: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(
            "invalid_kind", f"the kind of code must be one of {', '.join(KINDS)}, got {kind!r}"
        )
    if not CODE_RE.fullmatch(code):
        raise InvalidInput(
            "invalid_code", "a code is 1 to 32 letters, digits, '.', '_' or '-' (no spaces), e.g. LUNCH"
        )
    if not label.strip():
        raise InvalidInput("invalid_label", "the label agents see must not be empty")
    if len(label) > MAX_LABEL:
        raise InvalidInput("invalid_label", f"the label is {len(label)} characters; at most {MAX_LABEL}")


def set_code(session: Session, actor: Actor, kind: str, code: str, label: str, active: bool = True) -> Code:
    """Create or change one code (label, active). Audited with the values before and after."""
    label = label.strip()
    try:
        _validate(kind, code, label)
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=CODES_ACTION, target_type="agent_code", target_id=f"{kind}:{code}"
        ) from None
    row = session.execute(
        select(models.AgentCode).where(models.AgentCode.kind == kind, models.AgentCode.code == code)
    ).scalar_one_or_none()
    before = None if row is None else asdict(Code(row.kind, row.code, row.label, row.active))
    if row is None:
        row = models.AgentCode(kind=kind, code=code, label=label, active=active, updated_at=time.time())
        session.add(row)
    else:
        row.label, row.active, row.updated_at = label, active, time.time()
    after = Code(kind, code, label, active)
    record(
        session,
        actor,
        action=CODES_ACTION,
        target_type="agent_code",
        target_id=f"{kind}:{code}",
        detail=json.dumps({"before": before, "after": asdict(after)}),
    )
    session.flush()
    return after


def disposition_required(session: Session) -> bool:
    row = session.get(models.Setting, REQUIRED_KEY)
    return bool(row is not None and json.loads(row.value))


def set_disposition_required(session: Session, actor: Actor, required: bool) -> bool:
    before = disposition_required(session)
    row = session.get(models.Setting, REQUIRED_KEY)
    if row is None:
        session.add(models.Setting(key=REQUIRED_KEY, value=json.dumps(required)))
    else:
        row.value = json.dumps(required)
    record(
        session,
        actor,
        action=CODES_ACTION,
        target_type="policy",
        target_id=REQUIRED_KEY,
        detail=json.dumps({"before": before, "after": required}),
    )
    session.flush()
    return required


def save_wrapup(
    session: Session, actor: Actor, interaction_id: str, disposition: str | None, notes: str
) -> Wrapup:
    """The agent's wrap-up of his own call: a disposition code (an active one; required when the
    admin says so) and notes. Refusals are audited; the change is audited with before/after."""
    disposition = (disposition or "").strip() or None
    try:
        row = session.get(models.Interaction, interaction_id)
        if row is None:
            raise NotFound("unknown_interaction", "no interaction with that id")
        if row.agent_id != actor.user_id:
            raise Forbidden("forbidden", "that call belongs to another agent")
        if len(notes) > MAX_NOTES:
            raise InvalidInput(
                "notes_too_long", f"the notes are {len(notes)} characters; at most {MAX_NOTES}"
            )
        if disposition is None and disposition_required(session):
            raise InvalidInput("disposition_required", "choose a disposition for this call before Done")
        if disposition is not None:
            code = find_code(session, "disposition", disposition)
            if code is None or not code.active:
                raise InvalidInput("unknown_disposition", f"{disposition!r} is not a disposition code in use")
    except DomainError as exc:
        raise refuse(
            session, actor, exc, action=WRAPUP_ACTION, target_type="interaction", target_id=interaction_id
        ) from None
    before = {"disposition": row.disposition_code, "notes": row.notes}
    row.disposition_code, row.notes = disposition, notes
    record(
        session,
        actor,
        action=WRAPUP_ACTION,
        target_type="interaction",
        target_id=interaction_id,
        detail=json.dumps({"before": before, "after": {"disposition": disposition, "notes": notes}}),
    )
    session.flush()
    return Wrapup(interaction_id, disposition, notes)
