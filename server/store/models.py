"""Database tables (SQLAlchemy 2). Times are Unix seconds (float) on the server clock, because
media alignment needs sub-millisecond precision and SQLite has no timezone-aware type.

The schema's public surface: code uses ``from server.store import models`` and
``models.Interaction``, Alembic's env ``models.Base.metadata``. The tables are declared by domain
in `server.store.schema` (users, calls and their media, recorders, review, audit log, admin
policy); this module names every one (a new table goes into its domain's module and is named
here) and registers the mapper events that keep an interaction's search keys on every ORM write.
"""

from __future__ import annotations

from server.store.schema.admin_policy import AgentCode, Setting
from server.store.schema.audit_log import AuditHead, AuditRecord
from server.store.schema.base import Base
from server.store.schema.calls import (
    Interaction,
    InteractionMetaValue,
    MediaFile,
    MissedCall,
    PauseSpan,
    ScreenSegment,
    ScreenUpload,
)
from server.store.schema.recorders import (
    Device,
    DevicePairing,
    EnrolmentRefusal,
    EnrolmentToken,
    RecorderEnrolment,
    RecorderProblem,
    RecorderStatus,
)
from server.store.schema.review import Bookmark, SavedSearch, ShareLink
from server.store.schema.users import ROLES, AgentStateChange, ApiToken, DnBinding, Team, TeamSupervisor, User
from server.store.search_columns import register as _register_search_columns

__all__ = [
    "ROLES",
    "AgentCode",
    "AgentStateChange",
    "ApiToken",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Bookmark",
    "Device",
    "DevicePairing",
    "DnBinding",
    "EnrolmentRefusal",
    "EnrolmentToken",
    "Interaction",
    "InteractionMetaValue",
    "MediaFile",
    "MissedCall",
    "PauseSpan",
    "RecorderEnrolment",
    "RecorderProblem",
    "RecorderStatus",
    "SavedSearch",
    "ScreenSegment",
    "ScreenUpload",
    "Setting",
    "ShareLink",
    "Team",
    "TeamSupervisor",
    "User",
]

_register_search_columns(Interaction, InteractionMetaValue, Setting, MediaFile, PauseSpan, ScreenSegment)
