"""What users keep while reviewing recordings: saved searches, bookmarks and comments, and share
links."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.store.schema.base import Base


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
