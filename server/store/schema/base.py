"""The declarative base every table of the schema derives from: one ``Base.metadata``, the one
Alembic compares the migrations with."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
