"""Calls: the interaction (one recorded call) with its pauses, its stored media (voice, screen,
muxed files and the screen segments the recorder uploads), its searchable metadata values and the
search page's indexes on it; and the calls that were refused (missed)."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.store.schema.base import Base
from server.store.schema.users import User


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
