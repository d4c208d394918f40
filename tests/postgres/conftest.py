"""The PostgreSQL tier: one throwaway cluster (tests/pg.py) for every test in this directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import make_url

from server.store.db import migrate
from tests.pg import PgCluster, create_database, pg_cluster


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    with pg_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg: PgCluster) -> str:
    """A fresh, empty database of its own for one test."""
    return create_database(pg)


@pytest.fixture(scope="session")
def pg_template(pg: PgCluster) -> str:
    """A database at the newest schema revision, copied for each app test (CREATE DATABASE …
    TEMPLATE copies files: much faster than running every migration again)."""
    url = create_database(pg, "template")
    migrate(url)
    name = make_url(url).database
    assert name
    return name


@pytest.fixture
def on_postgres(pg: PgCluster, pg_template: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every ``load_settings`` of the test (its app, its CLI) uses a fresh migrated PostgreSQL
    database instead of the SQLite file in its data directory: the settings read
    ``TANDEM_SERVER_DATABASE_URL``. So the integration tests' own fixtures and helpers are reused
    as they are."""
    url = create_database(pg, template=pg_template)
    monkeypatch.setenv("TANDEM_SERVER_DATABASE_URL", url)
    return url
