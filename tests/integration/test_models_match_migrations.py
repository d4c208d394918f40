"""The tables the code declares (`server.store.models`, naming the domain modules of
`server.store.schema`) are the tables the Alembic migrations build: autogenerate, run against a
database migrated to head, finds nothing to do. A domain module that `models` does not import, or
a column a model gains without a revision, shows up here as a difference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from server.store import models
from server.store.db import migrate

# audit_log.seq is declared unique=True (a unique constraint) while revision 0001 made it a unique
# index; SQLite reports the two alike, so autogenerate sees one replacing the other. Same rule,
# not a schema difference.
KNOWN = {
    ("add_constraint", "audit_log", ("seq",)),
    ("remove_index", "audit_log", ("seq",)),
}


def _key(diff: Any) -> Any:
    """A comparable key for one autogenerate difference (a tuple; nested lists are column changes)."""
    if isinstance(diff, tuple) and diff[0] in ("add_constraint", "remove_index"):
        return diff[0], diff[1].table.name, tuple(c.name for c in diff[1].columns)
    return diff


def test_every_table_is_declared_and_matches_the_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    migrate(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    finally:
        engine.dispose()
    unexpected = [d for d in diffs if _key(d) not in KNOWN]
    assert unexpected == [], f"models and migrations differ: {unexpected}"
    # Every table class is reachable as models.<Name>, the way the code uses them.
    declared = {mapper.class_.__name__ for mapper in models.Base.registry.mappers}
    assert declared - set(models.__all__) == set()
    assert all(getattr(models, name).__table__ is not None for name in declared)
