"""Project keys: imported keys held wrapped, master key rotation that keeps every pseudonym
and UID, and rotations interrupted at each step."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from node_helpers import expected_pseudonym, ingest, new_project, open_node, planted_files

from radbank.app import Services
from radbank.dicom.query import parse_qido
from radbank.governance import keys as keyfile
from radbank.governance.keys import KeyRing, ProjectKeyError, rotate_master_key
from radbank.governance.sitekey import load_or_create_key_file, read_key_file
from radbank.index import Index
from radbank.ingest import Status


def key_file_content(services: Services) -> dict:
    return json.loads(services.settings.key_file.read_text())


def test_imported_key_gives_the_pseudonyms_of_site_side_deid_and_is_stored_wrapped(
    node: Services, tmp_path: Path
) -> None:
    site_key, created = load_or_create_key_file(tmp_path / "site.key")
    assert created
    project = new_project(node, "imported", imported_key=site_key)
    assert project.wrapped_key is not None and site_key not in project.wrapped_key
    assert node.keys.project_key(project) == site_key

    first = planted_files()[0]
    [outcome] = ingest(node, "imported", [first])
    assert outcome.status == Status.STORED
    studies = node.index.search(project.id, parse_qido("study", []))
    assert studies[0]["00100020"]["Value"] == [expected_pseudonym(first, site_key)]


def test_a_wrapped_key_opens_only_for_its_own_project(node: Services, tmp_path: Path) -> None:
    key, _ = load_or_create_key_file(tmp_path / "k")
    new_project(node, "owner", imported_key=key)
    thief = new_project(node, "thief", imported_key=b"\x01" * 32)
    with node.index._engine.begin() as connection:
        stolen = connection.scalar(sa.text("SELECT wrapped_key FROM projects WHERE name='owner'"))
        connection.execute(
            sa.text("UPDATE projects SET wrapped_key = :w WHERE id = :id"),
            {"w": stolen, "id": thief.id},
        )
    moved = node.index.get_project("thief")
    with pytest.raises(ProjectKeyError, match="'thief'.*does not open"):
        node.keys.project_key(moved)


def test_rotation_keeps_pseudonyms_and_uids_and_retires_the_old_master_key(
    node: Services, tmp_path: Path
) -> None:
    site_key, _ = load_or_create_key_file(tmp_path / "site.key")
    new_project(node, "derived", profile="basic-dates")
    new_project(node, "imported", imported_key=site_key)
    before = {name: ingest(node, name, planted_files()[:4]) for name in ("derived", "imported")}
    old_ring = node.keys.ring

    rotation = rotate_master_key(node.settings.key_file, node.index, node.trail, actor="tester")

    assert sorted(rotation.projects) == ["derived", "imported"] and not rotation.resumed
    content = key_file_content(node)
    assert "previous_master_key" not in content
    assert content["master_key"] != base64.b64encode(old_ring.master_key).decode()
    retired = KeyRing(old_ring.master_key, None)
    for project in node.index.list_projects():
        assert project.key_id == rotation.new_key_id and project.wrapped_key is not None
        with pytest.raises(ProjectKeyError, match="master key id"):
            retired.key_of(project)

    after = open_node(node.settings.data_dir, node.settings.database_url)
    try:
        for name, outcomes in before.items():
            again = ingest(after, name, planted_files()[:4])
            # Identical de-identified bytes: same pseudonyms, same UIDs, same shifted dates.
            assert [o.status for o in again] == [Status.DUPLICATE] * 4
            assert [o.sop_instance_uid for o in again] == [o.sop_instance_uid for o in outcomes]
            assert [o.study_instance_uid for o in again] == [o.study_instance_uid for o in outcomes]
        assert after.keys.project_key(after.index.get_project("imported")) == site_key
    finally:
        after.close()
    [record] = [r for r in node.trail.records() if r.action == "keys.rotate"]
    assert record.detail["to_key_id"] == rotation.new_key_id
    assert node.trail.verify() == []


class Crash(Exception):
    """Stands for the process dying at that point (a real kill cannot be timed this exactly)."""


def test_rotation_interrupted_before_the_database_commit_loses_nothing(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_project(node, "p", profile="basic-dates")
    [first] = ingest(node, "p", planted_files()[:1])

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash()

    monkeypatch.setattr(Index, "rewrap_project_keys", crash)
    with pytest.raises(Crash):
        rotate_master_key(node.settings.key_file, node.index, node.trail, actor="tester")
    monkeypatch.undo()
    assert "previous_master_key" in key_file_content(node)

    restarted = open_node(node.settings.data_dir, node.settings.database_url)
    try:
        # Rows are still under the old master key, which the key file still holds.
        [again] = ingest(restarted, "p", planted_files()[:1])
        assert again.status == Status.DUPLICATE and again.sop_instance_uid == first.sop_instance_uid
        rotation = rotate_master_key(
            restarted.settings.key_file, restarted.index, restarted.trail, actor="tester"
        )
        assert rotation.resumed and rotation.projects == ["p"]
        assert "previous_master_key" not in key_file_content(restarted)
        [third] = ingest(restarted, "p", planted_files()[:1])
        assert third.status == Status.DUPLICATE
    finally:
        restarted.close()


def test_rotation_interrupted_after_the_database_commit_loses_nothing(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_project(node, "p")
    [first] = ingest(node, "p", planted_files()[:1])
    real = Index.rewrap_project_keys

    def commit_then_crash(self: Index, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)
        raise Crash()

    monkeypatch.setattr(Index, "rewrap_project_keys", commit_then_crash)
    with pytest.raises(Crash):
        rotate_master_key(node.settings.key_file, node.index, node.trail, actor="tester")
    monkeypatch.undo()
    ring = keyfile._read(node.settings.key_file)
    assert ring.previous_master_key is not None
    assert node.index.get_project("p").key_id == ring.master_key_id

    restarted = open_node(node.settings.data_dir, node.settings.database_url)
    try:
        [again] = ingest(restarted, "p", planted_files()[:1])
        assert again.status == Status.DUPLICATE and again.sop_instance_uid == first.sop_instance_uid
        rotation = rotate_master_key(
            restarted.settings.key_file, restarted.index, restarted.trail, actor="tester"
        )
        assert rotation.resumed and rotation.projects == []
        assert "previous_master_key" not in key_file_content(restarted)
    finally:
        restarted.close()


def test_a_running_node_follows_a_rotation_made_by_another_process(node: Services) -> None:
    new_project(node, "p")
    [first] = ingest(node, "p", planted_files()[:1])
    other = open_node(node.settings.data_dir, node.settings.database_url)
    try:
        rotate_master_key(other.settings.key_file, other.index, other.trail, actor="tester")
    finally:
        other.close()
    # `node` still holds the old key ring in memory; it re-reads the replaced key file.
    again, second = ingest(node, "p", planted_files()[:2])
    assert again.status == Status.DUPLICATE and again.sop_instance_uid == first.sop_instance_uid
    assert second.status == Status.STORED
    assert second.study_instance_uid == first.study_instance_uid


def test_export_key_writes_the_effective_key_and_never_overwrites(
    node: Services, tmp_path: Path
) -> None:
    from radbank.governance.sitekey import KeyFileError
    from radbank.projects import export_key

    project = new_project(node, "p")
    out = tmp_path / "exported.key"
    export_key(node.keys, project, out, trail=node.trail, actor="tester")
    assert read_key_file(out) == node.keys.project_key(project)
    assert (out.stat().st_mode & 0o777) == 0o600
    with pytest.raises(KeyFileError, match="never overwrites"):
        export_key(node.keys, project, out, trail=node.trail, actor="tester")
    [first] = ingest(node, "p", planted_files()[:1])
    studies = node.index.search(project.id, parse_qido("study", []))
    assert studies[0]["00100020"]["Value"] == [
        expected_pseudonym(planted_files()[0], read_key_file(out))
    ]
    assert first.status == Status.STORED


def test_projects_from_before_key_ids_derive_with_the_key_the_node_had() -> None:
    from datetime import UTC, datetime

    from radbank.index import Project

    legacy = Project(1, "old", "Old", "", "basic", b"salt", datetime.now(UTC))
    ring = KeyRing(b"m" * 32, None)
    assert ring.key_of(legacy) == ring.project_key(b"salt")
    # Mid-rotation, such a row is still derived with the previous master key.
    assert KeyRing(b"n" * 32, None, previous_master_key=b"m" * 32).key_of(legacy) == (
        ring.key_of(legacy)
    )


def test_a_project_created_by_a_node_started_before_a_rotation_uses_the_new_master_key(
    node: Services,
) -> None:
    other = open_node(node.settings.data_dir, node.settings.database_url)
    try:
        rotation = rotate_master_key(
            other.settings.key_file, other.index, other.trail, actor="tester"
        )
    finally:
        other.close()
    late = new_project(node, "late")
    assert late.key_id == rotation.new_key_id
    [outcome] = ingest(node, "late", planted_files()[:1])
    assert outcome.status == Status.STORED
