"""What the node says in RDF about stored objects and their dose values: real de-identified
objects (the synthetic CT demo with its dose reports, a fluoroscopy report, the vendor
reports of /work/shared/data/rdsr when present) are indexed in a real SQLite index, mapped,
loaded into an Oxigraph store and queried as a user would."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

import pydicom
import pytest
from liveserver import vendor_file
from pydicom.dataset import Dataset
from pyoxigraph import Literal, NamedNode, Quad, RdfFormat, Store

from radbank.dicom.dataset_json import index_attributes
from radbank.dicom.dose.table import COLUMNS
from radbank.dicom.instance import InstanceSettings, deidentify_instance
from radbank.index import DoseFilter, Index, InstanceRecord, Project
from radbank.ingest.dose import DoseReader, dose_rows, water_equivalent_diameter
from radbank.projects import deid_profile
from radbank.semantic import vocabulary as v
from radbank.semantic.mapping import (
    EVENT_QUANTITIES,
    REPORT_QUANTITIES,
    batch_quads,
    instance_quads,
    project_quads,
)
from radbank.synthetic import demo_studies
from radbank.synthetic_dose import fluoro_rdsr

PROJECT = "ct-trial"
VENDOR_RDSR = Path("/work/shared/data/rdsr")
RECEIVED = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
PREFIXES = f"""
PREFIX radbank: <{v.RB}>
PREFIX dcm: <{v.DCM}>
PREFIX qudt: <{v.QUDT}>
PREFIX prov: <{v.PROV}>
PREFIX dcterms: <{v.DCT}>
PREFIX xsd: <{v.XSD}>
"""
SHARED_CLASSES = ("Device", "Ingest", "Deidentification", "DoseExtraction", "Subject")


@dataclasses.dataclass(frozen=True)
class Stored:
    """One object as ingest stored it: its record (with the dose rows ingest read) and blob."""

    record: InstanceRecord
    blob: bytes


def _part10(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ingest(datasets: Sequence[Dataset], project_id: int, source: str) -> list[Stored]:
    """De-identify and read the objects as radbank.ingest.pipeline does."""
    settings = InstanceSettings(profile=deid_profile("research-dose", {}), key=b"k" * 32)
    reader = DoseReader()
    stored = []
    for dataset in datasets:
        raw = _part10(dataset)
        done = deidentify_instance(pydicom.dcmread(io.BytesIO(raw)), settings, raw)
        deidentified = done.result.dataset
        record = InstanceRecord(
            project_id=project_id,
            study_instance_uid=str(deidentified.StudyInstanceUID),
            series_instance_uid=str(deidentified.SeriesInstanceUID),
            sop_instance_uid=str(deidentified.SOPInstanceUID),
            sop_class_uid=str(deidentified.SOPClassUID),
            transfer_syntax_uid=str(deidentified.file_meta.TransferSyntaxUID),
            blob_key=f"{PROJECT}/{deidentified.SOPInstanceUID}",
            size_bytes=len(done.blob),
            sha256="0" * 64,
            attributes=index_attributes(deidentified),
            received_at=RECEIVED,
            source=source,
            dose_rows=reader.rows(deidentified, done.blob),
            dw_cm=water_equivalent_diameter(deidentified),
        )
        stored.append(Stored(record, done.blob))
    return stored


def _rebuilt(record: InstanceRecord, blob: bytes) -> InstanceRecord:
    """The record as `radbank rdf rebuild` sees it: read back from the index, its dose rows
    and water-equivalent diameter read again from the stored object (each on its own)."""
    dataset = pydicom.dcmread(io.BytesIO(blob))
    return dataclasses.replace(
        record, dose_rows=dose_rows(dataset, blob), dw_cm=water_equivalent_diameter(dataset)
    )


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    opened = Index(f"sqlite:///{tmp_path_factory.mktemp('index')}/index.sqlite3")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def project(index: Index) -> Project:
    return index.create_project(PROJECT, key_salt=b"s" * 16)


@pytest.fixture(scope="module")
def demo(index: Index, project: Project) -> list[Stored]:
    """Two patients, each one CT study of two series of four slices and its dose report, and
    a fluoroscopy report: indexed."""
    datasets = list(
        demo_studies(
            sites=1, patients_per_site=2, studies_per_patient=1, series_per_study=2,
            instances_per_series=4,
        )
    )  # fmt: skip
    stored = _ingest([*datasets, fluoro_rdsr(7)], project.id, "stow-rs")
    index.add_instances([s.record for s in stored])
    return stored


@pytest.fixture(scope="module")
def vendor(index: Index, project: Project) -> list[Stored]:
    """The vendor dose reports, indexed; none when the folder is absent (tests that need
    them skip, the others run on the synthetic objects alone)."""
    files = sorted(VENDOR_RDSR.glob("*.dcm")) if VENDOR_RDSR.is_dir() else []
    datasets = [pydicom.dcmread(io.BytesIO(vendor_file(f))) for f in files]
    stored = _ingest(datasets, project.id, "cli-import")
    if stored:
        index.add_instances([s.record for s in stored])
    return stored


def _need(vendor: list[Stored]) -> None:
    if not vendor:
        pytest.skip(f"no vendor dose reports in {VENDOR_RDSR}")


def _store(quads: Sequence[Quad]) -> Store:
    store = Store()
    store.bulk_extend(quads)
    return store


def _select(store: Store, query: str) -> list[dict[str, Any]]:
    solutions = store.query(PREFIXES + query, use_default_graph_as_union=True)
    names = [variable.value for variable in solutions.variables]
    return [
        {name: (None if s[name] is None else s[name].value) for name in names} for s in solutions
    ]


def _records(stored: Sequence[Stored]) -> list[InstanceRecord]:
    return [s.record for s in stored]


def _modality(record: InstanceRecord) -> str:
    return record.attributes["00080060"]["Value"][0]


# --- what a physicist asks -------------------------------------------------------------------


def test_mean_ctdivol_per_protocol_is_what_the_dose_table_has(
    demo: list[Stored], vendor: list[Stored], index: Index, project: Project
) -> None:
    store = _store(batch_quads(PROJECT, _records([*demo, *vendor])))
    found = _select(
        store,
        """
        SELECT ?protocol (AVG(?value) AS ?mean) (COUNT(?event) AS ?events) WHERE {
          SELECT DISTINCT ?event ?protocol ?value WHERE {
            ?event a radbank:CTAcquisition ;
                radbank:acquisitionProtocol ?protocol ;
                radbank:doseQuantity ?q .
            ?q radbank:quantityConcept dcm:113830 ;
                qudt:numericValue ?value ;
                prov:wasDerivedFrom ?report .
            ?report a radbank:RadiationDoseReport .
          }
        } GROUP BY ?protocol
        """,
    )
    events, _ = index.dose_events(
        project.id, DoseFilter(equal={"source": "report", "kind": "CT"}, limit=None)
    )
    by_protocol: dict[str, list[float]] = {}
    for event in events:
        if event["protocol"] and event["ctdivol_mgy"] is not None:
            by_protocol.setdefault(event["protocol"], []).append(event["ctdivol_mgy"])
    assert len(by_protocol) >= (5 if vendor else 2)
    assert {row["protocol"]: int(row["events"]) for row in found} == {
        protocol: len(values) for protocol, values in by_protocol.items()
    }
    for row in found:
        assert float(row["mean"]) == pytest.approx(mean(by_protocol[row["protocol"]]))


def test_adults_of_an_age_range_are_found_by_a_simple_filter(demo: list[Stored]) -> None:
    store = _store(batch_quads(PROJECT, _records(demo)))
    ages = _select(
        store,
        "SELECT DISTINCT ?study ?age ?sex WHERE { ?study radbank:patientAge ?age ; "
        "radbank:patientSex ?sex }",
    )
    assert ages and all(row["sex"] in {"M", "F", "O"} for row in ages)
    low = min(float(row["age"]) for row in ages)
    adults = _select(
        store,
        f"SELECT DISTINCT ?study WHERE {{ ?study a radbank:ImagingStudy ; "
        f"radbank:patientAge ?age FILTER(?age >= {low} && ?age < {low + 1}) }}",
    )
    assert {row["study"] for row in adults} == {
        row["study"] for row in ages if low <= float(row["age"]) < low + 1
    }


def test_patient_age_is_a_number_of_years(demo: list[Stored]) -> None:
    record = next(s.record for s in demo if _modality(s.record) == "CT")
    for age, years in (("045Y", "45"), ("006M", "0.5"), ("010W", "0.192"), ("003D", "0.008")):
        attributes = {**record.attributes, "00101010": {"vr": "AS", "Value": [age]}}
        quads = instance_quads(PROJECT, dataclasses.replace(record, attributes=attributes))
        (value,) = [q.object for q in quads if q.predicate.value == v.RB + "patientAge"]
        assert value == Literal(years, datatype=NamedNode(v.XSD + "decimal"))


def test_literals_have_exact_datatypes(demo: list[Stored]) -> None:
    quads = batch_quads(PROJECT, _records(demo))

    def datatypes(predicate: str) -> set[str]:
        return {
            q.object.datatype.value
            for q in quads
            if q.predicate.value == predicate and isinstance(q.object, Literal)
        }

    assert datatypes(v.QUDT + "numericValue") == {v.XSD + "double"}
    assert datatypes(v.DCT + "date") == {v.XSD + "date"}
    assert datatypes(v.PROV + "startedAtTime") == {v.XSD + "dateTime"}
    assert datatypes(v.RB + "patientWeight") == {v.XSD + "decimal"}
    assert datatypes(v.RB + "sopInstanceUID") == {v.XSD + "string"}
    ingest_times = {
        q.object.value
        for q in quads
        if q.predicate.value == v.PROV + "startedAtTime" and "activity" in q.subject.value
    }
    assert ingest_times == {"2025-03-04T05:06:07.891011+00:00"}


# --- provenance and erasure -------------------------------------------------------------------


def test_every_node_of_a_subject_carries_it_and_erasure_by_node_leaves_nothing(
    demo: list[Stored],
) -> None:
    store = _store(batch_quads(PROJECT, _records(demo)))
    shared = " ".join(f"radbank:{name}" for name in SHARED_CLASSES)
    unmarked = _select(
        store,
        f"""
        SELECT DISTINCT ?node WHERE {{
          ?node ?p ?o .
          FILTER NOT EXISTS {{ ?node radbank:subject ?subject }}
          FILTER NOT EXISTS {{ VALUES ?shared {{ {shared} prov:SoftwareAgent }}
                               ?node a ?shared }}
        }}
        """,
    )
    assert unmarked == []
    counts = {
        row["s"]: int(row["n"])
        for row in _select(
            store, "SELECT ?s (COUNT(?n) AS ?n) { ?n radbank:subject ?s } GROUP BY ?s"
        )
    }
    assert len(counts) == 3
    erased = sorted(counts)[0]
    # Erasure as the store does it: the subject node and every node carrying it.
    nodes = [NamedNode(erased)] + [
        NamedNode(row["n"])
        for row in _select(store, f"SELECT ?n {{ ?n radbank:subject <{erased}> }}")
    ]
    for node in nodes:
        for quad in list(store.quads_for_pattern(node, None, None)) + list(
            store.quads_for_pattern(None, None, node)
        ):
            store.remove(quad)
    erased_uids = {
        uid
        for s in demo
        if v.subject_iri(PROJECT, s.record.attributes["00100020"]["Value"][0]) == erased
        for row in ({"irradiation_event_uid": None}, *s.record.dose_rows)
        for uid in (
            s.record.study_instance_uid,
            s.record.series_instance_uid,
            s.record.sop_instance_uid,
            row["irradiation_event_uid"],
        )
        if uid
    }
    left = {term.value for quad in store for term in (quad.subject, quad.object)}
    assert len(erased_uids) > 5
    assert not [text for text in left if any(uid in text for uid in erased_uids)]
    assert erased.rsplit(":", 1)[1] not in left  # the pseudonym literal went too
    after = {
        row["s"]: int(row["n"])
        for row in _select(
            store, "SELECT ?s (COUNT(?n) AS ?n) { ?n radbank:subject ?s } GROUP BY ?s"
        )
    }
    assert after == {s: n for s, n in counts.items() if s != erased}


def test_provenance_names_the_batch_the_software_and_the_deidentification(
    demo: list[Stored],
) -> None:
    store = _store(batch_quads(PROJECT, _records(demo)))
    rows = _select(
        store,
        """
        SELECT DISTINCT ?ingest ?via ?agent ?method WHERE {
          ?instance a radbank:Instance ; prov:wasGeneratedBy ?ingest .
          ?ingest a radbank:Ingest ; radbank:receivedVia ?via ;
              prov:wasAssociatedWith ?agent ; dcterms:hasPart ?deid .
          ?agent a prov:SoftwareAgent .
          ?deid a radbank:Deidentification ; radbank:deidentificationMethod ?method .
        }
        """,
    )
    assert {row["ingest"] for row in rows} == {
        f"urn:radbank:activity:{PROJECT}:ingest:"
        + hashlib.sha256(f"{RECEIVED.isoformat()}\0stow-rs".encode()).hexdigest()[:16]
    }
    assert {row["via"] for row in rows} == {"stow-rs"}
    assert v.dcm_concept("113100") in {row["method"] for row in rows}  # Basic Profile
    assert v.dcm_concept("113108") in {row["method"] for row in rows}  # patient characteristics


def test_every_dicom_iri_is_the_uid_of_an_object_event_or_device_of_the_records(
    demo: list[Stored], vendor: list[Stored]
) -> None:
    records = _records([*demo, *vendor])
    uids = {
        uid
        for r in records
        for uid in (r.study_instance_uid, r.series_instance_uid, r.sop_instance_uid)
    } | {
        row[column]
        for r in records
        for row in r.dose_rows
        for column in ("irradiation_event_uid", "device_observer_uid")
        if row.get(column)
    }
    iris = {
        term.value
        for quad in batch_quads(PROJECT, records)
        for term in (quad.subject, quad.object)
        if isinstance(term, NamedNode) and term.value.startswith("urn:oid:")
    }
    assert {v.uid_from_iri(iri) for iri in iris} <= uids
    assert {v.study_iri(r.sop_instance_uid) for r in records} <= iris
    assert all(
        q.graph_name == NamedNode(v.graph_iri(PROJECT)) for q in batch_quads(PROJECT, records)
    )


# --- determinism --------------------------------------------------------------------------------


def test_the_same_record_gives_the_same_quads(demo: list[Stored]) -> None:
    for stored in demo[:3] + demo[-2:]:
        assert instance_quads(PROJECT, stored.record) == instance_quads(PROJECT, stored.record)


def test_a_batch_is_the_union_of_its_objects(demo: list[Stored]) -> None:
    records = _records(demo)
    union = {q for r in records for q in instance_quads(PROJECT, r)}
    batch = batch_quads(PROJECT, records)
    assert set(batch) == union
    assert len(batch) < len(union) * 1.05  # what the objects share is written once


def test_rebuild_from_the_index_and_blobs_gives_the_ingest_graph(
    demo: list[Stored], vendor: list[Stored], index: Index, project: Project
) -> None:
    stored = [*demo, *vendor]
    blobs = {s.record.sop_instance_uid: s.blob for s in stored}
    from_index = index.get_instances(project.id, blobs)
    assert len(from_index) == len(stored)
    assert all(not record.dose_rows for record in from_index.values())  # not kept at rest
    rebuilt = [_rebuilt(record, blobs[uid]) for uid, record in sorted(from_index.items())]
    ingested = set(batch_quads(PROJECT, _records(stored)))
    assert set(batch_quads(PROJECT, rebuilt)) == ingested
    assert {q for r in rebuilt for q in instance_quads(PROJECT, r)} == ingested


# --- size -----------------------------------------------------------------------------------------


def test_a_ct_slice_adds_a_handful_of_quads(demo: list[Stored]) -> None:
    series = [
        s.record for s in demo if s.record.series_instance_uid == demo[0].record.series_instance_uid
    ]
    assert len(series) == 4 and series[0].dose_rows
    first = len(set(batch_quads(PROJECT, series[:1])))
    each = (len(set(batch_quads(PROJECT, series))) - first) / (len(series) - 1)
    assert 8 <= each <= 15
    events = {
        row["irradiation_event_uid"] for r in series for row in r.dose_rows
    }  # the slices describe one event
    assert len(events) == 1


# --- dose values ---------------------------------------------------------------------------------


def test_reports_of_one_event_share_equal_values_and_keep_different_ones(
    demo: list[Stored],
) -> None:
    report = next(s.record for s in demo if s.record.dose_rows and _modality(s.record) == "SR")
    row = next(
        r for r in report.dose_rows if r.get("ctdivol_mGy") and r.get("protocol") != "Topogram"
    )
    later = dataclasses.replace(
        report,
        sop_instance_uid=report.sop_instance_uid + ".1",
        dose_rows=({**row, "ctdivol_mGy": row["ctdivol_mGy"] + 1.5},),
    )
    store = _store(batch_quads(PROJECT, [report, later]))
    found = _select(
        store,
        f"""
        SELECT ?value (COUNT(?report) AS ?reports) WHERE {{
          <{v.irradiation_event_iri(row["irradiation_event_uid"])}> radbank:doseQuantity ?q .
          ?q radbank:quantityConcept ?concept ; qudt:numericValue ?value ;
             prov:wasDerivedFrom ?report .
          VALUES ?concept {{ dcm:113830 dcm:113838 }}
        }} GROUP BY ?value
        """,
    )
    assert {float(r["value"]): int(r["reports"]) for r in found} == {
        row["ctdivol_mGy"]: 1,
        row["ctdivol_mGy"] + 1.5: 1,
        row["dlp_mGycm"]: 2,
    }


def test_events_state_their_ctdivol_and_dlp_as_their_quantities_do(
    demo: list[Stored], vendor: list[Stored]
) -> None:
    """radbank:meanCTDIvolInmGy and radbank:dlpInmGycm repeat, on the event, the values of
    its quantities of concepts 113830 and 113838: the same values for the same events, two
    when two objects state two."""
    report = next(s.record for s in demo if s.record.dose_rows and _modality(s.record) == "SR")
    row = next(r for r in report.dose_rows if r.get("ctdivol_mGy"))
    later = dataclasses.replace(
        report,
        sop_instance_uid=report.sop_instance_uid + ".1",
        dose_rows=({**row, "ctdivol_mGy": row["ctdivol_mGy"] + 1.5},),
    )
    store = _store(batch_quads(PROJECT, [*_records(demo), *_records(vendor), later]))
    for concept, prop in (("113830", "meanCTDIvolInmGy"), ("113838", "dlpInmGycm")):
        quantities = _select(
            store,
            f"""SELECT ?event ?value WHERE {{
                  ?event radbank:doseQuantity ?q .
                  ?q radbank:quantityConcept dcm:{concept} ; qudt:numericValue ?value }}""",
        )
        plain = _select(store, f"SELECT ?event ?value WHERE {{ ?event radbank:{prop} ?value }}")
        by_quantity = {(r["event"], float(r["value"])) for r in quantities}
        assert len(by_quantity) > 20
        assert {(r["event"], float(r["value"])) for r in plain} == by_quantity
    event = v.irradiation_event_iri(row["irradiation_event_uid"])
    stated = _select(store, f"SELECT ?value WHERE {{ <{event}> radbank:meanCTDIvolInmGy ?value }}")
    assert sorted(float(r["value"]) for r in stated) == [
        row["ctdivol_mGy"],
        row["ctdivol_mGy"] + 1.5,
    ]


def test_cumulative_vendor_reports_describe_each_event_once(vendor: list[Stored]) -> None:
    _need(vendor)
    # CT-RDSR-Siemens-Multi-1, -2 and -3: one study's report after its 1st, 2nd, 3rd scan.
    by_patient: dict[str, list[InstanceRecord]] = {}
    for s in vendor:
        by_patient.setdefault(s.record.attributes["00100020"]["Value"][0], []).append(s.record)
    (reports,) = [records for records in by_patient.values() if len(records) == 3]
    store = _store(batch_quads(PROJECT, reports))
    events = _select(
        store,
        "SELECT ?e (COUNT(DISTINCT ?r) AS ?reports) { ?e a radbank:CTAcquisition ; "
        "radbank:doseReport ?r } GROUP BY ?e",
    )
    assert sorted(int(e["reports"]) for e in events) == [1, 2, 3]
    ctdivol = _select(
        store,
        "SELECT ?e (COUNT(?q) AS ?n) { ?e radbank:doseQuantity ?q . "
        "?q radbank:quantityConcept dcm:113830 } GROUP BY ?e",
    )
    assert [int(row["n"]) for row in ctdivol] == [1, 1, 1]


def test_radiopharmaceutical_report_gives_activity_organ_doses_and_effective_dose(
    vendor: list[Stored],
) -> None:
    _need(vendor)
    (nm,) = [
        s.record
        for s in vendor
        if any(row.get("administered_activity_MBq") for row in s.record.dose_rows)
    ]
    row = nm.dose_rows[0]
    store = _store(instance_quads(PROJECT, nm))
    (administration,) = _select(
        store,
        """
        SELECT ?a ?activity ?unit ?nuclide ?started WHERE {
          ?a a radbank:RadiopharmaceuticalAdministration ; radbank:radionuclideName ?nuclide ;
             prov:startedAtTime ?started ; radbank:doseQuantity ?q .
          ?q radbank:quantityConcept dcm:113507 ; qudt:numericValue ?activity ;
             qudt:hasUnit ?unit .
        }
        """,
    )
    assert administration["a"] == v.uid_iri(row["irradiation_event_uid"])
    assert float(administration["activity"]) == row["administered_activity_MBq"]
    assert administration["unit"] == v.UNIT + "MegaBQ"
    assert administration["nuclide"] == row["radionuclide"]
    organs = _select(
        store,
        "SELECT ?organ ?dose { ?a radbank:doseQuantity ?q . ?q radbank:quantityConcept "
        "dcm:113518 ; radbank:regionName ?organ ; qudt:numericValue ?dose }",
    )
    assert len(organs) == row["organ_doses"].count("=")
    assert {"Liver", "Bladder"} <= {o["organ"] for o in organs}
    effective = _select(
        store,
        "SELECT ?q ?value { ?a radbank:doseQuantity ?q . ?q radbank:quantityConcept "
        "dcm:113839 ; qudt:numericValue ?value FILTER NOT EXISTS { ?q a radbank:DoseEstimate } }",
    )
    assert [float(e["value"]) for e in effective] == [row["effective_dose_mSv"]]


def test_ct_effective_dose_is_marked_as_an_estimate_with_its_source(demo: list[Stored]) -> None:
    report = next(s.record for s in demo if _modality(s.record) == "SR" and s.record.dose_rows)
    store = _store(instance_quads(PROJECT, report))
    estimates = _select(
        store,
        "SELECT ?value ?how { ?e radbank:doseQuantity ?q . ?q a radbank:DoseEstimate ; "
        "radbank:quantityConcept dcm:113839 ; qudt:numericValue ?value ; "
        "radbank:estimateSource ?how }",
    )
    expected = [r["effective_dose_mSv"] for r in report.dose_rows if r.get("effective_dose_mSv")]
    assert sorted(float(e["value"]) for e in estimates) == sorted(expected)
    assert all(e["how"].startswith("estimate: k = ") for e in estimates)


def test_fluoroscopy_events_and_report_totals(demo: list[Stored]) -> None:
    report = next(
        s.record for s in demo if any(r.get("kind") == "projection" for r in s.record.dose_rows)
    )
    store = _store(instance_quads(PROJECT, report))
    dap = _select(
        store,
        "SELECT (SUM(?v) AS ?total) (COUNT(?e) AS ?n) { ?e a radbank:ProjectionXRayEvent ; "
        "radbank:doseQuantity ?q . ?q radbank:quantityConcept dcm:122130 ; "
        'qudt:numericValue ?v ; qudt:ucumCode "Gy.m2" }',
    )
    rows = report.dose_rows
    assert int(dap[0]["n"]) == len(rows)
    assert float(dap[0]["total"]) == pytest.approx(sum(r["dap_Gym2"] for r in rows))
    (total,) = _select(
        store,
        f"SELECT ?v {{ <{v.instance_iri(report.sop_instance_uid)}> a radbank:RadiationDoseReport ;"
        " radbank:doseQuantity ?q . ?q radbank:quantityConcept dcm:113722 ; "
        "qudt:numericValue ?v }",
    )
    assert float(total["v"]) == rows[0]["dap_total_Gym2"]
    device = _select(
        store,
        "SELECT DISTINCT ?d ?model { ?e prov:wasAssociatedWith ?d . ?d a radbank:Device ; "
        "radbank:manufacturerModelName ?model }",
    )
    assert device == [
        {"d": v.uid_iri(rows[0]["device_observer_uid"]), "model": rows[0]["model_name"]}
    ]


def test_an_object_without_a_pseudonym_is_described_without_a_subject(
    demo: list[Stored],
) -> None:
    record = demo[0].record
    attributes = {**record.attributes, "00100020": {"vr": "LO", "Value": ["John Smith"]}}
    quads = instance_quads(PROJECT, dataclasses.replace(record, attributes=attributes))
    assert not any(q.predicate.value == v.RB + "subject" for q in quads)
    assert not any("John" in term.value for q in quads for term in (q.subject, q.object))
    assert (
        Quad(
            NamedNode(v.instance_iri(record.sop_instance_uid)),
            NamedNode(v.RDF + "type"),
            NamedNode(v.RB + "Instance"),
            NamedNode(v.graph_iri(PROJECT)),
        )
        in quads
    )


# --- the project -----------------------------------------------------------------------------------


def test_project_node_states_licence_access_and_data_use(project: Project) -> None:
    described = dataclasses.replace(
        project,
        title="CT dose trial",
        licence="CC-BY-4.0",
        data_use=("DUO:0000007:MONDO:0004992", "DUO:0000019"),
    )
    store = _store(project_quads(described, base_url="https://node.example/"))
    node = v.project_iri(PROJECT)
    (row,) = _select(
        store,
        f"SELECT ?title ?licence ?rights {{ <{node}> a radbank:Project , "
        "<http://www.w3.org/ns/dcat#Dataset> ; dcterms:title ?title ; dcterms:license ?licence ;"
        " dcterms:accessRights ?rights }",
    )
    assert row == {
        "title": "CT dose trial",
        "licence": "http://spdx.org/licenses/CC-BY-4.0",
        "rights": "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
    }
    conditions = {
        r["c"] for r in _select(store, f"SELECT ?c {{ <{node}> radbank:dataUseCondition ?c }}")
    }
    assert conditions == {v.DUO + "0000007", v.DUO + "0000019"}
    (disease,) = _select(store, f"SELECT ?d {{ <{node}> radbank:dataUseDisease ?d }}")
    assert disease["d"] == "http://purl.obolibrary.org/obo/MONDO_0004992"
    endpoints = {
        r["url"]
        for r in _select(
            store,
            f"SELECT ?url {{ ?s <http://www.w3.org/ns/dcat#servesDataset> <{node}> ; "
            "<http://www.w3.org/ns/dcat#endpointURL> ?url }",
        )
    }
    assert endpoints == {
        f"https://node.example/dicom-web/projects/{PROJECT}",
        "https://node.example/sparql",
    }
    assert len(project_quads(described, base_url=None)) < len(store)


# --- the vocabulary the mapping writes ----------------------------------------------------------


def test_every_radbank_term_written_is_defined_in_the_ontology(
    demo: list[Stored], vendor: list[Stored], project: Project
) -> None:
    ontology = Store()
    ontology.load(path=str(v.ONTOLOGY_PATH), format=RdfFormat.TURTLE)
    defined = {q.subject.value for q in ontology if isinstance(q.subject, NamedNode)}
    quads = [
        *batch_quads(PROJECT, _records([*demo, *vendor])),
        *project_quads(project, base_url="https://node.example"),
    ]
    used = {
        term.value
        for q in quads
        for term in (q.predicate, q.object)
        if isinstance(term, NamedNode) and term.value.startswith(v.RB)
    }
    assert used - defined == set()
    concepts = {q.object.value for q in quads if q.predicate.value == v.RB + "quantityConcept"}
    members = {
        q.object.value
        for q in ontology.quads_for_pattern(
            NamedNode(v.RB + "doseQuantityConcepts"), NamedNode(v.SKOS + "member"), None
        )
    }
    assert concepts <= members


def test_every_number_of_the_dose_table_is_mapped() -> None:
    numbers = {column.name for column in COLUMNS if column.kind in ("real", "integer")}
    mapped = set(EVENT_QUANTITIES) | set(REPORT_QUANTITIES)
    # on the study (from the header), or a plain number of the event (no DICOM concept)
    elsewhere = {"patient_age_years", "patient_weight_kg", "entrance_dose_mGy"}
    assert numbers - mapped == elsewhere
    assert mapped <= numbers
    for column, (_, ucum) in {**EVENT_QUANTITIES, **REPORT_QUANTITIES}.items():
        suffix = column.rsplit("_", 1)[-1]
        if suffix not in ("kvp", "pitch", "pulses", "total"):
            assert suffix == ucum.replace(".", ""), column


def test_a_measured_image_states_its_water_equivalent_diameter(demo: list[Stored]) -> None:
    # The synthetic images are too small to measure; give one the diameter ingest would.
    record = dataclasses.replace(demo[0].record, dw_cm=27.4)
    store = _store(instance_quads(PROJECT, record))
    (row,) = _select(
        store,
        f"""
        SELECT ?value ?unit ?subject WHERE {{
          <{v.instance_iri(record.sop_instance_uid)}> radbank:waterEquivalentDiameter ?q .
          ?q radbank:quantityConcept dcm:113980 ; qudt:numericValue ?value ;
             qudt:hasUnit ?unit ; radbank:subject ?subject .
        }}
        """,
    )
    assert (float(row["value"]), row["unit"]) == (27.4, v.UNIT + "CentiM")
    assert row["subject"].startswith(f"urn:radbank:subject:{PROJECT}:RB-")
