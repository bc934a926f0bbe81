"""Project settings, vault entries and the audit table of the index, on both backends:
settings versions, vault entries written atomically with their instances, and the upgrade
of a database created by the first schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from radbank.index import (
    Index,
    InstanceRecord,
    PendingAudit,
    UnknownProject,
    VaultEntry,
    VaultKeyChanged,
    VaultWrite,
)
from radbank.index._engine import MIGRATIONS, create_engine


def entry(digest: bytes, key_id: str = "k1") -> VaultEntry:
    return VaultEntry(pseudonym="RB-1", digest=digest, sealed=b"sealed", key_id=key_id)


def test_settings_changes_bump_the_version_and_persist(index: Index) -> None:
    project = index.create_project("p", key_salt=b"s")
    assert (project.overrides, project.pixel_rules, project.ocr_check) == ({}, (), False)
    changed = index.update_project_settings(
        project.id, overrides={"PatientWeight": "keep"}, ocr_check=True
    )
    assert changed.settings_version == 2 and changed.profile == "basic"
    again = index.update_project_settings(project.id, pixel_rules=[{"name": "r"}])
    assert index.get_project("p") == again
    assert again.settings_version == 3 and again.overrides == {"PatientWeight": "keep"}
    assert again.pixel_rules == ({"name": "r"},) and again.ocr_check is True
    with pytest.raises(UnknownProject):
        index.update_project_settings(9999, ocr_check=False)


def test_vault_entries_commit_with_their_instances_or_not_at_all(
    index: Index, record: Callable[..., InstanceRecord]
) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.set_vault_key(project.id, public_key=b"pk", key_id="k1", broker="b", expected_key_id=None)
    first = record(project.id, "1.1", "1.1.1", "1.1.1.1")
    index.add_instances([first], VaultWrite(project.id, "k1", [entry(b"d1"), entry(b"d2")]))
    # The same identifiers again: deduplicated by digest.
    index.add_instances(
        [record(project.id, "1.1", "1.1.1", "1.1.1.2")],
        VaultWrite(project.id, "k1", [entry(b"d1")]),
    )
    assert sorted(e.digest for e in index.vault_entries(project.id)) == [b"d1", b"d2"]

    stale = VaultWrite(project.id, "k0", [entry(b"d3", "k0")])
    with pytest.raises(VaultKeyChanged):
        index.add_instances([record(project.id, "1.2", "1.2.1", "1.2.1.1")], stale)
    assert index.get_instances(project.id, ["1.2.1.1"]) == {}
    with pytest.raises(VaultKeyChanged):
        index.add_quarantine(
            project.id, reason="r", source="s", blob_key="b", sop_instance_uid="x", vault=stale
        )
    assert index.list_quarantine(project.id) == []
    assert len(index.vault_entries(project.id)) == 2


def test_a_vault_key_is_replaced_only_by_who_expects_the_current_one(index: Index) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.set_vault_key(project.id, public_key=b"a", key_id="ka", broker="b", expected_key_id=None)
    index.add_vault_entries(VaultWrite(project.id, "ka", [entry(b"d", "ka")]))
    with pytest.raises(VaultKeyChanged):
        index.set_vault_key(
            project.id, public_key=b"c", key_id="kc", broker="b", expected_key_id=None
        )
    with pytest.raises(ValueError, match="re-sealed"):
        index.set_vault_key(
            project.id, public_key=b"c", key_id="kc", broker="b", expected_key_id="ka"
        )
    resealed = index.set_vault_key(
        project.id,
        public_key=b"c",
        key_id="kc",
        broker="b2",
        expected_key_id="ka",
        reseal=lambda e: e.sealed + b"-again",
    )
    assert resealed == 1
    [stored] = index.vault_entries(project.id)
    assert (stored.sealed, stored.key_id) == (b"sealed-again", "kc")
    assert index.get_project("p").vault_broker == "b2"


def test_audit_records_are_appended_in_order_with_the_change(index: Index) -> None:
    def pending(action: str) -> PendingAudit:
        return PendingAudit(
            actor="a", action=action, resource="node", seal=lambda r: f"hash-of-{r.id}"
        )

    index.create_project("p", key_salt=b"s", audit=pending("project.create"))
    index.append_audit(pending("other"))
    records = list(index.iter_audit())
    assert [(r.id, r.action, r.hash) for r in records] == [
        (1, "project.create", "hash-of-1"),
        (2, "other", "hash-of-2"),
    ]
    assert records[0].prev_hash == "0" * 64 and records[1].prev_hash == "hash-of-1"
    assert index.audit_head() == records[1]
    assert abs(records[0].time - datetime.now(UTC)).total_seconds() < 60


def test_a_database_of_the_first_schema_is_upgraded_keeping_its_projects(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            connection.execute(
                sa.text(
                    "INSERT INTO projects (name, title, description, profile, key_salt,"
                    " created_at) VALUES ('old', 'Old', '', 'basic', :salt, :now)"
                ),
                {"salt": b"old-salt", "now": datetime.now(UTC)},
            )
    finally:
        engine.dispose()
    index = Index(database_url)
    try:
        old = index.get_project("old")
        assert old is not None and old.key_salt == b"old-salt"
        assert (old.overrides, old.pixel_rules, old.ocr_check) == ({}, (), False)
        assert (old.settings_version, old.key_id, old.wrapped_key) == (1, None, None)
        assert old.vault_key_id is None
    finally:
        index.close()
