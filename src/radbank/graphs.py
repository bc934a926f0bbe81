"""The node's RDF graphs as a service: what ingest stored becomes triples in the project's
named graph, a withdrawn subject's triples go with their data, a project's graph can be
rebuilt from the index and the blobs, non-DICOM submissions are validated and stored, and
SPARQL queries and DCAT descriptions are answered.

    graphs = Graphs(rdf_store, index, blobs, keys, trail, journal)
    graphs.record(project, records)            # after the index committed them; returns at once
    graphs.flush()                             # waits until what was recorded is written
    graphs.submit(project, body, "text/csv", "crf", name="visits.csv", actor=..., source=...)
    graphs.query("SELECT ...", readable_projects, accept, actor=..., source=...)
    graphs.rebuild(project)

The SQL index and the blobs are the record; the RDF store is derived from them. A batch is
journalled (project and SOP Instance UIDs) before its triples are written and the entry
removed after, so triples a crash or an unreachable remote store kept from being written
are written by `replay` at the next start, and `rebuild` regenerates everything.

Ingest's triples are mapped by the caller and written by a background thread of each
process, as many recorded batches in one write as are waiting (a write of the embedded
store pays tens of ms to open and flush the database, as much as writing 64 objects'
triples, and its bulk loader leaves the interpreter to the caller meanwhile): ingest never
waits for the RDF store, and a bulk import makes a few large writes instead of many small
ones. Erasures, rebuilds and `close` first wait for this process's pending writes;
queries also for the batches other processes had journalled (the journal directory is
shared), so an answer includes every object acknowledged before the query.
Submissions are stored as blobs of pseudonymised N-Quads, one per subject, so that erasure
deletes a subject's share and rebuild reloads the rest.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import pydicom
import pyoxigraph as ox

from radbank.governance.audit import AuditTrail
from radbank.governance.keys import NodeKeys
from radbank.index import (
    ConsentRecord,
    Index,
    InstanceRecord,
    Project,
    SubmissionPart,
    SubmissionRecord,
)
from radbank.ingest.dose import DoseReader
from radbank.ingest.journal import Journal
from radbank.ingest.site_identity import ProjectIdentity
from radbank.semantic import dcat, mapping
from radbank.semantic.store import QueryResult, RdfStore
from radbank.semantic.submissions import Held, Submission, prepare_submission
from radbank.semantic.vocabulary import (
    ONTOLOGY_GRAPH,
    ONTOLOGY_PATH,
    ONTOLOGY_VERSION,
    RB,
    graph_iri,
    project_iri,
    subject_iri,
)
from radbank.store import BlobStore

log = logging.getLogger(__name__)

_INSTANCE = RB + "Instance"
_CONSENT = RB + "Consent"
_MAPPING_VERSION = RB + "mappingVersion"
# What a journal entry of the RDF journal names: ["instances", project, SOP Instance UIDs...]
# or ["submission", project, submission id].
_INSTANCES = "instances"
_SUBMISSION = "submission"
_BATCH = 2_000  # instances mapped per write while rebuilding
_WRITE_AT_MOST = 4_096  # instances of recorded batches written together (~100 quads each)
# A write waits up to _LINGER_S after the first batch came for _WRITE_AT_LEAST instances to
# gather (an upload sends a batch every few ms; each write opens the database, 10-40 ms of
# CPU, and starts RocksDB's background threads: with 1 s, a server ingesting with two
# workers spent ~10 % of its CPU on the RDF store, with 5 s ~6 %; docs/benchmarks.md,
# STOW-RS runs 44-47), unless a query waits for the writer: in this process (`flush`) or in
# another (which touches the file _QUERY_WAITING of the journal's directory; the writer
# looks at it every _ASKED_EVERY_S while it lingers). Well under _RECENT_S, so that a
# query never takes a lingering batch for a dead process's.
_WRITE_AT_LEAST = 512
_LINGER_S = 5.0
_QUERY_WAITING = "query-waiting"
_ASKED_EVERY_S = 0.02
# A query waits (up to _AWAIT_OTHERS_S) for batches other processes of the node journalled
# in the last _RECENT_S seconds and have not written yet; older entries are a crashed
# process's or an unreachable store's, written at the next start.
_AWAIT_OTHERS_S = 5.0
_RECENT_S = 30.0
_WAIT_AT_MOST = 500_000  # quads waiting for the writer before `record` waits (~100 MB)
# After writes, once no batch has come for _QUIET_S, the writer has the store compacted if
# it grew by _COMPACT_GROWTH since the last compaction (`RdfStore.compact`): bulk loads
# leave the embedded store's files unmerged, which slows every query, and compacting
# during an upload would slow the upload.
_QUIET_S = 2.0
_COMPACT_GROWTH = 0.5
# SHACL validation costs ~6 ms and 50 kB a record: 10,000 records stay near a minute and
# under 1 GB. Larger data sets go in several submissions.
MAX_SUBMISSION_RECORDS = 10_000


@dataclass(frozen=True)
class RebuildReport:
    project: str
    instances: int
    submissions: int
    quads: int
    seconds: float


@dataclass(frozen=True)
class SubmissionReport:
    submission_id: str
    kind: str
    records: int
    subjects: int
    quads: int
    removed_fields: tuple[str, ...]


def _chunks(items: Iterable[InstanceRecord], size: int) -> Iterator[list[InstanceRecord]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _ProjectHoldings:
    """What a submission may reference: the project's subjects and objects, from the index."""

    def __init__(self, index: Index, project: Project) -> None:
        self.index = index
        self.project = project

    def subjects(self, pseudonyms: Iterable[str]) -> set[str]:
        return self.index.held_subjects(self.project.id, list(pseudonyms))

    def objects(self, uids: Iterable[str]) -> dict[str, Held]:
        return {
            uid: Held(level, pseudonym or "")
            for uid, (level, pseudonym) in self.index.held_objects(
                self.project.id, list(uids)
            ).items()
        }


@dataclass(frozen=True)
class _Recorded:
    project: Project
    records: Sequence[InstanceRecord]
    quads: list[ox.Quad]
    entry: Path  # the journal entry, ended once the triples are written


def _pseudonym(record: InstanceRecord) -> str | None:
    values = record.attributes.get("00100020", {}).get("Value") or [None]
    return str(values[0]) if values[0] is not None else None


class _Writer:
    """A thread that writes what `put` was given, everything waiting in one call of `write`
    (up to _WRITE_AT_MOST instances; after lingering for _WRITE_AT_LEAST), in order.
    Started at the first `put` of a process (a forked worker starts its own). `put` waits
    while more than _WAIT_AT_MOST quads are waiting (a store slower than ingest), so memory
    stays bounded."""

    def __init__(
        self,
        write: Callable[[list[_Recorded]], None],
        quiet: Callable[[], None],
        asked: Callable[[float], bool] = lambda since: False,
    ) -> None:
        self._write = write
        self._quiet = quiet  # called once after writes, when no batch came for _QUIET_S
        self._asked = asked  # whether another process's query waits since (time.time())
        self._changed = threading.Condition()
        self._waiting: deque[_Recorded] = deque()
        self._waiting_quads = 0
        self._busy = False
        self._hurry = 0  # callers of flush waiting: write what is there at once
        self._thread: threading.Thread | None = None
        self._pid = 0

    def put(self, item: _Recorded) -> None:
        with self._changed:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._busy = False
                self._thread = threading.Thread(
                    target=self._run, name="radbank-rdf-writer", daemon=True
                )
                self._thread.start()
            self._changed.wait_for(lambda: self._waiting_quads < _WAIT_AT_MOST)
            self._waiting.append(item)
            self._waiting_quads += len(item.quads)
            self._changed.notify_all()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything put so far is written (or failed and stays journalled);
        False if that took more than timeout_s."""
        if self._pid != os.getpid():
            return True  # another process's queue, copied by fork: not this process's to write
        with self._changed:
            self._hurry += 1
            self._changed.notify_all()
            try:
                return self._changed.wait_for(
                    lambda: not self._waiting and not self._busy, timeout_s
                )
            finally:
                self._hurry -= 1

    def _linger(self) -> None:
        """Under the condition: wait up to _LINGER_S for enough batches to gather, unless
        a query waits for the writer."""
        started, deadline = time.time(), time.monotonic() + _LINGER_S
        while not self._enough():
            left = deadline - time.monotonic()
            if left <= 0 or self._asked(started):
                return
            self._changed.wait_for(self._enough, min(left, _ASKED_EVERY_S))

    def _enough(self) -> bool:
        """Whether to write now rather than linger (the wait's timeout ends the linger)."""
        return self._hurry > 0 or sum(len(i.records) for i in self._waiting) >= _WRITE_AT_LEAST

    def _run(self) -> None:
        wrote = False
        while True:
            with self._changed:
                if wrote and not self._changed.wait_for(lambda: bool(self._waiting), _QUIET_S):
                    wrote = False
                    quiet = True
                else:
                    quiet = False
            if quiet:
                try:
                    self._quiet()
                except BaseException:  # noqa: BLE001 - the thread must live
                    log.exception("RDF: the background writer's upkeep of the store failed")
                continue
            with self._changed:
                self._changed.wait_for(lambda: bool(self._waiting))
                self._linger()
                taken: list[_Recorded] = []
                count = 0
                while self._waiting and (not taken or count < _WRITE_AT_MOST):
                    taken.append(self._waiting.popleft())
                    count += len(taken[-1].records)
                    self._waiting_quads -= len(taken[-1].quads)
                self._busy = True
                self._changed.notify_all()
            try:
                self._write(taken)
                wrote = True
            except BaseException:  # noqa: BLE001 - the thread must live; entries stay journalled
                log.exception("RDF: the background writer failed on %d batch(es)", len(taken))
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()


class Graphs:
    def __init__(
        self,
        store: RdfStore,
        index: Index,
        blobs: BlobStore,
        keys: NodeKeys,
        trail: AuditTrail,
        journal: Journal,
    ) -> None:
        self.store = store
        self.index = index
        self.blobs = blobs
        self.keys = keys
        self.trail = trail
        self.journal = journal
        self._described: dict[str, bytes] = {}  # project -> digest of its node as written
        self._query_waiting = journal.directory / _QUERY_WAITING
        self._writer = _Writer(
            self._write_recorded,
            lambda: self.store.compact(if_grown_by=_COMPACT_GROWTH),
            self._query_waits_since,
        )

    # Population at ingest

    def record(self, project: Project, records: Sequence[InstanceRecord]) -> None:
        """Have the triples of instances the index has just committed written: mapped and
        journalled now, written by the background writer (while the caller goes on). The
        instances are stored whatever happens to their triples; what could not be written
        stays journalled and is written by `replay` (at the next start) or `rebuild`."""
        if not records:
            return
        entry = self.journal.begin(
            [_INSTANCES, project.name, *(r.sop_instance_uid for r in records)]
        )
        try:
            quads = mapping.batch_quads(project.name, records)
        except Exception:  # noqa: BLE001 - a mapping bug must not fail the ingest
            log.exception(
                "RDF: the triples of %d instance(s) of project %s could not be made; they "
                "stay journalled (run `radbank rdf rebuild --project %s` once it is fixed)",
                len(records),
                project.name,
                project.name,
            )
            return
        self._writer.put(_Recorded(project, list(records), quads, entry))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the triples of everything this process recorded are written (or
        failed, and stay journalled); False after timeout_s."""
        return self._writer.flush(timeout_s)

    def _await_others(self) -> None:
        """Wait until the batches that other processes (the server's other workers, an
        import) had journalled when this was called are written, so that a query sees
        every object acknowledged before it; at most _AWAIT_OTHERS_S."""
        waiting = self.journal.entries(newer_than_s=_RECENT_S)
        if waiting:
            self._ask_writers()
        deadline = time.monotonic() + _AWAIT_OTHERS_S
        delay = 0.005
        while waiting and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            waiting = {entry for entry in waiting if entry.exists()}
        if waiting:
            log.warning(
                "RDF: answering a query while %d recent batch(es) of other processes are not "
                "written yet (a slow or unreachable RDF store)",
                len(waiting),
            )

    def _ask_writers(self) -> None:
        """Have the writers of every process of the node stop lingering (a query waits)."""
        try:
            self._query_waiting.touch()
        except OSError:  # they write when their linger ends
            log.warning("RDF: cannot touch %s to hurry the writers", self._query_waiting)

    def _query_waits_since(self, since: float) -> bool:
        try:
            # The file's time is the kernel's coarse clock: a few ms behind time.time().
            return self._query_waiting.stat().st_mtime >= since - 0.05
        except OSError:
            return False

    def close(self) -> None:
        """Write what is pending, compact the store if it grew (a `radbank import` ends
        here, before its writer would have paused long enough), then close it."""
        self.flush()
        try:
            self.store.compact(if_grown_by=_COMPACT_GROWTH)
        except Exception:  # noqa: BLE001 - an upkeep; the next pause or close does it
            log.exception("RDF: the store could not be compacted")
        self.store.close()

    def _write_recorded(self, batches: list[_Recorded]) -> None:
        by_project: dict[str, list[_Recorded]] = {}
        for batch in batches:
            by_project.setdefault(batch.project.name, []).append(batch)
        for name, recorded in by_project.items():
            try:
                self.describe_project(recorded[-1].project)
                self.store.add(self._unless_withdrawn(recorded[-1].project, recorded))
            except Exception:  # noqa: BLE001 - the archive holds them; replay writes them later
                log.exception(
                    "RDF: the triples of %d instance(s) of project %s were not written; they "
                    "are written at the next start (or run `radbank rdf rebuild --project %s`)",
                    sum(len(batch.records) for batch in recorded),
                    name,
                    name,
                )
                continue
            for batch in recorded:
                self.journal.end(batch.entry)

    def _unless_withdrawn(self, project: Project, recorded: list[_Recorded]) -> Iterator[ox.Quad]:
        """The batches' quads. The store consumes this inside its write (under its lock, for
        the embedded store), so the check for subjects withdrawn since they were recorded
        cannot interleave with an erasure, which removes under the same lock after the
        withdrawal is committed."""
        pseudonyms = {_pseudonym(r) for batch in recorded for r in batch.records}
        withdrawn = self.index.withdrawals(project.id, {p for p in pseudonyms if p is not None})
        for batch in recorded:
            if withdrawn and any(_pseudonym(r) in withdrawn for r in batch.records):
                kept = [r for r in batch.records if _pseudonym(r) not in withdrawn]
                yield from mapping.batch_quads(project.name, kept)
            else:
                yield from batch.quads

    def describe_project(self, project: Project, *, force: bool = False) -> None:
        """Write the project node (title, licence, data-use conditions) when this process
        has not written this version of it yet."""
        quads = mapping.project_quads(project, base_url=None)
        digest = hashlib.sha256("\n".join(sorted(str(q) for q in quads)).encode()).digest()
        if not force and self._described.get(project.name) == digest:
            return
        graph = graph_iri(project.name)
        self.store.remove_descriptions(graph, [project_iri(project.name)])
        if self.store.count(graph, _INSTANCE) == 0:
            # The graph's objects will all be written by this version's mapping; a graph
            # holding an older version's stays marked as such until rebuilt.
            self.store.remove_descriptions(graph, [graph])
            quads = [*quads, mapping.graph_version_quad(project.name)]
        self.store.add(quads)
        self._described[project.name] = digest

    def replay(self) -> int:
        """Write the triples of batches and submissions journalled but never written (a
        crash, an unreachable remote store); returns how many instances and submissions.
        Call before workers start."""
        replayed = 0
        for entry, names in self.journal.pending():
            kind, name, keys = (names[0], names[1], names[2:]) if len(names) > 1 else ("", "", [])
            project = self.index.get_project(name) if name else None
            if project is not None and kind == _INSTANCES:
                records = list(self.index.get_instances(project.id, keys).values())
                self.store.add(self._quads_from_blobs(project, records, DoseReader()))
                replayed += len(records)
            elif kind == _SUBMISSION and keys:
                found = self.index.get_submission(project.id, keys[0]) if project else None
                if found is not None:
                    self.store.add(self._part_quads(project, found.parts))
                    replayed += 1
                else:
                    for key in keys[1:]:
                        if not self.index.blob_key_exists(key):
                            self.blobs.delete(key)
            self.journal.end(entry)
        return replayed

    def _part_quads(self, project: Project, parts: Iterable[SubmissionPart]) -> Iterator[ox.Quad]:
        graph = ox.NamedNode(graph_iri(project.name))
        for part in parts:
            for quad in ox.parse(self.blobs.get(part.blob_key), ox.RdfFormat.N_QUADS):
                yield ox.Quad(quad.subject, quad.predicate, quad.object, graph)

    # Erasure

    def erase_subject(self, project: Project, pseudonym: str) -> int:
        """Remove every triple about the subject from the project's graph, and every trace
        of them from the store's files."""
        self.flush()
        removed = self.store.remove_subjects(
            graph_iri(project.name), [subject_iri(project.name, pseudonym)]
        )
        self.store.purge()
        return removed

    # Rebuild

    def rebuild(
        self, project: Project, progress: Callable[[int], None] | None = None
    ) -> RebuildReport:
        """Regenerate the project's graph from the index and the blobs: the objects (dose
        values read again from the stored objects), the submissions, the project itself."""
        self.flush()
        started = time.perf_counter()
        counts = {"instances": 0, "submissions": 0}

        def quads() -> Iterator[ox.Quad]:
            yield from mapping.project_quads(project, base_url=None)
            yield mapping.graph_version_quad(project.name)
            for consent in self._given_consents(project):
                yield from mapping.consent_quads(
                    project.name, consent.pseudonym, consent.scope, consent.decided_on
                )
            reader = DoseReader()
            sizes = self.index.water_equivalent_diameters(project.id)
            for chunk in _chunks(self.index.iter_instances(project.id), _BATCH):
                yield from self._quads_from_blobs(project, chunk, reader, sizes)
                counts["instances"] += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            for part in self.index.iter_submission_parts(project.id):
                yield from self._part_quads(project, [part])
                counts["submissions"] += 1

        written = self.store.replace_graph(graph_iri(project.name), quads())
        # The old graph's removal and the new one's load leave files to merge: merged now,
        # so that queries after a rebuild read a compact store.
        self.store.compact()
        return RebuildReport(
            project.name,
            counts["instances"],
            counts["submissions"],
            written,
            time.perf_counter() - started,
        )

    def _quads_from_blobs(
        self,
        project: Project,
        records: Sequence[InstanceRecord],
        reader: DoseReader,
        sizes: dict[str, float] | None = None,
    ) -> list[ox.Quad]:
        """The quads of stored instances as ingest wrote them: dose rows read again from
        the objects, water-equivalent diameters as measured at ingest (the index has them)."""
        if sizes is None:
            sizes = self.index.water_equivalent_diameters(project.id)
        rows = []
        described = []
        for record in records:
            blob = self.blobs.get(record.blob_key)
            dataset = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True, force=True)
            rows.append(reader.rows(dataset, blob))
            described.append(replace(record, dw_cm=sizes.get(record.sop_instance_uid)))
        return mapping.batch_quads(project.name, described, rows)

    def ensure_ontology(self) -> None:
        """Load the ontology into its graph when the store lacks this version of it."""
        version = self.store.query(
            "SELECT ?v WHERE { ?o <http://www.w3.org/2002/07/owl#versionInfo> ?v }",
            [ONTOLOGY_GRAPH],
            "text/csv",
        ).body.decode()
        if ONTOLOGY_VERSION in version.splitlines()[1:]:
            return
        graph = ox.NamedNode(ONTOLOGY_GRAPH)
        self.store.replace_graph(
            ONTOLOGY_GRAPH,
            (
                ox.Quad(t.subject, t.predicate, t.object, graph)
                for t in ox.parse(path=str(ONTOLOGY_PATH), format=ox.RdfFormat.TURTLE)
            ),
        )

    def stale_projects(self) -> list[str]:
        """Projects whose graph describes another number of instances or consents than the
        index holds (a store that was replaced, writes lost), or was written by another
        version of the mapping (mapping.MAPPING_VERSION)."""
        stale = []
        for project in self.index.list_projects():
            held = self.index.count_instances(project.id)
            graph = graph_iri(project.name)
            described = self.store.count(graph, _INSTANCE)
            consents = len(self._given_consents(project))
            if (
                held != described
                or consents != self.store.count(graph, _CONSENT)
                or (
                    (described or consents)
                    and self._mapping_version(graph) != [mapping.MAPPING_VERSION]
                )
            ):
                stale.append(project.name)
        return stale

    def _given_consents(self, project: Project) -> list[ConsentRecord]:
        return [c for c in self.index.current_consents(project.id).values() if c.status == "given"]

    # Consent

    def record_consents(self, project: Project, pseudonyms: Iterable[str]) -> None:
        """Describe the subjects' current consents as the index holds them (after new
        decisions were recorded), replacing what the graph said of them."""
        pseudonyms = sorted(set(pseudonyms))
        current = self.index.current_consents(project.id, pseudonyms)
        graph = graph_iri(project.name)
        self.describe_project(project)
        self.store.remove_descriptions(
            graph, [mapping.consent_iri(project.name, p) for p in pseudonyms]
        )
        self.store.add(
            quad
            for consent in current.values()
            if consent.status == "given"
            for quad in mapping.consent_quads(
                project.name, consent.pseudonym, consent.scope, consent.decided_on
            )
        )

    def _mapping_version(self, graph: str) -> list[str]:
        """The mapping versions the graph says it was written with (none before version 2)."""
        answer = self.store.query(
            f"SELECT ?v WHERE {{ <{graph}> <{_MAPPING_VERSION}> ?v }}", [graph], "text/csv"
        )
        return answer.body.decode().splitlines()[1:]

    # Non-DICOM submissions

    def submit(
        self,
        project: Project,
        body: bytes,
        media_type: str,
        kind: str,
        *,
        name: str,
        actor: str,
        source: str,
    ) -> SubmissionReport:
        """Validate, pseudonymise and store a submission, whole or not at all (raises
        SubmissionRejected listing every violation)."""
        submission_id = uuid.uuid4().hex
        submitted_at = datetime.now(UTC)
        submission = prepare_submission(
            body,
            media_type,
            kind,
            project=project.name,
            submission_id=submission_id,
            submitted_by=actor,
            submitted_at=submitted_at,
            identity=ProjectIdentity.for_project(project, self.keys),
            holdings=_ProjectHoldings(self.index, project),
            max_records=MAX_SUBMISSION_RECORDS,
        )
        encoded = self._encode_parts(project, submission_id, submission)
        parts = [(part, quads) for part, quads, _ in encoded]
        record = SubmissionRecord(
            submission_id=submission_id,
            kind=kind,
            media_type=media_type.split(";")[0].strip().lower(),
            name=name[:200],
            submitted_by=actor,
            submitted_at=submitted_at,
            records=submission.records,
            removed_fields=tuple(submission.removed),
            parts=tuple(part for part, _ in parts),
        )
        # Journalled before the blobs: after a crash, `replay` deletes the blobs of a
        # submission the index never took, or writes the triples of one it took.
        keys = [part.blob_key for part, _ in parts]
        entry = self.journal.begin([_SUBMISSION, project.name, submission_id, *keys])
        self.blobs.put_many([(part.blob_key, data) for part, _, data in encoded])
        try:
            self.index.add_submission(
                project.id,
                record,
                self.trail.project_event(
                    "submission.store",
                    project.name,
                    actor=actor,
                    source=source,
                    detail={
                        "submission": submission_id,
                        "kind": kind,
                        "records": submission.records,
                        "subjects": len(submission.parts),
                    },
                ),
            )
        except BaseException:
            for key in keys:
                self.blobs.delete(key)
            self.journal.end(entry)
            raise
        try:
            self.store.add(quad for _, quads in parts for quad in quads)
        except Exception:  # noqa: BLE001 - stored and journalled: replay writes the triples
            log.exception(
                "RDF: submission %s of project %s is stored but its triples were not "
                "written; they are written at the next start",
                submission_id,
                project.name,
            )
        else:
            self.journal.end(entry)
        return SubmissionReport(
            submission_id,
            kind,
            submission.records,
            len(submission.parts),
            sum(part.quads for part, _ in parts),
            tuple(submission.removed),
        )

    def _encode_parts(
        self, project: Project, submission_id: str, submission: Submission
    ) -> list[tuple[SubmissionPart, list[ox.Quad], bytes]]:
        """One blob of N-Quads per subject (and one for what concerns no subject)."""
        pieces: list[tuple[str | None, list[ox.Quad]]] = [
            (iri.rsplit(":", 1)[1], quads) for iri, quads in submission.parts.items()
        ]
        if submission.shared:
            pieces.append((None, list(submission.shared)))
        encoded = []
        for pseudonym, quads in pieces:
            data = ox.serialize(quads, format=ox.RdfFormat.N_QUADS) or b""
            sha256 = hashlib.sha256(data).hexdigest()
            key = f"submissions/{project.id}/{submission_id}/{sha256[:32]}.nq"
            encoded.append((SubmissionPart(pseudonym, key, sha256, len(quads)), quads, data))
        return encoded

    def delete_submission(
        self, project: Project, submission_id: str, *, actor: str, source: str
    ) -> bool:
        found = self.index.get_submission(project.id, submission_id)
        if found is None:
            return False
        self.flush()
        nodes: set[str] = set()
        for part in found.parts:
            for quad in ox.parse(self.blobs.get(part.blob_key), ox.RdfFormat.N_QUADS):
                if isinstance(quad.subject, ox.NamedNode):
                    nodes.add(quad.subject.value)
        self.store.remove_nodes(graph_iri(project.name), nodes)
        self.store.purge()
        keys = self.index.delete_submission(
            project.id,
            submission_id,
            self.trail.project_event(
                "submission.delete",
                project.name,
                actor=actor,
                source=source,
                detail={"submission": submission_id},
            ),
        )
        for key in keys or ():
            self.blobs.delete(key)
        return True

    # Query

    def query(
        self,
        sparql: str,
        projects: Sequence[Project],
        accept: str | None,
        *,
        actor: str,
        source: str,
        timeout_s: float,
    ) -> QueryResult:
        """Run a read-only query over the graphs of `projects` (the caller may read them
        whole; their union is the default graph) and the ontology (as a named graph);
        audited with the query's digest and the projects."""
        self.flush()
        self._await_others()
        graphs = [graph_iri(p.name) for p in projects] + [ONTOLOGY_GRAPH]
        digest = hashlib.sha256(sparql.encode()).hexdigest()
        detail: dict[str, Any] = {
            "query_sha256": digest,
            "query": sparql[:2000],
            "projects": [p.name for p in projects][:100],
        }
        only = projects[0].name if len(projects) == 1 else None
        where = {"resource": f"project:{only}" if only else "sparql", "project": only}
        try:
            # The ontology is a named graph only: GRAPH <urn:radbank:graph:ontology> reads
            # it, and the default graph (the projects') stays small and fast to evaluate.
            result = self.store.query(
                sparql, graphs, accept, timeout_s=timeout_s, named_only=[ONTOLOGY_GRAPH]
            )
        except Exception as exc:
            self.trail.record(
                "sparql.query",
                actor=actor,
                detail={**detail, "error": str(exc)[:300]},
                source=source,
                outcome="failure",
                **where,
            )
            raise
        self.trail.record("sparql.query", actor=actor, detail=detail, source=source, **where)
        return result

    # DCAT

    def catalogue(
        self, projects: Sequence[Project], media_type: str, *, base_url: str, node_name: str
    ) -> bytes:
        """The DCAT-AP description of the projects, as one catalogue of the node."""
        triples = []
        for project in projects:
            triples.extend(
                dcat.dataset_description(
                    project,
                    self.index.project_statistics(project.id),
                    base_url=base_url,
                    node_name=node_name,
                )
            )
        return dcat.serialize(triples, media_type)
