"""JSON-LD submissions: the radbank context, known by name (`CONTEXT_URL`, resolved to
`CONTEXT`) so that it is never fetched (any other must be inline), and the reader that
turns the parsed triples into statements of the draft: patients and DICOM objects
referenced by IRI, literals checked against their datatype, terms against the ontology.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from typing import Any

import pyoxigraph as ox

from radbank.semantic.submissions._draft import (
    _BASE,
    _DATE,
    _DATETIME,
    _DATETIME_STAMP,
    _DESCRIPTOR,
    _LANG_STRING,
    _NARRATIVE,
    _NO_CLEANING,
    _OID_PREFIX,
    _PARTIAL_DATES,
    _SOFTWARE_AGENT,
    _TYPE,
    _VALUE,
    _XSD_STRING,
    _Bad,
    _Draft,
    _Node,
    _Patient,
    _Term,
    _Uid,
)
from radbank.semantic.submissions._identifying import (
    _NARRATIVE_PREDICATES,
    _UNCLEANED_PREDICATES,
    _VALUE_PREDICATES,
    _is_identifying_predicate,
)
from radbank.semantic.submissions._ontology import _class_kinds, _ontology_terms, _superclasses
from radbank.semantic.submissions._values import (
    VOCABULARIES,
    _curie,
    _JsonNumber,
    _patient_id,
    _uid,
)
from radbank.semantic.vocabulary import (
    DCM,
    DCT,
    FOAF,
    PROV,
    QUDT,
    RB,
    RDF,
    RDFS,
    SCT,
    SKOS,
    SUBMISSION_KINDS,
    UNIT,
    XSD,
)

# The radbank JSON-LD context, known by name so that it is never fetched
CONTEXT_URL = "https://w3id.org/radbank/context.jsonld"


def _iri_term(iri: str) -> dict[str, str]:
    return {"@id": iri, "@type": "@id"}


CONTEXT: dict[str, Any] = {
    "radbank": RB,
    "dcm": DCM,
    "prov": PROV,
    "dcterms": DCT,
    "qudt": QUDT,
    "unit": UNIT,
    "sct": SCT,
    "rdfs": RDFS,
    "xsd": XSD,
    "skos": SKOS,
    "foaf": FOAF,
    "schema": "https://schema.org/",
    "id": "@id",
    "type": "@type",
    # classes
    **{
        name: RB + name
        for name in (
            "DosimetryWorkflow",
            "SensitivityCalibration",
            "Segmentation",
            "VolumeOfInterest",
            "TimeActivityCurve",
            "TimeActivityPoint",
            "CurveFit",
            "TimeIntegratedActivity",
            "AbsorbedDoseCalculation",
            "VolumeOfInterestDose",
            "MonteCarloOrganDose",
            "MonteCarloSimulation",
            "CaseReportForm",
            "CaseReportFormField",
            "QualityOfLifeAssessment",
            "Outcome",
        )
    },
    "SoftwareAgent": PROV + "SoftwareAgent",
    # properties whose values are nodes or IRIs
    **{
        name: _iri_term(RB + name)
        for name in (
            "subject",
            "study",
            "series",
            "instance",
            "irradiationEvent",
            "administration",
            "code",
            "anatomicalRegion",
            "quantityConcept",
            "volumeOfInterest",
            "field",
            "timeActivityPoint",
            "sensitivity",
            "volume",
            "timeSinceAdministration",
            "measuredActivity",
        )
    },
    "wasGeneratedBy": _iri_term(PROV + "wasGeneratedBy"),
    "used": _iri_term(PROV + "used"),
    "wasAssociatedWith": _iri_term(PROV + "wasAssociatedWith"),
    "hasPart": _iri_term(DCT + "hasPart"),
    "hasUnit": _iri_term(QUDT + "hasUnit"),
    # properties whose values are literals
    "visitDate": {"@id": RB + "visitDate", "@type": XSD + "date"},
    "date": {"@id": DCT + "date", "@type": XSD + "date"},
    **{name: RB + name for name in ("fieldName", "fieldValue", "observedValue")},
    **{name: RB + name for name in ("regionName", "method", "fitModel")},
    "title": DCT + "title",
    "numericValue": QUDT + "numericValue",
    "ucumCode": QUDT + "ucumCode",
    "label": RDFS + "label",
    "comment": RDFS + "comment",
}


_PATIENT_PREFIX = "urn:radbank:patient:"
# Namespaces of the vocabularies a submission uses but may not describe.
_VOCABULARIES = (RB, DCM, PROV, DCT, QUDT, UNIT, SCT, XSD, RDF, RDFS, SKOS, FOAF)


def _contexts_resolved(draft: _Draft, document: Any) -> Any:
    """`document` with the radbank context inlined wherever it is named; any other remote
    context (or @import) is refused, so that nothing is ever fetched."""

    def context(value: Any) -> Any:
        if isinstance(value, list):
            return [context(item) for item in value]
        if isinstance(value, str):
            if value == CONTEXT_URL:
                return CONTEXT
            draft.violation(
                None,
                "@context",
                f"remote context {value[:100]!r} is not loaded (radbank fetches nothing): "
                f"use {CONTEXT_URL!r} or write the context inline",
            )
            return {}
        return walk(value)

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, _JsonNumber):
            number = float(value)
            if not math.isfinite(number):
                draft.violation(None, None, f"{value[:40]} is too large a number")
            return number
        if not isinstance(value, dict):
            return value
        result = {}
        for key, item in value.items():
            if key == "@context":
                result[key] = context(item)
            elif key == "@import":
                draft.violation(
                    None, "@import", "a context may not @import another (radbank fetches nothing)"
                )
            else:
                result[key] = walk(item)
        return result

    return walk(document)


def _patient_from_iri(iri: str) -> _Patient:
    """urn:radbank:patient:<patient id> or urn:radbank:patient:<issuer>:<patient id>, with
    ':' and '%' in either part percent-encoded."""
    parts = iri[len(_PATIENT_PREFIX) :].split(":")
    if len(parts) not in (1, 2):
        raise _Bad(
            f"{iri[:100]} is not urn:radbank:patient:[<issuer>:]<patient id> (percent-encode "
            "':' inside the issuer or the patient id as %3A)"
        )
    decoded = [urllib.parse.unquote(part, errors="strict") for part in parts]
    issuer = decoded[0] if len(decoded) == 2 else ""
    return _Patient(
        _patient_id(issuer, "the issuer in a patient IRI") if issuer else "",
        _patient_id(decoded[-1], "the patient id in a patient IRI"),
    )


def _read_jsonld(draft: _Draft, document: Any, max_records: int) -> None:
    resolved = _contexts_resolved(draft, document)
    if draft.violations:
        return
    try:
        triples = list(
            ox.parse(
                json.dumps(resolved).encode(),
                format=ox.RdfFormat.JSON_LD,
                base_iri=_BASE,
                without_named_graphs=True,
            )
        )
    except (SyntaxError, ValueError) as exc:
        draft.violation(None, None, f"not valid JSON-LD: {str(exc)[:300]}")
        return
    if len(triples) > max_records * 200:
        draft.violation(None, None, f"more than {max_records * 200} triples: split the submission")
        return
    _JsonLd(draft, triples, max_records).read()


class _JsonLd:
    def __init__(self, draft: _Draft, triples: list[ox.Quad], max_records: int) -> None:
        self.draft = draft
        self.triples = triples
        self.max_records = max_records
        self.nodes: dict[ox.NamedNode | ox.BlankNode, _Node] = {}
        self.names: dict[_Node, str] = {}
        self.refused: set[ox.NamedNode | ox.BlankNode] = set()

    def read(self) -> None:
        draft = self.draft
        for triple in self.triples:
            self.classify(triple.subject)
        self.name_blank_nodes()
        for triple in self.triples:
            self.statement(triple.subject, triple.predicate.value, triple.object)
        for node, name in self.names.items():
            draft.origins[node].row = name
        root = SUBMISSION_KINDS[draft.kind]
        kinds = _class_kinds()
        for statement in draft.statements:
            if statement.predicate != _TYPE or not isinstance(statement.value, ox.NamedNode):
                continue
            cls = statement.value.value
            if root in _superclasses(cls):
                draft.roots.append(statement.node)
            elif cls == _SOFTWARE_AGENT:
                draft.shared.add(statement.node)
            other = kinds.get(cls)
            if other is not None and other != draft.kind:
                draft.violation(
                    self.names[statement.node],
                    "@type",
                    f"a {_curie(cls)} belongs in a {other} submission, not in a {draft.kind} "
                    "one: send it separately",
                )
        draft.roots = list(dict.fromkeys(draft.roots))
        for statement in draft.statements:
            # A software agent is stored apart from every patient's share: it may point to
            # nothing a patient's erasure would remove.
            if statement.node in draft.shared and isinstance(
                statement.value, _Node | _Patient | _Uid
            ):
                draft.violation(
                    self.names[statement.node],
                    statement.field,
                    "a prov:SoftwareAgent is shared by the records of every patient: it holds "
                    "literals and vocabulary terms only (records point to it)",
                )
        if len(draft.roots) > self.max_records:
            draft.violation(
                None, None, f"more than {self.max_records} records: split the submission"
            )

    def classify(self, term: ox.NamedNode | ox.BlankNode | ox.Triple) -> None:
        if term in self.nodes or term in self.refused or isinstance(term, ox.Triple):
            return
        if isinstance(term, ox.BlankNode):
            self.mint(term)
            return
        iri = term.value
        if iri.startswith((_OID_PREFIX, "urn:radbank:")) or iri.startswith(_VOCABULARIES):
            self.refused.add(term)
            return
        self.mint(term)

    def mint(self, term: ox.NamedNode | ox.BlankNode) -> None:
        node = self.draft.node(f"nodes/{len(self.nodes) + 1}", None)
        self.nodes[term] = node
        if isinstance(term, ox.NamedNode):
            self.names[node] = term.value.removeprefix(_BASE)
        else:
            self.names[node] = "(a node without @id)"

    def name_blank_nodes(self) -> None:
        """Name a node without @id by the path to it from a node with one, as messages
        must say where it is: "liver-curve / radbank:timeActivityPoint"."""
        parents: dict[ox.BlankNode, tuple[ox.NamedNode | ox.BlankNode, str]] = {}
        for triple in self.triples:
            value = triple.object
            if isinstance(value, ox.BlankNode) and isinstance(
                triple.subject, ox.NamedNode | ox.BlankNode
            ):
                parents.setdefault(value, (triple.subject, _curie(triple.predicate.value)))

        def name(term: ox.NamedNode | ox.BlankNode, depth: int) -> str:
            node = self.nodes.get(term)
            if isinstance(term, ox.NamedNode):
                return self.names[node] if node is not None else term.value
            parent = parents.get(term)
            if parent is None or depth > 8:
                return "(a node without @id)"
            return f"{name(parent[0], depth + 1)} / {parent[1]}"

        for term, node in self.nodes.items():
            if isinstance(term, ox.BlankNode):
                self.names[node] = name(term, 0)

    def statement(
        self,
        subject: ox.NamedNode | ox.BlankNode | ox.Triple,
        predicate: str,
        value: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple,
    ) -> None:
        draft = self.draft
        field_name = _curie(predicate)
        node = self.nodes.get(subject)  # type: ignore[arg-type]
        if node is None:
            self.refused_statement(subject, predicate, value)
            return
        row = self.names[node]
        if _is_identifying_predicate(predicate):
            draft.identifying(
                node, field_name, value.value if isinstance(value, ox.Literal) else ""
            )
            return
        if predicate.startswith(RB) and predicate not in _ontology_terms():
            draft.violation(row, field_name, "not a term of the radbank ontology")
            return
        try:
            term = self.term(value)
            if isinstance(term, ox.Literal):
                _check_literal(term)
        except _Bad as exc:
            draft.violation(row, field_name, str(exc))
            draft.explained.add((node, predicate))
            return
        if isinstance(term, ox.Literal):
            if predicate in _UNCLEANED_PREDICATES:
                cleaning = _NO_CLEANING
            elif predicate in _NARRATIVE_PREDICATES:
                cleaning = _NARRATIVE
            elif predicate in _VALUE_PREDICATES:
                cleaning = _VALUE
            else:
                cleaning = _DESCRIPTOR
        else:
            cleaning = _NO_CLEANING
        draft.add(node, predicate, term, field_name, cleaning)

    def refused_statement(
        self,
        subject: ox.NamedNode | ox.BlankNode | ox.Triple,
        predicate: str,
        value: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple,
    ) -> None:
        draft = self.draft
        if isinstance(subject, ox.Triple):
            draft.violation(None, _curie(predicate), "RDF-star triples are not accepted")
            return
        iri = subject.value
        if iri.startswith(_PATIENT_PREFIX):
            try:
                patient = _patient_from_iri(iri)
            except (_Bad, UnicodeDecodeError) as exc:
                draft.violation(iri, None, str(exc))
                return
            if _is_identifying_predicate(predicate):
                shown = value.value if isinstance(value, ox.Literal) else ""
                draft.identifying(patient, _curie(predicate), shown)
            elif predicate != _TYPE:
                draft.violation(
                    iri,
                    _curie(predicate),
                    "a patient IRI is referenced (radbank:subject), not described: give "
                    "this value on the record instead",
                )
            return
        if iri.startswith(_OID_PREFIX):
            reason = (
                "describes a DICOM object: the node describes its objects itself; a submission "
                "references them (radbank:study, radbank:irradiationEvent...)"
            )
        elif iri.startswith("urn:radbank:subject:"):
            reason = _SUBJECT_REFUSED
        elif iri.startswith("urn:radbank:"):
            reason = "a submission describes its own records, not the node's"
        else:
            reason = "describes a vocabulary term: a submission describes its own records only"
        draft.violation(iri, _curie(predicate), reason)

    def term(self, value: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple) -> _Term:
        if isinstance(value, ox.Triple):
            raise _Bad("RDF-star triples are not accepted")
        if isinstance(value, ox.Literal):
            return value
        node = self.nodes.get(value)
        if node is not None:
            return node
        if isinstance(value, ox.BlankNode):  # an empty node: {} as a value
            self.mint(value)
            return self.nodes[value]
        iri = value.value
        if iri.startswith(_PATIENT_PREFIX):
            try:
                return _patient_from_iri(iri)
            except UnicodeDecodeError:
                raise _Bad(f"{iri[:100]}: the percent-encoding is not UTF-8") from None
        if iri.startswith(_OID_PREFIX):
            return _uid(iri[len(_OID_PREFIX) :])
        if iri.startswith("urn:radbank:subject:"):
            raise _Bad(_SUBJECT_REFUSED)
        if iri.startswith("urn:radbank:"):
            raise _Bad(f"{iri[:100]}: a submission references patients and DICOM objects only")
        if not iri.startswith(VOCABULARIES):
            raise _Bad(
                f"{iri[:100]} is described nowhere in the submission and is not a term of a "
                "known vocabulary (SNOMED CT, DICOM, LOINC, NCIt, ICD, RadLex, QUDT units...)"
            )
        return value


_LEXICAL = {
    XSD + "boolean": r"true|false|1|0",
    XSD + "integer": r"[+-]?[0-9]+",
    XSD + "decimal": r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)",
    XSD + "double": r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?",
    XSD + "float": r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?",
    XSD + "time": r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?",
    XSD + "duration": r"-?P(?=[0-9]|T[0-9])([0-9]+Y)?([0-9]+M)?([0-9]+D)?"
    r"(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?",
    # The date types are read (and shifted) later; only digits and separators here.
    **dict.fromkeys((_DATE, _DATETIME, _DATETIME_STAMP, *_PARTIAL_DATES), r"[-+0-9:TZ.]{2,40}"),
}
for _integer in ("int", "long", "short", "nonNegativeInteger", "positiveInteger"):
    _LEXICAL[XSD + _integer] = _LEXICAL[XSD + "integer"]


def _check_literal(literal: ox.Literal) -> None:
    """Text is a string (it is cleaned); any other literal must be what its datatype says
    (a name typed as a number would escape the cleaning)."""
    datatype = literal.datatype.value
    if datatype in (_XSD_STRING, _LANG_STRING):
        return
    pattern = _LEXICAL.get(datatype)
    if pattern is None:
        raise _Bad(
            f"datatype {_curie(datatype)} is not accepted: use a string, boolean, number, "
            "date, date-time, time or duration"
        )
    if re.fullmatch(pattern, literal.value.strip()) is None:
        raise _Bad(f"{literal.value[:40]!r} is not a valid {_curie(datatype)}")


_SUBJECT_REFUSED = (
    "a submission names the patient as the site knows them, urn:radbank:patient:[<issuer>:]"
    "<patient id>; the node computes the pseudonym (urn:radbank:subject:... is refused)"
)
