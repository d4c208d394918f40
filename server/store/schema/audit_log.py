"""The audit log: append-only, hash-chained records and the chain's head."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.store.schema.base import Base


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
