"""Helpers of the governance tests: planted identified data in, outcomes and stored objects out."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import pydicom
from pydicom import Dataset

from radbank.app import Services, build_services
from radbank.config import Settings
from radbank.dicom.deid import Profile, deidentify
from radbank.governance.policy import ADMIN
from radbank.index import Project
from radbank.ingest import Item, Outcome, Status
from radbank.projects import create_project
from radbank.synthetic import demo_studies


def open_node(data_dir: Path, database_url: str | None) -> Services:
    """A node's services on data_dir; database_url None: SQLite inside data_dir."""
    services, _ = build_services(
        Settings(data_dir=data_dir, database_url=database_url, admin_token="test-token")
    )
    return services


@cache
def planted_files() -> tuple[bytes, ...]:
    """Identified CT files: 2 patients x 2 studies x 1 series x 2 instances, as Part 10 bytes."""
    files = []
    for dataset in demo_studies(
        sites=1,
        patients_per_site=2,
        studies_per_patient=2,
        series_per_study=1,
        instances_per_series=2,
        dose_reports=False,
    ):
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    return tuple(files)


def identified(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def new_project(services: Services, name: str, **options: object) -> Project:
    return create_project(
        services.index,
        name,
        keys=services.keys,
        trail=services.trail,
        actor="tester",
        source="test",
        **options,
    )


def ingest(
    services: Services, project: str, files: tuple[bytes, ...] | list[bytes]
) -> list[Outcome]:
    target = services.index.get_project(project)
    assert target is not None
    items = [Item(f"file-{number}.dcm", data) for number, data in enumerate(files)]
    return services.pipeline.ingest(items, target, source="test", principal=ADMIN)


def stored(services: Services, outcome: Outcome) -> Dataset:
    """The de-identified object stored for an outcome."""
    assert outcome.status in (Status.STORED, Status.DUPLICATE), outcome
    target = services.index.get_instances(
        _project_id(services, outcome), [outcome.sop_instance_uid]
    )[outcome.sop_instance_uid]
    return pydicom.dcmread(io.BytesIO(services.store.get(target.blob_key)))


def _project_id(services: Services, outcome: Outcome) -> int:
    for project in services.index.list_projects():
        if services.index.get_instances(project.id, [outcome.sop_instance_uid]):
            return project.id
    raise AssertionError(f"{outcome.sop_instance_uid} is stored in no project")


def expected_pseudonym(data: bytes, key: bytes, profile: str = "basic") -> str:
    """The pseudonym the engine gives `data` under `key` (what `radbank deid` computes)."""
    return deidentify(identified(data), Profile.named(profile), key).patient_pseudonym
