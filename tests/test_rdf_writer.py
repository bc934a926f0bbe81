"""The background RDF writer: ingest does not wait for the RDF store, batches recorded while a
write is under way go into the store together, a subject withdrawn before their triples are
written never reaches the graph, and closing the node writes what is pending. The store is
the real embedded Oxigraph store; the one stand-in is a gate that holds its first write open
(so that batches queue behind it deterministically)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import radbank.graphs
import radbank.semantic.store
from radbank.app import Services, build_services, recover
from radbank.config import Settings
from radbank.governance.policy import ADMIN
from radbank.ingest import Item, Status
from radbank.projects import create_project
from radbank.semantic.vocabulary import RB, graph_iri
from radbank.synthetic import demo_studies

INSTANCE = RB + "Instance"
SUBJECT = RB + "Subject"


def _patients(count: int, seed: int) -> list[list[Item]]:
    """One list of Part 10 items per patient (one CT study each)."""
    patients: dict[str, list[Item]] = {}
    for number, dataset in enumerate(
        demo_studies(sites=1, patients_per_site=count, studies_per_patient=1, seed=seed)
    ):
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        patients.setdefault(str(dataset.PatientID), []).append(
            Item(f"{number}.dcm", buffer.getvalue())
        )
    return list(patients.values())


@pytest.fixture
def node(tmp_path: Path) -> Any:
    services, _ = build_services(Settings(data_dir=tmp_path / "data"))
    recover(services)
    yield services
    services.close()


@pytest.fixture
def two_workers(tmp_path: Path) -> Any:
    """Two server workers on one data directory (two sets of services, each with its own
    writer), the project "trial" described in the graph."""
    first, _ = build_services(Settings(data_dir=tmp_path / "data"))
    recover(first)
    second, _ = build_services(Settings(data_dir=tmp_path / "data"))
    try:
        first.graphs.describe_project(_project(first))
        yield first, second
    finally:
        second.close()
        first.close()


def _project(services: Services) -> Any:
    return create_project(
        services.index,
        "trial",
        keys=services.keys,
        trail=services.trail,
        actor="test",
        profile="research-dose",
    )


def _instances_in_answer(services: Services) -> str:
    """How many instances of project "trial" a SPARQL query to these services counts."""
    result = services.graphs.query(
        f"SELECT (COUNT(?i) AS ?n) WHERE {{ ?i a <{INSTANCE}> }}",
        [services.index.get_project("trial")],
        "text/csv",
        actor="test",
        source="local",
        timeout_s=30,
    )
    return result.body.decode().splitlines()[1]


class _Gate:
    """Holds the store's first `add` until opened; counts the calls and what they wrote."""

    def __init__(self, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []
        real = services.graphs.store.add

        def add(quads: Any) -> int:
            if not self.calls:
                self.entered.set()
                assert self.opened.wait(60)
            written = real(quads)
            self.calls.append(written)
            return written

        monkeypatch.setattr(services.graphs.store, "add", add)


def test_batches_recorded_during_a_write_are_written_together(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(node)
    node.graphs.describe_project(project)  # written before the gate: not part of the count
    gate = _Gate(node, monkeypatch)
    patients = _patients(6, seed=301)
    first = node.pipeline.ingest(patients[0], project, source="test", principal=ADMIN)
    assert gate.entered.wait(60)
    # Ingest goes on while the first write is held open: it does not wait for the store.
    later = [
        node.pipeline.ingest(items, project, source="test", principal=ADMIN)
        for items in patients[1:]
    ]
    outcomes = first + [o for batch in later for o in batch]
    assert {o.status for o in outcomes} == {Status.STORED}
    assert len(list(node.graphs.journal.pending())) == len(patients)
    gate.opened.set()
    assert node.graphs.flush(60)
    assert len(gate.calls) == 2  # the first batch, then the five that waited, in one write
    assert list(node.graphs.journal.pending()) == []
    assert node.graphs.store.count(graph_iri("trial"), INSTANCE) == len(outcomes)


def test_a_subject_withdrawn_before_their_triples_are_written_never_reaches_the_graph(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(node)
    node.graphs.describe_project(project)
    gate = _Gate(node, monkeypatch)
    kept, withdrawn = _patients(2, seed=302)
    node.pipeline.ingest(kept, project, source="test", principal=ADMIN)
    assert gate.entered.wait(60)
    stored = node.pipeline.ingest(withdrawn, project, source="test", principal=ADMIN)
    pseudonym = node.index.get_instances(project.id, [stored[0].sop_instance_uid])[
        stored[0].sop_instance_uid
    ].attributes["00100020"]["Value"][0]
    # The tombstone is committed while the subject's triples still wait to be written (an
    # erasure then waits for the writer, which cannot go on until the gate opens).
    node.index.record_withdrawal(project.id, pseudonym, by="test")
    gate.opened.set()
    assert node.graphs.flush(60)
    result = node.graphs.query(
        f'SELECT ?s WHERE {{ ?s <{RB}pseudonym> "{pseudonym}" }}',
        [project],
        "text/csv",
        actor="test",
        source="local",
        timeout_s=30,
    )
    assert result.body.decode().splitlines()[1:] == []
    assert node.graphs.store.count(graph_iri("trial"), INSTANCE) == len(kept)
    assert node.graphs.store.count(graph_iri("trial"), SUBJECT) == 1


def test_closing_the_node_writes_what_is_pending(tmp_path: Path) -> None:
    services, _ = build_services(Settings(data_dir=tmp_path / "data"))
    recover(services)
    project = _project(services)
    items = [item for patient in _patients(3, seed=303) for item in patient]
    for item in items:  # one batch per object, as a slow sender gives
        services.pipeline.ingest([item], project, source="test", principal=ADMIN)
    services.close()
    services, _ = build_services(Settings(data_dir=tmp_path / "data"))
    try:
        assert list(services.graphs.journal.pending()) == []
        assert services.graphs.store.count(graph_iri("trial"), INSTANCE) == len(items)
    finally:
        services.close()


def test_a_query_sees_what_another_process_acknowledged_before_it(
    two_workers: tuple[Services, Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two server workers on one data directory (two sets of services here, each with its
    own writer): an upload to one is in the answer of a query to the other, even while the
    first's write is still under way."""
    first, second = two_workers
    project = first.index.get_project("trial")
    gate = _Gate(first, monkeypatch)
    items = _patients(1, seed=304)[0]
    stored = first.pipeline.ingest(items, project, source="test", principal=ADMIN)
    assert gate.entered.wait(60)
    answers: list[str] = []

    def ask() -> None:
        answers.append(_instances_in_answer(second))

    asking = threading.Thread(target=ask)
    asking.start()
    asking.join(0.5)
    assert asking.is_alive()  # waiting for the other worker's write
    gate.opened.set()
    asking.join(30)
    assert answers == [str(len(stored))]


def test_the_store_is_compacted_once_uploads_pause(
    node: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write of the writer is a bulk load that adds table files over the whole key
    range; once no batch has come for a while the writer has RocksDB merge them (queries
    then read one set of files), and nothing is lost on the way."""
    monkeypatch.setattr(radbank.graphs, "_QUIET_S", 2.0)
    # A pause between two patients (a slow machine) must not compact yet: no growth is
    # enough until the last patient is written, then any is (a test store is small).
    monkeypatch.setattr(radbank.semantic.store, "_COMPACT_AT_LEAST_BYTES", 1 << 62)
    project = _project(node)
    path = node.graphs.store.path
    marker = path.with_name(path.name + ".compacted")
    stored = 0
    for items in _patients(4, seed=304):
        stored += len(node.pipeline.ingest(items, project, source="test", principal=ADMIN))
        assert node.graphs.flush(60)  # one write per patient: several bulk loads
    tables = len(list(path.glob("*.sst")))
    monkeypatch.setattr(radbank.semantic.store, "_COMPACT_AT_LEAST_BYTES", 0)
    assert not marker.exists()
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the writer did not compact the store after the pause"
    assert node.graphs.store.count(graph_iri("trial"), INSTANCE) == stored
    assert len(list(path.glob("*.sst"))) < tables
    # Compacted and not grown since: the next pause does not compact again.
    assert node.graphs.store.compact(if_grown_by=0.5) is False


def test_closing_the_node_after_an_import_compacts_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`radbank import` closes its services right after the last batch, before any pause:
    the store it filled is compacted then."""
    monkeypatch.setattr(radbank.graphs, "_QUIET_S", 3600.0)  # the pause never comes
    monkeypatch.setattr(radbank.semantic.store, "_COMPACT_AT_LEAST_BYTES", 0)
    services, _ = build_services(Settings(data_dir=tmp_path / "data"))
    recover(services)
    project = _project(services)
    path = services.graphs.store.path
    for items in _patients(2, seed=305):
        services.pipeline.ingest(items, project, source="test", principal=ADMIN)
    services.close()
    assert path.with_name(path.name + ".compacted").exists()


def test_a_query_in_another_process_ends_the_writers_wait_for_more_batches(
    two_workers: tuple[Services, Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer gathers batches before it writes (up to an hour here); a query in another
    worker has it write at once instead of answering without the objects (after its 5 s)."""
    monkeypatch.setattr(radbank.graphs, "_LINGER_S", 3600.0)
    first, second = two_workers
    items = _patients(1, seed=305)[0]
    project = first.index.get_project("trial")
    stored = first.pipeline.ingest(items, project, source="test", principal=ADMIN)
    assert _instances_in_answer(second) == str(len(stored))
