"""The index on both backends: a SQLite file in a temporary directory, and PostgreSQL on
127.0.0.1:5432 in a schema of its own that is dropped afterwards (so runs never collide).

RADBANK_TEST_POSTGRES_URL overrides the server (default: trust auth, database `test`).
PostgreSQL tests are skipped, saying why, when the server cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from testdb import BACKENDS, database

from radbank.index import Index, InstanceRecord

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


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
