"""The RDF store behind one small protocol (`RdfStore`), with two backends: the embedded
Oxigraph store on disk (`OxigraphStore`) and any SPARQL 1.1 server (`RemoteSparqlStore`),
and the read-only, dataset-restricted SPARQL query that researchers send through both.

    store = open_store(settings.rdf_store, data_dir)       # "" -> data_dir/rdf
    store.add(quads)                                        # quads in project graphs
    store.replace_graph(graph_iri("ct-trial"), quads)       # rebuild
    store.remove_subjects(graph_iri("ct-trial"), [subject_iri("ct-trial", pseudonym)])
    store.query("SELECT ...", [graph_iri("ct-trial"), ONTOLOGY_GRAPH], "text/csv")

Embedded store across processes
-------------------------------
RocksDB (under Oxigraph) lets one process open a database read-write, and a read-only
opening is undefined while another process writes. A node runs several uvicorn workers
and CLI commands on one data directory, so no process keeps the store open: every
operation takes a lock beside the store (`rdf.lock`, `fcntl.flock`), opens, works, closes
(drops the last reference, which closes RocksDB) and releases the lock.

- Writes take the lock exclusively and open read-write; they flush before closing, so a
  write is on disk (fsync) when it returns and the next opening has no log to replay.
- Reads (count, graphs, queries) take the lock shared and open read-only: readers run
  side by side, and no writer can run while any reader reads, which is exactly the
  condition under which a read-only opening is defined. A query's evaluator process keeps
  its read-only store open for the next query and uses it again only if no file of the
  database changed in between (checked under the lock); otherwise it opens it afresh.
- A second lock (`rdf.queue.lock`) is a turnstile: a waiting writer holds it, so a stream
  of readers cannot starve writers.
- Waiting for the lock is bounded (`lock_timeout_s`, default 60 s); past it the operation
  raises `StoreUnavailable` (a rebuild or a long query holds the store) instead of hanging.
- Each read-write opening makes RocksDB rotate its informational log (LOG.old.*, ~130 kB
  each, up to 1000 kept); writers delete all but the newest few. They are not data.
- `OxigraphStore(path, hold=True)` keeps the exclusive lock and one read-write handle for
  the adapter's life (rebuilds, benchmarks, tests): no per-operation cost, no flush per
  write (RocksDB's log still survives a crash of the process), and every other process
  waits (then times out) until `close()`.

Measured on 2 shared CPUs, 1M triples in 5 graphs (~300 MB on disk); ranges are quiet to
loaded machine. Opening read-write 12-30 ms, read-only 4-16 ms, closing ~1 ms, the flush
of a small write ~11 ms; opening costs the same at 1k triples (it does not grow with the
data), which is why no long-lived store server is needed (the brief's bar was 50 ms).
Per operation, against hold=True: count 10-17 ms (4), graphs 5-12 ms (0.1), add of 10
quads 25-40 ms (0.1), a small SPARQL query 7-12 ms (0.1), erasing a subject 30-41 ms,
replacing a 100-triple graph 52-57 ms (27-33). Batch writes (`add` takes any number of
quads); use hold=True where one process works alone.

SPARQL queries (a security boundary: researchers send arbitrary text)
---------------------------------------------------------------------
- Only SELECT, ASK, CONSTRUCT and DESCRIBE: an update is refused before reaching a store.
- The dataset is exactly the `graphs` the caller passes: the default graph is their union
  (less those passed as `named_only`, reachable with GRAPH only),
  GRAPH ?g ranges over them. The store is given that dataset explicitly (pyoxigraph's
  default_graph/named_graphs; the Protocol's default-graph-uri/named-graph-uri), and both
  Oxigraph and the SPARQL 1.1 Protocol let that dataset override the query's own FROM /
  FROM NAMED, so a query cannot widen it (tests check it on both backends). On top of
  that a FROM / FROM NAMED naming a graph outside `graphs` is refused, and one within them
  narrows the dataset as SPARQL defines.
- SERVICE (which makes the server fetch a URL) is refused by a lexer of SPARQL's
  terminals, not by a regular expression over the text: strings, IRIs, comments,
  variables and blank-node labels cannot trigger it, while every place a parser could
  read the keyword does. Oxigraph does not need a boundary around keywords (it runs
  `?s ?p trueSERVICE <x> {}`), so a bare word *containing* "service" is refused, and so
  is a prefixed name whose prefix contains it (`trueSERVICE:x` could read as true,
  SERVICE, :x). For a remote server `\\u` escapes are expanded and the text checked
  again: some servers (Jena) expand them before parsing, as the Recommendation says;
  Oxigraph does not, so the embedded store skips that pass (it refuses more). rdflib's
  parser was measured (6 ms a query) and rejected: its grammar is not Oxigraph's, so it
  cannot say what Oxigraph would execute.
- Answers are negotiated from an Accept value (q-values, wildcards); too large an answer
  (`max_bytes`, 64 MiB) is refused with advice to add LIMIT.
- Time: pyoxigraph has no timeout and cannot interrupt an evaluation (ORDER BY or an
  aggregate runs inside `Store.query`, and a thread cannot be stopped). The embedded
  store therefore evaluates each query in an evaluator process, which opens the store
  read-only under its own shared lock; past `timeout_s` the caller kills it and raises
  `QueryTimeout`. Evaluators are started with `subprocess` (~120-160 ms, once) and kept
  (two idle per process), so a query costs a round trip more than in-process (~2 ms);
  multiprocessing's forkserver was tried first and dropped: each child re-imports the
  caller's `__main__` (a script without a main guard re-ran itself). An evaluator ends
  itself 5 s after its deadline, should its caller die first. With hold=True the query
  runs in-process and the deadline is checked only while the answer is written out (an
  evaluation that produces nothing for long is not interrupted: trusted use only). The
  remote store bounds the HTTP exchange; set the server's own limit too (`oxigraph serve
  --timeout-s`), since a client hanging up does not stop every server's evaluation.
- With no graphs at all the query is still parsed and evaluated, over an empty dataset
  (in an evaluator too), so the caller gets a valid empty answer in the negotiated format;
  a remote server is not asked (given no dataset, a server uses all of its data).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import multiprocessing.connection
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import pyoxigraph as ox

from radbank.semantic.vocabulary import RB

__all__ = [
    "MAX_ANSWER_BYTES",
    "OxigraphStore",
    "QueryRefused",
    "QueryResult",
    "QueryTimeout",
    "RdfStore",
    "RemoteSparqlStore",
    "StoreUnavailable",
    "open_store",
]

MAX_ANSWER_BYTES = 64 * 1024 * 1024
_T = TypeVar("_T")


class QueryRefused(ValueError):
    """The client's mistake: the message says what was wrong and what to do. `status` is
    the HTTP status that fits (400 bad query, 403 refused feature or graph, 406 media)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class QueryTimeout(QueryRefused):
    """The query ran longer than it may."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503)


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or opened (busy, down, timed out); the message names it."""


@dataclass(frozen=True)
class QueryResult:
    body: bytes
    media_type: str  # e.g. "application/sparql-results+json"


class RdfStore(Protocol):
    def add(self, quads: Iterable[ox.Quad]) -> int:
        """Write quads (each in a named graph); returns how many were written or sent."""
        ...

    def replace_graph(self, graph: str, quads: Iterable[ox.Quad]) -> int:
        """Afterwards `graph` holds exactly these triples (the quads' own graph names are
        ignored); streamed. Returns how many quads were written or sent."""
        ...

    def remove_subjects(self, graph: str, subjects: Collection[str]) -> int:
        """Erasure: remove from `graph` every triple of or about a node carrying
        radbank:subject <s> (s in `subjects`) and of or about the subject IRIs themselves."""
        ...

    def remove_nodes(self, graph: str, nodes: Collection[str]) -> int:
        """Remove from `graph` every triple with one of these IRIs as subject or object."""
        ...

    def remove_descriptions(self, graph: str, nodes: Collection[str]) -> int:
        """Remove from `graph` the triples whose subject is one of these IRIs (what the
        graph says of them; what it says of others about them stays)."""
        ...

    def drop_graph(self, graph: str) -> None: ...

    def purge(self) -> None:
        """Leave no trace on disk of what was removed (after an erasure): the embedded store
        is rewritten; a remote server is the operator's to compact."""
        ...

    def count(self, graph: str, rdf_type: str | None = None) -> int:
        """Triples in `graph`, or instances of `rdf_type` in it."""
        ...

    def graphs(self) -> list[str]:
        """The named graphs holding at least one triple, sorted."""
        ...

    def query(
        self,
        sparql: str,
        graphs: Sequence[str],
        accept: str | None = None,
        timeout_s: float = 30.0,
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
        named_only: Collection[str] = (),
    ) -> QueryResult: ...

    def compact(self, *, if_grown_by: float | None = None) -> bool:
        """Reorganise the store's files for reading after bulk writes; with `if_grown_by`,
        only if the store grew by that fraction since it was last compacted. Whether it
        compacted."""
        ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------
# SPARQL text: what the query is, the dataset it asks for, and whether it uses SERVICE.

# The terminals of the SPARQL 1.1 grammar (section 19.8) that matter for telling code
# from data. Each alternative is tried in order at the current position, as a parser
# would read the text; `word` is every other run of name characters and dots (keywords,
# function names, numbers, `a`). Taking the dots in too keeps the scan linear: otherwise
# "a.a.a..." makes the prefixed-name pattern rescan the rest of the run at every dot.
_PN_CHARS_BASE = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_PN_CHARS_U = _PN_CHARS_BASE + "_"
_PN_CHARS = _PN_CHARS_U + "\\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLX = r"%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%]"
_TOKEN = re.compile(
    "|".join(
        (
            r"(?P<space>\s+)",
            r"(?P<comment>#[^\r\n]*)",
            r'(?P<string>"""(?:[^"\\]|\\.|"(?!""))*"""'
            r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
            r'|"(?:[^"\\\r\n]|\\.)*"'
            r"|'(?:[^'\\\r\n]|\\.)*')",
            r"(?P<unterminated>[\"'])",
            r'(?P<iri><[^<>"{}|^`\\\x00-\x20]*>)',
            rf"(?P<var>[?$][{_PN_CHARS_U}0-9][{_PN_CHARS_U}0-9\u00b7\u0300-\u036f\u203f-\u2040]*)",
            rf"(?P<bnode>_:[{_PN_CHARS_U}0-9](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?)",
            rf"(?P<pname>(?P<prefix>[{_PN_CHARS_BASE}](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?)?:"
            rf"(?P<local>(?:[{_PN_CHARS_U}:0-9]|{_PLX})"
            rf"(?:(?:[{_PN_CHARS}.:]|{_PLX})*(?:[{_PN_CHARS}:]|{_PLX}))?)?)",
            r"(?P<langtag>@[A-Za-z]+(?:-[A-Za-z0-9]+)*)",
            rf"(?P<word>[{_PN_CHARS}.]+)",
            r"(?P<other>.)",
        )
    ),
    re.DOTALL,
)
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_LOCAL_ESCAPE = re.compile(r"\\(.)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_QUERY_FORMS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
_UPDATE_WORDS = {
    "INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH",
}  # fmt: skip


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    prefix: str | None = None  # of a prefixed name
    local: str | None = None


def _tokens(text: str, *, strict: bool = True) -> Iterator[_Token]:
    """The significant tokens of a SPARQL text (no white space, no comments), up to a
    string that does not end (refused if `strict`)."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None  # `other` matches any character
        position = match.end()
        kind = match.lastgroup
        if kind == "prefix" or kind == "local":
            kind = "pname"
        if kind in ("space", "comment") or kind is None:
            continue
        if kind == "unterminated":
            # A quote outside strings, IRIs and comments always opens a string, so the
            # query is not SPARQL; stopping here also keeps the scan linear.
            if not strict:
                return
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - text.rfind("\n", 0, match.start())
            raise QueryRefused(
                f"the query is not valid SPARQL: the string opened at {line}:{column} does not end"
            )
        if kind == "pname":
            yield _Token(kind, match.group(), match.group("prefix") or "", match.group("local"))
        else:
            yield _Token(kind, match.group())


def _unescape_codepoints(text: str) -> str:
    return _UCHAR.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


def _uses_service(text: str, *, strict: bool = True) -> bool:
    for token in _tokens(text, strict=strict):
        if token.kind == "word" and "service" in token.text.casefold():
            return True
        if token.kind == "pname" and "service" in (token.prefix or "").casefold():
            return True
    return False


@dataclass(frozen=True)
class _Query:
    form: str | None  # SELECT, ASK, CONSTRUCT, DESCRIBE; None when the text does not say
    from_graphs: tuple[str, ...]  # FROM <g>, resolved
    from_named: tuple[str, ...]  # FROM NAMED <g>, resolved
    declares_dataset: bool  # the query has FROM or FROM NAMED (resolved or not)
    unresolved: bool  # a FROM names a prefix the prologue does not declare


def _analyse(sparql: str, *, escapes_expanded: bool) -> _Query:
    """Refuse SERVICE and updates; say the query form and the graphs FROM / FROM NAMED name.
    `escapes_expanded`: the server may expand \\u escapes before parsing (Jena does; the
    Recommendation says to; Oxigraph does not), so check the expanded text too."""
    if _uses_service(sparql) or (
        escapes_expanded
        and _UCHAR.search(sparql)
        and _uses_service(_unescape_codepoints(sparql), strict=False)
    ):
        raise QueryRefused(
            "SERVICE (federated query) is not accepted here: it would make this node fetch "
            "other servers. Query this node's graphs only (if 'service' is part of a prefix "
            "name, rename the prefix).",
            status=403,
        )
    tokens = list(_tokens(sparql))
    base: str | None = None
    prefixes: dict[str, str] = {}
    position = 0
    # The prologue: BASE <iri> and PREFIX p: <iri>, in any order.
    while position < len(tokens) and tokens[position].text.upper() in ("BASE", "PREFIX"):
        keyword = tokens[position].text.upper()
        if keyword == "BASE" and position + 1 < len(tokens) and tokens[position + 1].kind == "iri":
            base = _resolve_iri(tokens[position + 1].text, base)
            position += 2
        elif (
            keyword == "PREFIX"
            and position + 2 < len(tokens)
            and tokens[position + 1].kind == "pname"
            and not tokens[position + 1].local
            and tokens[position + 2].kind == "iri"
        ):
            prefixes[tokens[position + 1].prefix or ""] = _resolve_iri(
                tokens[position + 2].text, base
            )
            position += 3
        else:
            break  # malformed prologue: the parser will say where
    form = None
    if position < len(tokens) and tokens[position].kind == "word":
        keyword = tokens[position].text.upper()
        if keyword in _UPDATE_WORDS:
            raise QueryRefused(
                f"SPARQL updates are not accepted here ({keyword}): this endpoint only "
                "answers queries (SELECT, ASK, CONSTRUCT, DESCRIBE); data changes through "
                "radbank's own import and submission paths.",
                status=403,
            )
        if keyword in _QUERY_FORMS:
            form = keyword
    from_graphs: list[str] = []
    from_named: list[str] = []
    declares = unresolved = False
    for index, token in enumerate(tokens):
        if token.kind != "word" or token.text.upper() != "FROM":
            continue
        declares = True
        following = tokens[index + 1 : index + 3]
        named = bool(following) and following[0].text.upper() == "NAMED"
        target = (
            following[1] if named and len(following) > 1 else following[0] if following else None
        )
        iri = _term_iri(target, base, prefixes) if target is not None else None
        if iri is None:
            unresolved = True
        else:
            (from_named if named else from_graphs).append(iri)
    return _Query(form, tuple(from_graphs), tuple(from_named), declares, unresolved)


def _resolve_iri(token: str, base: str | None) -> str:
    iri = _unescape_codepoints(token[1:-1])
    if base is not None and _SCHEME.match(iri) is None:
        return urljoin(base, iri)
    return iri


def _term_iri(token: _Token, base: str | None, prefixes: Mapping[str, str]) -> str | None:
    if token.kind == "iri":
        return _resolve_iri(token.text, base)
    if token.kind == "pname" and token.prefix in prefixes:
        return prefixes[token.prefix or ""] + _LOCAL_ESCAPE.sub(r"\1", token.local or "")
    return None


# ---------------------------------------------------------------------------------------
# Content negotiation.

_RESULT_FORMATS: dict[str, ox.QueryResultsFormat] = {  # preference order: the first is default
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}
_GRAPH_FORMATS: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/ld+json": ox.RdfFormat.JSON_LD,
}
# Generic types clients send for these answers; they get the specific type.
_RESULT_ALIASES = {
    "application/json": "application/sparql-results+json",
    "application/xml": "application/sparql-results+xml",
}
_GRAPH_ALIASES = {
    "application/json": "application/ld+json",
    "application/xml": "application/rdf+xml",
}


def _negotiate(accept: str | None, offers: Sequence[str], aliases: Mapping[str, str]) -> str | None:
    """The offer the Accept value prefers (RFC 9110 12.5.1: the most specific matching range
    gives an offer its quality; ties go to the order of `offers`), or None."""
    if accept is None or not accept.strip():
        return offers[0]
    ranges: list[tuple[str, float]] = []
    for part in accept[:4096].split(","):
        media_type, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        if media_type:
            ranges.append((media_type.lower(), quality))
    best, best_quality = None, 0.0
    for offer in offers:
        specificity, quality = -1, 0.0
        main_type = offer.split("/")[0]
        for media_type, range_quality in ranges:
            if media_type == offer or aliases.get(media_type) == offer:
                level = 3
            elif media_type == f"{main_type}/*":
                level = 2
            elif media_type == "*/*":
                level = 1
            else:
                continue
            if level > specificity:
                specificity, quality = level, range_quality
        if quality > best_quality:
            best, best_quality = offer, quality
    return best


@dataclass(frozen=True)
class _Plan:
    """A query checked and ready to run: its dataset and its answer's media types."""

    sparql: str
    form: str | None
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]
    results_type: str | None  # for SELECT / ASK, None if Accept rules every one out
    graph_type: str | None  # for CONSTRUCT / DESCRIBE
    accept: str | None

    @property
    def empty(self) -> bool:
        return not self.default_graphs and not self.named_graphs

    def not_acceptable(self, form: str) -> QueryRefused:
        offered = _GRAPH_FORMATS if form in ("CONSTRUCT", "DESCRIBE") else _RESULT_FORMATS
        return QueryRefused(
            f"cannot answer a {form} query as {self.accept!r}; ask for one of {', '.join(offered)}",
            status=406,
        )

    def accept_header(self) -> str:
        """What to ask a remote server for."""
        if self.form in ("CONSTRUCT", "DESCRIBE"):
            return self.graph_type or ""
        if self.form is not None:
            return self.results_type or ""
        return ", ".join(t for t in (self.results_type, self.graph_type) if t)


def _plan(
    sparql: str,
    graphs: Sequence[str],
    accept: str | None,
    *,
    escapes_expanded: bool,
    named_only: Collection[str] = (),
) -> _Plan:
    query = _analyse(sparql, escapes_expanded=escapes_expanded)
    allowed = list(dict.fromkeys(graphs))
    for graph in allowed:
        ox.NamedNode(graph)  # a caller's bug, not the client's: ValueError
    default = tuple(g for g in allowed if g not in named_only)
    named = tuple(allowed)
    if query.declares_dataset:
        outside = [g for g in (*query.from_graphs, *query.from_named) if g not in allowed]
        if outside:
            raise QueryRefused(
                f"FROM <{outside[0][:200]}> names a graph outside the ones you may query "
                f"here ({len(allowed)} graph(s)); leave FROM out to query all of them",
                status=403,
            )
        if not query.unresolved:
            # SPARQL 13.2: a dataset clause replaces the default dataset; without FROM the
            # default graph is empty, without FROM NAMED there are no named graphs.
            default = tuple(dict.fromkeys(query.from_graphs))
            named = tuple(dict.fromkeys(query.from_named))
    plan = _Plan(
        sparql,
        query.form,
        default,
        named,
        _negotiate(accept, list(_RESULT_FORMATS), _RESULT_ALIASES),
        _negotiate(accept, list(_GRAPH_FORMATS), _GRAPH_ALIASES),
        accept,
    )
    if query.form is not None and not plan.accept_header():
        raise plan.not_acceptable(query.form)
    return plan


# ---------------------------------------------------------------------------------------
# Evaluating a query with pyoxigraph (in an evaluator process, or in-process with hold=True).


class _Sink:
    """Where pyoxigraph writes an answer: refuses it past `max_bytes` or past `deadline`
    (raising from write() stops the serialisation and the evaluation feeding it)."""

    def __init__(self, max_bytes: int, deadline: float | None) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.max_bytes = max_bytes
        self.deadline = deadline

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise QueryRefused(
                f"the answer exceeds {self.max_bytes // (1024 * 1024)} MiB; add LIMIT (and "
                "OFFSET to page through it) or select fewer variables",
                status=400,
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QueryTimeout("the query ran out of time while its answer was written")
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def _evaluate(store: ox.Store, plan: _Plan, max_bytes: int, deadline: float | None) -> QueryResult:
    try:
        result = store.query(
            plan.sparql,
            default_graph=[ox.NamedNode(g) for g in plan.default_graphs],
            named_graphs=[ox.NamedNode(g) for g in plan.named_graphs],
        )
    except SyntaxError as exc:
        raise QueryRefused(f"the query is not valid SPARQL: {exc}") from None
    if isinstance(result, ox.QueryTriples):
        media_type = plan.graph_type
        if media_type is None:
            raise plan.not_acceptable(plan.form or "CONSTRUCT")
        sink = _Sink(max_bytes, deadline)
        result.serialize(sink, _GRAPH_FORMATS[media_type])
    else:
        media_type = plan.results_type
        if media_type is None:
            raise plan.not_acceptable(plan.form or "SELECT")
        sink = _Sink(max_bytes, deadline)
        result.serialize(sink, _RESULT_FORMATS[media_type])
    return QueryResult(b"".join(sink.parts), media_type)


# In an evaluator process: the store the last query read, opened read-only, with the state
# of its files when it was opened. Closed after _KEEP_OPEN_IDLE_S without a query, and
# within _WATCH_S of a purge replacing its directory (an erasure's purge must not leave
# the old files, unlinked, held open by an idle evaluator: their space, and what they
# hold of erased data, is freed only when the last process closes them).
_KEEP_OPEN_IDLE_S = 30.0
_WATCH_S = 1.0


@dataclass
class _OpenStore:
    state: frozenset[tuple[str, int, int, int]]
    store: ox.Store
    directory: int  # the inode of the database's directory: a purge swaps in another
    used: float  # time.monotonic() of the last query


_reading: dict[str, _OpenStore] = {}


def _files_state(location: str) -> frozenset[tuple[str, int, int, int]]:
    """Name, size, modification time and inode of every file of the database but RocksDB's
    informational logs: any write (a table file added, the manifest or a write-ahead log
    appended, a purge's new directory) changes it."""
    with os.scandir(location) as entries:
        return frozenset(
            (entry.name, stat.st_size, stat.st_mtime_ns, stat.st_ino)
            for entry in entries
            if not entry.name.startswith("LOG")
            for stat in (entry.stat(),)
        )


def _read_only(location: str) -> ox.Store:
    """The store at `location`, opened read-only, or the one the previous query opened if
    no file of the database changed since: the caller holds the lock shared, so no writer
    runs meanwhile, and a reused store keeps RocksDB's block cache warm (short queries took
    twice their time in a store opened for each). A store whose files changed is closed
    and opened again, so a query never reads a state older than the last write."""
    state = _files_state(location)
    cached = _reading.pop(location, None)
    if cached is not None and cached.state == state:
        cached.used = time.monotonic()
        _reading[location] = cached
        return cached.store
    del cached  # closes the old store before the new one is opened
    store = ox.Store.read_only(location)
    _reading[location] = _OpenStore(
        _files_state(location), store, os.stat(location).st_ino, time.monotonic()
    )
    return store


def _close_stale_stores() -> None:
    """Close the stores idle for _KEEP_OPEN_IDLE_S, and those whose directory a purge has
    replaced (or removed)."""
    now = time.monotonic()
    for location, opened in list(_reading.items()):
        try:
            replaced = os.stat(location).st_ino != opened.directory
        except OSError:
            replaced = True
        if replaced or now - opened.used >= _KEEP_OPEN_IDLE_S:
            del _reading[location]


def _answer(
    location: str | None, lock_path: str | None, plan: _Plan, max_bytes: int
) -> tuple[tuple[object, ...], bytes]:
    """In an evaluator: the reply header ("ok", media type) / ("refused", message, status)
    / ("failed", message) and the body."""
    lock_fd = None
    try:
        if lock_path is not None:
            # The caller holds the lock shared; the evaluator holds it too, so that no
            # writer opens the store under it should the caller die first.
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
            fcntl.flock(lock_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        store = _read_only(location) if location is not None else ox.Store()
        answer = _evaluate(store, plan, max_bytes, None)
        del store
        return ("ok", answer.media_type), answer.body
    except QueryRefused as exc:
        return ("refused", str(exc), exc.status), b""
    except Exception as exc:  # noqa: BLE001 - reported to the caller, which raises
        return ("failed", f"{type(exc).__name__}: {exc}"), b""
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _serve(fd: int) -> None:
    """An evaluator process: answer requests on the connection `fd` until it closes."""
    connection = multiprocessing.connection.Connection(fd)
    while True:
        if _reading and not connection.poll(_WATCH_S):
            _close_stale_stores()
            continue
        try:
            location, lock_path, plan, max_bytes, timeout_s = connection.recv()
        except EOFError:
            return
        # Should the caller die (it would have killed us at its deadline), end anyway.
        timer = threading.Timer(timeout_s + 5.0, os._exit, args=(70,))
        timer.daemon = True
        timer.start()
        header, body = _answer(location, lock_path, plan, max_bytes)
        timer.cancel()
        try:
            connection.send(header)
            if header[0] == "ok":
                connection.send_bytes(body)
        except OSError:
            return


class _Evaluator:
    """A process that evaluates one query at a time, and can be killed mid-way."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _EVALUATOR_MAIN, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        self.connection = multiprocessing.connection.Connection(ours.detach())

    def stop(self) -> None:
        self.connection.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


_EVALUATOR_MAIN = "import sys; from radbank.semantic.store import _serve; _serve(int(sys.argv[1]))"


class _Evaluators:
    """The evaluator processes of this process: idle ones are reused (a query then costs a
    round trip, not a ~160 ms start), one is started when all are busy, and one that ran
    out of time is killed."""

    KEEP_IDLE = 2

    def __init__(self) -> None:
        self._idle: list[_Evaluator] = []
        self._mutex = threading.Lock()
        atexit.register(self.stop)

    def run(
        self,
        location: str | None,
        lock_path: str | None,
        plan: _Plan,
        max_bytes: int,
        timeout_s: float,
        name: str,
    ) -> QueryResult:
        evaluator = self._take()
        reusable = False
        try:
            connection = evaluator.connection
            connection.send((location, lock_path, plan, max_bytes, timeout_s))
            if not connection.poll(timeout_s):
                raise QueryTimeout(
                    f"the query ran longer than {timeout_s:g} s and was stopped; narrow it "
                    "(more specific patterns, LIMIT) or ask the node's operator for more time"
                )
            header = connection.recv()
            body = connection.recv_bytes() if header[0] == "ok" else b""
            reusable = True
        except (EOFError, OSError):
            evaluator.stop()
            raise StoreUnavailable(
                f"the evaluation of the query over {name} ended without an answer (exit "
                f"code {evaluator.process.returncode}); it may need more memory than the "
                "node has"
            ) from None
        finally:
            if reusable:
                self._give_back(evaluator)
            else:
                evaluator.stop()
        if header[0] == "ok":
            return QueryResult(body, header[1])
        if header[0] == "refused":
            raise QueryRefused(header[1], status=header[2])
        raise StoreUnavailable(f"the query over {name} failed: {header[1]}")

    def _take(self) -> _Evaluator:
        with self._mutex:
            while self._idle:
                evaluator = self._idle.pop()
                if evaluator.process.poll() is None:
                    return evaluator
                evaluator.stop()
        return _Evaluator()

    def _give_back(self, evaluator: _Evaluator) -> None:
        with self._mutex:
            if len(self._idle) < self.KEEP_IDLE:
                self._idle.append(evaluator)
                return
        evaluator.stop()

    def stop(self) -> None:
        with self._mutex:
            idle, self._idle = self._idle, []
        for evaluator in idle:
            evaluator.stop()

    def forget(self) -> None:
        """In a forked child: the evaluators are the parent's."""
        self._idle = []
        self._mutex = threading.Lock()


_evaluators = _Evaluators()
os.register_at_fork(after_in_child=_evaluators.forget)


def _answer_without_data(plan: _Plan, max_bytes: int, timeout_s: float) -> QueryResult:
    """No graph is visible: parse and evaluate over an empty dataset, which still takes an
    evaluator (VALUES alone can make an evaluation as long as one likes)."""
    return _evaluators.run(None, None, plan, max_bytes, timeout_s, "an empty dataset")


# ---------------------------------------------------------------------------------------
# SPARQL text radbank sends itself (both backends run the same queries and updates).


def _iri(value: str) -> str:
    """An IRI as SPARQL / N-Triples text; ValueError (from pyoxigraph) if it is not one."""
    return str(ox.NamedNode(value))


def _values(iris: Iterable[str]) -> str:
    return " ".join(_iri(i) for i in iris)


def _subjects_pattern(graph: str, subjects: Collection[str]) -> str:
    """The triples erasure removes: of and about nodes carrying radbank:subject <s>, and of
    and about the subject IRIs. Each branch starts from VALUES, so it is index lookups."""
    values = _values(subjects)
    subject = _iri(RB + "subject")
    return (
        f"GRAPH {_iri(graph)} {{\n"
        f"  {{ VALUES ?x {{ {values} }} ?s {subject} ?x . ?s ?p ?o }}\n"
        f"  UNION {{ VALUES ?x {{ {values} }} ?n {subject} ?x . ?s ?p ?n BIND(?n AS ?o) }}\n"
        f"  UNION {{ VALUES ?s {{ {values} }} ?s ?p ?o }}\n"
        f"  UNION {{ VALUES ?o {{ {values} }} ?s ?p ?o }}\n"
        "}"
    )


def _nodes_pattern(graph: str, nodes: Collection[str]) -> str:
    values = _values(nodes)
    return (
        f"GRAPH {_iri(graph)} {{\n"
        f"  {{ VALUES ?s {{ {values} }} ?s ?p ?o }}\n"
        f"  UNION {{ VALUES ?o {{ {values} }} ?s ?p ?o }}\n"
        "}"
    )


def _descriptions_pattern(graph: str, nodes: Collection[str]) -> str:
    return f"GRAPH {_iri(graph)} {{ VALUES ?s {{ {_values(nodes)} }} ?s ?p ?o }}"


def _count_query(pattern: str) -> str:
    return f"SELECT (COUNT(*) AS ?n) WHERE {{ SELECT DISTINCT ?s ?p ?o WHERE {{ {pattern} }} }}"


def _delete_update(graph: str, pattern: str) -> str:
    # One DELETE operation: its WHERE is matched before anything is removed, and the
    # update is one transaction (Oxigraph).
    return f"DELETE {{ GRAPH {_iri(graph)} {{ ?s ?p ?o }} }} WHERE {{ {pattern} }}"


def _graph_count_query(graph: str, rdf_type: str | None) -> str:
    if rdf_type is None:
        return f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {_iri(graph)} {{ ?s ?p ?o }} }}"
    return f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {_iri(graph)} {{ ?s a {_iri(rdf_type)} }} }}"


def _in_graph(
    quads: Iterable[ox.Quad], graph: ox.NamedNode, counter: list[int]
) -> Iterator[ox.Quad]:
    for quad in quads:
        counter[0] += 1
        yield ox.Quad(quad.subject, quad.predicate, quad.object, graph)


def _named(quads: Iterable[ox.Quad], counter: list[int]) -> Iterator[ox.Quad]:
    for quad in quads:
        if not isinstance(quad.graph_name, ox.NamedNode):
            raise ValueError(
                f"quad {quad} is not in a named graph: radbank writes every triple into a "
                "project's graph (vocabulary.graph_iri); nothing of this batch was written"
            )
        counter[0] += 1
        yield quad


# ---------------------------------------------------------------------------------------
# The embedded store.


class _Removals:
    """The removals of RdfStore, as patterns; each backend says how `_remove` deletes what
    a pattern matches and counts it."""

    def _remove(self, graph: str, pattern: str) -> int:
        raise NotImplementedError

    def remove_subjects(self, graph: str, subjects: Collection[str]) -> int:
        if not subjects:
            return 0
        return self._remove(graph, _subjects_pattern(graph, subjects))

    def remove_nodes(self, graph: str, nodes: Collection[str]) -> int:
        if not nodes:
            return 0
        return self._remove(graph, _nodes_pattern(graph, nodes))

    def remove_descriptions(self, graph: str, nodes: Collection[str]) -> int:
        if not nodes:
            return 0
        return self._remove(graph, _descriptions_pattern(graph, nodes))


class OxigraphStore(_Removals):
    """The embedded Oxigraph store in directory `path` (created if missing), safe to use
    from several processes at once; see the module docstring for the locking."""

    KEEP_INFO_LOGS = 3

    def __init__(
        self,
        path: Path,
        *,
        hold: bool = False,
        lock_timeout_s: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.hold = hold
        self.lock_timeout_s = lock_timeout_s
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._queue_path = self.path.with_name(self.path.name + ".queue.lock")
        self._fresh = self.path.with_name(self.path.name + ".fresh")
        self._complete = self.path.with_name(self.path.name + ".complete")
        self._old = self.path.with_name(self.path.name + ".old")
        self._compacted = self.path.with_name(self.path.name + ".compacted")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._acquire(exclusive=True)
        try:
            self._finish_purge()
        finally:
            os.close(lock)
        self._mutex = threading.RLock()  # hold=True: one handle, many threads
        self._held: ox.Store | None = None
        self._held_lock: int | None = None
        if hold:
            self._held_lock = self._acquire(exclusive=True)
            try:
                self._held = self._open(write=True)
            except BaseException:
                os.close(self._held_lock)
                raise
        elif not (self.path / "CURRENT").exists():
            # Readers open read-only, which needs an existing database.
            self._using(True, lambda store: None)

    def __repr__(self) -> str:
        return f"OxigraphStore({str(self.path)!r}, hold={self.hold})"

    def __enter__(self) -> OxigraphStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Locking and opening

    def _acquire(self, *, exclusive: bool) -> int:
        """Take the store's lock (through the turnstile); returns its descriptor."""
        deadline = time.monotonic() + self.lock_timeout_s
        queue = os.open(self._queue_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            self._wait(queue, fcntl.LOCK_EX, deadline)
            lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                self._wait(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline)
            except BaseException:
                os.close(lock)
                raise
        finally:
            os.close(queue)  # releases the turnstile
        return lock

    def _wait(self, fd: int, mode: int, deadline: float) -> None:
        # flock cannot time out, so poll without blocking (1 ms, doubling up to 50 ms).
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise StoreUnavailable(
                    f"the embedded RDF store {self.path} is busy: another radbank process "
                    f"has held it for more than {self.lock_timeout_s:g} s (a rebuild, a long "
                    "query, or a process opened with hold=True); try again later"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _open(self, *, write: bool) -> ox.Store:
        try:
            if write:
                return ox.Store(str(self.path))
            return ox.Store.read_only(str(self.path))
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot open the embedded RDF store {self.path}: {exc} (is a program other "
                "than radbank, such as `oxigraph serve`, using this directory?)"
            ) from None

    def _using(self, write: bool, operation: Callable[[ox.Store], _T]) -> _T:
        """Run `operation` on an open store: the held one, or one opened under the lock
        and closed before the lock is released."""
        if self.hold:
            with self._mutex:
                if self._held is None:
                    raise StoreUnavailable(f"the embedded RDF store {self.path} was closed")
                return operation(self._held)
        lock = self._acquire(exclusive=write)
        try:
            store = self._open(write=write)
            try:
                result = operation(store)
                if write:
                    store.flush()  # durable on return; the next opening replays nothing
            except BaseException as exc:
                # The traceback keeps the frames that used the store, and with them the
                # database open after the lock is released: clear them first.
                traceback.clear_frames(exc.__traceback__)
                del store
                raise
            leaked = sys.getrefcount(store) > 2  # this frame and getrefcount's argument
            del store  # the last reference: closes RocksDB, which releases its LOCK file
            if leaked:
                raise RuntimeError(
                    "bug: a reference to the Oxigraph store outlived the operation, so the "
                    "database would stay open after its lock is released"
                )
            return result
        finally:
            if write:
                self._prune_info_logs()
            os.close(lock)

    def _prune_info_logs(self) -> None:
        try:
            old = sorted(p for p in os.listdir(self.path) if p.startswith("LOG.old."))
        except OSError:
            return
        for name in old[: -self.KEEP_INFO_LOGS]:
            with contextlib.suppress(OSError):
                os.unlink(self.path / name)

    # Purging: Oxigraph keeps the strings of removed terms (and RocksDB keeps removed
    # entries in files until they are compacted), so what an erasure removed would stay
    # readable on disk. A purge copies every quad into a fresh database and swaps the
    # directories: <path>.fresh is written, renamed <path>.complete once flushed; then
    # <path> becomes <path>.old, <path>.complete becomes <path>, <path>.old is deleted.
    # `_finish_purge` completes or undoes a purge a crash interrupted, from those names.

    def purge(self) -> None:
        """Rewrite the database without what was removed. Takes the exclusive lock for as
        long as copying the whole store lasts (seconds per million triples)."""
        if self.hold:
            with self._mutex:
                if self._held is None:
                    raise StoreUnavailable(f"the embedded RDF store {self.path} was closed")
                self._copy_to_fresh(self._held)
                self._held = None  # the last reference: closes the old database
                self._swap()
                self._held = self._open(write=True)
            return
        lock = self._acquire(exclusive=True)
        try:
            store = self._open(write=True)
            self._copy_to_fresh(store)
            del store
            self._swap()
        finally:
            os.close(lock)

    def _copy_to_fresh(self, store: ox.Store) -> None:
        shutil.rmtree(self._fresh, ignore_errors=True)
        fresh = ox.Store(str(self._fresh))
        fresh.bulk_extend(store.quads_for_pattern(None, None, None, None))
        fresh.flush()
        del fresh
        os.replace(self._fresh, self._complete)

    def _swap(self) -> None:
        os.replace(self.path, self._old)
        os.replace(self._complete, self.path)
        shutil.rmtree(self._old, ignore_errors=True)
        self._compacted.write_text(str(_table_bytes(self.path)), encoding="ascii")

    def _finish_purge(self) -> None:
        """Under the exclusive lock: complete a purge a crash interrupted (a complete copy
        was made under the lock, so nothing changed after it), or drop an unfinished one."""
        shutil.rmtree(self._fresh, ignore_errors=True)
        if self._complete.exists():
            if self.path.exists():
                os.replace(self.path, self._old)
            os.replace(self._complete, self.path)
        if self._old.exists():
            if self.path.exists():
                shutil.rmtree(self._old, ignore_errors=True)
            else:
                os.replace(self._old, self.path)

    # RdfStore

    def add(self, quads: Iterable[ox.Quad]) -> int:
        """Written with the bulk loader, as N-Quads: sorted files handed to RocksDB, 2.5x the
        rate of a transaction, with no memtable left to flush, and the interpreter free for
        other threads meanwhile. The loader is not atomic, which adding cannot show:
        readers wait for the lock, and what a crash part-way left out the caller's journal
        adds again (adding is idempotent). The loader renames blank nodes, so quads with
        blank nodes go through a transaction."""
        counter = [0]

        def write(store: ox.Store) -> None:
            listed = list(_named(quads, counter))
            if any(
                isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode)
                for q in listed
            ):
                store.extend(listed)
            elif listed:
                data = ox.serialize(listed, format=ox.RdfFormat.N_QUADS)
                del listed
                store.bulk_load(data, format=ox.RdfFormat.N_QUADS)

        self._using(True, write)
        return counter[0]

    def replace_graph(self, graph: str, quads: Iterable[ox.Quad]) -> int:
        """Other radbank processes see the graph before or after, never in between (they
        wait for the lock, up to their lock timeout, for the whole of the streaming). A
        crash part-way leaves the graph partly loaded: run the rebuild again."""
        target = ox.NamedNode(graph)
        counter = [0]

        def replace(store: ox.Store) -> None:
            store.remove_graph(target)
            # The bulk loader writes files directly instead of holding the graph in memory.
            store.bulk_extend(_in_graph(quads, target, counter))

        self._using(True, replace)
        return counter[0]

    def _remove(self, graph: str, pattern: str) -> int:
        def remove(store: ox.Store) -> int:
            # Under the exclusive lock: the count is exactly what the update removes.
            removed = _solution_count(store.query(_count_query(pattern)))
            if removed:
                store.update(_delete_update(graph, pattern))
            return removed

        return self._using(True, remove)

    def drop_graph(self, graph: str) -> None:
        target = ox.NamedNode(graph)
        self._using(True, lambda store: store.remove_graph(target))

    def count(self, graph: str, rdf_type: str | None = None) -> int:
        text = _graph_count_query(graph, rdf_type)
        return self._using(False, lambda store: _solution_count(store.query(text)))

    def graphs(self) -> list[str]:
        def listed(store: ox.Store) -> list[str]:
            return sorted(
                g.value
                for g in store.named_graphs()
                if isinstance(g, ox.NamedNode)
                and next(iter(store.quads_for_pattern(None, None, None, g)), None) is not None
            )

        return self._using(False, listed)

    def query(
        self,
        sparql: str,
        graphs: Sequence[str],
        accept: str | None = None,
        timeout_s: float = 30.0,
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
        named_only: Collection[str] = (),
    ) -> QueryResult:
        plan = _plan(sparql, graphs, accept, escapes_expanded=False, named_only=named_only)
        if self.hold:
            deadline = time.monotonic() + timeout_s
            if plan.empty:
                return _evaluate(ox.Store(), plan, max_bytes, deadline)
            return self._using(False, lambda held: _evaluate(held, plan, max_bytes, deadline))
        if plan.empty:
            return _answer_without_data(plan, max_bytes, timeout_s)
        lock = self._acquire(exclusive=False)
        try:
            return _evaluators.run(
                str(self.path), str(self._lock_path), plan, max_bytes, timeout_s, str(self.path)
            )
        finally:
            os.close(lock)

    def compact(self, *, if_grown_by: float | None = None) -> bool:
        """RocksDB's full compaction (Oxigraph's `optimize`), under the exclusive lock.

        Every bulk load adds sorted files over the whole key range, and RocksDB merges
        them in the background only while a database stays open, which a store opened per
        operation never does: lookups then read every file. On 1,000,000 triples written
        in 6 loads the example queries took 1.3-2x their time on the compacted store
        (docs/benchmarks.md). Compaction costs ~2 s per million triples, during which
        other operations wait for the lock. The size of the tables after each compaction
        is kept in `<path>.compacted`, for `if_grown_by`.
        """

        def grown() -> bool:
            size = _table_bytes(self.path)
            try:
                last = int(self._compacted.read_text(encoding="ascii"))
            except (OSError, ValueError):
                last = 0
            return size >= last * (1 + if_grown_by) and size - last >= _COMPACT_AT_LEAST_BYTES

        def compact(store: ox.Store) -> bool:
            if if_grown_by is not None and not grown():
                return False
            store.optimize()
            # A hint, written under the exclusive lock: lost or torn by a crash, it reads
            # as 0 and costs one compaction more.
            self._compacted.write_text(str(_table_bytes(self.path)), encoding="ascii")
            return True

        if if_grown_by is not None and not grown():
            return False  # looked at without the lock (no opening); checked again under it
        return self._using(True, compact)

    def close(self) -> None:
        """With hold=True: close the store and release the lock (idempotent)."""
        with self._mutex:
            if self._held is not None:
                held, self._held = self._held, None
                held.flush()
                del held
            if self._held_lock is not None:
                os.close(self._held_lock)
                self._held_lock = None


_COMPACT_AT_LEAST_BYTES = 16 * 1024 * 1024  # growth below this is not worth a compaction


def _table_bytes(path: Path) -> int:
    """Bytes of RocksDB's table files (*.sst) in the store's directory (0 while a purge has
    it renamed)."""
    total = 0
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.endswith(".sst"):
                    with contextlib.suppress(OSError):
                        total += entry.stat().st_size
    except FileNotFoundError:
        return 0
    return total


def _solution_count(result: object) -> int:
    assert isinstance(result, ox.QuerySolutions)
    for solution in result:
        value = solution["n"]
        assert isinstance(value, ox.Literal)
        return int(value.value)
    return 0


# ---------------------------------------------------------------------------------------
# A remote SPARQL 1.1 server.

_NO_GRAPH = "urn:radbank:no-graph"  # names no graph radbank writes (urn:radbank:graph:...)
_BULK_TIMEOUT_S = 3600.0  # a rebuild's PUT may take the server a long time to load
_CHUNK = 2_000  # triples per N-Triples chunk of a streamed body


class RemoteSparqlStore(_Removals):
    """A SPARQL 1.1 server: Protocol for query and update, Graph Store HTTP Protocol for
    replace_graph / drop_graph when `graph_store_url` is given (else SPARQL Update).

    Atomicity is the server's: on Oxigraph an update request and a Graph Store PUT are one
    transaction each, so replace_graph and the removals are atomic there. The counts that
    remove_subjects / remove_nodes return are of the triples matching just before the
    update (a write between the two by another client would make them differ)."""

    def __init__(
        self,
        query_url: str,
        update_url: str,
        graph_store_url: str | None = None,
        *,
        timeout_s: float = 30.0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.query_url = query_url
        self.update_url = update_url
        self.graph_store_url = graph_store_url
        self.timeout_s = timeout_s
        self._client = httpx.Client(
            auth=httpx.BasicAuth(*auth) if auth else None,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers={"User-Agent": "radbank"},
        )

    def __repr__(self) -> str:
        return f"RemoteSparqlStore({self.query_url!r})"

    def __enter__(self) -> RemoteSparqlStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # HTTP

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        timeout: httpx.Timeout | None = None,
        ok: Collection[int] = (200, 201, 204),
        **kwargs: Any,
    ) -> httpx.Response:
        try:
            response = self._client.request(
                method, url, timeout=timeout or self._client.timeout, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise StoreUnavailable(
                f"the SPARQL server at {url} did not answer {what} in time ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise StoreUnavailable(
                f"the SPARQL server at {url} cannot be reached for {what}: {exc}"
            ) from None
        if response.status_code not in ok:
            raise StoreUnavailable(
                f"the SPARQL server at {url} refused {what}: HTTP {response.status_code} "
                f"{response.text[:500]}"
            )
        return response

    def _update(self, body: bytes | Iterator[bytes], what: str, bulk: bool = False) -> None:
        self._request(
            "POST",
            self.update_url,
            what=what,
            content=body,
            headers={"Content-Type": "application/sparql-update"},
            timeout=httpx.Timeout(_BULK_TIMEOUT_S, connect=10.0) if bulk else None,
        )

    def _select(self, text: str, what: str) -> list[dict[str, str]]:
        response = self._request(
            "POST",
            self.query_url,
            what=what,
            data={"query": text},
            headers={"Accept": "application/sparql-results+json"},
        )
        try:
            bindings = response.json()["results"]["bindings"]
            return [{k: v["value"] for k, v in row.items()} for row in bindings]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreUnavailable(
                f"the SPARQL server at {self.query_url} answered {what} with something that is "
                f"not SPARQL JSON results ({exc})"
            ) from None

    def _count(self, text: str, what: str) -> int:
        rows = self._select(text, what)
        return int(rows[0]["n"]) if rows else 0

    # RdfStore

    def add(self, quads: Iterable[ox.Quad]) -> int:
        counter = [0]
        stream = iter(_named(quads, counter))
        first = next(stream, None)
        if first is None:
            return 0

        def body() -> Iterator[bytes]:
            yield b"INSERT DATA {\n"
            for graph, group in itertools.groupby(
                itertools.chain([first], stream), key=lambda q: q.graph_name
            ):
                yield f"GRAPH {graph} {{\n".encode()
                yield from _ntriples(q.triple for q in group)
                yield b"}\n"
            yield b"}\n"

        self._update(body(), "an insertion")
        return counter[0]

    def replace_graph(self, graph: str, quads: Iterable[ox.Quad]) -> int:
        target = ox.NamedNode(graph)
        stream = iter(quads)
        first = next(stream, None)
        if first is None:
            self.drop_graph(graph)
            return 0
        counter = [0]
        triples = (q.triple for q in _in_graph(itertools.chain([first], stream), target, counter))
        if self.graph_store_url is not None:
            self._request(
                "PUT",
                self.graph_store_url,
                what=f"the replacement of graph {graph}",
                params={"graph": graph},
                content=_ntriples(triples),
                headers={"Content-Type": "application/n-triples"},
                timeout=httpx.Timeout(_BULK_TIMEOUT_S, connect=10.0),
            )
        else:

            def body() -> Iterator[bytes]:
                yield f"DROP SILENT GRAPH {target} ;\nINSERT DATA {{ GRAPH {target} {{\n".encode()
                yield from _ntriples(triples)
                yield b"} }\n"

            self._update(body(), f"the replacement of graph {graph}", bulk=True)
        return counter[0]

    def _remove(self, graph: str, pattern: str) -> int:
        removed = self._count(_count_query(pattern), f"counting triples to remove from {graph}")
        if removed:
            self._update(_delete_update(graph, pattern).encode(), f"a removal from {graph}")
        return removed

    def purge(self) -> None:
        """Nothing the client can do: a SPARQL server keeps removed data on disk as its
        storage does (Oxigraph keeps strings of removed terms); compacting or reloading it
        after an erasure is its operator's task (docs/semantic.md)."""

    def drop_graph(self, graph: str) -> None:
        target = ox.NamedNode(graph)
        if self.graph_store_url is not None:
            self._request(
                "DELETE",
                self.graph_store_url,
                what=f"dropping graph {graph}",
                params={"graph": graph},
                ok=(200, 202, 204, 404),  # 404: there was no such graph
            )
        else:
            self._update(f"DROP SILENT GRAPH {target}".encode(), f"dropping graph {graph}")

    def count(self, graph: str, rdf_type: str | None = None) -> int:
        return self._count(_graph_count_query(graph, rdf_type), f"counting graph {graph}")

    def graphs(self) -> list[str]:
        rows = self._select(
            "SELECT ?g WHERE { GRAPH ?g { } FILTER EXISTS { GRAPH ?g { ?s ?p ?o } } }",
            "listing graphs",
        )
        return sorted(row["g"] for row in rows if "g" in row)

    def query(
        self,
        sparql: str,
        graphs: Sequence[str],
        accept: str | None = None,
        timeout_s: float = 30.0,
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
        named_only: Collection[str] = (),
    ) -> QueryResult:
        plan = _plan(sparql, graphs, accept, escapes_expanded=True, named_only=named_only)
        if plan.empty:
            # Without default-graph-uri / named-graph-uri a server uses its whole dataset.
            return _answer_without_data(plan, max_bytes, timeout_s)
        # Both parameters, always: a server given neither, or only one, might fill in its
        # own default (the spec says it must not); a graph that does not exist is empty.
        form = {
            "query": sparql,
            "default-graph-uri": list(plan.default_graphs) or [_NO_GRAPH],
            "named-graph-uri": list(plan.named_graphs) or [_NO_GRAPH],
        }
        deadline = time.monotonic() + timeout_s
        parts: list[bytes] = []
        size = 0
        try:
            with self._client.stream(
                "POST",
                self.query_url,
                data=form,
                headers={"Accept": plan.accept_header()},
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            ) as response:
                if response.status_code != 200:
                    message = response.read()[:2000].decode("utf-8", "replace").strip()
                    if response.status_code == 400:
                        raise QueryRefused(f"the query is not valid SPARQL: {message}")
                    raise StoreUnavailable(
                        f"the SPARQL server at {self.query_url} failed the query: HTTP "
                        f"{response.status_code} {message[:500]}"
                    )
                media_type = response.headers.get("content-type", "").split(";")[0].strip()
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise QueryRefused(
                            f"the answer exceeds {max_bytes // (1024 * 1024)} MiB; add LIMIT "
                            "(and OFFSET to page through it) or select fewer variables"
                        )
                    if time.monotonic() > deadline:
                        raise QueryTimeout(
                            f"the query ran longer than {timeout_s:g} s and was stopped"
                        )
                    parts.append(chunk)
        except httpx.ConnectTimeout:
            raise StoreUnavailable(
                f"the SPARQL server at {self.query_url} cannot be reached (connection timed out)"
            ) from None
        except httpx.TimeoutException:
            raise QueryTimeout(
                f"the query ran longer than {timeout_s:g} s and was stopped; narrow it (more "
                "specific patterns, LIMIT) or ask the node's operator for more time"
            ) from None
        except httpx.HTTPError as exc:
            raise StoreUnavailable(
                f"the SPARQL server at {self.query_url} cannot be reached: {exc}"
            ) from None
        offered = (*_RESULT_FORMATS, *_GRAPH_FORMATS)
        if media_type not in offered:
            media_type = plan.accept_header().split(",")[0].strip()
        return QueryResult(b"".join(parts), media_type)

    def compact(self, *, if_grown_by: float | None = None) -> bool:
        return False  # the server organises its own storage

    def close(self) -> None:
        self._client.close()


def _ntriples(triples: Iterable[ox.Triple]) -> Iterator[bytes]:
    """N-Triples in chunks (pyoxigraph escapes the terms), valid in INSERT DATA too."""
    iterator = iter(triples)
    while chunk := list(itertools.islice(iterator, _CHUNK)):
        yield ox.serialize(chunk, format=ox.RdfFormat.N_TRIPLES)


# ---------------------------------------------------------------------------------------


def open_store(location: str, data_dir: Path) -> RdfStore:
    """The store Settings.rdf_store names. Accepted forms:

    - "" or "oxigraph": the embedded store in data_dir/rdf.
    - "http(s)://[user:password@]host:port[/path]": an Oxigraph server (`oxigraph serve`),
      with its endpoints under the URL: /query, /update and /store (Graph Store Protocol).
    - "query=URL update=URL [store=URL]": any SPARQL 1.1 server, endpoints spelled out
      (Fuseki: query=http://h:3030/ds/query update=http://h:3030/ds/update
      store=http://h:3030/ds/data); credentials in the URLs' user:password@ part.
    """
    text = location.strip()
    shown = re.sub(r"//[^/@\s]*@", "//***@", text)  # messages must not repeat a password
    if text in ("", "oxigraph"):
        return OxigraphStore(data_dir / "rdf")
    if "=" in text.split("://")[0]:
        endpoints: dict[str, str] = {}
        for item in text.split():
            key, _, value = item.partition("=")
            if key not in ("query", "update", "store") or not value:
                raise ValueError(
                    f"RDF store {shown!r}: {item.split('=')[0]!r} is not query=, update= or store="
                )
            endpoints[key] = value
        if "query" not in endpoints or "update" not in endpoints:
            raise ValueError(f"RDF store {shown!r}: give at least query=URL and update=URL")
        query_url, auth = _without_credentials(endpoints["query"], shown)
        update_url, _ = _without_credentials(endpoints["update"], shown)
        store_url = (
            _without_credentials(endpoints["store"], shown)[0] if "store" in endpoints else None
        )
        return RemoteSparqlStore(query_url, update_url, store_url, auth=auth)
    base, auth = _without_credentials(text, shown)
    base = base.rstrip("/")
    return RemoteSparqlStore(f"{base}/query", f"{base}/update", f"{base}/store", auth=auth)


def _without_credentials(url: str, shown: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without user:password@ (messages name endpoints; they must not leak them)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"RDF store {shown!r} is not an http(s) URL; use '' for the embedded store, a "
            "server's base URL, or query=URL update=URL [store=URL]"
        )
    auth = (parts.username or "", parts.password or "") if parts.username else None
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), auth
