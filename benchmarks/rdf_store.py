"""The semantic repository at 1,000,000 triples: how fast ingest fills the embedded Oxigraph
store and how fast it answers the three example queries, against rdflib's in-memory store
on the same triples, in one run.

Data. A node is built in a temporary directory and a project with profile research-dose
is filled through the ingest pipeline: `radbank.synthetic.demo_studies()` (24 CT studies
with their dose reports) and the vendor files of ../shared/data/rdsr (read in place; the
radiopharmaceutical report gets the Patient ID of the NM-CT report of its study, which the
vendor's anonymiser had changed), then two mrt-dosimetry submissions go through
`Graphs.submit` (one names the radiopharmaceutical administration). Those objects, with
their dose rows read back as `radbank rdf rebuild` reads them, and the submissions' quads
are the base copy; the benchmark data are `--triples` / (triples of a copy) copies of it
with every pseudonymised UID (2.25.N -> 2.25.9KKKN), pseudonym (last four characters),
submission and ingest time changed per copy: many subjects, studies and events, sharing
only what a real project shares (devices, the software agent, concepts). Making a copy is
never timed; before any clock starts the base copy's quads are checked equal to what
ingest wrote.

1. Population, in triples/s: distinct triples the timed writes added to the project graph
   / timed seconds (mapping included). The submissions' quads (not bulk ingest) are
   written before the clock starts, by every store.
   - radbank, ingest: the objects in batches of 64 (the CLI import batch) given to
     `Graphs.record` as the pipeline gives each committed batch (mapping, journal entry,
     the background writer's bulk loads into `OxigraphStore(hold=False)`, its withdrawal
     check against the node's index), as fast as they come, then `Graphs.flush`: from the
     first batch to the last triple durable. Making the batches is not timed. Then the
     store is compacted, as the writer does once uploads pause, timed apart (the queries
     read the compacted store).
   - radbank, rebuild: one `OxigraphStore(hold=True).replace_graph` (RocksDB bulk loader)
     streamed from `batch_quads` of chunks of 2,000 objects and the submissions' quads,
     as `Graphs.rebuild` streams (reading the blobs again is not timed).
   - peer: rdflib `Dataset` in memory, `addN` per batch of 64 objects' quads; mapping and
     the conversion of pyoxigraph terms to rdflib terms are done first and not timed.
2. Query latency: the queries of src/radbank/semantic/queries, unchanged, over the project
   graph and the ontology graph (the dataset `Graphs.query` gives every query), --repeat
   times each: the first run is printed apart as cold, median and p90 (nearest rank) are
   of the others.
   - radbank, per operation: `OxigraphStore(hold=False).query(..., accept="text/csv")`,
     the server's path (lock, an evaluator process opening RocksDB read-only, CSV back);
     a run is stopped by radbank's own timeout (--cap) and the query not repeated.
   - radbank, hold: `OxigraphStore(hold=True).query`, in the process holding the store;
     pyoxigraph cannot be interrupted, so that process is a child killed at --cap.
   - peer: rdflib `Dataset(default_union=True).query(text)` with the rows read out, a run
     stopped at --rdflib-cap (a timer signal), repeated while within --rdflib-budget.
   The answers are checked equal (same rows, numbers within 1e-9 relative).

Ratios are radbank/rdflib: above 1 radbank is faster (population), below 1 radbank is
faster (latency). The issue's targets: at least 50,000 triples/s during bulk ingest, median
latency under 200 ms at 1,000,000 triples.

    python benchmarks/rdf_store.py                    # 1,000,000 triples, ~10 min
    python benchmarks/rdf_store.py --quick            # 100,000 triples, 3 runs, ~1 min
    python benchmarks/rdf_store.py --skip-rdflib      # radbank alone
    python benchmarks/rdf_store.py --json rdf.json    # every number as JSON too
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import itertools
import json
import math
import multiprocessing
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pydicom
import pyoxigraph as ox
import rdflib

from radbank.app import Services, build_services, recover
from radbank.config import Settings
from radbank.dicom.dose import extract_bytes
from radbank.governance.policy import ADMIN
from radbank.graphs import Graphs
from radbank.index import InstanceRecord, Project
from radbank.ingest import Item
from radbank.ingest.dose import DoseReader
from radbank.ingest.journal import Journal
from radbank.projects import create_project
from radbank.semantic.mapping import batch_quads, graph_version_quad, project_quads
from radbank.semantic.store import OxigraphStore, QueryTimeout
from radbank.semantic.vocabulary import ONTOLOGY_GRAPH, ONTOLOGY_PATH, XSD, graph_iri
from radbank.synthetic import demo_studies

PROJECT = "bench"
INGEST_BATCH = 64  # objects per import batch of `radbank import` (cli._BATCH_FILES)
REBUILD_CHUNK = 2_000  # objects mapped per chunk by Graphs.rebuild
TARGET_TRIPLES_PER_S = 50_000
TARGET_MEDIAN_S = 0.200
QUERY_DIR = ONTOLOGY_PATH.parents[1] / "queries"  # src/radbank/semantic/queries
VENDOR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rdsr"
RADIOPHARMACEUTICAL_REPORT = "NM-RRDSR-Siemens.dcm"
NM_CT_REPORT = "NM-CT-RDSR-Siemens.dcm"
QUERY_NAMES = {
    "ctdivol-dlp-by-protocol-adults-40-60.rq": "CTDIvol/DLP per protocol, 40-60 y",
    "mrt-absorbed-dose-per-organ.rq": "MRT absorbed dose per organ",
    "studies-with-dose-report-but-no-images.rq": "studies with report, no images",
}

# What makes a copy of the base different: pseudonymised UIDs (2.25.<decimal>, never
# followed by a leading zero) and pseudonyms (RB- and 20 base32 characters).
_UID = re.compile(r"(?<![0-9.])2\.25\.(?=[1-9])")
_PSEUDONYM = re.compile(r"RB-([A-Z2-7]{16})[A-Z2-7]{4}")
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


# --- the base copy -------------------------------------------------------------------------


@dataclasses.dataclass
class Base:
    project: Project
    records: list[InstanceRecord]  # with dose_rows and dw_cm as a rebuild reads them
    submissions: str  # N-Quads of the submissions' parts
    submission_ids: list[str]


def _part10(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _vendor_items() -> list[Item]:
    if not VENDOR_DIR.is_dir():
        sys.exit(f"{VENDOR_DIR} is missing: the vendor dose reports are part of the data")
    paths = sorted(VENDOR_DIR.glob("*.dcm"))
    items = []
    nm_patient = pydicom.dcmread(VENDOR_DIR / NM_CT_REPORT, stop_before_pixels=True).PatientID
    for path in paths:
        data = path.read_bytes()
        if path.name == RADIOPHARMACEUTICAL_REPORT:
            dataset = pydicom.dcmread(io.BytesIO(data))
            dataset.PatientID = nm_patient
            data = _part10(dataset)
        items.append(Item(path.name, data))
    return items


def _workflows() -> list[dict[str, Any]]:
    """Two dosimetry workflows with the site's identifiers: the NM patient's (naming the
    administration of the radiopharmaceutical report) and one of a demo CT patient."""
    report = extract_bytes((VENDOR_DIR / RADIOPHARMACEUTICAL_REPORT).read_bytes())
    administration = report.radiopharmaceutical_administrations[0].administration_event_uid
    nm_ct = pydicom.dcmread(VENDOR_DIR / NM_CT_REPORT, stop_before_pixels=True)
    demo = next(d for d in demo_studies() if d.Modality == "CT")
    workflows = []
    for dataset, activity in ((nm_ct, administration), (demo, None)):
        workflow: dict[str, Any] = {
            "patient_id": dataset.PatientID,
            "issuer_of_patient_id": dataset.get("IssuerOfPatientID") or None,
            "study_instance_uid": [dataset.StudyInstanceUID],
            "calibration": {
                "sensitivity": 9.8,
                "unit": "s-1.MBq-1",
                "used": [dataset.SeriesInstanceUID],
            },
            "segmentation": {"used": [dataset.SeriesInstanceUID]},
            "volumes_of_interest": [
                {
                    "id": "liver",
                    "organ_code": "SCT:10200004",
                    "organ_name": "liver",
                    "volume": 1520,
                    "unit": "mL",
                },
                {
                    "id": "kidneys",
                    "organ_code": "SCT:64033007",
                    "organ_name": "kidneys",
                    "volume": 310,
                    "unit": "mL",
                },
                {"id": "lesion-1", "organ_name": "lesion 1", "volume": 12.4, "unit": "mL"},
            ],
            "time_activity_curves": [
                {
                    "voi": voi,
                    "points": [
                        {"time": t, "time_unit": "h", "activity": a * scale, "activity_unit": "MBq"}
                        for t, a in ((4, 812.5), (24, 640.0), (96, 210.2))
                    ],
                }
                for voi, scale in (("liver", 1.0), ("kidneys", 0.2), ("lesion-1", 0.05))
            ],
            "fit": {"model": "mono-exponential"},
            "time_integrated_activities": [
                {"voi": "liver", "value": 41000, "unit": "MBq.h"},
                {"voi": "kidneys", "value": 8100, "unit": "MBq.h"},
                {"voi": "lesion-1", "value": 2950, "unit": "MBq.h"},
            ],
            "absorbed_dose_calculation": {"method": "MIRD S-values, OLINDA/EXM 2.2"},
            "absorbed_doses": [
                {"voi": "liver", "value": 4.2, "unit": "Gy"},
                {"voi": "kidneys", "value": 3.1, "unit": "Gy"},
                {"voi": "lesion-1", "value": 38.5, "unit": "Gy"},
            ],
        }
        if activity is not None:
            workflow["administration_event_uid"] = activity
        workflows.append(workflow)
    return workflows


def build_base(services: Services) -> Base:
    project = create_project(
        services.index,
        PROJECT,
        keys=services.keys,
        trail=services.trail,
        actor="benchmark",
        profile="research-dose",
    )
    items = [Item(f"demo-{n:04d}.dcm", _part10(d)) for n, d in enumerate(demo_studies())]
    items += _vendor_items()
    outcomes = services.pipeline.ingest(items, project, source="benchmark", principal=ADMIN)
    stored = sum(o.acknowledged for o in outcomes)
    submission_ids = []
    for workflow in _workflows():
        report = services.graphs.submit(
            project,
            json.dumps({"workflows": [workflow]}).encode(),
            "application/json",
            "mrt-dosimetry",
            name="dosimetry.json",
            actor="benchmark",
            source="benchmark",
        )
        submission_ids.append(report.submission_id)
    # The objects as `radbank rdf rebuild` reads them back: dose rows from the blobs,
    # water-equivalent diameters from the index.
    reader = DoseReader()
    sizes = services.index.water_equivalent_diameters(project.id)
    records = []
    for record in services.index.iter_instances(project.id):
        blob = services.store.get(record.blob_key)
        dataset = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True, force=True)
        records.append(
            dataclasses.replace(
                record,
                dose_rows=reader.rows(dataset, blob),
                dw_cm=sizes.get(record.sop_instance_uid),
            )
        )
    submissions = "".join(
        services.store.get(part.blob_key).decode()
        for part in services.index.iter_submission_parts(project.id)
    )
    triples = services.graphs.store.count(graph_iri(PROJECT))
    print(
        f"base copy: {stored} of {len(items)} objects stored, {len(records)} in the index, "
        f"{len(submission_ids)} dosimetry submissions, {triples:,} triples"
    )
    # What the benchmark maps must be what ingest wrote: compare the base copy's quads
    # with the store's graph. Both go through an Oxigraph store, which writes typed
    # literals in canonical form ("...41.533000+00:00" is read back "...41.533Z").
    written = _graph_text(
        ox.parse(
            services.graphs.store.query(
                "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }",
                [graph_iri(PROJECT)],
                "application/n-triples",
                timeout_s=120,
            ).body,
            ox.RdfFormat.N_TRIPLES,
        )
    )
    graph = ox.NamedNode(graph_iri(PROJECT))
    mapped = _graph_text(
        ox.Triple(q.subject, q.predicate, q.object)
        for q in itertools.chain(
            project_quads(project, base_url=None),
            [graph_version_quad(PROJECT)],
            batch_quads(PROJECT, records),
            ox.parse(submissions.encode(), ox.RdfFormat.N_QUADS),
        )
        if q.graph_name == graph
    )
    if mapped != written:
        sys.exit(
            f"the base copy's quads differ from what ingest wrote: {len(mapped - written)} "
            f"mapped only, {len(written - mapped)} written only, e.g. "
            f"{sorted(mapped ^ written)[:3]}"
        )
    return Base(project, records, submissions, submission_ids)


def _graph_text(triples: Iterable[ox.Triple]) -> set[str]:
    store = ox.Store()
    store.extend(ox.Quad(t.subject, t.predicate, t.object) for t in triples)
    return {str(q.triple) for q in store}


# --- copies --------------------------------------------------------------------------------


class Copier:
    """Copy `number` of the base: every pseudonymised UID, pseudonym and submission id
    changed, ingest times moved by `number` hours."""

    def __init__(self, base: Base) -> None:
        self.base = base

    def text(self, value: str, number: int) -> str:
        if "2.25." in value:
            value = _UID.sub(f"2.25.9{number:03d}", value)
        if "RB-" in value:
            suffix = "".join(_BASE32[(number >> shift) & 31] for shift in (15, 10, 5, 0))
            value = _PSEUDONYM.sub(lambda m: f"RB-{m.group(1)}{suffix}", value)
        return value

    def value(self, value: Any, number: int) -> Any:
        if isinstance(value, str):
            return self.text(value, number)
        if isinstance(value, dict):
            return {k: self.value(v, number) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, number) for v in value]
        if isinstance(value, tuple):
            return tuple(self.value(v, number) for v in value)
        return value

    def records(self, number: int) -> list[InstanceRecord]:
        moved = timedelta(hours=number)
        return [
            dataclasses.replace(
                record,
                study_instance_uid=self.text(record.study_instance_uid, number),
                series_instance_uid=self.text(record.series_instance_uid, number),
                sop_instance_uid=self.text(record.sop_instance_uid, number),
                attributes=self.value(record.attributes, number),
                dose_rows=self.value(record.dose_rows, number),
                received_at=record.received_at + moved,
            )
            for record in self.base.records
        ]

    def submissions(self, number: int) -> list[ox.Quad]:
        text = self.text(self.base.submissions, number)
        for submission_id in self.base.submission_ids:
            text = text.replace(submission_id, f"{submission_id}-{number}")
        return list(ox.parse(text.encode(), ox.RdfFormat.N_QUADS))


def copies_needed(copier: Copier, triples: int) -> tuple[int, int, int]:
    """(copies, triples per copy, triples two copies share)."""
    one = {q for q in batch_quads(PROJECT, copier.records(1))} | set(copier.submissions(1))
    two = {q for q in batch_quads(PROJECT, copier.records(2))} | set(copier.submissions(2))
    shared = len(one & two)
    copies = max(1, math.ceil((triples - shared) / (len(one) - shared)))
    if copies > 999:  # a copy's UIDs start 2.25.9KKK: four digits, always
        sys.exit(f"{triples:,} triples need {copies} copies of the base; at most 999")
    return copies, len(one), shared


def object_batches(
    copier: Copier, copies: int, size: int, clock: list[float]
) -> Iterator[list[InstanceRecord]]:
    """The objects of every copy in batches of `size`, across copies as an import stream
    runs. The time spent making copies is added to clock[0], to be taken off."""
    pending: list[InstanceRecord] = []
    for number in range(1, copies + 1):
        started = time.perf_counter()
        records = copier.records(number)
        clock[0] += time.perf_counter() - started
        for record in records:
            pending.append(record)
            if len(pending) == size:
                yield pending
                pending = []
    if pending:
        yield pending


def submission_quads(copier: Copier, copies: int) -> list[ox.Quad]:
    return [q for number in range(1, copies + 1) for q in copier.submissions(number)]


# --- population ----------------------------------------------------------------------------


@dataclasses.dataclass
class Population:
    seconds: float
    mapping_seconds: float  # part of `seconds`
    quads_written: int
    triples: int  # distinct triples the timed writes added to the project graph
    writes: int
    compaction_seconds: float = 0.0  # after the clock: RdfStore.compact, timed apart

    @property
    def rate(self) -> float:
        return self.triples / self.seconds


def _load_fixed(store: OxigraphStore, project: Project) -> None:
    """The ontology graph and the project node, outside every clock."""
    graph = ox.NamedNode(ONTOLOGY_GRAPH)
    store.replace_graph(
        ONTOLOGY_GRAPH,
        (
            ox.Quad(t.subject, t.predicate, t.object, graph)
            for t in ox.parse(path=str(ONTOLOGY_PATH), format=ox.RdfFormat.TURTLE)
        ),
    )
    store.add(project_quads(project, base_url=None))


def _project_triples(store: OxigraphStore) -> int:
    return store.count(graph_iri(PROJECT))


class _CountingStore(OxigraphStore):
    """The embedded store, counting the writes `Graphs` makes (no other change)."""

    writes = 0

    def add(self, quads: Iterable[ox.Quad]) -> int:
        self.writes += 1
        return super().add(quads)


def populate_ingest(path: Path, base: Base, copier: Copier, copies: int, node: Path) -> Population:
    """Batches of 64 objects given to `Graphs.record` as the pipeline gives them after each
    committed import batch (journal entry, background writer; the node's index answers the
    writer's withdrawal check), as fast as they come, then `Graphs.flush`. The batches are
    made before the clock starts; the submissions are written first, outside the clock
    (they are not bulk ingest)."""
    store = _CountingStore(path)
    _load_fixed(store, base.project)
    store.add(submission_quads(copier, copies))
    batches = list(object_batches(copier, copies, INGEST_BATCH, [0.0]))
    services, _ = build_services(Settings(data_dir=node, admin_token="benchmark"))
    graphs = Graphs(
        store,
        services.index,
        services.store,
        services.keys,
        services.trail,
        Journal(path.parent / "rdf-journal"),
    )
    graphs.describe_project(base.project)  # and the graph's mapping version
    before = _project_triples(store)
    store.writes = 0
    try:
        started = time.perf_counter()
        for batch in batches:
            graphs.record(base.project, batch)
        graphs.flush()
        seconds = time.perf_counter() - started
        # What the writer does once uploads pause (after _QUIET_S without a batch), done
        # here at once and timed apart: the queries below read the compacted store.
        started = time.perf_counter()
        store.compact()
        compaction = time.perf_counter() - started
    finally:
        services.close()
    if list(graphs.journal.pending()):
        sys.exit("the background writer left batches unwritten (see the log)")
    added = _project_triples(store) - before
    return Population(seconds, 0.0, added, added, store.writes, compaction)


def populate_rebuild(path: Path, base: Base, copier: Copier, copies: int) -> Population:
    """One replace_graph with hold=True, streamed as Graphs.rebuild streams: the project
    node, the objects mapped in chunks of 2,000, the submissions' quads."""
    store = OxigraphStore(path, hold=True)
    try:
        _load_fixed(store, base.project)
        clock = [0.0]
        mapping = [0.0]

        def quads() -> Iterator[ox.Quad]:
            yield from project_quads(base.project, base_url=None)
            yield graph_version_quad(PROJECT)
            for batch in object_batches(copier, copies, REBUILD_CHUNK, clock):
                started = time.perf_counter()
                mapped = batch_quads(PROJECT, batch)
                mapping[0] += time.perf_counter() - started
                yield from mapped
            started = time.perf_counter()
            submissions = submission_quads(copier, copies)
            clock[0] += time.perf_counter() - started
            yield from submissions

        started = time.perf_counter()
        written = store.replace_graph(graph_iri(PROJECT), quads())
        seconds = time.perf_counter() - started - clock[0]
        triples = _project_triples(store)
    finally:
        store.close()
    return Population(seconds, mapping[0], written, triples, 1)


def _rdflib_term(term: Any) -> Any:
    if isinstance(term, ox.NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)
    if term.language:
        return rdflib.Literal(term.value, lang=term.language)
    if term.datatype.value == XSD + "string":
        return rdflib.Literal(term.value)
    return rdflib.Literal(term.value, datatype=rdflib.URIRef(term.datatype.value))


def populate_rdflib(
    base: Base, copier: Copier, copies: int
) -> tuple[rdflib.Dataset, Population, float]:
    """The peer's dataset, its population (addN per batch of 64 objects' quads, as
    radbank's ingest; the submissions first, outside the clock) and the seconds spent
    mapping and converting to rdflib terms (not timed)."""
    dataset = rdflib.Dataset(default_union=True)
    graphs: dict[str, rdflib.Graph] = {}

    def converted(quads: Iterable[ox.Quad]) -> list[tuple[Any, Any, Any, rdflib.Graph]]:
        rows = []
        for q in quads:
            name = q.graph_name.value  # type: ignore[union-attr]
            graph = graphs.get(name)
            if graph is None:
                graph = graphs[name] = dataset.graph(rdflib.URIRef(name))
            rows.append(
                (_rdflib_term(q.subject), _rdflib_term(q.predicate), _rdflib_term(q.object), graph)
            )
        return rows

    ontology = ox.NamedNode(ONTOLOGY_GRAPH)
    dataset.addN(
        converted(
            itertools.chain(
                (
                    ox.Quad(t.subject, t.predicate, t.object, ontology)
                    for t in ox.parse(path=str(ONTOLOGY_PATH), format=ox.RdfFormat.TURTLE)
                ),
                project_quads(base.project, base_url=None),
                submission_quads(copier, copies),
            )
        )
    )
    project_graph = graphs[graph_iri(PROJECT)]
    before = len(project_graph)
    clock = [0.0]
    seconds = conversion = 0.0
    quads_written = writes = 0
    for batch in object_batches(copier, copies, INGEST_BATCH, clock):
        started = time.perf_counter()
        rows = converted(batch_quads(PROJECT, batch))
        conversion += time.perf_counter() - started
        started = time.perf_counter()
        dataset.addN(rows)
        seconds += time.perf_counter() - started
        quads_written += len(rows)
        writes += 1
    added = len(project_graph) - before
    return dataset, Population(seconds, 0.0, quads_written, added, writes), conversion


# --- queries -------------------------------------------------------------------------------


GRAPHS = [graph_iri(PROJECT), ONTOLOGY_GRAPH]
# As Graphs.query gives it: the ontology is a named graph, not part of the default graph.
NAMED_ONLY = [ONTOLOGY_GRAPH]
Rows = list[tuple[str, ...]]


@dataclasses.dataclass
class Latency:
    cold: float | None  # the first run, seconds; None if it was stopped
    runs: list[float]  # the others
    rows: Rows | None
    capped_at: float | None = None  # a run was stopped after this many seconds

    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    def p90(self) -> float | None:
        if not self.runs:
            return None
        ordered = sorted(self.runs)
        return ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank

    def typical(self) -> float | None:
        """The median, or the cold run when it is the only one."""
        median = self.median()
        return self.cold if median is None else median


def _latency(times: list[float], rows: Rows | None, capped_at: float | None = None) -> Latency:
    return Latency(times[0] if times else None, times[1:], rows, capped_at)


def _csv_rows(body: bytes) -> Rows:
    reader = csv.reader(io.StringIO(body.decode()))
    next(reader)  # the variables
    return [tuple(row) for row in reader]


def time_per_operation(path: Path, text: str, repeat: int, cap_s: float) -> Latency:
    """The server's path: OxigraphStore(hold=False).query, evaluated in an evaluator
    process that opens the store read-only; radbank's own timeout stops a run."""
    store = OxigraphStore(path)
    times: list[float] = []
    rows = None
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            result = store.query(text, GRAPHS, "text/csv", timeout_s=cap_s, named_only=NAMED_ONLY)
        except QueryTimeout:
            return _latency(times, rows, cap_s)
        times.append(time.perf_counter() - started)
        rows = _csv_rows(result.body)
    return _latency(times, rows)


def _held_queries(path: str, text: str, repeat: int, connection: Connection) -> None:
    with OxigraphStore(Path(path), hold=True) as store:
        connection.send("open")
        for _ in range(repeat):
            started = time.perf_counter()
            body = store.query(text, GRAPHS, "text/csv", timeout_s=1e9, named_only=NAMED_ONLY).body
            connection.send((time.perf_counter() - started, body))


def time_held(path: Path, text: str, repeat: int, cap_s: float) -> Latency:
    """OxigraphStore(hold=True).query in the process holding the store. pyoxigraph cannot
    be interrupted, so that process is a child, killed when a run exceeds the cap."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    child = context.Process(target=_held_queries, args=(str(path), text, repeat, theirs))
    child.start()
    times: list[float] = []
    rows = None
    capped = None
    try:
        if not ours.poll(120) or ours.recv() != "open":
            sys.exit(f"the store {path} could not be opened with hold=True")
        for _ in range(repeat):
            if not ours.poll(cap_s):
                capped = cap_s
                break
            seconds, body = ours.recv()
            times.append(seconds)
            rows = _csv_rows(body)
    finally:
        if capped is not None:
            child.kill()
        child.join()
    return _latency(times, rows, capped)


class _Stopped(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def time_rdflib(
    dataset: rdflib.Dataset, text: str, repeat: int, cap_s: float, budget_s: float
) -> Latency:
    """rdflib evaluates in Python, so a timer signal can stop a run part-way. Runs are
    repeated while they have taken less than `budget_s` in all."""
    times: list[float] = []
    rows = None
    previous = signal.signal(signal.SIGALRM, _stop)
    try:
        for _ in range(repeat):
            if len(times) >= 2 and sum(times) > budget_s:
                break
            signal.setitimer(signal.ITIMER_REAL, cap_s)
            started = time.perf_counter()
            try:
                answered = [
                    tuple("" if cell is None else str(cell) for cell in row)
                    for row in dataset.query(text)
                ]
            except _Stopped:
                return _latency(times, rows, cap_s)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            times.append(time.perf_counter() - started)
            rows = answered
    finally:
        signal.signal(signal.SIGALRM, previous)
    return _latency(times, rows)


def _same(ours: Rows, theirs: Rows) -> str | None:
    """None if the rows are equal (as multisets; numbers within 1e-9 relative), else why."""
    if len(ours) != len(theirs):
        return f"{len(ours)} rows against {len(theirs)}"

    def key(row: tuple[str, ...]) -> tuple[str, ...]:
        return tuple("" if _number(c) is not None else c for c in row)

    for a, b in zip(sorted(ours, key=key), sorted(theirs, key=key), strict=True):
        if len(a) != len(b):
            return f"row {a} against {b}"
        for x, y in zip(a, b, strict=True):
            nx, ny = _number(x), _number(y)
            if nx is not None and ny is not None:
                if not math.isclose(nx, ny, rel_tol=1e-9, abs_tol=1e-12):
                    return f"row {a} against {b}"
            elif x != y:
                return f"row {a} against {b}"
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# --- report --------------------------------------------------------------------------------


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} / {five:.2f}"


def _phase(name: str) -> float:
    print(f"\n== {name} ({_load()}, {datetime.now(UTC):%H:%M:%S} UTC)", flush=True)
    return time.perf_counter()


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:,.1f}"


def _cell(latency: Latency | None) -> str:
    if latency is None:
        return "-"
    if latency.cold is None:
        return f"stopped at {latency.capped_at:,.0f} s"
    text = f"{_ms(latency.median())} / {_ms(latency.p90())} ({_ms(latency.cold)})"
    if latency.capped_at is not None:
        text += f", then >{latency.capped_at:,.0f} s"
    return text


def _latency_ratio(ours: Latency | None, theirs: Latency | None) -> str:
    """ours / theirs of the typical runs; a bound when one of them was stopped."""
    if ours is None or theirs is None:
        return "-"
    a, b = ours.typical(), theirs.typical()
    if a is not None and b is not None:
        return f"{a / b:.3f}"
    if a is not None and theirs.capped_at:
        return f"<{a / theirs.capped_at:.3f}"
    if b is not None and ours.capped_at:
        return f">{ours.capped_at / b:.3f}"
    return "-"


def _print_runs(name: str, latency: Latency) -> None:
    runs = ", ".join(f"{t * 1e3:,.1f}" for t in latency.runs)
    stopped = f"; stopped at {latency.capped_at:,.0f} s" if latency.capped_at else ""
    print(f"  {name}: cold {_ms(latency.cold)}, then [{runs}] ms{stopped}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="runs per query (first: cold)")
    parser.add_argument("--quick", action="store_true", help="100,000 triples, 3 runs")
    parser.add_argument(
        "--cap", type=float, default=60.0, help="stop a radbank query run after this many s"
    )
    parser.add_argument(
        "--rdflib-cap", type=float, default=120.0, help="stop an rdflib query run after"
    )
    parser.add_argument(
        "--rdflib-budget", type=float, default=120.0, help="repeat an rdflib query up to"
    )
    parser.add_argument("--skip-rdflib", action="store_true", help="radbank alone")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    if args.quick:
        args.triples, args.repeat = 100_000, 3

    queries = {path.name: path.read_text() for path in sorted(QUERY_DIR.glob("*.rq"))}
    print(
        f"pyoxigraph {ox.__version__}, rdflib {rdflib.__version__}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, {_load()}"
    )
    latencies: dict[str, dict[str, Latency]] = {name: {} for name in queries}
    peer = None
    with tempfile.TemporaryDirectory(prefix="radbank-rdf-bench-") as directory:
        root = Path(directory)
        started = _phase("base copy: ingest, submissions")
        services, _ = build_services(Settings(data_dir=root / "node", admin_token="benchmark"))
        try:
            recover(services)
            base = build_base(services)
        finally:
            services.close()
        copier = Copier(base)
        copies, per_copy, shared = copies_needed(copier, args.triples)
        print(
            f"{copies} copies of {len(base.records)} objects and {len(base.submission_ids)} "
            f"submissions, {per_copy:,} triples each ({shared:,} of them shared by every "
            f"copy): ~{copies * (per_copy - shared) + shared:,} triples "
            f"({time.perf_counter() - started:.1f} s)"
        )

        _phase("population: radbank ingest (Graphs.record per batch of 64, background writer)")
        ingest = populate_ingest(root / "ingest" / "rdf", base, copier, copies, root / "node")
        print(
            f"{ingest.triples:,} triples added in {ingest.seconds:.1f} s ({ingest.writes} "
            f"writes for {math.ceil(copies * len(base.records) / INGEST_BATCH)} batches): "
            f"{ingest.rate:,.0f} triples/s; then compaction {ingest.compaction_seconds:.1f} s"
        )
        _phase("population: radbank rebuild (hold=True, replace_graph)")
        rebuild = populate_rebuild(root / "rebuild" / "rdf", base, copier, copies)
        print(
            f"{rebuild.triples:,} triples ({rebuild.quads_written:,} quads written) in "
            f"{rebuild.seconds:.1f} s (mapping {rebuild.mapping_seconds:.1f} s): "
            f"{rebuild.rate:,.0f} triples/s"
        )
        total = _project_triples(OxigraphStore(root / "ingest" / "rdf"))
        if rebuild.triples != total:
            sys.exit(f"ingest wrote {total:,} triples, rebuild {rebuild.triples:,}")

        path = root / "ingest" / "rdf"
        _phase(f"queries: radbank per operation (evaluator process), {args.repeat} runs")
        for name, text in queries.items():
            latencies[name]["radbank"] = time_per_operation(path, text, args.repeat, args.cap)
            _print_runs(name, latencies[name]["radbank"])
        _phase(f"queries: radbank hold=True (in the process holding the store), {args.repeat} runs")
        for name, text in queries.items():
            latencies[name]["hold"] = time_held(path, text, args.repeat, args.cap)
            _print_runs(name, latencies[name]["hold"])

        if not args.skip_rdflib:
            _phase("population: rdflib Dataset, addN per batch of 64")
            dataset, peer, conversion = populate_rdflib(base, copier, copies)
            print(
                f"{peer.triples:,} triples added in {peer.seconds:.1f} s (mapping and "
                f"conversion, not timed: {conversion:.1f} s): {peer.rate:,.0f} triples/s"
            )
            if peer.triples != ingest.triples:
                sys.exit(f"rdflib added {peer.triples:,} triples, radbank {ingest.triples:,}")
            _phase(f"queries: rdflib Dataset(default_union=True), up to {args.repeat} runs")
            for name, text in queries.items():
                latencies[name]["rdflib"] = time_rdflib(
                    dataset, text, args.repeat, args.rdflib_cap, args.rdflib_budget
                )
                _print_runs(name, latencies[name]["rdflib"])
            del dataset

    _phase("answers")
    agree = True
    for name in queries:
        ours = latencies[name]["radbank"].rows
        for other in ("hold", "rdflib"):
            if other not in latencies[name]:
                continue
            theirs = latencies[name][other].rows
            if ours is None or theirs is None:
                print(f"{name}: radbank / {other}: not compared (a run was stopped)")
                continue
            problem = _same(ours, theirs)
            agree &= problem is None
            verdict = "same" if problem is None else f"DIFFERENT: {problem}"
            print(f"{name}: radbank / {other}: {len(ours):,} rows, {verdict}")
    print("answers agree" if agree else "ANSWERS DIFFER")

    _phase("summary")
    print(
        f"\nPopulation: {total:,} triples in the project graph ({ingest.triples:,} of them by "
        "the timed batches of ingest and rdflib); ratio radbank / rdflib (above 1: faster)"
    )
    print(f"{'':34s} {'triples/s':>10s} {'seconds':>8s} {'ratio':>6s}")
    for label, population in (
        ("radbank ingest (record, 64)", ingest),
        ("radbank rebuild (hold=True)", rebuild),
        ("rdflib Dataset addN (64)", peer),
    ):
        if population is None:
            continue
        ratio = "" if peer is None or population is peer else f"{population.rate / peer.rate:.2f}"
        print(f"{label:34s} {population.rate:10,.0f} {population.seconds:8.1f} {ratio:>6s}")
    print(
        f"target >= {TARGET_TRIPLES_PER_S:,} triples/s during ingest: "
        f"{'met' if ingest.rate >= TARGET_TRIPLES_PER_S else 'NOT met'}"
    )
    print(
        "\nQuery latency, ms: median / p90 (cold); ratio of medians radbank / rdflib "
        "(below 1: faster)"
    )
    print(
        f"{'query':34s} {'rows':>6s} {'radbank per operation':>34s} {'radbank hold':>34s} "
        f"{'rdflib':>34s} {'ratio':>7s} {'hold':>7s}"
    )
    met = True
    for name in queries:
        row = latencies[name]
        median = row["radbank"].median()
        met &= median is not None and median < TARGET_MEDIAN_S
        rows = next((len(x.rows) for x in row.values() if x.rows is not None), None)
        print(
            f"{QUERY_NAMES.get(name, name):34s} {'-' if rows is None else f'{rows:,}':>6s} "
            f"{_cell(row['radbank']):>34s} {_cell(row['hold']):>34s} "
            f"{_cell(row.get('rdflib')):>34s} "
            f"{_latency_ratio(row['radbank'], row.get('rdflib')):>7s} "
            f"{_latency_ratio(row['hold'], row.get('rdflib')):>7s}"
        )
    print(f"target median < {TARGET_MEDIAN_S * 1e3:.0f} ms: {'met' if met else 'NOT met'}")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "measured_at": datetime.now(UTC).isoformat(),
                    "pyoxigraph": ox.__version__,
                    "rdflib": rdflib.__version__,
                    "copies": copies,
                    "population": {
                        label: dataclasses.asdict(p) | {"triples_per_s": p.rate}
                        for label, p in (("ingest", ingest), ("rebuild", rebuild), ("rdflib", peer))
                        if p is not None
                    },
                    "queries": {
                        name: {
                            label: {
                                "cold_s": latency.cold,
                                "runs_s": latency.runs,
                                "median_s": latency.median(),
                                "p90_s": latency.p90(),
                                "rows": len(latency.rows or []),
                                "capped_at_s": latency.capped_at,
                            }
                            for label, latency in row.items()
                        }
                        for name, row in latencies.items()
                    },
                    "answers_agree": agree,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
