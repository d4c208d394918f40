"""The PostgreSQL tier: one throwaway cluster (tests/pg.py) for every test in this directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import PgCluster, create_database, pg_cluster


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    with pg_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg: PgCluster) -> str:
    """A fresh, empty database of its own for one test."""
    return create_database(pg)
