"""Nothing lost on the RDF side: when the RDF store cannot be written (a remote SPARQL
server down: simulated here by a store whose writes fail, the one fake of this file), the
instances and submissions are stored all the same, and the next start writes their
triples; a graph that does not match the index (data of an older version) is rebuilt."""

from __future__ import annotations

import io
from pathlib import Path

import pyoxigraph
import pytest

from radbank.app import Services, build_services, recover
from radbank.config import Settings
from radbank.governance.policy import ADMIN
from radbank.index import Project
from radbank.ingest import Item, Status
from radbank.projects import create_project
from radbank.semantic.store import StoreUnavailable
from radbank.semantic.vocabulary import RB, graph_iri
from radbank.synthetic import demo_studies

INSTANCE = RB + "Instance"


def _items(seed: int) -> list[Item]:
    items = []
    for number, dataset in enumerate(
        demo_studies(sites=1, patients_per_site=1, studies_per_patient=1, seed=seed)
    ):
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        items.append(Item(f"{number}.dcm", buffer.getvalue()))
    return items


def _open(data: Path) -> Services:
    services, _ = build_services(Settings(data_dir=data))
    recover(services)
    return services


def _new_trial(services: Services) -> Project:
    return create_project(
        services.index,
        "trial",
        keys=services.keys,
        trail=services.trail,
        actor="test",
        profile="research-dose",
    )


def _trial_with_data(data: Path, seed: int) -> Services:
    """A node with project "trial" holding a synthetic study, its triples written."""
    services = _open(data)
    project = _new_trial(services)
    services.pipeline.ingest(_items(seed), project, source="test", principal=ADMIN)
    services.graphs.flush()
    return services


def _fail_writes(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: object, **kwargs: object) -> int:
        raise StoreUnavailable("SPARQL server http://127.0.0.1:1 unreachable (simulated)")

    monkeypatch.setattr(services.graphs.store, "add", down)


def test_ingest_while_the_rdf_store_is_down_is_written_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    services = _open(data)
    project = _new_trial(services)
    with monkeypatch.context() as patch:
        _fail_writes(services, patch)
        outcomes = services.pipeline.ingest(_items(81), project, source="test", principal=ADMIN)
        assert {o.status for o in outcomes} == {Status.STORED}
        services.graphs.flush()  # the background writer tried, and failed
        pending = list(services.graphs.journal.pending())
        assert len(pending) == 1
    assert services.graphs.store.count(graph_iri("trial"), INSTANCE) == 0
    services.close()

    services = _open(data)  # the next start
    try:
        held = services.index.count_instances(project.id)
        assert services.graphs.store.count(graph_iri("trial"), INSTANCE) == held == len(outcomes)
        assert list(services.graphs.journal.pending()) == []
    finally:
        services.close()


def test_a_graph_that_does_not_match_the_index_is_rebuilt_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = _trial_with_data(data, seed=82)
    complete = services.graphs.store.count(graph_iri("trial"))
    services.graphs.store.drop_graph(graph_iri("trial"))  # e.g. a store that was replaced
    services.close()

    services = _open(data)
    try:
        assert services.graphs.store.count(graph_iri("trial")) == complete
    finally:
        services.close()


def test_a_graph_an_older_mapping_wrote_is_rebuilt_at_start(tmp_path: Path) -> None:
    """A node upgraded to a radbank whose mapping says more of each object (mapping version
    2: events state their CTDIvol and DLP) rebuilds the graphs written before, so the
    example queries see old and new data alike."""
    data = tmp_path / "data"
    services = _trial_with_data(data, seed=83)
    graph = graph_iri("trial")
    store = services.graphs.store
    assert services.graphs.stale_projects() == []  # the first write marked the graph
    complete = store.count(graph)
    services.close()
    # What version 1 wrote: no mapping version, no CTDIvol on the events (pyoxigraph
    # writing the node's store directly, while no process of the node has it open).
    oxigraph = pyoxigraph.Store(str(store.path))
    oxigraph.update(
        f"DELETE WHERE {{ GRAPH <{graph}> {{ <{graph}> <{RB}mappingVersion> ?v }} }};"
        f"DELETE WHERE {{ GRAPH <{graph}> {{ ?event <{RB}meanCTDIvolInmGy> ?value }} }}"
    )
    oxigraph.flush()
    del oxigraph
    services, _ = build_services(Settings(data_dir=data))  # without recover: what it finds
    try:
        assert services.graphs.store.count(graph) < complete - 1
        assert services.graphs.stale_projects() == ["trial"]
    finally:
        services.close()

    services = _open(data)
    try:
        assert services.graphs.store.count(graph) == complete
        assert services.graphs.stale_projects() == []
    finally:
        services.close()
