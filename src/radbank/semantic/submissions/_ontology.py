"""The radbank ontology and SHACL shapes as rdflib graphs, parsed once: the terms, the
class hierarchy and the submission kind each class belongs to.
"""

from __future__ import annotations

import functools

from rdflib import Graph, URIRef
from rdflib.namespace import RDFS as RDFLIB_RDFS
from rdflib.namespace import SH as RDFLIB_SH

from radbank.semantic.vocabulary import ONTOLOGY_PATH, RB, SHAPES_PATH


@functools.cache
def _ontology() -> Graph:
    return Graph().parse(ONTOLOGY_PATH, format="turtle")


@functools.cache
def _ontology_terms() -> frozenset[str]:
    return frozenset(str(s) for s in _ontology().subjects() if str(s).startswith(RB))


@functools.cache
def _superclasses(cls: str) -> frozenset[str]:
    return frozenset(
        str(c) for c in _ontology().transitive_objects(URIRef(cls), RDFLIB_RDFS.subClassOf)
    )


@functools.cache
def _class_kinds() -> dict[str, str]:
    """Each class a kind's shapes target (and its subclasses) -> the kind."""
    shapes = _shapes()
    kinds: dict[str, str] = {}
    kind = URIRef(RB + "submissionKind")
    for shape, cls in shapes.subject_objects(RDFLIB_SH.targetClass):
        value = shapes.value(shape, kind)
        if value is None:
            continue
        kinds[str(cls)] = str(value)
    ontology = _ontology()
    for sub in ontology.subjects(RDFLIB_RDFS.subClassOf, None):
        for cls in _superclasses(str(sub)):
            if cls in kinds and str(sub) not in kinds:
                kinds[str(sub)] = kinds[cls]
    return kinds


@functools.cache
def _shapes() -> Graph:
    return Graph().parse(SHAPES_PATH, format="turtle")
