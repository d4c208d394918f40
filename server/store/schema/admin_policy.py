"""What an administrator sets at run time: policy settings and the agents' reason and disposition
codes."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.store.schema.base import Base


class Setting(Base):
    """Policy an admin changes at run time (JSON values)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


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
