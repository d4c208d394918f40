"""Normalised DNs and one active binding per DN; one agent per full-time DN.

1. Every ``dn_bindings.dn`` and ``users.full_time_dn`` is rewritten in the normal form of
   ``server.services.dn`` (surrounding whitespace and visual separators dropped). A value that
   is not a DN even then is only stripped: it matches no call either way, and the next change
   through the API or CLI enforces the grammar.
2. Where several bindings of one DN are active (two agents took ``1001`` and ``"1001 "``), the
   newest stays and the others are released now: the newest is the one the call path already
   preferred (it orders by ``bound_at`` descending), so no call changes hands.
3. Where several agents have the same full-time DN, the one with the lowest id keeps it and the
   others lose it (logged as a warning; re-set them with a different DN).
4. Then the indexes: a partial unique index on ``dn_bindings(dn) WHERE released_at IS NULL`` and
   ``ix_users_full_time_dn`` made unique (NULLs allowed, as in SQLite and PostgreSQL).

Password policy needs no schema: it is a row in ``settings``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

import logging
import re
import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# Copied from server/services/dn.py at this revision, so the migration keeps doing what it did
# when the grammar moves on.
_SEPARATORS = re.compile(r"[ \-.()]")
_DN = re.compile(r"^\+?[0-9]{1,32}$")
ACTIVE = "released_at IS NULL"


def _normal(value: str) -> str:
    dn = _SEPARATORS.sub("", value.strip())
    return dn if _DN.match(dn) else value.strip()


def upgrade() -> None:
    bind = op.get_bind()
    bindings = sa.table(
        "dn_bindings",
        sa.column("id", sa.Integer),
        sa.column("dn", sa.String),
        sa.column("bound_at", sa.Float),
        sa.column("released_at", sa.Float),
    )
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("username", sa.String),
        sa.column("full_time_dn", sa.String),
    )
    for row in bind.execute(sa.select(bindings.c.id, bindings.c.dn)).all():
        if _normal(row.dn) != row.dn:
            bind.execute(sa.update(bindings).where(bindings.c.id == row.id).values(dn=_normal(row.dn)))
    now = time.time()
    active = bind.execute(
        sa.select(bindings.c.id, bindings.c.dn)
        .where(bindings.c.released_at.is_(None))
        .order_by(bindings.c.bound_at.desc(), bindings.c.id.desc())
    ).all()
    kept: set[str] = set()
    for row in active:
        if row.dn in kept:
            log.warning("DN %s had more than one active binding: binding %s released", row.dn, row.id)
            bind.execute(sa.update(bindings).where(bindings.c.id == row.id).values(released_at=now))
        kept.add(row.dn)
    owners: dict[str, str] = {}
    for agent in bind.execute(
        sa.select(users.c.id, users.c.username, users.c.full_time_dn)
        .where(users.c.full_time_dn.is_not(None))
        .order_by(users.c.id)
    ).all():
        dn = _normal(agent.full_time_dn)
        if dn in owners:
            log.warning(
                "full-time DN %s was set for both %s and %s: %s keeps it",
                dn,
                owners[dn],
                agent.username,
                owners[dn],
            )
            bind.execute(sa.update(users).where(users.c.id == agent.id).values(full_time_dn=None))
            continue
        owners[dn] = agent.username
        if dn != agent.full_time_dn:
            bind.execute(sa.update(users).where(users.c.id == agent.id).values(full_time_dn=dn))
    op.drop_index("ix_users_full_time_dn", table_name="users")
    op.create_index("ix_users_full_time_dn", "users", ["full_time_dn"], unique=True)
    op.create_index(
        "uq_dn_bindings_active_dn",
        "dn_bindings",
        ["dn"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_dn_bindings_active_dn", table_name="dn_bindings")
    op.drop_index("ix_users_full_time_dn", table_name="users")
    op.create_index("ix_users_full_time_dn", "users", ["full_time_dn"], unique=False)
