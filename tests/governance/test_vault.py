"""The pseudonym vault: filled by ingest in the instance's transaction, sealed to a key the
node does not hold, opened only with the broker's file, every opening audited, and no
identifier in clear anywhere at rest."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from node_helpers import identified, ingest, new_project, open_node, planted_files

from radbank.app import Services
from radbank.dicom.query import parse_qido
from radbank.governance.audit import Outcome
from radbank.governance.keys import rotate_master_key
from radbank.governance.policy import ADMIN
from radbank.governance.vault import Identifiers, VaultError, read_vault_key
from radbank.index import Project
from radbank.index._schema import metadata
from radbank.ingest import Item, Status
from radbank.synthetic import canary_values


@pytest.fixture
def broker_key(node: Services, tmp_path: Path) -> Path:
    project = new_project(node, "ct", profile="basic-dates")
    out = tmp_path / "broker" / "broker.key"
    out.parent.mkdir()
    node.vault.init(project, out, broker="Dr Broker", actor="steward")
    return out


def project(node: Services, name: str = "ct") -> Project:
    found = node.index.get_project(name)
    assert found is not None
    return found


def test_init_writes_a_private_key_file_and_keeps_only_the_public_key(
    node: Services, broker_key: Path
) -> None:
    assert stat.S_IMODE(broker_key.stat().st_mode) == 0o600
    key = read_vault_key(broker_key)
    ct = project(node)
    assert ct.vault_public_key == key.public_key and ct.vault_key_id == key.key_id
    assert ct.vault_broker == "Dr Broker"
    with pytest.raises(VaultError, match="already has a vault"):
        node.vault.init(ct, broker_key.with_name("other.key"), broker="x", actor="steward")
    with pytest.raises(VaultError, match="never overwrites"):
        node.vault.init(new_project(node, "second"), broker_key, broker="x", actor="steward")
    assert node.index.get_project("second").vault_key_id is None


def test_ingest_records_one_entry_per_distinct_identifiers_and_opens_with_the_key(
    node: Services, broker_key: Path
) -> None:
    outcomes = ingest(node, "ct", planted_files())
    assert {o.status for o in outcomes} == {Status.STORED}
    ct = project(node)
    # 2 patients x 2 studies: the instances of a study share one entry.
    assert len(node.index.vault_entries(ct.id)) == 4
    ingest(node, "ct", planted_files())
    assert len(node.index.vault_entries(ct.id)) == 4

    opened = node.vault.open(ct, broker_key, actor="Dr Broker", reason="consent withdrawal")
    expected = {Identifiers.of(identified(data)) for data in planted_files()}
    assert {entry.identifiers for entry in opened} == expected
    studies = {
        s["00100020"]["Value"][0]: s for s in node.index.search(ct.id, parse_qido("study", []))
    }
    for entry in opened:
        # The pseudonym of an entry is the Patient ID the de-identified studies carry.
        assert entry.pseudonym in studies
    patient = opened[0]
    only = node.vault.open(
        ct, broker_key, actor="Dr Broker", reason="follow-up", pseudonyms=[patient.pseudonym]
    )
    assert {e.pseudonym for e in only} == {patient.pseudonym} and len(only) == 2

    audit = [r for r in node.trail.records() if r.action == "vault.open"]
    assert [r.outcome for r in audit] == ["success", "success"]
    assert audit[0].actor == "Dr Broker" and audit[0].detail["reason"] == "consent withdrawal"
    assert sorted(audit[0].detail["pseudonyms"]) == sorted({e.pseudonym for e in opened})
    assert audit[1].detail["pseudonyms"] == [patient.pseudonym]


def test_a_failed_opening_is_audited(node: Services, broker_key: Path, tmp_path: Path) -> None:
    ingest(node, "ct", planted_files()[:1])
    ct = project(node)
    other = new_project(node, "other")
    stranger = tmp_path / "stranger.key"
    node.vault.init(other, stranger, broker="someone", actor="steward")
    with pytest.raises(VaultError, match="holds vault key .* sealed to key"):
        node.vault.open(ct, stranger, actor="mallory", reason="curious")
    with pytest.raises(VaultError, match="cannot read vault key file"):
        node.vault.open(ct, tmp_path / "missing.key", actor="mallory")
    broker_key.chmod(0o644)
    with pytest.raises(VaultError, match="must be 0600"):
        node.vault.open(ct, broker_key, actor="mallory")
    failures = [r for r in node.trail.records() if r.action == "vault.open"]
    assert [(r.actor, r.outcome) for r in failures] == [("mallory", Outcome.FAILURE)] * 3
    assert failures[0].detail["reason"] == "curious"


def test_no_identifier_is_at_rest_in_clear(
    node: Services, broker_key: Path, database_url: str | None
) -> None:
    ingest(node, "ct", planted_files())
    ct = project(node)
    patient_id = Identifiers.of(identified(planted_files()[0])).patient_id
    node.vault.open(ct, broker_key, actor="Dr Broker", reason="check")
    node.vault.lookup(ct, node.keys.project_key(ct), patient_id=patient_id, actor="Dr Broker")
    canaries = {c for data in planted_files() for c in canary_values(identified(data))}
    canaries |= {
        i.study_instance_uid for i in (Identifiers.of(identified(d)) for d in planted_files())
    }
    assert len(canaries) > 30
    at_rest = b"".join(p.read_bytes() for p in node.settings.data_dir.rglob("*") if p.is_file())
    if database_url is not None:
        at_rest += database_dump(node)
    leaked = sorted(c for c in canaries if c.encode() in at_rest)
    assert leaked == [], f"identity at rest: {leaked}"
    # No unkeyed digest either: a dictionary of patient IDs would reverse it.
    for digest in (hashlib.sha256(patient_id.encode()), hashlib.sha1(patient_id.encode())):
        assert digest.digest() not in at_rest and digest.hexdigest().encode() not in at_rest


def database_dump(node: Services) -> bytes:
    """Every value of every table of the index, as bytes (PostgreSQL keeps no file here)."""
    parts = []
    with node.index._engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                for value in row:
                    parts.append(
                        bytes(value)
                        if isinstance(value, bytes | memoryview)
                        else str(value).encode()
                    )
    return b"\n".join(parts)


def test_lookup_gives_the_pseudonym_of_a_known_patient_and_audits_no_identifier(
    node: Services, broker_key: Path
) -> None:
    outcomes = ingest(node, "ct", planted_files())
    ct = project(node)
    first = Identifiers.of(identified(planted_files()[0]))
    found = node.vault.lookup(
        ct,
        node.keys.project_key(ct),
        patient_id=first.patient_id,
        issuer=first.issuer_of_patient_id,
        actor="Dr Broker",
        reason="follow-up study",
    )
    stored = node.index.get_instances(ct.id, [outcomes[0].sop_instance_uid])
    record = stored[outcomes[0].sop_instance_uid]
    assert record.attributes["00100020"]["Value"] == [found.pseudonym]
    assert (found.studies, found.vault_entries) == (2, 2)
    [audit] = [r for r in node.trail.records() if r.action == "vault.lookup"]
    assert audit.detail["pseudonym"] == found.pseudonym
    assert first.patient_id not in str(audit.detail)


def test_vault_rotation_reseals_everything_and_keeps_the_pseudonyms(
    node: Services, broker_key: Path, tmp_path: Path
) -> None:
    before = ingest(node, "ct", planted_files()[:4])
    ct = project(node)
    opened_before = node.vault.open(ct, broker_key, actor="b", reason="r")
    new_key = tmp_path / "new.key"
    with pytest.raises(VaultError, match="rotation needs the current key"):
        stranger = tmp_path / "stranger.key"
        node.vault.init(new_project(node, "x"), stranger, broker="s", actor="s")
        node.vault.rotate(ct, stranger, new_key, actor="steward")
    assert not new_key.exists()

    key, count = node.vault.rotate(ct, broker_key, new_key, actor="steward")
    assert count == 2 and stat.S_IMODE(new_key.stat().st_mode) == 0o600
    ct = project(node)
    assert ct.vault_key_id == key.key_id
    with pytest.raises(VaultError, match="sealed to key"):
        node.vault.open(ct, broker_key, actor="b")
    after = ingest(node, "ct", planted_files())
    assert [o.study_instance_uid for o in after[:4]] == [o.study_instance_uid for o in before]
    opened = node.vault.open(ct, new_key, actor="b", reason="r")
    assert {(e.pseudonym, e.identifiers) for e in opened_before} <= {
        (e.pseudonym, e.identifiers) for e in opened
    }
    assert len(opened) == 4
    rotations = [r for r in node.trail.records() if r.action == "vault.rotate"]
    assert [r.outcome for r in rotations] == ["failure", "success"]


def test_master_key_rotation_keeps_the_vault_and_its_linkage(
    node: Services, broker_key: Path
) -> None:
    ingest(node, "ct", planted_files()[:2])
    ct = project(node)
    pseudonyms = {e.pseudonym for e in node.vault.open(ct, broker_key, actor="b")}
    rotate_master_key(node.settings.key_file, node.index, node.trail, actor="tester")
    restarted = open_node(node.settings.data_dir, node.settings.database_url)
    try:
        ingest(restarted, "ct", planted_files())
        ct = project(restarted)
        opened = restarted.vault.open(ct, broker_key, actor="b")
        # No duplicate entries: the deduplication digests did not change with the master key.
        assert len(opened) == 4 and pseudonyms <= {e.pseudonym for e in opened}
    finally:
        restarted.close()


def test_entries_of_a_batch_prepared_before_a_vault_rotation_are_sealed_to_the_new_key(
    node: Services, broker_key: Path, tmp_path: Path
) -> None:
    ct = project(node)
    items = [Item(f"f{n}", data) for n, data in enumerate(planted_files()[:2])]
    batch = node.pipeline.prepare(items, ct, source="test", principal=ADMIN)
    new_key = tmp_path / "new.key"
    node.vault.rotate(ct, broker_key, new_key, actor="steward")
    outcomes = node.pipeline.commit(batch)
    assert {o.status for o in outcomes} == {Status.STORED}
    [entry] = node.vault.open(project(node), new_key, actor="b")
    assert entry.identifiers == Identifiers.of(identified(planted_files()[0]))


def test_projects_without_a_vault_keep_no_identifiers(node: Services) -> None:
    plain = new_project(node, "plain")
    ingest(node, "plain", planted_files())
    assert node.index.vault_entries(plain.id) == []
    with pytest.raises(VaultError, match="has no vault"):
        node.vault.open(plain, Path(os.devnull), actor="b")


def test_instances_stored_before_the_vault_get_their_entry_when_sent_again(
    node: Services, tmp_path: Path
) -> None:
    early = new_project(node, "early")
    ingest(node, "early", planted_files()[:2])
    key = tmp_path / "b.key"
    node.vault.init(early, key, broker="b", actor="s")
    again = ingest(node, "early", planted_files()[:2])
    assert {o.status for o in again} == {Status.DUPLICATE}
    assert len(node.vault.open(project(node, "early"), key, actor="b")) == 1
