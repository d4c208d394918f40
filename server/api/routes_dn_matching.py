"""``/api/admin/dn-matching``: how call numbers are matched to DNs and whether a call naming no
known party is recorded "unassigned" (``server.policy.dn_matching``). The rules and the audit
record of each change live in ``server.services.dn_matching``; this only translates HTTP."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, get_context, get_db, require_roles
from server.services import dn_matching

router = APIRouter(prefix="/api")
admin_only = require_roles("admin")


@dataclass
class DnMatchingBody:
    """PUT body: prefixes stripped from both sides before comparing (e.g. "+1", "0", "9"),
    compare only the last N digits (0 = the whole number; else 3-32), and whether a call naming
    no known party is recorded as an unassigned interaction (else refused 404, a missed call)."""

    strip_prefixes: list[str] = field(default_factory=list)
    last_digits: int = 0
    record_unassigned: bool = False


def _answer(session: Session, ctx: ServerContext) -> dict[str, Any]:
    return {
        **asdict(dn_matching.read(session)),
        # Calls that named no known party since the server started, by outcome.
        "unknown_party_calls": dict(ctx.coordinator.unknown_party),
    }


@router.get("/admin/dn-matching")
def get_dn_matching(
    _user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return _answer(session, ctx)


@router.put("/admin/dn-matching")
def put_dn_matching(
    body: DnMatchingBody,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    dn_matching.set_policy(
        session, actor_of(user, request), body.strip_prefixes, body.last_digits, body.record_unassigned
    )
    return _answer(session, ctx)
