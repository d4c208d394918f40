"""Interaction search: number, talk-time, has-screen and was-paused search columns (filled for
existing rows), the indexes
of the typical supervisor queries, the admin's searchable metadata values, and saved searches.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:50:00
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_interactions_started_id", ["started_at", "id"]),
    ("ix_interactions_agent_started_id", ["agent_id", "started_at", "id", "has_screen", "was_paused"]),
    ("ix_interactions_caller_number", ["caller_number", "started_at", "id", "agent_id"]),
    ("ix_interactions_callee_number", ["callee_number", "started_at", "id", "agent_id"]),
    ("ix_interactions_duration", ["duration", "id"]),
)


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("caller_number", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("callee_number", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("duration", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("has_screen", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("was_paused", sa.Boolean(), nullable=False, server_default="0"))
    _fill_search_columns()
    # TRUE, not 1: PostgreSQL refuses an integer for a boolean column (SQLite reads TRUE as 1).
    op.execute(
        "UPDATE interactions SET has_screen = TRUE WHERE id IN (SELECT interaction_id FROM media_files"
        " WHERE kind IN ('screen', 'muxed') AND state = 'complete')"
        " OR id IN (SELECT interaction_id FROM screen_segments)"
    )
    op.execute(
        "UPDATE interactions SET was_paused = TRUE WHERE id IN (SELECT interaction_id FROM pause_spans"
        " WHERE reason != 'hold')"
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        for name, columns in INDEXES:
            batch_op.create_index(name, columns, unique=False)
    op.create_table(
        "interaction_meta_values",
        sa.Column("interaction_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interactions.id"]),
        sa.PrimaryKeyConstraint("interaction_id", "key"),
    )
    op.create_index(
        "ix_interaction_meta_values_key_value",
        "interaction_meta_values",
        ["key", "value", "started_at", "interaction_id"],
        unique=False,
    )
    op.create_table(
        "saved_searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name"),
    )
    op.create_index("ix_saved_searches_user_id", "saved_searches", ["user_id"], unique=False)


def _fill_search_columns() -> None:
    """Existing interactions get their numbers and talk time (no metadata key is named yet)."""
    bind = op.get_bind()
    table = sa.table(
        "interactions",
        sa.column("id", sa.String),
        sa.column("caller", sa.String),
        sa.column("callee", sa.String),
        sa.column("started_at", sa.Float),
        sa.column("answered_at", sa.Float),
        sa.column("ended_at", sa.Float),
        sa.column("caller_number", sa.String),
        sa.column("callee_number", sa.String),
        sa.column("duration", sa.Float),
    )
    rows = bind.execute(
        sa.select(
            table.c.id,
            table.c.caller,
            table.c.callee,
            table.c.started_at,
            table.c.answered_at,
            table.c.ended_at,
        )
    ).all()
    for row in rows:
        bind.execute(
            table.update()
            .where(table.c.id == row.id)
            .values(
                caller_number=number_key(row.caller or ""),
                callee_number=number_key(row.callee or ""),
                duration=talk_time(row.started_at, row.answered_at, row.ended_at),
            )
        )


# Copied from server/store/search_columns.py at this revision, so the migration keeps doing what
# it did when that module changes.
_BRACKETED = re.compile(r"<([^>]*)>")
_SCHEME = re.compile(r"^(sips?|tel):", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-.()/]")


def number_key(text: str) -> str:
    found = _BRACKETED.search(text)
    inner = (found.group(1) if found else text).strip()
    inner = _SCHEME.sub("", inner)
    inner = inner.split("@", 1)[0].split(";", 1)[0]
    return _SEPARATORS.sub("", inner).lstrip("+").lower()[:64]


def talk_time(started_at: float | None, answered_at: float | None, ended_at: float | None) -> float | None:
    begin = answered_at if answered_at is not None else started_at
    if ended_at is None or begin is None:
        return None
    return max(0.0, ended_at - begin)


def downgrade() -> None:
    op.drop_index("ix_saved_searches_user_id", table_name="saved_searches")
    op.drop_table("saved_searches")
    op.drop_index("ix_interaction_meta_values_key_value", table_name="interaction_meta_values")
    op.drop_table("interaction_meta_values")
    for name, _columns in INDEXES:
        op.drop_index(name, table_name="interactions")
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch table copy: copying interactions
    # means dropping it, which the foreign keys of its media, pauses and segments refuse.
    for column in ("was_paused", "has_screen", "duration", "callee_number", "caller_number"):
        op.execute(f"ALTER TABLE interactions DROP COLUMN {column}")
