"""A node's services (index, keys, pipeline, audit trail, vault) on a SQLite index inside the
data directory, then on PostgreSQL; the planted identified CT data of radbank.synthetic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from node_helpers import open_node
from testdb import BACKENDS, database

from radbank.app import Services


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None: SQLite in the data directory (so a scan of the directory covers the index)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            yield None
        else:
            yield stack.enter_context(database("postgresql", tmp_path))


@pytest.fixture
def node(tmp_path: Path, database_url: str | None) -> Iterator[Services]:
    services = open_node(tmp_path / "data", database_url)
    yield services
    services.close()
