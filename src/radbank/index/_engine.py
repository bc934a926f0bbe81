"""Engines for SQLite and PostgreSQL, and migration to the newest schema."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from radbank.dicom.dataset_json import json_text

MIGRATIONS = Path(__file__).parent / "migrations"
# SQLite waits this long for another writer (process or thread) before "database is locked".
BUSY_TIMEOUT_MS = 30_000
_WRITE = "radbank_write"
_MIGRATION_LOCK = 0x72616462  # pg_advisory_xact_lock key: "radb"
AUDIT_LOCK = 0x72626175  # "rbau": appenders of the audit chain
KEYS_LOCK = 0x72626B79  # "rbky": project key changes (creation, master key rotation)
SUBJECTS_LOCK = 0x72627362  # "rbsb": (with a project id) ingest shared, withdrawal exclusive


def create_engine(database_url: str) -> sa.Engine:
    url = sa.make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    json_columns = {"json_serializer": json_text}
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, **json_columns)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **json_columns)
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module's own transaction handling would defer BEGIN; we emit it (below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # FULL: an acknowledged instance must survive power loss, not only a process crash.
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    # Deleted rows are overwritten, not left in free pages: an erased subject (consent
    # withdrawn) must not remain readable in the database file.
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # A writer takes the write lock up front: upgrading a read transaction to a write one
    # fails at once with "database is locked" when another process wrote meanwhile,
    # whereas BEGIN IMMEDIATE waits (busy_timeout) for its turn.
    write = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    with _writer_lock(engine), engine.connect() as connection:
        connection.execution_options(**{_WRITE: True})
        with connection.begin():
            yield connection


@contextmanager
def _writer_lock(engine: sa.Engine) -> Iterator[None]:
    """Queue SQLite writers of all processes on a file lock.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so two server processes
    writing at once lose tens of milliseconds per transaction; a blocking flock wakes the
    next writer the moment the lock is free. PostgreSQL needs nothing of the sort.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def serialise(connection: sa.Connection, lock: int) -> None:
    """Queue this transaction behind others taking the same lock, until it ends.

    SQLite write transactions are serial already (the writer lock above); PostgreSQL ones
    take a transaction-scoped advisory lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})


def lock_subjects(connection: sa.Connection, project_id: int, *, exclusive: bool) -> None:
    """Ingest (shared) and withdrawal (exclusive) of a project's subjects take turns, so an
    upload that checked for withdrawals cannot commit after a withdrawal it did not see.
    SQLite write transactions are serial already."""
    if connection.dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        connection.execute(
            sa.text(f"SELECT {function}(:key, :project)"),
            {"key": SUBJECTS_LOCK - 2**31, "project": project_id},
        )


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    with write_transaction(engine) as connection:
        serialise(connection, _MIGRATION_LOCK)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
