"""Consent and withdrawal on a node's real index and blob store (SQLite, then PostgreSQL):
decisions recorded one by one or from a site's CSV (all or nothing), projects that require
consent quarantine subjects without one, and a withdrawal erases everything of the subject
(nothing of it left in the data directory or the database), refuses later uploads and
leaves a tombstone in the audit trail."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from node_helpers import expected_pseudonym, ingest, new_project, planted_files

from radbank.app import Services, recover
from radbank.dicom.deid.pseudonyms import patient_pseudonym
from radbank.governance.consent import InvalidConsent, decision, fhir_bundle
from radbank.ingest import Status
from radbank.semantic.vocabulary import graph_iri, subject_iri

FORM = "ICF-2024-0017"


def _subjects(node: Services, project: str) -> dict[str, list[bytes]]:
    """The planted files by the pseudonym the project gives their patient."""
    key = node.keys.project_key(node.index.get_project(project))
    by_subject: dict[str, list[bytes]] = {}
    for data in planted_files():
        by_subject.setdefault(expected_pseudonym(data, key, "basic"), []).append(data)
    assert len(by_subject) == 2
    return by_subject


def test_a_project_requiring_consent_quarantines_subjects_without_one(node: Services) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    node.index.update_project_dataset(project.id, {"consent_required": True})
    first, second = _subjects(node, "ct").items()
    node.consents.record(
        node.index.get_project("ct"),
        [decision(first[0], "given", ["DUO:0000042"], date(2024, 3, 1), FORM)],
        actor="steward",
        source="test",
    )
    outcomes = ingest(node, "ct", first[1] + second[1])
    statuses = [o.status for o in outcomes]
    assert statuses == [Status.STORED] * len(first[1]) + [Status.QUARANTINED] * len(second[1])
    held = outcomes[-1]
    assert f"no valid consent recorded for subject {second[0]}" in held.reason
    quarantined = node.index.list_quarantine(project.id)
    assert {row["pseudonym"] for row in quarantined} == {second[0]}


def test_csv_import_is_all_or_nothing_and_names_every_bad_row(node: Services) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    csv_text = (
        "patient_id,issuer,status,scope,decided_on,form_reference\n"
        "P-1001,HQV,given,DUO:0000042;DUO:0000019,2024-03-01,ICF-1\n"
        "P-1002,HQV,given,DUO:9999999,2024-03-01,ICF-2\n"
        "P-1003,HQV,maybe,DUO:0000042,2024-13-01,\n"
    )
    with pytest.raises(InvalidConsent) as refused:
        node.consents.import_csv(project, csv_text, actor="steward", source="test")
    problems = refused.value.problems
    assert any(p.startswith("row 3: scope") for p in problems)
    assert any(p.startswith("row 4: status") for p in problems)
    assert any(p.startswith("row 4: decided_on") for p in problems)
    assert any(p.startswith("row 4: form_reference") for p in problems)
    assert all("P-100" not in p for p in problems), "site identifiers are never quoted back"
    assert node.index.current_consents(project.id) == {}

    good = csv_text.splitlines()[:2]
    count, erased = node.consents.import_csv(
        project, "\n".join(good) + "\n", actor="steward", source="test"
    )
    assert (count, erased) == (1, [])
    (record,) = node.index.current_consents(project.id).values()
    key = node.keys.project_key(project)
    assert record.pseudonym == patient_pseudonym("HQV", "P-1001", key)
    assert record.scope == ("DUO:0000042", "DUO:0000019")
    # The site identifier is nowhere in the database.
    with node.index._engine.connect() as connection:  # noqa: SLF001 - a test looks at every row
        dump = " ".join(
            str(row)
            for table in ("consents", "audit_events")
            for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
        )
    assert "P-1001" not in dump


def test_consents_export_as_fhir_consent_resources(node: Services) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    pseudonym = next(iter(_subjects(node, "ct")))
    node.consents.record(
        project,
        [decision(pseudonym, "given", ["DUO:0000007:MONDO:0004992"], date(2024, 3, 1), FORM)],
        actor="steward",
        source="test",
    )
    bundle = fhir_bundle(node.index.current_consents(project.id).values(), project="ct", node="n1")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    consent = bundle["entry"][0]["resource"]
    assert consent["resourceType"] == "Consent" and consent["status"] == "active"
    assert consent["scope"]["coding"][0]["code"] == "research"
    assert consent["patient"]["identifier"]["value"] == pseudonym
    assert consent["dateTime"] == "2024-03-01"
    assert consent["sourceReference"]["identifier"]["value"] == FORM
    assert consent["provision"] == {
        "type": "permit",
        "purpose": [
            {
                "system": "http://purl.obolibrary.org/obo/duo.owl",
                "code": "DUO:0000007:MONDO:0004992",
            }
        ],
    }


def _all_bytes(directory: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in directory.rglob("*") if p.is_file()]


def test_withdrawal_erases_everything_of_the_subject(
    node: Services, tmp_path: Path, database_url: str | None
) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    subjects = _subjects(node, "ct")
    (gone, gone_files), (kept, kept_files) = subjects.items()
    outcomes = ingest(node, "ct", gone_files + kept_files)
    assert all(o.status == Status.STORED for o in outcomes)
    gone_outcomes = outcomes[: len(gone_files)]
    gone_uids = (
        {o.sop_instance_uid for o in gone_outcomes}
        | {o.study_instance_uid for o in gone_outcomes}
        | {o.series_instance_uid for o in gone_outcomes}
    )
    kept_uids = {o.sop_instance_uid for o in outcomes[len(gone_files) :]}
    kept_study = outcomes[-1].study_instance_uid
    cohort = node.index.add_cohort(
        project.id,
        name="both",
        description="",
        study_uids=[gone_outcomes[0].study_instance_uid, kept_study],
        created_by="steward",
    )
    node.consents.record(
        project,
        [decision(gone, "given", ["DUO:0000042"], date(2024, 3, 1), FORM)],
        actor="steward",
        source="test",
    )

    report = node.consents.withdraw(
        project, gone, actor="steward", source="10.0.0.5", reason="letter"
    )
    assert report.blobs == len(gone_files)
    (after,) = node.index.cohorts(project.id)
    assert after.id == cohort.id and after.study_uids == (kept_study,)

    # Nothing of the subject in the index (every table but the audit trail's tombstone) ...
    with node.index._engine.connect() as connection:  # noqa: SLF001 - a test looks at every row
        for table in sa.inspect(connection).get_table_names():
            rows = " ".join(str(r) for r in connection.execute(sa.text(f"SELECT * FROM {table}")))
            for uid in gone_uids:
                assert uid not in rows, (table, uid)
            if table not in ("audit_events", "withdrawals"):
                assert gone not in rows, table
    # ... nor in any byte of the data directory (SQLite file and write-ahead log included).
    node.index.close()
    scanned = _all_bytes(tmp_path / "data")
    assert scanned
    for path, data in scanned:
        for uid in gone_uids:
            assert uid.encode() not in data, (path, uid)
        assert gone not in str(path)
    if database_url is None:
        assert any(uid.encode() in data for _, data in scanned for uid in kept_uids)


def test_a_withdrawn_subject_is_refused_and_leaves_a_tombstone(node: Services) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    (gone, files), _ = _subjects(node, "ct").items()
    node.consents.withdraw(project, gone, actor="dpo", source="local")
    outcomes = ingest(node, "ct", files)
    assert all(o.status == Status.REJECTED for o in outcomes)
    assert f"subject {gone} withdrew consent" in outcomes[0].reason
    with pytest.raises(InvalidConsent, match="withdrew on"):
        node.consents.record(
            project,
            [decision(gone, "given", ["DUO:0000042"], date(2024, 3, 1), FORM)],
            actor="steward",
            source="test",
        )
    tombstones = [
        r for r in node.trail.records() if r.action in ("consent.withdraw", "subject.erase")
    ]
    assert [(r.action, r.actor, r.detail["pseudonym"]) for r in tombstones] == [
        ("consent.withdraw", "dpo", gone),
        ("subject.erase", "dpo", gone),
    ]
    assert node.trail.verify() == []


def test_an_erasure_cut_short_by_a_crash_is_finished_at_the_next_start(node: Services) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    (gone, files), _ = _subjects(node, "ct").items()
    assert all(o.status == Status.STORED for o in ingest(node, "ct", files))
    keys = node.index.subject_blob_keys(project.id, gone)
    # The crash: the tombstone is written, the rows and blobs are not erased yet.
    node.index.record_withdrawal(project.id, gone, by="dpo")
    assert all(node.store.exists(k) for k in keys)
    recover(node)
    assert not any(node.store.exists(k) for k in keys)
    assert node.index.subject_blob_keys(project.id, gone) == []
    assert node.index.withdrawals(project.id)[gone].erased_at is not None


def test_quarantined_objects_of_a_withdrawn_subject_go_too(node: Services) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    node.index.update_project_dataset(project.id, {"consent_required": True})
    (gone, files), _ = _subjects(node, "ct").items()
    assert all(o.status == Status.QUARANTINED for o in ingest(node, "ct", files))
    keys = [row["blob_key"] for row in node.index.list_quarantine(project.id)]
    report = node.consents.withdraw(project, gone, actor="dpo", source="local")
    assert report.blobs == len(files)
    assert node.index.list_quarantine(project.id) == []
    assert not any(node.store.exists(k) for k in keys)


def test_objects_held_for_consent_are_released_once_it_is_recorded(node: Services) -> None:
    new_project(node, "ct")
    project = node.index.get_project("ct")
    node.index.update_project_dataset(project.id, {"consent_required": True})
    project = node.index.get_project("ct")
    (subject, files), _ = _subjects(node, "ct").items()
    assert all(o.status == Status.QUARANTINED for o in ingest(node, "ct", files))
    held = node.index.list_quarantine(project.id)

    def release(quarantine_id: int) -> object:
        return node.pipeline.release(
            project, quarantine_id, actor="steward", source="test", audit=node.trail.event
        )

    early = release(held[0]["id"])
    assert early.status == Status.QUARANTINED and "no valid consent" in early.reason
    node.consents.record(
        project,
        [decision(subject, "given", ["DUO:0000042"], date(2024, 3, 1), FORM)],
        actor="steward",
        source="test",
    )
    outcomes = [release(row["id"]) for row in held]
    assert [o.status for o in outcomes] == [Status.STORED] * len(files)
    assert node.index.list_quarantine(project.id) == []
    stored = node.index.get_instances(project.id, [o.sop_instance_uid for o in outcomes])
    assert len(stored) == len(files)
    assert all(node.store.exists(r.blob_key) for r in stored.values())
    assert not any(node.store.exists(row["blob_key"]) for row in held)
    assert release(held[0]["id"]).status == Status.REJECTED  # released already
    assert [r.action for r in node.trail.records()].count("quarantine.release") == len(files)


def _consents_in_graph(node: Services, project: str) -> set[tuple[str, ...]]:
    answer = node.graphs.store.query(
        """
        PREFIX radbank: <https://w3id.org/radbank/ontology#>
        PREFIX dcterms: <http://purl.org/dc/terms/>
        SELECT ?subject ?status ?date ?condition ?disease WHERE {
          ?consent a radbank:Consent ; radbank:subject ?subject ;
                   radbank:consentStatus ?status ; dcterms:date ?date ;
                   radbank:dataUseCondition ?condition .
          OPTIONAL { ?consent radbank:dataUseDisease ?disease }
        }""",
        [graph_iri(project)],
        "text/csv",
    )
    return {tuple(row) for row in csv.reader(io.StringIO(answer.body.decode()))} - {
        ("subject", "status", "date", "condition", "disease")
    }


def test_each_subjects_current_consent_is_described_in_the_projects_graph(
    node: Services,
) -> None:
    """A researcher can select subjects by what they consented to, in SPARQL: the newest
    decision of each subject, replaced by a newer one, rebuilt with the graph, gone with a
    withdrawal."""
    new_project(node, "ct")
    project = node.index.get_project("ct")
    (first, files), (second, _) = _subjects(node, "ct").items()
    ingest(node, "ct", files)
    node.consents.record(
        project,
        [
            decision(first, "given", ["DUO:0000042"], date(2024, 3, 1), FORM),
            decision(second, "given", ["DUO:0000007:MONDO:0004992"], date(2024, 3, 2), FORM),
        ],
        actor="steward",
        source="test",
    )
    duo = "http://purl.obolibrary.org/obo/DUO_"
    first_iri, second_iri = (subject_iri("ct", p) for p in (first, second))
    assert _consents_in_graph(node, "ct") == {
        (first_iri, "given", "2024-03-01", duo + "0000042", ""),
        (second_iri, "given", "2024-03-02", duo + "0000007",
         "http://purl.obolibrary.org/obo/MONDO_0004992"),
    }  # fmt: skip
    assert (
        FORM
        not in node.graphs.store.query(
            "CONSTRUCT WHERE { ?s ?p ?o }", [graph_iri("ct")], "application/n-triples"
        ).body.decode()
    )  # the form reference is the site's free text: index only

    node.consents.record(
        project,
        [decision(first, "given", ["DUO:0000006"], date(2024, 6, 1), FORM)],
        actor="steward",
        source="test",
    )
    described = _consents_in_graph(node, "ct")
    assert (first_iri, "given", "2024-06-01", duo + "0000006", "") in described
    assert len(described) == 2

    node.graphs.rebuild(project)
    assert _consents_in_graph(node, "ct") == described
    assert node.graphs.stale_projects() == []

    node.consents.withdraw(project, second, actor="steward", source="test", reason="letter")
    assert {row[0] for row in _consents_in_graph(node, "ct")} == {first_iri}
