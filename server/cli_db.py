"""How ``tandem-server``'s commands find and open the server's database.

The data directory is resolved exactly as the server resolves it (``load_settings``):
``--data-dir`` > ``TANDEM_SERVER_DATA_DIR`` > the config file's ``data_dir`` > ``./data``.
Only ``run``, ``migrate`` and ``demo-setup`` may create a database. Every other command that
changes data needs an existing one: a mistyped or forgotten data directory used to give the
operator a fresh empty ``./data/tandem.db`` that the running server never reads, and a
"screen sampling set to 10 %" that changed nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import NoDatabaseError
from server.settings import ENV_PREFIX, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DATA_DIR_ENV = f"{ENV_PREFIX}DATA_DIR"


def data_dir_source(args: argparse.Namespace, settings: Settings) -> str:
    """Which setting chose the data directory, in the words an operator would use."""
    if getattr(args, "data_dir", None):
        return "--data-dir"
    if os.environ.get(DATA_DIR_ENV):
        return DATA_DIR_ENV
    if settings.config is not None and "data_dir" in settings.model_fields_set:
        return f"data_dir in {settings.config}"
    return "the default ./data"


def database_exists(settings: Settings) -> bool:
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        # Checked on the file: connecting would create it.
        path = Path(url.removeprefix("sqlite:///"))
        return path.is_file() and path.stat().st_size > 0
    from sqlalchemy import inspect

    from server.store.db import make_engine

    engine = make_engine(url)
    try:
        return inspect(engine).has_table("alembic_version")
    finally:
        engine.dispose()


def missing_message(args: argparse.Namespace, settings: Settings) -> str:
    where = settings.resolved_database_url.removeprefix("sqlite:///")
    return (
        f"no Tandem database at {where} (data directory {settings.data_dir}, from "
        f"{data_dir_source(args, settings)}); pass --data-dir or set {DATA_DIR_ENV} to the data "
        f"directory the server was started with (the server reads --data-dir, {DATA_DIR_ENV} or "
        "data_dir in its config file; scripts/run's demo uses .tandem/server). Only run, migrate "
        "and demo-setup create a database."
    )


def existing_session(args: argparse.Namespace, settings: Settings) -> AbstractContextManager[Session]:
    """A unit of work on the server's existing database (brought to the newest schema, as the
    server itself does at start); ``NoDatabaseError`` when there is none."""
    if not database_exists(settings):
        raise NoDatabaseError(missing_message(args, settings))
    return new_or_existing_session(settings)


@contextmanager
def new_or_existing_session(settings: Settings) -> Iterator[Session]:
    """A unit of work, creating the database if needed (``demo-setup`` only).

    Its engine is disposed at the end: a command run in-process (tests, ``server.cli.main`` from
    another tool) otherwise kept the database, its WAL and shm files open until garbage
    collection got to the engine — three descriptors a command."""
    from server.store.db import make_engine, make_session_factory, migrate, session_scope

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()
