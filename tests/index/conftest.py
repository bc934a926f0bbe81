"""The index on both backends: a SQLite file in a temporary directory, and PostgreSQL on
127.0.0.1:5432 in a schema of its own that is dropped afterwards (so runs never collide).

RADBANK_TEST_POSTGRES_URL overrides the server (default: trust auth, database `test`).
PostgreSQL tests are skipped, saying why, when the server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydicom import Dataset

from radbank.index import Index, InstanceRecord

POSTGRES_URL = os.environ.get(
    "RADBANK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


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


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def index(database_url: str) -> Iterator[Index]:
    opened = Index(database_url)
    yield opened
    opened.close()


def make_record(
    project_id: int,
    study: str,
    series: str,
    sop: str,
    *,
    sha256: str = "0" * 64,
    **attributes: Any,
) -> InstanceRecord:
    """An InstanceRecord whose attributes are pydicom's DICOM JSON of the keywords given."""
    dataset = Dataset()
    dataset.StudyInstanceUID = study
    dataset.SeriesInstanceUID = series
    dataset.SOPInstanceUID = sop
    dataset.SOPClassUID = attributes.pop("SOPClassUID", CT_IMAGE)
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return InstanceRecord(
        project_id=project_id,
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=sop,
        sop_class_uid=dataset.SOPClassUID,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        blob_key=f"{project_id}/{sop}",
        size_bytes=1234,
        sha256=sha256,
        attributes=dataset.to_json_dict(),
        received_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        source="test",
    )


@pytest.fixture(scope="session")
def record() -> Callable[..., InstanceRecord]:
    """make_record, for tests (fixtures, unlike conftest modules, are safe to import)."""
    return make_record


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like database_url, shared by the tests of one module (read-only use)."""
    with database(request.param, tmp_path_factory.mktemp("index")) as url:
        yield url
