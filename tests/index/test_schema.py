"""The migrations build the schema the code expects, on both backends, idempotently."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from radbank.dicom.query import parse_qido
from radbank.index import Index, InstanceRecord
from radbank.index._schema import metadata


def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    Index(database_url).close()
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == "0007"
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


def test_an_earlier_revision_gets_the_matching_values_of_this_one(
    database_url: str, record: Callable[..., InstanceRecord]
) -> None:
    """Revision 0007 computes again what names and date-times are matched on: a database
    written by the earlier code (names case-folded, UTC offsets dropped) answers as one
    written by this code once it is opened."""
    index = Index(database_url)
    project = index.create_project("old", key_salt=b"o").id
    index.add_instances(
        [
            record(
                project, "1.1", "1.1.1", "1.1.1.1",
                PatientName="Straße^Ulf^^",
                ReferringPhysicianName="House^Gregory",
                AcquisitionDateTime="20200101120000+0200",
            ),
            record(project, "1.2", "1.2.1", "1.2.1.1", AcquisitionDateTime="20200101120000"),
        ]
    )  # fmt: skip
    with index._engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE studies SET patient_name_ci = 'strasse^ulf^^', "
                "referring_physician_name_ci = 'house^gregory' WHERE study_instance_uid = '1.1'"
            )
        )
        connection.execute(
            sa.text(
                "UPDATE instances SET acquisition_date_time = '20200101120000' "
                "WHERE sop_instance_uid = '1.1.1.1'"
            )
        )
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0006'"))
    index.close()

    reopened = Index(database_url)
    try:

        def found(level: str, key: str, value: str) -> list[str]:
            tag = "0020000D" if level == "study" else "00080018"
            query = parse_qido(level, [(key, value)])
            return [r[tag]["Value"][0] for r in reopened.search(project, query)]

        assert found("study", "PatientName", "stra?e^ulf") == ["1.1"]
        assert found("study", "PatientName", "STRASSE*") == []
        assert found("study", "ReferringPhysicianName", "house^gregory") == ["1.1"]
        assert found("instance", "AcquisitionDateTime", "20200101100000") == ["1.1.1.1"]
        assert found("instance", "AcquisitionDateTime", "20200101120000") == ["1.2.1.1"]
    finally:
        reopened.close()
