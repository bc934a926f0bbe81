"""The RDF store adapters: the embedded Oxigraph store and a real Oxigraph SPARQL server on
loopback pass the same tests (writes, erasure, rebuilds, and the read-only SPARQL query a
researcher sends: formats, negotiation, the dataset a query may see, refusals, limits);
the embedded store is also used from several processes at once."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from peers.orthanc import free_tcp_port
from peers.oxigraph import oxigraph_binary
from peers.oxigraph import oxigraph_server as oxigraph_server_running

from radbank.semantic.store import (
    OxigraphStore,
    QueryRefused,
    QueryTimeout,
    RdfStore,
    RemoteSparqlStore,
    StoreUnavailable,
    open_store,
)
from radbank.semantic.vocabulary import RB, RDF, graph_iri, subject_iri

A, B = graph_iri("alpha"), graph_iri("beta")
S1 = subject_iri("alpha", "RB-" + "A" * 20)
S2 = subject_iri("alpha", "RB-" + "B" * 20)
STUDY1, SERIES1, STUDY2 = "urn:oid:2.25.1", "urn:oid:2.25.11", "urn:oid:2.25.2"
UNNAMED = ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.NamedNode("urn:o"))
# ~10^9 solutions: runs for minutes unless stopped.
ENDLESS = (
    "SELECT (COUNT(*) AS ?n) WHERE { "
    + " ".join(f"VALUES ?v{i} {{ 1 2 3 4 5 6 7 8 9 10 }}" for i in range(9))
    + " }"
)


def quad(s: str, p: str, o: str | ox.Literal | ox.BlankNode, g: str) -> ox.Quad:
    obj = ox.NamedNode(o) if isinstance(o, str) else o
    return ox.Quad(ox.NamedNode(s), ox.NamedNode(p), obj, ox.NamedNode(g))


def two_subjects() -> list[ox.Quad]:
    """Graph A: two subjects' studies (a series of study 1 points at it, a blank node of
    subject 1 hangs off study 1, the project points at both subjects); graph B: data naming
    subject 1 too."""
    dose = ox.BlankNode("dose1")
    return [
        quad(STUDY1, RDF + "type", RB + "ImagingStudy", A),
        quad(STUDY1, RB + "subject", S1, A),
        quad(SERIES1, RB + "subject", S1, A),
        quad(SERIES1, RB + "partOf", STUDY1, A),
        quad(STUDY1, RB + "dose", dose, A),
        ox.Quad(dose, ox.NamedNode(RB + "value"), ox.Literal("12.5"), ox.NamedNode(A)),
        ox.Quad(dose, ox.NamedNode(RB + "subject"), ox.NamedNode(S1), ox.NamedNode(A)),
        quad(S1, RB + "sex", ox.Literal("F"), A),
        quad("urn:radbank:project:alpha", RB + "hasSubject", S1, A),
        quad(STUDY2, RDF + "type", RB + "ImagingStudy", A),
        quad(STUDY2, RB + "subject", S2, A),
        quad(STUDY2, RB + "dose", ox.Literal("7"), A),
        quad("urn:radbank:project:alpha", RB + "hasSubject", S2, A),
        quad(STUDY1, RB + "note", ox.Literal("in beta"), B),
        quad("urn:b:1", RB + "about", S1, B),
    ]


def triples_in(store: RdfStore, graph: str) -> set[tuple[str, str, str]]:
    answer = store.query("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", [graph])
    return {(r["s"]["value"], r["p"]["value"], r["o"]["value"]) for r in bindings(answer.body)}


def bindings(body: bytes) -> list[dict[str, dict[str, str]]]:
    return json.loads(body)["results"]["bindings"]


def values(body: bytes, variable: str = "o") -> list[str]:
    return sorted(row[variable]["value"] for row in bindings(body))


# Fixtures


@pytest.fixture(scope="module")
def oxigraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `oxigraph serve` on a free loopback port; its own timeout stops the endless
    query the timeout test leaves behind."""
    if oxigraph_binary() is None:
        pytest.skip("the Oxigraph server is not installed (pip package `oxigraph`, in [test])")
    with oxigraph_server_running(tmp_path_factory.mktemp("oxigraph")) as base:
        yield base


@pytest.fixture(params=["embedded", "remote"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RdfStore]:
    if request.param == "embedded":
        opened: RdfStore = OxigraphStore(tmp_path / "rdf")
    else:
        base = request.getfixturevalue("oxigraph_server")
        sparql_update(base + "/update", "DROP ALL")
        opened = open_store(base, tmp_path)
    yield opened
    opened.close()


def sparql_update(url: str, text: str) -> None:
    """An update sent to the server directly, around the adapter."""
    headers = {"Content-Type": "application/sparql-update"}
    httpx.post(url, content=text, headers=headers).raise_for_status()


def insert_into_default_graph(store: RdfStore, tmp_path: Path) -> None:
    """Data outside every project graph (radbank never writes any; another tool might)."""
    triple = ox.Quad(ox.NamedNode("urn:default"), ox.NamedNode("urn:p"), ox.Literal("default"))
    if isinstance(store, OxigraphStore):
        raw = ox.Store(str(store.path))  # no adapter operation runs meanwhile
        raw.add(triple)
        raw.flush()
        del raw
    else:
        assert isinstance(store, RemoteSparqlStore)
        sparql_update(store.update_url, f"INSERT DATA {{ {triple.triple} }}")


# Writing


def test_add_count_and_graphs(store: RdfStore) -> None:
    assert store.graphs() == []
    assert store.add(two_subjects()) == 15
    assert store.add([]) == 0
    assert store.graphs() == [A, B]
    assert store.count(A) == 13
    assert store.count(B) == 2
    assert store.count(A, RB + "ImagingStudy") == 2
    assert store.count(A, RB + "Nothing") == 0
    assert store.count(graph_iri("empty")) == 0


def test_add_refuses_quads_outside_named_graphs_and_writes_nothing(store: RdfStore) -> None:
    with pytest.raises(ValueError, match="not in a named graph"):
        store.add([quad(STUDY1, RB + "p", "urn:x", A), UNNAMED])
    assert store.count(A) == 0


def test_replace_graph_leaves_exactly_the_new_triples(store: RdfStore) -> None:
    store.add(two_subjects())

    def rebuilt() -> Iterator[ox.Quad]:  # streamed; graph names are the target's anyway
        yield quad(STUDY1, RB + "dose", ox.Literal("1"), A)
        yield quad(STUDY2, RB + "dose", ox.Literal("2"), B)

    assert store.replace_graph(A, rebuilt()) == 2
    assert triples_in(store, A) == {
        (STUDY1, RB + "dose", "1"),
        (STUDY2, RB + "dose", "2"),
    }
    assert store.count(B) == 2  # untouched
    assert store.replace_graph(A, iter([])) == 0
    assert store.count(A) == 0
    assert store.graphs() == [B]


def test_remove_subjects_erases_one_subject_from_one_graph(store: RdfStore) -> None:
    store.add(two_subjects())
    removed = store.remove_subjects(A, [S1])
    # Study 1's three triples and the series' link to it, the series' subject, the blank
    # dose node's two, the subject IRI's own triple and the project's link to it.
    assert removed == 9
    remaining = triples_in(store, A)
    assert all(S1 not in t and STUDY1 not in t[::2] and SERIES1 not in t for t in remaining)
    assert (STUDY2, RB + "subject", S2) in remaining
    assert ("urn:radbank:project:alpha", RB + "hasSubject", S2) in remaining
    assert store.count(A) == 13 - 9
    assert store.count(B) == 2  # another graph is another project's business
    assert store.remove_subjects(A, [S1]) == 0
    assert store.remove_subjects(A, []) == 0


def test_remove_nodes_removes_triples_of_and_about_them(store: RdfStore) -> None:
    store.add(two_subjects())
    assert store.remove_nodes(A, [STUDY1]) == 4  # type, subject, dose; the series' partOf
    remaining = triples_in(store, A)
    assert not any(STUDY1 in (s, o) for s, _, o in remaining)
    assert (SERIES1, RB + "subject", S1) in remaining
    assert store.count(B) == 2


def test_compaction_keeps_every_triple(store: RdfStore) -> None:
    store.add(two_subjects())
    store.add([quad(STUDY1, RB + "note", ox.Literal("added later"), A)])
    before = {graph: triples_in(store, graph) for graph in (A, B)}
    # The embedded store compacts when asked; a remote server organises its own storage.
    assert store.compact() is isinstance(store, OxigraphStore)
    assert {graph: triples_in(store, graph) for graph in (A, B)} == before
    assert store.compact(if_grown_by=0.5) is False  # nothing written since


def test_drop_graph(store: RdfStore) -> None:
    store.add(two_subjects())
    store.drop_graph(A)
    store.drop_graph(graph_iri("never-there"))
    assert store.graphs() == [B]
    assert store.count(A) == 0


# Querying: formats and negotiation

SELECT_DOSES = f"SELECT ?s ?o WHERE {{ ?s <{RB}dose> ?o FILTER(isLiteral(?o)) }} ORDER BY ?s"


def test_select_answers_in_each_results_format(store: RdfStore) -> None:
    store.add(two_subjects())
    answer = store.query(SELECT_DOSES, [A])
    assert answer.media_type == "application/sparql-results+json"
    assert values(answer.body) == ["7"]

    answer = store.query(SELECT_DOSES, [A], "text/csv")
    assert answer.media_type == "text/csv"
    assert list(csv.reader(io.StringIO(answer.body.decode()))) == [["s", "o"], [STUDY2, "7"]]

    answer = store.query(SELECT_DOSES, [A], "text/tab-separated-values")
    assert answer.media_type == "text/tab-separated-values"
    assert answer.body.decode().splitlines() == ["?s\t?o", f'<{STUDY2}>\t"7"']

    answer = store.query(SELECT_DOSES, [A], "application/sparql-results+xml")
    assert answer.media_type == "application/sparql-results+xml"
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    literals = ET.fromstring(answer.body).findall(".//r:binding[@name='o']/r:literal", ns)
    assert [e.text for e in literals] == ["7"]

    answer = store.query("ASK { ?s ?p ?o }", [A])
    assert json.loads(answer.body)["boolean"] is True


def test_construct_and_describe_answer_as_rdf(store: RdfStore) -> None:
    store.add(two_subjects())
    construct = (
        f"CONSTRUCT {{ ?s <{RB}dose> ?o }} WHERE {{ ?s <{RB}dose> ?o FILTER(isLiteral(?o)) }}"
    )
    expected = {(STUDY2, RB + "dose", "7")}
    for accept, rdf_format in [
        (None, ox.RdfFormat.TURTLE),
        ("application/n-triples", ox.RdfFormat.N_TRIPLES),
        ("application/rdf+xml", ox.RdfFormat.RDF_XML),
        ("application/ld+json", ox.RdfFormat.JSON_LD),
    ]:
        answer = store.query(construct, [A], accept)
        assert answer.media_type == rdf_format.media_type
        parsed = ox.parse(answer.body, rdf_format)
        assert {(t.subject.value, t.predicate.value, t.object.value) for t in parsed} == expected

    answer = store.query(f"DESCRIBE <{STUDY2}>", [A], "application/n-triples")
    described = list(ox.parse(answer.body, ox.RdfFormat.N_TRIPLES))
    assert len(described) == 3 and all(t.subject.value == STUDY2 for t in described)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (
            "text/csv;q=0.5, application/sparql-results+json;q=0.9",
            "application/sparql-results+json",
        ),
        ("*/*", "application/sparql-results+json"),
        ("text/*", "text/csv"),
        ("application/json", "application/sparql-results+json"),
        ("text/html, text/tab-separated-values;q=0.2", "text/tab-separated-values"),
        ("*/*;q=0.1, application/sparql-results+xml", "application/sparql-results+xml"),
        ("text/*, text/csv;q=0", "text/tab-separated-values"),
    ],
)
def test_accept_negotiation_for_results(store: RdfStore, accept: str, media_type: str) -> None:
    assert store.query("ASK {}", [A], accept).media_type == media_type


def test_accept_negotiation_for_graphs_and_refusal(store: RdfStore) -> None:
    construct = "CONSTRUCT WHERE { ?s ?p ?o }"
    assert store.query(construct, [A], "text/*").media_type == "text/turtle"
    assert store.query(construct, [A], "application/json").media_type == "application/ld+json"
    with pytest.raises(QueryRefused, match="text/turtle, application/n-triples") as refused:
        store.query(construct, [A], "text/csv")
    assert refused.value.status == 406
    with pytest.raises(QueryRefused, match="application/sparql-results\\+json") as refused:
        store.query("SELECT * WHERE { ?s ?p ?o }", [A], "image/png, text/csv;q=0")
    assert refused.value.status == 406


def test_no_graphs_gives_a_valid_empty_answer(store: RdfStore, tmp_path: Path) -> None:
    store.add(two_subjects())
    insert_into_default_graph(store, tmp_path)
    assert bindings(store.query("SELECT * WHERE { ?s ?p ?o }", []).body) == []
    assert bindings(store.query("SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", []).body) == []
    assert json.loads(store.query("ASK { ?s ?p ?o }", []).body)["boolean"] is False
    assert store.query("SELECT ?s WHERE { ?s ?p ?o }", [], "text/csv").body.strip() == b"s"
    assert list(ox.parse(store.query("CONSTRUCT WHERE { ?s ?p ?o }", []).body, ox.RdfFormat.TURTLE)) == []  # fmt: skip
    with pytest.raises(QueryRefused, match="error at 1:"):
        store.query("SELECT * WHERE { ?s ?p }", [])


# Querying: what a query may see


def test_a_query_sees_exactly_the_graphs_it_is_given(store: RdfStore, tmp_path: Path) -> None:
    store.add(two_subjects())
    insert_into_default_graph(store, tmp_path)
    only_b = "SELECT ?o WHERE { ?s ?p ?o }"
    assert values(store.query(only_b, [B]).body) == sorted([S1, "in beta"])
    named = store.query("SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", [B]).body
    assert values(named, "g") == [B, B]
    assert bindings(store.query(f"SELECT * WHERE {{ GRAPH <{A}> {{ ?s ?p ?o }} }}", [B]).body) == []
    union = store.query(f"SELECT ?s WHERE {{ ?s <{RB}note> ?o . ?s <{RB}dose> ?d }}", [A, B]).body
    assert values(union, "s") == [STUDY1]  # the default graph is the union of A and B


@pytest.mark.parametrize(
    "sparql",
    [
        f"SELECT * FROM <{A}> WHERE {{ ?s ?p ?o }}",
        f"SELECT * FROM NAMED <{A}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        f"SELECT * FROM <{B}> FROM NAMED <{A}> WHERE {{ ?s ?p ?o }}",
        "PREFIX g: <urn:radbank:graph:> SELECT * FROM g:alpha WHERE { ?s ?p ?o }",
        "BASE <urn:radbank:graph:alpha> SELECT * from <> WHERE { ?s ?p ?o }",
        f"CONSTRUCT {{ ?s ?p ?o }} FROM <{A}> WHERE {{ ?s ?p ?o }}",
        f"DESCRIBE <{STUDY1}> FROM <{A}>",
        "ASK FROM <urn:radbank:graph:ontology> { ?s ?p ?o }",
    ],
)
def test_from_cannot_widen_the_dataset(store: RdfStore, sparql: str) -> None:
    store.add(two_subjects())
    with pytest.raises(QueryRefused, match="outside the ones you may query") as refused:
        store.query(sparql, [B])
    assert refused.value.status == 403


def test_from_within_the_dataset_narrows_it(store: RdfStore) -> None:
    store.add(two_subjects())
    answer = store.query(f"SELECT ?o FROM <{B}> WHERE {{ ?s <{RB}note> ?o }}", [A, B])
    assert values(answer.body) == ["in beta"]
    answer = store.query(f"SELECT ?o FROM <{A}> WHERE {{ ?s <{RB}note> ?o }}", [A, B])
    assert values(answer.body) == []
    answer = store.query(f"SELECT ?g FROM NAMED <{B}> WHERE {{ GRAPH ?g {{ }} }}", [A, B])
    assert values(answer.body, "g") == [B]


def test_the_protocol_dataset_overrides_from_in_both_backends(
    store: RdfStore, tmp_path: Path
) -> None:
    """What the restriction rests on, should a FROM ever slip past the check: Oxigraph (the
    library and the server) let the dataset given beside the query win over its FROM."""
    store.add(two_subjects())
    sparql = (
        f"SELECT ?o FROM <{A}> FROM NAMED <{A}> "
        "WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
    )
    if isinstance(store, OxigraphStore):
        raw = ox.Store.read_only(str(store.path))  # no adapter operation runs meanwhile
        answer = raw.query(sparql, default_graph=[ox.NamedNode(B)], named_graphs=[ox.NamedNode(B)])
        seen = sorted(s["o"].value for s in answer)  # type: ignore[union-attr, index]
        del answer, raw
    else:
        assert isinstance(store, RemoteSparqlStore)
        response = httpx.post(
            store.query_url,
            data={"query": sparql, "default-graph-uri": [B], "named-graph-uri": [B]},
            headers={"Accept": "application/sparql-results+json"},
        )
        seen = values(response.content)
    assert seen == sorted([S1, "in beta"] * 2)


# Querying: refusals


@pytest.mark.parametrize(
    "sparql",
    [
        "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
        "select * where { service silent <http://example.org/sparql> { ?s ?p ?o } }",
        "SELECT * WHERE { ?s ?p ?o SERVICE ?endpoint { ?s ?p ?o } }",
        "SELECT * WHERE { ?s ?p trueSERVICE <http://example.org/sparql> { } }",
        "SELECT * WHERE { ?s ?p 1SERVICE <http://example.org/sparql> { } }",
        "PREFIX : <http://example.org/> SELECT * WHERE { ?s ?p ?o SERVICE:sparql { } }",
        "SELECT * WHERE { ?s ?p ?o . FILTER(?o < 3) SERVICE <http://example.org/> { } }",
        'SELECT * WHERE { ?s ?p "x" SERVICE <http://example.org/> { } } # "',
    ],
)
def test_service_is_refused(store: RdfStore, sparql: str) -> None:
    with pytest.raises(QueryRefused, match="SERVICE") as refused:
        store.query(sparql, [A])
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "sparql",
    [
        'SELECT ?x WHERE { BIND("SERVICE <http://example.org/> { }" AS ?x) }',
        "SELECT ?x WHERE { BIND(<http://example.org/SERVICE> AS ?x) }",
        "SELECT ?service WHERE { ?service ?p ?o } # SERVICE <http://example.org/>",
        "PREFIX dcat: <http://www.w3.org/ns/dcat#> SELECT * WHERE { ?d dcat:accessService ?s }",
        "PREFIX schema: <http://schema.org/> SELECT * WHERE { ?d a schema:Service }",
        "SELECT * WHERE { ?s ?p _:service }",
        "SELECT ?x WHERE { BIND('''\nSERVICE''' AS ?x) }",
    ],
)
def test_service_in_data_is_not_refused(store: RdfStore, sparql: str) -> None:
    assert store.query(sparql, [A], "text/csv").media_type == "text/csv"


def test_escaped_service(store: RdfStore) -> None:
    """A server that expands \\u escapes before parsing (as the Recommendation says; Jena
    does) would read SERVICE here, so the remote store refuses it; Oxigraph does not expand
    them, so the embedded store lets Oxigraph judge (a syntax error; a string)."""
    escaped = "SELECT * WHERE { \\u0053ERVICE <http://example.org/sparql> { ?s ?p ?o } }"
    in_string = 'SELECT ?x WHERE { BIND("\\u0022 SERVICE <http://example.org/> { }" AS ?x) }'
    if isinstance(store, RemoteSparqlStore):
        for sparql in (escaped, in_string):
            with pytest.raises(QueryRefused, match="SERVICE"):
                store.query(sparql, [A])
    else:
        with pytest.raises(QueryRefused, match="not valid SPARQL: error at 1:26"):
            store.query(escaped, [A])
        assert values(store.query(in_string, [A]).body, "x") == [
            '" SERVICE <http://example.org/> { }'
        ]


@pytest.mark.parametrize(
    "sparql",
    [
        "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
        f"DELETE WHERE {{ GRAPH <{A}> {{ ?s ?p ?o }} }}",
        "PREFIX ex: <urn:x:> delete { ?s ?p ?o } where { ?s ?p ?o }",
        "LOAD <http://example.org/data.ttl>",
        "CLEAR ALL",
        f"DROP GRAPH <{A}>",
        f"WITH <{A}> DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}",
    ],
)
def test_updates_are_refused(store: RdfStore, sparql: str) -> None:
    store.add(two_subjects())
    with pytest.raises(QueryRefused, match="^SPARQL updates are not accepted here") as refused:
        store.query(sparql, [A])
    assert refused.value.status == 403
    assert store.count(A) == 13


def test_syntax_errors_say_where(store: RdfStore) -> None:
    with pytest.raises(QueryRefused, match="not valid SPARQL: error at 1:25") as refused:
        store.query("SELECT * WHERE { ?s ?p }", [A])
    assert refused.value.status == 400
    with pytest.raises(QueryRefused, match="the string opened at 2:8 does not end"):
        store.query("SELECT * WHERE {\n  BIND('it\\'s AS ?x) }", [A])


def test_hostile_query_text_is_refused_quickly(store: RdfStore) -> None:
    """Texts that make a naive lexer rescan the rest of the query at every step."""
    for unit in ("a.", "'a\\", '"a\\', "<a.", "ex:a."):
        with pytest.raises(QueryRefused):
            store.query("SELECT * WHERE { " + unit * 50_000 + " }", [A])


def test_too_large_an_answer_is_refused(store: RdfStore) -> None:
    store.add(two_subjects())
    with pytest.raises(QueryRefused, match="add LIMIT"):
        store.query("SELECT * WHERE { ?s ?p ?o }", [A], max_bytes=200)
    assert len(store.query("SELECT * WHERE { ?s ?p ?o } LIMIT 1", [A], max_bytes=400).body) < 400


def test_a_query_past_its_time_is_stopped_and_the_store_stays_usable(store: RdfStore) -> None:
    store.add(two_subjects())
    with pytest.raises(QueryTimeout, match="longer than 0.5 s"):
        store.query(ENDLESS, [A], timeout_s=0.5)
    store.add([quad(STUDY2, RB + "after", "urn:x", A)])  # the lock is free again
    assert store.count(A) == 14


# The embedded store across processes


def _rocksdb_free(path: Path) -> bool:
    """Whether another process can open the database read-write (RocksDB's lock is free)."""
    opened = subprocess.run(
        [sys.executable, "-c", "import sys, pyoxigraph; pyoxigraph.Store(sys.argv[1])", str(path)],
        capture_output=True,
    )
    return opened.returncode == 0


def test_each_operation_releases_the_database(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "rdf")
    assert _rocksdb_free(store.path)
    store.add(two_subjects())
    assert _rocksdb_free(store.path)
    store.query("SELECT * WHERE { ?s ?p ?o }", [A])
    store.count(A)
    assert _rocksdb_free(store.path)
    with pytest.raises(ValueError):  # failed half-way through a write
        store.add([quad(STUDY1, RB + "p", "urn:x", A), UNNAMED])
    assert _rocksdb_free(store.path)
    with pytest.raises(QueryRefused):
        store.query("SELECT * WHERE { ?s ?p }", [A])
    assert _rocksdb_free(store.path)


def test_hold_keeps_the_store_until_closed(tmp_path: Path) -> None:
    path = tmp_path / "rdf"
    with OxigraphStore(path, hold=True) as held:
        held.add(two_subjects())
        assert held.count(A) == 13
        assert values(held.query(SELECT_DOSES, [A]).body) == ["7"]
        assert bindings(held.query("SELECT * WHERE { ?s ?p ?o }", []).body) == []
        with pytest.raises(StoreUnavailable, match="busy"):
            OxigraphStore(path, lock_timeout_s=0.2).count(A)
    assert OxigraphStore(path).count(A) == 13
    with pytest.raises(StoreUnavailable, match="closed"):
        held.count(A)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import pyoxigraph as ox
    from radbank.semantic.store import OxigraphStore

    path, name, batches = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = OxigraphStore(path)
    graph = "urn:radbank:graph:" + name
    for batch in range(batches):
        store.add(
            ox.Quad(ox.NamedNode(f"urn:{name}:{batch}:{i}"), ox.NamedNode("urn:p"),
                    ox.Literal(str(i)), ox.NamedNode(graph))
            for i in range(10)
        )
        if batch % 5 == 0:
            store.query("ASK { ?s ?p ?o }", [graph])
    print(store.count(graph))
    """
)


def test_processes_write_and_read_the_embedded_store_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "rdf"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), name, "20"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("one", "two")
    ]
    store = OxigraphStore(path)
    while any(w.poll() is None for w in writers):  # a third process reads meanwhile
        store.graphs()
        store.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", [graph_iri("one")])
    for writer in writers:
        out, err = writer.communicate()
        assert writer.returncode == 0, err.decode()
        assert out.strip() == b"200"
    assert store.count(graph_iri("one")) == store.count(graph_iri("two")) == 200


def test_threads_of_one_process_share_the_embedded_store(tmp_path: Path) -> None:
    """A server's worker threads: each operation locks on its own descriptor, so threads
    exclude each other as processes do."""
    store = OxigraphStore(tmp_path / "rdf")

    def work(name: str) -> int:
        graph = graph_iri(name)
        for batch in range(8):
            store.add([quad(f"urn:{name}:{batch}:{i}", RB + "p", "urn:x", graph) for i in range(5)])
            store.query("SELECT * WHERE { ?s ?p ?o } LIMIT 3", [graph])
            store.count(graph)
        return store.count(graph)

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(work, ["t1", "t2", "t3", "t4"]))
    assert counts == [40, 40, 40, 40]
    assert store.graphs() == [graph_iri(n) for n in ("t1", "t2", "t3", "t4")]


# The remote store and open_store


def test_an_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    port = free_tcp_port()
    down = open_store(f"http://127.0.0.1:{port}", tmp_path)
    for operation in (
        lambda: down.count(A),
        lambda: down.add([quad(STUDY1, RB + "p", "urn:x", A)]),
        lambda: down.query("SELECT * WHERE { ?s ?p ?o }", [A]),
        lambda: down.replace_graph(A, [quad(STUDY1, RB + "p", "urn:x", A)]),
    ):
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
            operation()
    down.close()


def test_open_store_forms(tmp_path: Path) -> None:
    embedded = open_store("", tmp_path)
    assert isinstance(embedded, OxigraphStore) and embedded.path == tmp_path / "rdf"
    assert isinstance(open_store("oxigraph", tmp_path), OxigraphStore)

    remote = open_store("https://reader:s3cret@rdf.example.org:7878/base/", tmp_path)
    assert isinstance(remote, RemoteSparqlStore)
    assert remote.query_url == "https://rdf.example.org:7878/base/query"
    assert remote.update_url == "https://rdf.example.org:7878/base/update"
    assert remote.graph_store_url == "https://rdf.example.org:7878/base/store"
    assert "s3cret" not in repr(remote)

    spelled = open_store("query=http://h:3030/ds/query update=http://h:3030/ds/update", tmp_path)
    assert isinstance(spelled, RemoteSparqlStore)
    assert (spelled.query_url, spelled.graph_store_url) == ("http://h:3030/ds/query", None)

    for wrong in ("ftp://h/", "query=http://h/q", "/var/lib/rdf", "query=ftp://u:s3cret@h/q"):
        with pytest.raises(ValueError, match="RDF store") as refused:
            open_store(wrong, tmp_path)
        assert "s3cret" not in str(refused.value)


def test_remote_without_graph_store_uses_sparql_update(oxigraph_server: str) -> None:
    sparql_update(f"{oxigraph_server}/update", "DROP ALL")
    store = RemoteSparqlStore(f"{oxigraph_server}/query", f"{oxigraph_server}/update")
    store.add(two_subjects())
    assert store.replace_graph(A, iter([quad(STUDY1, RB + "dose", ox.Literal("1"), A)])) == 1
    assert triples_in(store, A) == {(STUDY1, RB + "dose", "1")}
    store.drop_graph(A)
    assert store.graphs() == [B]
    store.close()


# Purging: what an erasure removed leaves no trace in the embedded store's files


def _files_holding(directory: Path, needle: bytes) -> list[str]:
    return [
        path.name
        for path in directory.parent.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    ]


def test_purge_leaves_no_trace_of_removed_triples_on_disk(tmp_path: Path) -> None:
    secret = "2.25.31415926535897932384626433832795028841"
    gone = subject_iri("p", "RB-" + "A" * 20)
    kept = subject_iri("p", "RB-" + "B" * 20)
    graph = ox.NamedNode(graph_iri("p"))
    subject = ox.NamedNode(RB + "subject")
    store = OxigraphStore(tmp_path / "rdf")
    store.add(
        [
            ox.Quad(ox.NamedNode(f"urn:oid:{secret}"), subject, ox.NamedNode(gone), graph),
            ox.Quad(ox.NamedNode(f"urn:oid:{secret}"), ox.NamedNode(RB + "note"),
                    ox.Literal(f"note about {secret}"), graph),
            ox.Quad(ox.NamedNode("urn:oid:2.25.7"), subject, ox.NamedNode(kept), graph),
        ]
    )  # fmt: skip
    store.remove_subjects(graph_iri("p"), [gone])
    assert _files_holding(tmp_path / "rdf", secret.encode())  # why purging is needed
    store.purge()
    assert _files_holding(tmp_path / "rdf", secret.encode()) == []
    assert store.count(graph_iri("p")) == 1  # the other subject is untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["rdf"]


def _deleted_files_held_open(directory: Path) -> list[str]:
    """Files under `directory` that were unlinked but some process still has open."""
    held = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:  # a process that ended, or not ours
            continue
        held += [link for link in links if link.startswith(str(directory)) and "(deleted)" in link]
    return held


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc (Linux)")
def test_after_a_purge_no_query_process_keeps_the_old_files_open(tmp_path: Path) -> None:
    """A query's evaluator process keeps its read-only store open for the next query; an
    erasure's purge replaces the database, and the evaluator lets the old files go within
    seconds, not after its 30 s idle time: until then their space, and the erased data in
    them, would stay on disk."""
    store = OxigraphStore(tmp_path / "rdf")
    gone = subject_iri("p", "RB-" + "A" * 20)
    store.add(
        [
            ox.Quad(ox.NamedNode("urn:oid:2.25.1"), ox.NamedNode(RB + "subject"),
                    ox.NamedNode(gone), ox.NamedNode(graph_iri("p"))),
            ox.Quad(ox.NamedNode("urn:oid:2.25.2"), ox.NamedNode(RB + "note"),
                    ox.Literal("kept"), ox.NamedNode(graph_iri("p"))),
        ]
    )  # fmt: skip
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    assert store.query(query, [graph_iri("p")], "text/csv").body.split()[-1] == b"2"
    store.remove_subjects(graph_iri("p"), [gone])
    store.purge()
    deadline = time.monotonic() + 10
    while _deleted_files_held_open(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _deleted_files_held_open(tmp_path) == []
    assert time.monotonic() < deadline - 10 + 5  # well before the idle time of 30 s
    assert store.query(query, [graph_iri("p")], "text/csv").body.split()[-1] == b"1"


@pytest.mark.parametrize("crash", ["copying", "copied", "moved-aside", "swapped"])
def test_a_purge_interrupted_by_a_crash_is_finished_or_undone(tmp_path: Path, crash: str) -> None:
    path = tmp_path / "rdf"
    store = OxigraphStore(path)
    quad = ox.Quad(
        ox.NamedNode("urn:oid:2.25.1"), ox.NamedNode(RB + "p"), ox.Literal("x"),
        ox.NamedNode(graph_iri("p")),
    )  # fmt: skip
    store.add([quad])
    # The states a crash can leave, as purge() goes through them.
    fresh, complete, old = (tmp_path / f"rdf.{name}" for name in ("fresh", "complete", "old"))
    copy = ox.Store(str(fresh))
    copy.extend([quad])
    copy.flush()
    del copy
    if crash != "copying":
        fresh.rename(complete)
    if crash in ("moved-aside", "swapped"):
        path.rename(old)
    if crash == "swapped":
        complete.rename(path)
    reopened = OxigraphStore(path)
    assert reopened.count(graph_iri("p")) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["rdf"]


def test_queries_see_every_write_however_it_was_made(store: RdfStore, tmp_path: Path) -> None:
    """A query's evaluator keeps the embedded store open between queries; what was written
    in between, through radbank or by another program, is in the next answer."""
    count = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{A}> {{ ?s ?p ?o }} }}"

    def counted() -> int:
        return int(values(store.query(count, [A], "application/sparql-results+json").body, "n")[0])

    store.add(two_subjects())
    first = counted()
    assert counted() == first  # asked again, nothing written: same answer
    store.add([quad(STUDY1, RB + "note", ox.Literal("one more"), A)])
    assert counted() == first + 1
    store.remove_subjects(A, [S1])
    after_erasure = counted()
    assert after_erasure < first + 1
    if isinstance(store, OxigraphStore):
        raw = ox.Store(str(store.path))  # another program, no adapter operation meanwhile
        raw.add(quad(STUDY1, RB + "note", ox.Literal("from elsewhere"), A))
        raw.flush()
        del raw
        assert counted() == after_erasure + 1
