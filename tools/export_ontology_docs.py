"""Write the reference of the radbank ontology and of the submission shapes into
docs/ontology.md (run after changing src/radbank/semantic/ontology/*.ttl);
tests/semantic/test_ontology.py checks it is current.

Only the part between the reference markers is generated; the prose around it is edited by
hand. The output depends on the Turtle only: rows are sorted, blank nodes never named.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, SH, SKOS

from radbank.semantic.vocabulary import (
    DCAT,
    DCM,
    DCT,
    FOAF,
    ONTOLOGY_IRI,
    ONTOLOGY_PATH,
    PROV,
    QUDT,
    QUDT_UNITS,
    RB,
    SCT,
    SHAPES_PATH,
    SUBMISSION_KINDS,
    UNIT,
    XSD,
)

TARGET = Path(__file__).resolve().parents[1] / "docs" / "ontology.md"
START, END = "<!-- reference:start -->", "<!-- reference:end -->"

_PREFIXES = {
    RB: "radbank",
    DCM: "dcm",
    PROV: "prov",
    DCAT: "dcat",
    DCT: "dcterms",
    QUDT: "qudt",
    UNIT: "unit",
    SCT: "sct",
    XSD: "xsd",
    FOAF: "foaf",
    str(RDF): "rdf",
    str(RDFS): "rdfs",
    str(OWL): "owl",
    str(SH): "sh",
    str(SKOS): "skos",
}
_DCT_LICENSE, _DCT_CREATED, _DCT_MODIFIED = (
    URIRef(DCT + n) for n in ("license", "created", "modified")
)
_KIND = URIRef(RB + "submissionKind")
_MATCHES = (SKOS.exactMatch, SKOS.closeMatch, SKOS.narrowMatch, SKOS.broadMatch)


def _curie(node: object) -> str:
    text = str(node)
    for namespace, prefix in sorted(_PREFIXES.items(), key=lambda item: -len(item[0])):
        if text.startswith(namespace) and text != namespace:
            return f"{prefix}:{text[len(namespace) :]}"
    return f"<{text}>"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _items(graph: Graph, head: object) -> list[object]:
    return list(Collection(graph, head))


def _class_expression(graph: Graph, node: object) -> str:
    if isinstance(node, BNode):
        members = graph.value(node, OWL.unionOf)
        if members is not None:
            return " or ".join(sorted(f"`{_curie(m)}`" for m in _items(graph, members)))
    return f"`{_curie(node)}`"


def _text(graph: Graph, term: object) -> str:
    definition = graph.value(term, SKOS.definition) or graph.value(term, RDFS.comment) or ""
    comment = graph.value(term, RDFS.comment) if graph.value(term, SKOS.definition) else None
    return _cell(f"{definition} {comment or ''}")


def _header(onto: Graph) -> list[str]:
    iri = URIRef(ONTOLOGY_IRI)
    rows = [
        ("ontology IRI", f"`{iri}`"),
        ("version IRI", f"`{onto.value(iri, OWL.versionIRI)}`"),
        ("version", str(onto.value(iri, OWL.versionInfo))),
        ("created", str(onto.value(iri, _DCT_CREATED))),
        ("modified", str(onto.value(iri, _DCT_MODIFIED))),
        ("licence", str(onto.value(iri, _DCT_LICENSE))),
        ("namespace", f"`{RB}` (prefix `radbank:`)"),
    ]
    return ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def _terms(onto: Graph, *kinds: URIRef) -> list[URIRef]:
    found = {t for kind in kinds for t in onto.subjects(RDF.type, kind)}
    return sorted(t for t in found if isinstance(t, URIRef) and str(t).startswith(RB))


def _classes(onto: Graph) -> list[str]:
    lines = ["| class | label | subclass of | DICOM | definition |", "|---|---|---|---|---|"]
    for term in _terms(onto, OWL.Class):
        parents = ", ".join(sorted(f"`{_curie(p)}`" for p in onto.objects(term, RDFS.subClassOf)))
        matches = ", ".join(
            sorted(
                f"{_curie(m).split(':')[1]} ({_curie(p)})"
                for p in _MATCHES
                for m in onto.objects(term, p)
            )
        )
        lines.append(
            f"| `{_curie(term)}` | {onto.value(term, RDFS.label)} | {parents} | {matches} "
            f"| {_text(onto, term)} |"
        )
    return lines


def _properties(onto: Graph) -> list[str]:
    lines = ["| property | label | domain | range | definition |", "|---|---|---|---|---|"]
    kinds = (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty, RDF.Property)
    for term in _terms(onto, *kinds):
        domain = onto.value(term, RDFS.domain)
        range_ = onto.value(term, RDFS.range)
        see = ", ".join(sorted(_curie(s) for s in onto.objects(term, RDFS.seeAlso)))
        definition = _text(onto, term) + (f" See {see}." if see else "")
        lines.append(
            f"| `{_curie(term)}` | {onto.value(term, RDFS.label)} "
            f"| {_class_expression(onto, domain) if domain is not None else 'any'} "
            f"| {_class_expression(onto, range_) if range_ is not None else 'any'} | {definition} |"
        )
    return lines


def _concepts(onto: Graph) -> list[str]:
    lines = ["| concept | DICOM meaning |", "|---|---|"]
    members = onto.objects(URIRef(RB + "doseQuantityConcepts"), SKOS.member)
    for member in sorted(members, key=lambda m: int(str(m).removeprefix(DCM))):
        lines.append(f"| `{_curie(member)}` | {onto.value(member, RDFS.label)} |")
    return lines


def _units() -> list[str]:
    lines = ["| UCUM (`qudt:ucumCode`) | QUDT unit (`qudt:hasUnit`) |", "|---|---|"]
    lines += [f"| `{ucum}` | `{_curie(iri)}` |" for ucum, iri in sorted(QUDT_UNITS.items())]
    return lines


def _path(graph: Graph, path: object) -> str:
    if isinstance(path, URIRef):
        return _curie(path)
    inverse = graph.value(path, SH.inversePath)
    if inverse is not None:
        return f"^{_path(graph, inverse)}"
    alternatives = graph.value(path, SH.alternativePath)
    if alternatives is not None:
        return " | ".join(_path(graph, p) for p in _items(graph, alternatives))
    return " / ".join(_path(graph, p) for p in _items(graph, path))


def _count(graph: Graph, prop: object) -> str:
    low = graph.value(prop, SH.minCount) or graph.value(prop, SH.qualifiedMinCount)
    high = graph.value(prop, SH.maxCount)
    low_text = str(low) if low is not None else "0"
    high_text = str(high) if high is not None else "n"
    return low_text if low_text == high_text else f"{low_text}..{high_text}"


def _value(graph: Graph, node: object) -> str:
    parts = []
    for predicate, template in (
        (SH.datatype, "{}"),
        (SH["class"], "a {}"),
        (SH.nodeKind, "{}"),
        (SH.hasValue, "= {}"),
        (SH.node, "shaped as {}"),
        (SH.pattern, "matching `{}`"),
        (SH.minInclusive, ">= {}"),
        (SH.minExclusive, "> {}"),
        (SH.minLength, "length >= {}"),
    ):
        for value in sorted(graph.objects(node, predicate), key=str):
            shown = str(value) if isinstance(value, Literal) else _curie(value)
            parts.append(template.format(shown))
    for head in graph.objects(node, SH["in"]):
        shown = (str(v) if isinstance(v, Literal) else _curie(v) for v in _items(graph, head))
        parts.append("one of " + ", ".join(shown))
    for head in graph.objects(node, SH["or"]):
        parts.append(" or ".join(_value(graph, alternative) for alternative in _items(graph, head)))
    for qualified in graph.objects(node, SH.qualifiedValueShape):
        parts.append(_value(graph, qualified))
    return "; ".join(parts)


def _order(graph: Graph, node: object) -> tuple[float, str]:
    order = graph.value(node, SH.order)
    return (float(order) if order is not None else 0.0, _curie(node))


def _shape(shapes: Graph, shape: URIRef) -> list[str]:
    target = shapes.value(shape, SH.targetClass)
    title = f"**{shapes.value(shape, RDFS.label)}** (`{_curie(shape)}`"
    title += f", targets `{_curie(target)}`)" if target is not None else ")"
    lines = [title, "", _cell(str(shapes.value(shape, RDFS.comment) or "")), ""]
    lines += ["| path | count | value | message |", "|---|---|---|---|"]
    properties = sorted(shapes.objects(shape, SH.property), key=lambda p: _order(shapes, p))
    for prop in properties:
        lines.append(
            f"| `{_cell(_path(shapes, shapes.value(prop, SH.path)))}` | {_count(shapes, prop)} "
            f"| {_cell(_value(shapes, prop))} | {_cell(str(shapes.value(prop, SH.message)))} |"
        )
    for constraint in shapes.objects(shape, SH.sparql):
        message = _cell(str(shapes.value(constraint, SH.message)))
        lines.append(f"| (SPARQL rule) | | | {message} |")
    return [*lines, ""]


def _submissions(shapes: Graph) -> list[str]:
    lines: list[str] = []
    node_shapes = [s for s in shapes.subjects(RDF.type, SH.NodeShape) if isinstance(s, URIRef)]
    for kind in SUBMISSION_KINDS:
        lines += [f"#### `{kind}`", ""]
        members = [s for s in node_shapes if str(shapes.value(s, _KIND)) == kind]
        for shape in sorted(members, key=lambda s: _order(shapes, s)):
            lines += _shape(shapes, shape)
    shared = [s for s in node_shapes if shapes.value(s, _KIND) is None]
    if shared:
        lines += ["#### Shared", ""]
        for shape in sorted(shared, key=lambda s: _order(shapes, s)):
            lines += _shape(shapes, shape)
    return lines


def reference() -> str:
    onto = Graph().parse(ONTOLOGY_PATH, format="turtle")
    shapes = Graph().parse(SHAPES_PATH, format="turtle")
    lines = [
        "_Generated by `python tools/export_ontology_docs.py` from "
        "`src/radbank/semantic/ontology/radbank.ttl` and `shapes.ttl`; do not edit by hand._",
        "",
        *_header(onto),
        "",
        "### Classes",
        "",
        *_classes(onto),
        "",
        "### Properties",
        "",
        *_properties(onto),
        "",
        "### DICOM concepts of dose quantities",
        "",
        *_concepts(onto),
        "",
        "### Units",
        "",
        *_units(),
        "",
        "### Submission shapes",
        "",
        *_submissions(shapes),
    ]
    return "\n".join(lines).rstrip() + "\n"


def document(text: str) -> str:
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{reference()}{END}{after}"


if __name__ == "__main__":
    TARGET.write_text(document(TARGET.read_text()))
    sys.stdout.write(f"wrote {TARGET}\n")
