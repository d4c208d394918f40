"""Who is doing something, whichever door it came through, and how that is audited."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from server.errors import DomainError
from server.store import audit

Source = Literal["web", "api", "desktop", "cli"]
CLI_USERNAME = "cli"  # the audit username of changes made with tandem-server on the host


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    username: str
    role: str
    source: Source
    remote_addr: str = ""
    os_user: str = ""  # the CLI: who ran it on the host

    @classmethod
    def cli(cls) -> Actor:
        """Someone with shell access to the server's data: trusted like an admin, audited as
        "cli" with the OS account in the detail (the database knows no better name)."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
            who = "unknown"
        return cls(None, CLI_USERNAME, "admin", "cli", "", who)

    def detail(self, text: str) -> str:
        """The audit detail; a CLI change also names the OS account that ran it (the web and
        the API already have a user id and an address)."""
        if self.source != "cli":
            return text
        suffix = f"os_user={self.os_user or 'unknown'}"
        return f"{text} {suffix}" if text else suffix


def record(
    session: Session,
    actor: Actor,
    *,
    action: str,
    outcome: str = "allowed",
    target_type: str = "",
    target_id: str = "",
    detail: str = "",
) -> None:
    audit.record(
        session,
        action=action,
        outcome=outcome,
        user_id=actor.user_id,
        username=actor.username,
        target_type=target_type,
        target_id=target_id[:64],
        detail=actor.detail(detail),
        remote_addr=actor.remote_addr,
    )


def refuse(
    session: Session,
    actor: Actor,
    error: DomainError,
    *,
    action: str,
    target_type: str = "",
    target_id: str = "",
) -> DomainError:
    """Audit a refusal so that it outlives the request: whatever this unit of work changed is
    rolled back (a refused use case changes nothing), the denial is written and committed.
    Returns the error for the caller to raise."""
    session.rollback()
    record(
        session,
        actor,
        action=action,
        outcome="denied",
        target_type=target_type,
        target_id=target_id,
        detail=f"{error.code}: {error.message}",
    )
    session.commit()
    return error
