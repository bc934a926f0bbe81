"""A node whose disk is full. Ingest: every object of the batch is refused with its name,
the reason and DICOM's "out of resources" (A700), nothing of it is indexed, what was
written of it is removed by the recovery at the next start (its journal names it), and the
same objects are stored once there is room.
Any request whose access cannot be recorded in the audit trail gets 503, not its answer.

A full disk cannot be had on demand here: the tests make the blob store's writes (or the
index's transaction) fail as a full disk makes them fail, and say so.
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from radbank.api import build_api
from radbank.app import Services, build_services, recover
from radbank.config import Settings
from radbank.governance.policy import ADMIN
from radbank.ingest import Item, Status
from radbank.ingest.pipeline import FAILURE_OUT_OF_RESOURCES
from radbank.projects import create_project
from radbank.synthetic import demo_studies

TOKEN = "t" * 40


def _items(count: int) -> list[Item]:
    items = []
    for number, dataset in enumerate(demo_studies(sites=1, patients_per_site=1, seed=77)):
        if number == count:
            break
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        items.append(Item(f"file{number}.dcm", buffer.getvalue()))
    return items


@pytest.fixture
def node(tmp_path: Path) -> Any:
    services, _ = build_services(Settings(data_dir=tmp_path / "data", admin_token=TOKEN))
    recover(services)
    create_project(services.index, "trial", keys=services.keys, trail=services.trail, actor="test")
    yield services
    services.close()


def _disk_full_after(services: Services, monkeypatch: pytest.MonkeyPatch, files: int) -> None:
    """Writes into the blob store fail with ENOSPC once `files` blobs were written (the
    write of the next one fails, as on a full disk), by write(2) or writev(2)."""
    root = str(services.store.root)
    started: set[str] = set()

    def failing(real: Any) -> Any:
        def write(fd: int, data: Any) -> int:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.startswith(root):
                started.add(path)
                if len(started) > files:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, data)

        return write

    monkeypatch.setattr(os, "write", failing(os.write))
    monkeypatch.setattr(os, "writev", failing(os.writev))


def _left_behind(services: Services) -> list[str]:
    """Every file under the blob store and the ingest journal."""
    data_dir = services.settings.resolved_data_dir
    return sorted(
        str(path.relative_to(data_dir))
        for directory in (services.store.root, data_dir / "journal")
        for path in directory.rglob("*")
        if path.is_file()
    )


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the written file through /proc"
)


@linux_only
def test_a_full_blob_store_refuses_the_batch_and_keeps_nothing(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = node.index.get_project("trial")
    items = _items(4)
    _disk_full_after(node, monkeypatch, files=2)
    outcomes = node.pipeline.ingest(items, project, source="test", principal=ADMIN)
    assert [o.status for o in outcomes] == [Status.REJECTED] * 4
    assert {o.failure_reason for o in outcomes} == {FAILURE_OUT_OF_RESOURCES}
    for item, outcome in zip(items, outcomes, strict=True):
        assert outcome.reason.startswith(f"{item.name}: not stored")
        assert "No space left on device" in outcome.reason
    assert node.index.count_instances(project.id) == 0
    assert not list(node.store.root.rglob("*.dcm*"))  # no blob, no temp file

    monkeypatch.undo()  # room again: the same objects are stored
    again = node.pipeline.ingest(items, project, source="test", principal=ADMIN)
    assert [o.status for o in again] == [Status.STORED] * 4


def test_a_full_index_database_refuses_the_batch_and_keeps_nothing(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = node.index.get_project("trial")
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # SQLITE_FULL, as sqlite3 sets it

    def add_instances(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("INSERT INTO instances ...", {}, full)

    monkeypatch.setattr(node.index, "add_instances", add_instances)
    outcomes = node.pipeline.ingest(_items(3), project, source="test", principal=ADMIN)
    assert [o.status for o in outcomes] == [Status.REJECTED] * 3
    assert {o.failure_reason for o in outcomes} == {FAILURE_OUT_OF_RESOURCES}
    assert all("no space left" in o.reason for o in outcomes)
    assert node.index.count_instances(node.index.get_project("trial").id) == 0
    # The blobs written before the index failed stay journalled until the next start
    # (removed now, one could be a concurrent upload's), whose recovery removes them.
    assert any(path.startswith("journal/") for path in _left_behind(node))
    recover(node)
    assert _left_behind(node) == []


@linux_only
def test_stow_rs_answers_503_naming_each_instance(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = _items(3)
    boundary = "full-disk-test"
    body = (
        b"".join(
            b"--"
            + boundary.encode()
            + b"\r\nContent-Type: application/dicom\r\n\r\n"
            + item.data
            + b"\r\n"
            for item in items
        )
        + b"--"
        + boundary.encode()
        + b"--\r\n"
    )
    _disk_full_after(node, monkeypatch, files=0)
    with TestClient(build_api(node)) as client:
        response = client.post(
            "/dicom-web/projects/trial/studies",
            content=body,
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            },
        )
    assert response.status_code == 503
    failed = response.json()["00081198"]["Value"]
    assert [f["00081197"]["Value"] for f in failed] == [[FAILURE_OUT_OF_RESOURCES]] * 3
    reasons = [f["00091001"]["Value"][0] for f in failed]
    assert [r.split(":")[0] for r in reasons] == ["part 1", "part 2", "part 3"]
    assert all("No space left on device" in r for r in reasons)


def test_an_answer_that_cannot_be_audited_is_withheld(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the index database full the access cannot be recorded: the search's answer
    does not leave the node, a 503 saying why does (simulated as above)."""
    node.pipeline.ingest(_items(1), node.index.get_project("trial"), source="t", principal=ADMIN)
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13

    def record(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("INSERT INTO audit ...", {}, full)

    with TestClient(build_api(node)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/dicom-web/projects/trial/studies", headers=headers).status_code == 200
        monkeypatch.setattr(node.trail, "record", record)
        response = client.get("/dicom-web/projects/trial/studies", headers=headers)
    assert response.status_code == 503
    assert response.json()["error"].startswith(
        "the node cannot record this request in its audit trail (no space left)"
    )
    assert "0020000D" not in response.text  # no study of the answer left
