"""Database tables (SQLAlchemy 2). Times are Unix seconds (float) on the server clock, because
media alignment needs sub-millisecond precision and SQLite has no timezone-aware type."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("agent", "supervisor", "evaluator", "compliance", "admin")


class Base(DeclarativeBase):
    pass


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


class Interaction(Base):
    __tablename__ = "interactions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), index=True)
    dn: Mapped[str] = mapped_column(String(64), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    caller: Mapped[str] = mapped_column(String(255), default="")
    callee: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(20))  # ringing, active, acw, done, interrupted
    started_at: Mapped[float] = mapped_column(Float, index=True)
    answered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acw_ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_reason: Mapped[str] = mapped_column(String(100), default="")
    screen_decision: Mapped[bool] = mapped_column(Boolean)
    screen_percentage: Mapped[float] = mapped_column(Float)  # the policy the decision was made under
    voice_state: Mapped[str] = mapped_column(String(20))
    screen_state: Mapped[str] = mapped_column(String(20))
    media_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    kind: Mapped[str] = mapped_column(String(10), default="plain")  # plain, siprec
    session_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(64), default="")  # signalling peer host:port
    participants: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of parties
    recording_meta: Mapped[str] = mapped_column(Text, default="{}")  # JSON: streams, stats, warnings
    stopped_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # A second simultaneous call of the same agent (three-way, call waiting, consultation)
    # names the call it overlapped; NULL for an ordinary call. (Revision 0007.)
    parent_interaction_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # Search keys (revision 0010), kept by server/store/search_columns.py on every ORM write: the
    # numbers alone (caller may read "Name <+1555…>") for prefix search, and the talk time.
    caller_number: Mapped[str] = mapped_column(String(64), default="", server_default="")
    callee_number: Mapped[str] = mapped_column(String(64), default="", server_default="")
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Set (never cleared) when a screen file or segment is stored / a pause (not a hold) starts.
    has_screen: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    was_paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The agent's wrap-up in after-call work (revision 0013, server/services/dispositions.py):
    # an admin-defined disposition code and free notes, both searchable by supervisors.
    disposition_code: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    # What the SIP side said (revision 0017, server/calls/offer_policy.offer_direction): "inbound",
    # "outbound" or "" (not known — also every call recorded before 0017).
    direction: Mapped[str] = mapped_column(String(10), default="", server_default="")
    agent: Mapped[User | None] = relationship()
    pauses: Mapped[list[PauseSpan]] = relationship(order_by="PauseSpan.started_at")
    # Only stored files: a row still "pending" is an upload or a move into storage under way
    # (or one a crash interrupted, which start-up recovery finishes or removes).
    media: Mapped[list[MediaFile]] = relationship(
        primaryjoin="and_(Interaction.id == MediaFile.interaction_id, MediaFile.state == 'complete')",
        viewonly=True,
    )


class PauseSpan(Base):
    __tablename__ = "pause_spans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[str] = mapped_column(ForeignKey("interactions.id"), index=True)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    by_username: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(100), default="")  # agent, a=inactive, hold, control
    # The agent's pause reason (revision 0015): an admin code of kind "pause" and its label as it
    # was then (a later relabel must not rewrite what the supervisor's timeline said).
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason_label: Mapped[str] = mapped_column(String(80), default="", server_default="")


class MediaFile(Base):
    __tablename__ = "media_files"
    __table_args__ = (UniqueConstraint("interaction_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[str] = mapped_column(ForeignKey("interactions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # voice, screen, muxed
    storage_key: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)  # server time of the file's t=0
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    # "pending": the row claims (interaction, kind) before the file is written under storage_key,
    # so of two simultaneous uploads exactly one wins; "complete": the file is in storage.
    state: Mapped[str] = mapped_column(String(10), default="complete", server_default="complete")


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


class AuditRecord(Base):
    """Append-only (database triggers refuse UPDATE and DELETE) and hash-chained: see
    ``server.store.audit_chain``. Written only by ``server.store.audit.record``."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)  # 1..n, no gaps, in chain order
    prev_hash: Mapped[str] = mapped_column(String(64))  # hash of record seq-1 (64 zeros for seq 1)
    hash: Mapped[str] = mapped_column(String(64))  # sha256 over this record's canonical encoding
    at: Mapped[float] = mapped_column(Float, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(50), index=True)
    target_type: Mapped[str] = mapped_column(String(30), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    outcome: Mapped[str] = mapped_column(String(10))  # allowed, denied, failed
    detail: Mapped[str] = mapped_column(Text, default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")


class AuditHead(Base):
    """One row (id 1): the last seq and hash of the audit chain. Every audit write first bumps
    ``seq`` here, which takes the write lock (SQLite) or row lock (PostgreSQL) and so puts
    writers from every thread and process in one order."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class Setting(Base):
    """Policy an admin changes at run time (JSON values)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MissedCall(Base):
    """An INVITE that arrived but was not recorded: refused (no agent on the DN, untrusted source,
    busy, declined…). Identical refusals from one source within a second share a row (``count``)."""

    __tablename__ = "missed_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)  # the first refusal of the row
    last_at: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, default=1)
    call_id: Mapped[str] = mapped_column(String(255), index=True)  # the first refusal's
    source: Mapped[str] = mapped_column(String(64))  # signalling peer host:port
    from_uri: Mapped[str] = mapped_column(String(255), default="")
    to_uri: Mapped[str] = mapped_column(String(255), default="")
    request_uri: Mapped[str] = mapped_column(String(255), default="")
    dn: Mapped[str] = mapped_column(String(64), default="", index=True)
    reason: Mapped[str] = mapped_column(String(40), index=True)  # e.g. no-recording-party
    status: Mapped[int] = mapped_column(Integer)  # the SIP status sent
    kind: Mapped[str] = mapped_column(String(10), default="plain")  # plain, siprec
    detail: Mapped[str] = mapped_column(String(200), default="")


class ScreenSegment(Base):
    """One stored segment of an interaction's screen recording (a fragmented MP4 of a few tens of
    seconds). An interaction has many, from one or several recorder runs; the mux joins them on the
    server clock and leaves the gaps between them as gaps. Immutable once written. (Revision 0008.)"""

    __tablename__ = "screen_segments"
    __table_args__ = (UniqueConstraint("interaction_id", "run", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[str] = mapped_column(ForeignKey("interactions.id"), index=True)
    run: Mapped[str] = mapped_column(String(64))  # the recorder run that made it (a new one per start)
    seq: Mapped[int] = mapped_column(Integer)  # 0, 1, 2… within the run
    storage_key: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float, index=True)  # server time of pts 0
    first_frame_at: Mapped[float] = mapped_column(Float)  # server time of its first frame
    last_frame_at: Mapped[float] = mapped_column(Float)  # server time of its last frame
    frames: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    has_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last segment of a capture (the recorder's ``final`` metadata, after screen.stop).
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by_token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class ScreenUpload(Base):
    """A resumable segment upload under way (tus 1.0 creation): the bytes received so far live in a
    partial file under the data directory; ``offset`` is what is durably written. Removed when the
    segment is stored, refused or abandoned (expired). (Revision 0008.)"""

    __tablename__ = "screen_uploads"
    __table_args__ = (UniqueConstraint("interaction_id", "run", "seq"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the upload's URL id
    interaction_id: Mapped[str] = mapped_column(ForeignKey("interactions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # the agent whose recorder uploads
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    length: Mapped[int] = mapped_column(Integer)  # Upload-Length
    offset: Mapped[int] = mapped_column(Integer, default=0)  # Upload-Offset
    sha256: Mapped[str] = mapped_column(String(64))  # declared digest of the whole segment
    started_at: Mapped[float] = mapped_column(Float)  # declared server time of pts 0
    final: Mapped[bool] = mapped_column(Boolean, default=False)  # declared: the capture's last segment
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)


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


class InteractionMetaValue(Base):
    """An admin-named searchable metadata key's value for one interaction, taken from its
    recording parameters (X-Recording-* headers, Request-URI parameters) whenever the interaction
    is written (server/store/search_columns.py). Values are case-folded. (Revision 0010.)"""

    __tablename__ = "interaction_meta_values"
    __table_args__ = (
        Index("ix_interaction_meta_values_key_value", "key", "value", "started_at", "interaction_id"),
    )
    interaction_id: Mapped[str] = mapped_column(ForeignKey("interactions.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    # The interaction's start (never changes): a metadata search within a time range reads only
    # that range of the index, not every call that ever had the value.
    started_at: Mapped[float] = mapped_column(Float)


class SavedSearch(Base):
    """A user's named search: the query string of the search page's URL. (Revision 0010.)"""

    __tablename__ = "saved_searches"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class Bookmark(Base):
    """A bookmark or comment at a moment of an interaction's recording (revision 0011). ``at`` is
    server time (Unix seconds), not an offset into a file: the muxed file and the voice start at
    different times, and a late screen segment can re-make the mux with another origin."""

    __tablename__ = "bookmarks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[str] = mapped_column(ForeignKey("interactions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(100))
    at: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)  # False: its author's only
    created_at: Mapped[float] = mapped_column(Float)


class ShareLink(Base):
    """A time-limited link to one media file of one interaction, usable without login (revision
    0012, server/services/share_links.py). Only the token's SHA-256 is stored: the database
    alone does not let anyone use a link."""

    __tablename__ = "share_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    interaction_id: Mapped[str] = mapped_column(ForeignKey("interactions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # a media kind: muxed, voice, voice:<format>, ...
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_by_username: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class AgentCode(Base):
    """An admin-defined code (revision 0013): ``reason`` (why an agent is Not Ready) or
    ``disposition`` (the outcome an agent gives a call in after-call work). Never deleted, only
    deactivated: history and interactions keep naming it."""

    __tablename__ = "agent_codes"
    __table_args__ = (UniqueConstraint("kind", "code", name="uq_agent_codes_kind_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # reason, disposition, pause (revision 0015)
    code: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[float] = mapped_column(Float)


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


# Indexes of the search page's typical queries (revision 0010; chosen with EXPLAIN QUERY PLAN, see
# benchmarks/playback/search_bench.py). The id follows the sort key so keyset paging needs no
# sort; the trailing columns make the index covering for the filters that go with it (a table
# read per candidate row is what made "7 days, has screen + paused" slow).
Index("ix_interactions_started_id", Interaction.started_at, Interaction.id)
Index(
    "ix_interactions_agent_started_id",
    Interaction.agent_id,
    Interaction.started_at,
    Interaction.id,
    Interaction.has_screen,
    Interaction.was_paused,
    Interaction.direction,  # revision 0017: "my teams, inbound" stays covering
)
Index("ix_interactions_direction_started_id", Interaction.direction, Interaction.started_at, Interaction.id)
Index(
    "ix_interactions_caller_number",
    Interaction.caller_number,
    Interaction.started_at,
    Interaction.id,
    Interaction.agent_id,
)
Index(
    "ix_interactions_callee_number",
    Interaction.callee_number,
    Interaction.started_at,
    Interaction.id,
    Interaction.agent_id,
)
Index("ix_interactions_duration", Interaction.duration, Interaction.id)

from server.store.search_columns import register as _register_search_columns  # noqa: E402

_register_search_columns(Interaction, InteractionMetaValue, Setting, MediaFile, PauseSpan, ScreenSegment)
