"""The migrations build the schema the code expects, on both backends, idempotently."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from radbank.index import Index
from radbank.index._schema import metadata


def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    Index(database_url).close()
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == "0006"
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_reopening_keeps_the_data(database_url: str) -> None:
    first = Index(database_url)
    first.create_project("kept", key_salt=b"salt")
    first.close()
    second = Index(database_url)
    try:
        assert second.get_project("kept") is not None
    finally:
        second.close()


def test_sqlite_runs_in_wal_mode_with_durable_commits(tmp_path) -> None:
    index = Index(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        with index._engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        index.close()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": 30000,
    }


def test_sqlite_directory_is_created(tmp_path) -> None:
    Index(f"sqlite:///{tmp_path / 'new' / 'dir' / 'index.sqlite3'}").close()
    assert (tmp_path / "new" / "dir" / "index.sqlite3").is_file()
