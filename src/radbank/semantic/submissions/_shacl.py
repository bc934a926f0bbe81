"""SHACL validation of the pseudonymised triples against the shapes of the declared kind,
a few records at a time, each result reported at the row and field it came from.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping

import pyoxigraph as ox
import pyshacl
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF as RDFLIB_RDF
from rdflib.namespace import SH as RDFLIB_SH

from radbank.semantic.submissions._contract import Violation
from radbank.semantic.submissions._draft import _TYPE, _XSD_STRING, _Draft, _Node, _Origin
from radbank.semantic.submissions._ontology import _ontology, _shapes, _superclasses
from radbank.semantic.submissions._values import _curie
from radbank.semantic.vocabulary import RB, SUBMISSION_KINDS


@functools.cache
def _kind_shapes(kind: str) -> Graph:
    """The shapes of one kind (the others lose their targets, so they never fire), without
    their SPARQL constraint, which `_repeated_field_names` evaluates."""
    shapes = Graph()
    for triple in _shapes():
        shapes.add(triple)
    submission_kind = URIRef(RB + "submissionKind")
    for shape, value in list(shapes.subject_objects(submission_kind)):
        if str(value) != kind:
            shapes.remove((shape, RDFLIB_SH.targetClass, None))
    shapes.remove((None, RDFLIB_SH.sparql, None))
    return shapes


@functools.cache
def _repeated_field_message() -> str:
    shapes = _shapes()
    [constraint] = shapes.objects(URIRef(RB + "CaseReportFormShape"), RDFLIB_SH.sparql)
    return str(shapes.value(constraint, RDFLIB_SH.message))


def _repeated_field_names(
    draft: _Draft, triples: list[ox.Triple], submission: str
) -> list[Violation]:
    """The SPARQL constraint of radbank:CaseReportFormShape, with its message: a field name
    appears once per form. pyshacl parses the query again for every form (10 ms each)."""
    forms = {
        t.subject.value  # type: ignore[union-attr]
        for t in triples
        if t.predicate.value == _TYPE and RB + "CaseReportForm" in _superclasses(t.object.value)  # type: ignore[union-attr]
    }
    if not forms:
        return []
    names = {
        t.subject.value: t.object.value  # type: ignore[union-attr]
        for t in triples
        if t.predicate.value == RB + "fieldName"
    }
    seen: dict[tuple[str, str], int] = {}
    for t in triples:
        if t.predicate.value == RB + "field" and t.subject.value in forms:  # type: ignore[union-attr]
            name = names.get(t.object.value)  # type: ignore[union-attr]
            if name is not None:
                key = (t.subject.value, name)  # type: ignore[union-attr]
                seen[key] = seen.get(key, 0) + 1
    nodes = {f"{submission}/{node.local}": node for node in draft.origins}
    violations = []
    for (form, name), count in seen.items():
        if count > 1:
            origin = draft.origins[nodes[form]]
            message = _repeated_field_message().replace("{?name}", name)
            violations.append(Violation(origin.row, None, message))
    return violations


def _rdflib(term: ox.NamedNode | ox.Literal) -> URIRef | Literal:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if term.language:
        return Literal(term.value, lang=term.language)
    if term.datatype.value == _XSD_STRING:
        return Literal(term.value)  # as Turtle reads "mGy": sh:in compares terms
    return Literal(term.value, datatype=URIRef(term.datatype.value))


# Triples validated at once: pyshacl holds ~2 KB a triple (its graph, the ontology mixed
# in, its report), so a large submission is validated a few records at a time.
_CHUNK_TRIPLES = 20_000


def _validate(
    draft: _Draft,
    kind: str,
    triples: list[ox.Triple],
    groups: list[str | None],
    submission: str,
) -> list[Violation]:
    if not draft.roots:
        return [
            Violation(
                None,
                None,
                f"a {kind} submission holds at least one {_curie(SUBMISSION_KINDS[kind])}; "
                "this one holds none",
            )
        ]
    violations = _repeated_field_names(draft, triples, submission)
    nodes = {f"{submission}/{node.local}": node for node in draft.origins}
    found: list[tuple[int, Violation]] = []
    for chunk in _chunks(triples, groups):
        data = Graph()
        for triple in chunk:
            data.add(
                (
                    URIRef(triple.subject.value),  # type: ignore[union-attr]
                    URIRef(triple.predicate.value),
                    _rdflib(triple.object),  # type: ignore[arg-type]
                )
            )
        _, report, _ = pyshacl.validate(
            data,
            shacl_graph=_kind_shapes(kind),
            ont_graph=_ontology(),
            inplace=True,
            allow_warnings=True,
        )
        found += _results(draft, report, nodes)
    # The report is a graph: its order is no order. The submission's order is.
    found.sort(key=lambda item: (item[0], item[1].field or "", item[1].reason))
    violations += dict.fromkeys(v for _, v in found)  # shared nodes are in every chunk
    return violations


def _chunks(triples: list[ox.Triple], groups: list[str | None]) -> Iterator[list[ox.Triple]]:
    """The triples a few records at a time, each time with the shared ones (software
    agents, the submission): records share no other node (a record and its parts are one
    component), so each chunk validates as the whole would."""
    shared = [t for t, group in zip(triples, groups, strict=True) if group is None]
    parts: dict[str, list[ox.Triple]] = {}
    for triple, group in zip(triples, groups, strict=True):
        if group is not None:
            parts.setdefault(group, []).append(triple)
    chunk: list[ox.Triple] = []
    for part in parts.values():
        chunk += part
        if len(chunk) >= _CHUNK_TRIPLES:
            yield chunk + shared
            chunk = []
    if chunk or not parts:
        yield chunk + shared


def _results(
    draft: _Draft, report: Graph, nodes: Mapping[str, _Node]
) -> list[tuple[int, Violation]]:
    """The report's violations at the row and field each node came from, with the shape's
    message; those a violation found before validation explains already are left out."""
    found = []
    for result in report.subjects(RDFLIB_RDF.type, RDFLIB_SH.ValidationResult):
        severity = report.value(result, RDFLIB_SH.resultSeverity)
        if severity is not None and severity != RDFLIB_SH.Violation:
            continue
        focus = str(report.value(result, RDFLIB_SH.focusNode))
        predicates = _path_predicates(report, report.value(result, RDFLIB_SH.resultPath))
        node = nodes.get(focus)
        if node is not None and predicates and (node, predicates[0]) in draft.explained:
            continue
        origin = draft.origins.get(node) if node is not None else None
        message = report.value(result, RDFLIB_SH.resultMessage)
        reason = str(message) if message is not None else "does not conform to the shapes"
        violation = Violation(origin.row if origin else focus, _field(origin, predicates), reason)
        found.append((origin.order if origin else -1, violation))
    return found


def _field(origin: _Origin | None, predicates: list[str]) -> str | None:
    """The submitter's name for the value a result path reaches."""
    if origin is not None:
        mapped = origin.fields.get(predicates[0]) if predicates else None
        if mapped or origin.field or not predicates:
            return mapped or origin.field
    return "/".join(_curie(p) for p in predicates) or None


def _path_predicates(report: Graph, path: object) -> list[str]:
    """The predicates of a result path: [p] for p, [p, q] for (p q), [p] for ^p or p|q."""
    if path is None:
        return []
    if isinstance(path, URIRef):
        return [str(path)]
    if isinstance(path, BNode):
        first = report.value(path, RDFLIB_RDF.first)
        if first is not None:
            items = list(report.items(path))
            return [p for item in items for p in _path_predicates(report, item)]
        for key in (RDFLIB_SH.inversePath, RDFLIB_SH.alternativePath):
            inner = report.value(path, key)
            if inner is not None:
                return _path_predicates(report, inner)[:1]
    return []
