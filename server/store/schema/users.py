"""People and their logins: teams, users (and which teams a supervisor oversees), API tokens, an
agent's DN while logged in, and the availability the agent chose."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.store.schema.base import Base

ROLES = ("agent", "supervisor", "evaluator", "compliance", "admin")


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    screen_percentage: Mapped[float | None] = mapped_column(Float, nullable=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)
    # GIR-style full-time recording: calls on this DN are recorded even with no desktop logged in.
    # Normalised (server/services/dn.py) and one agent per DN (unique; NULLs are not equal).
    full_time_dn: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True, unique=True)
    team: Mapped[Team | None] = relationship()


class TeamSupervisor(Base):
    """Which teams a supervisor (or evaluator) oversees."""

    __tablename__ = "team_supervisors"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the token is never stored
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The token's scope: web, desktop, api (password logins) or recorder (only from a recorder
    # enrolment code; see server/services/enrolment.py). Screen uploads need "recorder".
    client: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class DnBinding(Base):
    """An agent logged in on a DN, from login until logout. The DN is normalised
    (server/services/dn.py) and at most one binding per DN is active (not released): the partial
    unique index settles two logins that race past the service's check (revision 0005)."""

    __tablename__ = "dn_bindings"
    __table_args__ = (
        Index(
            "uq_dn_bindings_active_dn",
            "dn",
            unique=True,
            sqlite_where=text("released_at IS NULL"),
            postgresql_where=text("released_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dn: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"))
    bound_at: Mapped[float] = mapped_column(Float)
    released_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AgentStateChange(Base):
    """An agent's own availability choice (Ready, or Not Ready with a reason code), from this
    time on (revision 0013, server/services/agent_states.py). Logged out, On call and ACW are
    derived from the login binding and the live call, not stored here."""

    __tablename__ = "agent_state_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(20))  # ready, not_ready
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[float] = mapped_column(Float, index=True)
