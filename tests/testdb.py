"""Test databases on both index backends: a SQLite file, or a PostgreSQL schema of its own.

RADBANK_TEST_POSTGRES_URL overrides the server (default: trust auth, database `test`).
PostgreSQL tests are skipped, saying why, when the server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "RADBANK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@cache
def _postgres_unreachable() -> str | None:
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means: skip, and say why
        return f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__}: {exc})"
    finally:
        engine.dispose()
    return None


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A URL of an empty database on backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'index.sqlite3'}"
        return
    reason = _postgres_unreachable()
    if reason:
        pytest.skip(reason)
    schema = f"radbank_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
