"""Shared fixtures: a real radbank server on loopback, a fresh project per test, test data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import SHARED_DATA, LiveNode, RunningServer, new_project, start_server
from testdb import BACKENDS, database


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("node") / "data")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second node whose index is PostgreSQL (skipped, saying why, where none runs)."""
    directory = tmp_path_factory.mktemp("pgnode")
    with database("postgresql", directory) as url:
        running = start_server(directory / "data", extra_env={"RADBANK_DATABASE_URL": url})
        yield running
        running.stop()


@pytest.fixture(params=BACKENDS)
def live_node_any_index(request: pytest.FixtureRequest) -> LiveNode:
    """A fresh project on a node with a SQLite index, then on one with a PostgreSQL index."""
    server = request.getfixturevalue("server" if request.param == "sqlite" else "postgres_server")
    return LiveNode(server.base_url, server.token, server.data_dir, new_project(server))


@pytest.fixture
def live_node(server: RunningServer) -> LiveNode:
    """The session's server with a fresh, empty project (profile basic-dates) for this test."""
    return LiveNode(server.base_url, server.token, server.data_dir, new_project(server))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA
