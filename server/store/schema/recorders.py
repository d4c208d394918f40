"""The recorders on agent PCs: enrolment codes and tokens, enrolled devices and their pairing with
an agent's login, heartbeats, refused enrolments and the problems a desktop reports."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.store.schema.base import Base


class RecorderEnrolment(Base):
    """A one-time code an administrator issues to pair a recorder service with an agent. Only its
    hash is stored; exchanging it (once, before it expires) yields a recorder-scope token."""

    __tablename__ = "recorder_enrolments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"), nullable=True)


class EnrolmentToken(Base):
    """An admin's token that enrols recorders as devices (server/services/devices.py): scoped to a
    team or site label, expiring, at most ``max_uses`` enrolments, revocable; only its hash kept."""

    __tablename__ = "enrolment_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(100))  # "team:NAME" or "site:LABEL"
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Device(Base):
    """An enrolled agent PC's recorder: its own credential (hash), not tied to an agent."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hostname: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(100))
    enrolment_token_id: Mapped[int] = mapped_column(ForeignKey("enrolment_tokens.id"))
    enrolled_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class DevicePairing(Base):
    """A device bound to an agent's login session (both vouched: the device credential and a
    pairing ticket from the agent's session). ``recorder_token_id`` is the recorder-scope token the
    device uses for this agent while bound; unbound at logout (``ended_at``). ``os_user``: the PC's
    OS account the pairing came from (the device broker's caller), "" if not sent (revision 0019)."""

    __tablename__ = "device_pairings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    agent_token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"))
    recorder_token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), unique=True)
    paired_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    os_user: Mapped[str] = mapped_column(String(100), default="", server_default="")


class RecorderStatus(Base):
    """The latest heartbeat of each recorder (one row per recorder token: a PC's enrolment), for
    the administrators' fleet page. Overwritten at every heartbeat; "offline" is not stored but
    read off ``last_seen`` (three missed heartbeats), so a server that was down cannot leave a
    stale "online". (Revision 0009.)"""

    __tablename__ = "recorder_status"
    token_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # api_tokens.id of the recorder
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)  # its agent
    host: Mapped[str] = mapped_column(String(255), default="")
    version: Mapped[str] = mapped_column(String(40), default="")
    state: Mapped[str] = mapped_column(String(20))  # tandem_protocol.recorder_health.STATES
    interaction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    spool_bytes: Mapped[int] = mapped_column(Integer, default=0)
    segments_pending: Mapped[int] = mapped_column(Integer, default=0)
    upload: Mapped[str] = mapped_column(Text, default="")  # JSON UploadProgress, "" when idle
    last_error: Mapped[str] = mapped_column(String(500), default="")
    free_disk_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    free_disk_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    clock_offset: Mapped[float | None] = mapped_column(Float, nullable=True)
    clock_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    interval: Mapped[float] = mapped_column(Float)  # seconds between heartbeats, as the recorder said
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float, index=True)


class EnrolmentRefusal(Base):
    """A refused device enrolment (expired, revoked, used-up or unknown token), shown on the fleet
    page until that host enrols or the row ages out; bounded per host and in total
    (server/services/enrolment_refusals.py). (Revision 0016.)"""

    __tablename__ = "enrolment_refusals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    hostname: Mapped[str] = mapped_column(String(200), index=True)
    os_user: Mapped[str] = mapped_column(String(100), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # enrolment_tokens.id if known
    token_prefix: Mapped[str] = mapped_column(String(12), default="")  # "tet_AbCd": which one, not usable
    reason: Mapped[str] = mapped_column(String(40))  # the refusal's error code
    message: Mapped[str] = mapped_column(String(200), default="")


class RecorderProblem(Base):
    """Why the recorder on a PC is not running, as the agent's desktop on that PC reported it (the
    recorder cannot tell the server itself: bad config, wrong server URL, ...). One row per host and
    OS user, the latest report wins; gone when the desktop reports the recorder running again
    (server/services/recorder_problems.py). (Revision 0018.)"""

    __tablename__ = "recorder_problems"
    __table_args__ = (UniqueConstraint("hostname", "os_user", name="uq_recorder_problems_host_user"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    os_user: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(20))  # config, unreachable, enrolment, ... (KINDS)
    message: Mapped[str] = mapped_column(Text, default="")  # shown as text, never as markup
    occurred_at: Mapped[float] = mapped_column(Float)  # when the recorder hit it (the PC's clock)
    reported_at: Mapped[float] = mapped_column(Float, index=True)  # server clock
    reported_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # users.id of the reporter
    reported_by: Mapped[str] = mapped_column(String(100), default="")
    recorder_version: Mapped[str] = mapped_column(String(50), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
