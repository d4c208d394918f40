"""Every Alembic revision, both directions, on a real PostgreSQL server."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from server.store.db import alembic_config, make_engine


def _revisions(url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_upgrade_downgrade_upgrade_every_revision(pg_url: str) -> None:
    cfg = alembic_config(pg_url)
    revisions = _revisions(pg_url)
    assert revisions[0] == "0001" and len(revisions) >= 15
    # One step at a time, so a failing revision is named by the traceback.
    for rev in revisions:
        command.upgrade(cfg, rev)
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            head_tables = set(inspect(conn).get_table_names())
            assert {"users", "interactions", "audit_log", "audit_head"} <= head_tables
        for below in reversed(["base", *revisions[:-1]]):
            command.downgrade(cfg, below)
        with engine.connect() as conn:
            left = set(inspect(conn).get_table_names()) - {"alembic_version"}
            assert left == set(), f"tables left after downgrade to base: {sorted(left)}"
            functions = (
                conn.execute(
                    text(
                        "SELECT proname FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace"
                        " WHERE nspname = 'public'"
                    )
                )
                .scalars()
                .all()
            )
            assert functions == [], f"functions left after downgrade to base: {functions}"
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == head_tables
    finally:
        engine.dispose()
