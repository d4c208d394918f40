"""``POST /api/agent/recorder-problems``: the agent's desktop reports why the recorder on its PC is
not running (or, with kind "cleared", that it runs again), for the fleet page. A person's login
(agent, or a supervisor or admin logged in on a desktop); a recorder token is refused, as it is
the recorder that is broken. The rules are in ``server.services.recorder_problems``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.deps import AuthUser, client_addr, get_db, require_roles
from server.api.errors import ApiError
from server.services import recorder_problems
from server.store import audit

router = APIRouter(prefix="/api")
reporters = require_roles("agent", "supervisor", "admin")


class ProblemReport(BaseModel):
    """What the desktop read from the recorder's problem file. ``kind`` "cleared": the recorder
    runs again (``message`` may then be empty)."""

    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(min_length=1, max_length=200)
    os_user: str = Field(max_length=100)
    kind: Literal["config", "unreachable", "enrolment", "credential", "crashed", "other", "cleared"]
    message: str = Field("", max_length=500)
    occurred_at: datetime
    recorder_version: str | None = Field(None, max_length=50)

    @field_validator("hostname", "os_user", "recorder_version")
    @classmethod
    def _one_printable_line(cls, value: str | None) -> str | None:
        if value is not None and any(not ch.isprintable() for ch in value):
            raise ValueError("must not contain control characters")
        return value.strip() if value is not None else None

    def occurred(self) -> float:
        """Unix seconds; a time without a zone is taken as UTC."""
        at = self.occurred_at if self.occurred_at.tzinfo else self.occurred_at.replace(tzinfo=UTC)
        return at.timestamp()


def limiter(request: Request) -> recorder_problems.ReportLimiter:
    state = request.app.state
    if getattr(state, "problem_limiter", None) is None:
        state.problem_limiter = recorder_problems.ReportLimiter()
    found: recorder_problems.ReportLimiter = state.problem_limiter
    return found


@router.post("/agent/recorder-problems", status_code=204)
def report_problem(
    body: ProblemReport,
    request: Request,
    user: AuthUser = Depends(reporters),
    session: Session = Depends(get_db, scope="function"),
) -> Response:
    """Store (or clear) this PC's recorder problem → 204; ``429`` when this login reports too often."""
    if not body.hostname:
        raise ApiError(422, "invalid_report", "hostname must not be blank")
    verdict = limiter(request).check(f"user:{user.user_id}", time.time())
    if verdict != "ok":
        if verdict == "limited_first":
            audit.record(
                session,
                action="recorder.problem_reported",
                outcome="denied",
                user_id=user.user_id,
                username=user.username,
                target_type="host",
                target_id=body.hostname[:64],
                detail=f"more than {recorder_problems.LIMIT_REPORTS} reports in "
                f"{recorder_problems.LIMIT_WINDOW:.0f} s: rate-limited",
                remote_addr=client_addr(request),
            )
            session.commit()
        raise ApiError(
            429,
            "too_many_reports",
            "too many recorder problem reports from this login; the last ones are kept, try again later",
        )
    actor = actor_of(user, request)
    if body.kind == "cleared":
        recorder_problems.clear(session, actor, hostname=body.hostname, os_user=body.os_user)
    else:
        recorder_problems.report(
            session,
            actor,
            hostname=body.hostname,
            os_user=body.os_user,
            kind=body.kind,
            message=body.message,
            occurred_at=body.occurred(),
            recorder_version=body.recorder_version or "",
        )
    return Response(status_code=204)
