"""Non-DICOM submissions, from the bytes a site sends to validated, pseudonymised quads.

    submission = prepare_submission(body, "text/csv", "crf", project="ct-trial",
                                    submission_id="...", submitted_by="alice",
                                    submitted_at=now, identity=identity, holdings=holdings)
    submission.parts      # subject IRI -> the quads about that subject
    submission.shared     # the submission activity and software agents: no personal data
    submission.removed    # identifying fields dropped ("patient_name", "fields.email")

A submission (JSON-LD, JSON or CSV, docs/submissions.md) names subjects, studies, series,
instances, irradiation events and administrations by their identifiers at the site. They
are mapped through the project's pseudonymisation (`SiteIdentity`, injected: this module
knows nothing of keys or profiles) and looked up in what the project holds (`Holdings`, one
batched call). Identifying values follow the DICOM rules: names, birth dates, addresses,
telephone numbers and e-mail addresses are removed (and reported), dates are shifted, kept
or removed as the project's profile does with Study Date, free text is cleaned. The
pseudonymised graph is validated against the SHACL shapes of the declared kind.

Nothing here stores anything, and nothing is returned half-done: `prepare_submission`
either returns the whole `Submission` or raises `SubmissionRejected` listing every
violation (row, field, reason). JSON-LD never loads a remote @context: the radbank context
is known by name (`CONTEXT_URL`, resolved to `CONTEXT`), any other must be inline.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import pyoxigraph as ox
import pyshacl
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF as RDFLIB_RDF
from rdflib.namespace import RDFS as RDFLIB_RDFS
from rdflib.namespace import SH as RDFLIB_SH

from radbank.semantic.vocabulary import (
    DCM,
    DCT,
    FOAF,
    ONTOLOGY_PATH,
    PROV,
    QUDT,
    RB,
    RDF,
    RDFS,
    SCT,
    SHAPES_PATH,
    SKOS,
    SUBMISSION_KINDS,
    UNIT,
    XSD,
    concept_iri,
    graph_iri,
    project_iri,
    qudt_unit,
    subject_iri,
)

__all__ = [
    "CONTEXT",
    "CONTEXT_URL",
    "KINDS",
    "MEDIA_TYPES",
    "Held",
    "Holdings",
    "SiteIdentity",
    "Submission",
    "SubmissionRejected",
    "VOCABULARIES",
    "Violation",
    "prepare_submission",
]

KINDS = tuple(SUBMISSION_KINDS)
MEDIA_TYPES = {"application/ld+json", "application/json", "text/csv"}

# ---------------------------------------------------------------------------------------
# The public contract
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One reason a submission is refused. `row`: "row 3 (line 4)" in a CSV (data rows count
    from 1, the header is line 1), "$.forms[2]" in JSON, the node's @id in JSON-LD; None when
    the whole submission is concerned. `field`: the column, key or property."""

    row: str | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.row, self.field) if part)
        return f"{where}: {self.reason}" if where else self.reason


class SubmissionRejected(ValueError):
    """The submission is refused whole; `violations` lists every problem found."""

    def __init__(self, violations: Iterable[Violation]) -> None:
        self.violations = list(dict.fromkeys(violations))
        super().__init__("\n".join(str(v) for v in self.violations))


class SiteIdentity(Protocol):
    """The project's pseudonymisation, as the DICOM pipeline applies it
    (radbank.ingest.site_identity.ProjectIdentity)."""

    profile_name: str

    def pseudonym(self, patient_id: str, issuer: str = "") -> str: ...

    def uid(self, original_uid: str) -> str: ...

    def date(self, value: datetime.date, pseudonym: str) -> datetime.date | None: ...

    def datetime(self, value: datetime.datetime, pseudonym: str) -> datetime.datetime | None: ...

    def clean_text(
        self, text: str, identifiers: Collection[str], *, narrative: bool = True
    ) -> str: ...


@dataclass(frozen=True)
class Held:
    """What a (pseudonymised) UID is in the project, and whose it is."""

    level: str  # "study" | "series" | "instance" | "event" | "administration"
    pseudonym: str


class Holdings(Protocol):
    """What the project holds (the lead's index lookups, batched)."""

    def subjects(self, pseudonyms: Collection[str]) -> set[str]: ...

    def objects(self, uids: Collection[str]) -> dict[str, Held]: ...


@dataclass(frozen=True)
class Submission:
    kind: str
    submission_iri: str  # urn:radbank:submission:<project>:<submission_id>
    parts: dict[str, list[ox.Quad]]  # subject IRI -> its quads, in graph_iri(project)
    shared: list[ox.Quad]  # the submission activity, its agent, software agents
    records: int  # rows, forms, outcomes, organ doses or workflows accepted
    removed: tuple[str, ...] = ()  # identifying fields dropped, by name, sorted


# ---------------------------------------------------------------------------------------
# The radbank JSON-LD context, known by name so that it is never fetched
# ---------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------
# What a submission is turned into before identity is applied
# ---------------------------------------------------------------------------------------

_XSD_STRING = XSD + "string"
_LANG_STRING = RDF + "langString"
_DATE = XSD + "date"
_DATETIME = XSD + "dateTime"
_DATETIME_STAMP = XSD + "dateTimeStamp"
_PARTIAL_DATES = frozenset(XSD + t for t in ("gYear", "gYearMonth", "gMonthDay", "gDay", "gMonth"))
_TYPE = RDF + "type"
_SUBJECT = RB + "subject"
_SOFTWARE_AGENT = PROV + "SoftwareAgent"
_BASE = "https://submission.invalid/"  # resolves relative @ids; such nodes are renamed


@dataclass(frozen=True)
class _Node:
    """A node the submission mints: <submission IRI>/<local>."""

    local: str


@dataclass(frozen=True)
class _Patient:
    """A patient as the site knows them."""

    issuer: str
    patient_id: str

    def describe(self) -> str:
        issuer = f" (issuer {self.issuer})" if self.issuer else ""
        return f"patient {self.patient_id}{issuer}"


@dataclass(frozen=True)
class _Uid:
    """A DICOM object as the site knows it (its original UID)."""

    uid: str


_Term = _Node | _Patient | _Uid | ox.NamedNode | ox.Literal

# How a string value is cleaned: not at all (codes, units, field names), as a descriptor
# (identifiers and identifier-shaped text removed, words kept), as narrative (only known
# words kept), or, for the value of a form field or an outcome, by its field's name and length.
_NO_CLEANING, _DESCRIPTOR, _NARRATIVE, _VALUE = "none", "descriptor", "narrative", "value"


@dataclass
class _Statement:
    node: _Node
    predicate: str
    value: _Term
    field: str | None  # the submitter's name for this value, for messages
    cleaning: str = _DESCRIPTOR
    dropped: bool = False  # removed by the profile (a date it does not keep)


@dataclass
class _Origin:
    """Where a minted node came from, to name it in messages."""

    row: str | None
    order: int  # position in the submission, to sort messages
    fields: dict[str, str] = field(default_factory=dict)  # predicate -> field name
    field: str | None = None  # the field the whole node stands for


@dataclass
class _Draft:
    kind: str
    statements: list[_Statement] = field(default_factory=list)
    origins: dict[_Node, _Origin] = field(default_factory=dict)
    roots: list[_Node] = field(default_factory=list)
    shared: set[_Node] = field(default_factory=set)
    # identifying values found (removed), by the node or patient they were about
    identifiers: dict[_Node | _Patient, set[str]] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)
    # (node, predicate) already explained by a violation: SHACL need not say it again
    explained: set[tuple[_Node, str]] = field(default_factory=set)

    def node(self, local: str, row: str | None, field_name: str | None = None) -> _Node:
        node = _Node(local)
        if node not in self.origins:
            self.origins[node] = _Origin(row, len(self.origins), field=field_name)
        return node

    def add(
        self,
        node: _Node,
        predicate: str,
        value: _Term,
        field_name: str | None,
        cleaning: str = _DESCRIPTOR,
    ) -> None:
        self.statements.append(_Statement(node, predicate, value, field_name, cleaning))
        if field_name is not None:
            self.origins[node].fields.setdefault(predicate, field_name)

    def violation(self, row: str | None, field_name: str | None, reason: str) -> None:
        self.violations.append(Violation(row, field_name, reason))

    def identifying(self, about: _Node | _Patient, name: str, value: object) -> None:
        """An identifying field: removed, reported, and its value used to clean text."""
        self.removed.add(name)
        for text in _texts(value):
            self.identifiers.setdefault(about, set()).add(text)


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value.strip()
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)


class _Bad(ValueError):
    """A value that cannot be read; the message is the reason a submitter reads."""


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------

_ORPHAN = ""  # the part of a node no subject could be found for (always a violation)
_SUBMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def prepare_submission(
    body: bytes,
    media_type: str,
    kind: str,
    *,
    project: str,
    submission_id: str,
    submitted_by: str,
    submitted_at: datetime.datetime,
    identity: SiteIdentity,
    holdings: Holdings,
    max_records: int = 100_000,
) -> Submission:
    """Turn a submission's bytes into validated, pseudonymised quads, or raise
    SubmissionRejected listing every violation. `media_type` may carry parameters
    ("text/csv; charset=utf-8"); only UTF-8 is read. The caller bounds the size of `body`.
    ValueError (not SubmissionRejected) means the caller's own arguments are wrong."""
    project_iri(project)
    if _SUBMISSION_ID.fullmatch(submission_id) is None:
        raise ValueError(f"{submission_id[:80]!r} is not a submission id")
    submission = f"urn:radbank:submission:{project}:{submission_id}"
    if kind not in SUBMISSION_KINDS:
        raise SubmissionRejected(
            [Violation(None, "kind", f"unknown kind {kind[:40]!r}; use one of {', '.join(KINDS)}")]
        )
    draft = _parse(body, media_type, kind, max_records)
    if not draft.statements and draft.violations:
        raise SubmissionRejected(draft.violations)
    resolved = _Resolution(draft, project, identity, holdings)
    quads, subjects, groups = resolved.quads(submission, submitted_by, submitted_at)
    draft.violations.extend(_validate(draft, kind, quads, groups, submission))
    if draft.violations:
        raise SubmissionRejected(_sorted(draft))
    # A node of no subject is a violation (no patient, or an unresolved reference).
    assert _ORPHAN not in subjects
    graph = ox.NamedNode(graph_iri(project))
    parts: dict[str, list[ox.Quad]] = {}
    shared: list[ox.Quad] = []
    for triple, subject in zip(quads, subjects, strict=True):
        quad = ox.Quad(triple.subject, triple.predicate, triple.object, graph)
        if subject is None:
            shared.append(quad)
        else:
            parts.setdefault(subject, []).append(quad)
    return Submission(
        kind=kind,
        submission_iri=submission,
        parts=parts,
        shared=shared,
        records=len(draft.roots),
        removed=tuple(sorted(draft.removed)),
    )


def _sorted(draft: _Draft) -> list[Violation]:
    """Violations in the order of the rows they name; whole-submission ones first."""
    order: dict[str | None, int] = {None: -1}
    for origin in sorted(draft.origins.values(), key=lambda o: o.order):
        order.setdefault(origin.row, len(order))
    return sorted(draft.violations, key=lambda v: order.get(v.row, len(order)))


# ---------------------------------------------------------------------------------------
# Bytes -> text -> draft
# ---------------------------------------------------------------------------------------


def _parse(body: bytes, media_type: str, kind: str, max_records: int) -> _Draft:
    draft = _Draft(kind)
    media, _, parameters = media_type.partition(";")
    media = media.strip().lower()
    if media not in MEDIA_TYPES:
        draft.violation(
            None,
            None,
            f"cannot read {media or 'a body without media type'!r}: send "
            f"{', '.join(sorted(MEDIA_TYPES))}",
        )
        return draft
    charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
    if charset and charset[1].lower().replace("_", "-") not in ("utf-8", "utf8"):
        draft.violation(
            None,
            None,
            f"the body is declared as {charset[1][:40]}: radbank reads UTF-8 only; save the "
            "file as UTF-8 (in Excel: 'CSV UTF-8') and send it again",
        )
        return draft
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        draft.violation(
            None,
            None,
            f"the body is not UTF-8 (byte 0x{body[exc.start]:02x} on line {line} cannot be "
            "read): save the file as UTF-8 (in Excel: 'CSV UTF-8') and send it again",
        )
        return draft
    text = text.removeprefix("\ufeff")  # the byte order mark spreadsheets write
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        draft.violation(
            None, None, f"the body holds a NUL character (line {line}): not a text file"
        )
        return draft
    if media == "text/csv":
        if kind == "mrt-dosimetry":
            draft.violation(
                None,
                None,
                "an mrt-dosimetry submission is a tree (calibration, volumes of interest, "
                "curves with their time points, fit, doses) that one table cannot hold: send "
                "it as JSON (application/json) or JSON-LD (application/ld+json)",
            )
            return draft
        _read_csv(draft, text, kind, max_records)
        return draft
    document = _load_json(draft, text)
    if document is None:
        return draft
    if media == "application/ld+json":
        _read_jsonld(draft, document, max_records)
    else:
        if isinstance(document, dict) and ("@context" in document or "@graph" in document):
            draft.violation(
                None,
                None,
                "this is JSON-LD (it has @context or @graph): send it as application/ld+json",
            )
            return draft
        _read_json(draft, document, kind, max_records)
    return draft


class _JsonNumber(str):
    """A JSON number with a fraction or exponent, as written, until `_number` types it (a
    float would turn 1e400 into infinity before anyone could say so)."""


def _no_constant(name: str) -> object:
    raise _Bad(f"{name} is not a JSON number: write a number, or leave the value out")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Bad(f"key {key[:60]!r} appears twice in one object")
        result[key] = value
    return result


_MAX_DEPTH = 64


def _load_json(draft: _Draft, text: str) -> Any:
    try:
        document = json.loads(
            text,
            parse_float=_JsonNumber,
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except _Bad as exc:
        draft.violation(None, None, f"not valid JSON: {exc}")
        return None
    except json.JSONDecodeError as exc:
        draft.violation(
            None, None, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        )
        return None
    except RecursionError:
        draft.violation(None, None, f"not accepted: JSON nested deeper than {_MAX_DEPTH} levels")
        return None
    except ValueError as exc:  # integers of more than 4300 digits
        draft.violation(None, None, f"not valid JSON: {str(exc)[:200]}")
        return None
    if _depth(document) > _MAX_DEPTH:
        draft.violation(None, None, f"not accepted: JSON nested deeper than {_MAX_DEPTH} levels")
        return None
    return document


def _depth(document: Any) -> int:
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > _MAX_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return deepest


# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"
)
_OTHER_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-](\d{4}|\d{2})|\d{4}/\d{1,2}/\d{1,2}")
_CODE = re.compile(r"(SCT|DCM|DUO):[0-9]+")
_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)")
_DOUBLE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+")
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")


def _typed(datatype: str, text: str) -> ox.Literal:
    return ox.Literal(text, datatype=ox.NamedNode(datatype))


def _string(text: str) -> ox.Literal:
    return ox.Literal(text)


def _number(value: object, *, text_allowed: bool) -> ox.Literal:
    """A JSON number, or (from CSV) a number written as text, typed as JSON-LD types a
    JSON number: xsd:integer without a fractional part, else xsd:double (canonical form),
    so that JSON, CSV and JSON-LD give the same literal."""
    if isinstance(value, bool):
        raise _Bad(f"{value!r} is not a number")
    if isinstance(value, int):
        return _numeric(value)
    if not (isinstance(value, _JsonNumber) or (isinstance(value, str) and text_allowed)):
        raise _Bad(f"{_shown(value)} is not a number")
    text = value.strip()
    if re.fullmatch(r"[+-]?[0-9]+", text):
        try:
            return _numeric(int(text))
        except ValueError:  # more digits than Python converts
            raise _Bad(f"{text[:40]}... is too long a number") from None
    if _DECIMAL.fullmatch(text) or _DOUBLE.fullmatch(text):
        return _numeric(float(text))
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", text):
        raise _Bad(f"{text[:40]} is not a number: write the decimal separator as a point")
    raise _Bad(f"{_shown(value)} is not a number")


def _numeric(number: int | float) -> ox.Literal:
    try:
        if isinstance(number, float) and number.is_integer() and abs(number) < 1e21:
            number = int(number)
        if isinstance(number, int) and abs(number) < 10**21:
            return _typed(XSD + "integer", str(number))
        number = float(number)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _Bad("too large a number")
    _, digits, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = f"{digits[0]}.{''.join(map(str, digits[1:])) or '0'}"
    sign = "-" if number < 0 else ""
    return _typed(XSD + "double", f"{sign}{mantissa}E{len(digits) - 1 + exponent}")


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:60])
    if isinstance(value, dict | list):
        return "a JSON " + ("object" if isinstance(value, dict) else "array")
    if value is None:
        return "null"
    return str(value)[:60]


# The vocabularies whose IRIs a submission may use as values (codes, units, classes). An
# IRI elsewhere could name anything, a patient's record in a hospital system included.
VOCABULARIES = (
    SCT,
    DCM,
    "http://loinc.org/",
    "https://loinc.org/",
    "http://purl.obolibrary.org/obo/",  # NCIt, DUO, UBERON...
    "http://ncicb.nci.nih.gov/",
    "http://id.who.int/icd/",
    "http://www.radlex.org/",
    "http://radlex.org/",
    UNIT,
    QUDT,
    RB,
    PROV,
    DCT,
    RDF,
    RDFS,
    XSD,
    SKOS,
    FOAF,
)


def _code(value: object) -> ox.NamedNode:
    """A concept: "SCT:<code>", "DCM:<code>", "DUO:<code>" or an IRI of `VOCABULARIES`."""
    if isinstance(value, dict) and set(value) == {"code"}:
        value = value["code"]
    if isinstance(value, str):
        text = value.strip()
        if _CODE.fullmatch(text):
            return ox.NamedNode(concept_iri(text))
        if text.startswith(VOCABULARIES):
            try:
                return ox.NamedNode(text)
            except ValueError:  # not an IRI: spaces, control characters, brackets
                pass
    raise _Bad(
        f"{_shown(value)} is not a code: write SCT:<code>, DCM:<code> or the IRI of a concept "
        "of SNOMED CT, DICOM, LOINC, NCIt (OBO), ICD or RadLex"
    )


def _value(value: object, *, from_csv: bool) -> ox.Literal | ox.NamedNode:
    """A form field's or an outcome's value: number, boolean, date, date-time, code, text."""
    if isinstance(value, dict):
        return _code(value)
    if isinstance(value, bool):
        return _typed(XSD + "boolean", "true" if value else "false")
    if isinstance(value, int | _JsonNumber):
        return _number(value, text_allowed=False)
    if not isinstance(value, str):
        raise _Bad(f"{_shown(value)} is not a value: write a number, true/false, text or a date")
    stripped = value.strip()
    if _CODE.fullmatch(stripped):
        return _code(stripped)
    if _ISO_DATE.fullmatch(stripped):
        return _typed(_DATE, stripped)
    if _ISO_DATETIME.fullmatch(stripped):
        try:  # "2024-03-01T10:30" has no seconds, which xsd:dateTime requires
            moment = datetime.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        except ValueError:
            raise _Bad(f"{stripped!r} is not a date-time: write 2024-03-01T10:30:00") from None
        return _typed(_DATETIME, moment.isoformat())
    if _OTHER_DATE.fullmatch(stripped):
        raise _Bad(
            f"{stripped[:40]!r} looks like a date: write dates as YYYY-MM-DD so that they can "
            "be shifted like the dates of the images"
        )
    if from_csv:
        if stripped.lower() in ("true", "false"):
            return _typed(XSD + "boolean", stripped.lower())
        if (
            _INTEGER.fullmatch(stripped)
            or _DECIMAL.fullmatch(stripped)
            or _DOUBLE.fullmatch(stripped)
        ):
            return _number(stripped, text_allowed=True)
        return _string(stripped)
    return _string(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{_shown(value)} is not text")
    return value.strip()


def _date_value(value: object) -> ox.Literal:
    """A date field: YYYY-MM-DD (an impossible one, 2024-02-30, is refused when shifted)."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        return _typed(_DATE, value.strip())
    raise _Bad(f"{_shown(value)} is not a date: write YYYY-MM-DD, e.g. 2024-03-01")


def _uid(value: object) -> _Uid:
    text = _text(value)
    if len(text) > 64 or _UID.fullmatch(text) is None:
        raise _Bad(f"{text[:80]!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return _Uid(text)


def _uids(value: object) -> list[_Uid]:
    """One UID, a JSON array of UIDs, or (CSV) UIDs separated by spaces."""
    if isinstance(value, list):
        return [_uid(item) for item in value]
    return [_uid(part) for part in _text(value).split()]


def _patient_id(value: object, what: str) -> str:
    text = _text(value) if not isinstance(value, int) or isinstance(value, bool) else str(value)
    if not text or len(text) > 64 or any(ord(c) < 32 for c in text) or "\\" in text:
        raise _Bad(f"{what} is 1 to 64 characters, no backslash or control characters")
    return text


# ---------------------------------------------------------------------------------------
# Identifying fields (JSON keys, CSV columns, form field names, JSON-LD properties)
# ---------------------------------------------------------------------------------------

_IDENTIFYING_WORDS = frozenset(
    """
    name names surname surnames forename forenames firstname lastname givenname familyname
    maidenname middlename fullname initials nickname address addresses street postcode
    postalcode zip zipcode city town phone phones telephone mobile fax email mail ssn nhs
    mrn passport insurance birthdate birthday birthplace dob
    """.split()  # noqa: SIM905 - a word list reads as a paragraph
)
_IDENTIFYING_NAMES = frozenset(
    """
    dateofbirth placeofbirth patientid subjectid otherpatientids medicalrecordnumber
    recordnumber hospitalnumber accessionnumber socialsecuritynumber nationalid
    nationalidentifier insurancenumber healthinsurancenumber trialsubjectid emailaddress
    """.split()  # noqa: SIM905
)
# "<word>_name" names a thing, not a person.
_THING_NAMES = frozenset(
    """
    drug medication medicine regimen protocol organ region structure lesion questionnaire
    instrument scale test field study trial device product agent compound isotope
    radionuclide radiopharmaceutical tracer sequence series file form visit code unit
    """.split()  # noqa: SIM905
)


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def _is_identifying(name: str) -> bool:
    """Whether a field named `name` holds a person's name, birth date, address, telephone
    number, e-mail address or identifier (what DICOM removes from the Patient module)."""
    words = _words(name)
    if "".join(words) in _IDENTIFYING_NAMES:
        return True
    for position, word in enumerate(words):
        if word in ("name", "names") and position > 0 and words[position - 1] in _THING_NAMES:
            continue
        if word in _IDENTIFYING_WORDS:
            return True
    joined = "".join(words)
    return any(part in joined for part in ("dateofbirth", "birthdate", "emailaddress"))


# A form field or an outcome value named like one of these is narrative.
_NARRATIVE_WORDS = frozenset(
    """
    comment comments note notes remark remarks description history narrative text freetext
    details summary observation observations free
    """.split()  # noqa: SIM905 - a word list reads as a paragraph
)

_FOAF_IDENTIFYING = """
    name givenName familyName firstName lastName surname family_name givenname nick birthday
    mbox mbox_sha1sum phone homepage title
""".split()  # noqa: SIM905
_SCHEMA_IDENTIFYING = """
    name givenName familyName additionalName birthDate birthPlace address telephone email faxNumber taxID identifier
""".split()  # noqa: SIM905
_IDENTIFYING_PREDICATES = frozenset(
    [FOAF + name for name in _FOAF_IDENTIFYING]
    + [
        f"{scheme}://schema.org/{name}"
        for scheme in ("http", "https")
        for name in _SCHEMA_IDENTIFYING
    ]
    + [DCT + "identifier"]
)
_IDENTIFYING_NAMESPACES = ("http://www.w3.org/2006/vcard/ns#",)
_NARRATIVE_PREDICATES = frozenset({RDFS + "comment", DCT + "description", SKOS + "note"})
_UNCLEANED_PREDICATES = frozenset({QUDT + "ucumCode", RB + "fieldName"})
_VALUE_PREDICATES = frozenset({RB + "fieldValue", RB + "observedValue"})


def _is_identifying_predicate(predicate: str) -> bool:
    return predicate in _IDENTIFYING_PREDICATES or predicate.startswith(_IDENTIFYING_NAMESPACES)


# ---------------------------------------------------------------------------------------
# CSV and JSON records
# ---------------------------------------------------------------------------------------


@dataclass
class _Record:
    """One CSV row or one JSON object of a record list."""

    row: str
    values: dict[str, Any]
    from_csv: bool
    prefix: str = ""  # "" in CSV; JSON keys of nested objects are "calibration.used"

    def __post_init__(self) -> None:
        # JSON null is a value left out, as an empty CSV cell is.
        self.values = {key: value for key, value in self.values.items() if value is not None}

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"


def _read_csv(draft: _Draft, text: str, kind: str, max_records: int) -> None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        draft.violation("line 1", None, f"not a CSV header: {exc}")
        return
    if not header or not any(cell.strip() for cell in header):
        draft.violation(None, None, "the CSV is empty: the first line names the columns")
        return
    columns = [cell.strip() for cell in header]
    if len(columns) == 1 and (";" in columns[0] or "\t" in columns[0]):
        draft.violation(
            "line 1",
            None,
            "separate columns with commas (RFC 4180), not semicolons or tabs",
        )
        return
    seen: set[str] = set()
    for column in columns:
        if not column:
            draft.violation("line 1", None, "a column has no name; name every column")
        elif column.lower() in seen:
            draft.violation("line 1", column, "this column appears twice; name it once")
        seen.add(column.lower())
    if draft.violations:
        return
    builder = _BUILDERS[kind](draft)
    # Known columns match whatever their case ("Patient_ID"); form fields keep theirs.
    known = {name.lower(): name for name in (*builder.known, *builder.csv_only)}
    columns = [known.get(column.lower(), column) for column in columns]
    number = 0
    line = 2
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            draft.violation(f"line {line}", None, f"not valid CSV: {exc}")
            return
        if cells is None:
            break
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, e.g. at the end of a spreadsheet export
        number += 1
        row = f"row {number} (line {start})"
        if number > max_records:
            draft.violation(
                row, None, f"more than {max_records} rows: split the submission into parts"
            )
            return
        if len(cells) != len(columns):
            draft.violation(
                row, None, f"{len(cells)} cells where the header names {len(columns)} columns"
            )
            continue
        values = {column: cell for column, cell in zip(columns, cells, strict=True) if cell.strip()}
        builder.record(_Record(row, values, from_csv=True), number)
    if number == 0:
        draft.violation(None, None, "the CSV has a header but no rows")


def _read_json(draft: _Draft, document: Any, kind: str, max_records: int) -> None:
    builder = _BUILDERS[kind](draft)
    key = builder.list_key
    if not isinstance(document, dict):
        draft.violation("$", None, f"the document is a JSON object with a {key!r} array")
        return
    records = document.get(key)
    if not isinstance(records, list) or not records:
        draft.violation("$", key, f"a {kind} submission lists its records in a {key!r} array")
        return
    if len(records) > max_records:
        draft.violation(
            "$", key, f"more than {max_records} records: split the submission into parts"
        )
        return
    unknown = set(document) - {key, *builder.top_keys}
    for name in sorted(unknown):
        draft.violation("$", name, f"unknown key; a {kind} document has {builder.described()}")
    builder.top(document)
    for position, item in enumerate(records):
        row = f"$.{key}[{position}]"
        if not isinstance(item, dict):
            draft.violation(row, None, f"each record is a JSON object, not {_shown(item)}")
            continue
        builder.record(_Record(row, item, from_csv=False), position + 1)


class _Builder:
    """Turns records of one kind into statements; JSON and CSV share it."""

    list_key = ""
    top_keys: tuple[str, ...] = ()
    known: tuple[str, ...] = ()  # the keys of a record
    csv_only: tuple[str, ...] = ()  # CSV columns that are top-level keys in JSON

    def __init__(self, draft: _Draft) -> None:
        self.draft = draft

    def described(self) -> str:
        return f"{self.list_key!r}" + "".join(f", {k!r}" for k in self.top_keys)

    def top(self, document: Mapping[str, Any]) -> None:
        return None

    def record(self, record: _Record, number: int) -> None:
        raise NotImplementedError

    def check_keys(
        self,
        record: _Record,
        known: Collection[str],
        about: _Node,
        patient: _Patient | None,
        *,
        extra: bool = False,
    ) -> list[str]:
        """Report unknown keys; identifying ones are removed. Returns the keys that are
        neither known nor identifying when `extra` (form fields in a CSV row)."""
        rest = []
        for key in record.values:
            if key in known:
                continue
            if _is_identifying(key):
                self.draft.identifying(patient or about, key, record.values[key])
            elif extra:
                rest.append(key)
            else:
                self.draft.violation(
                    record.row,
                    record.name(key),
                    f"unknown {'column' if record.from_csv else 'key'}; known: "
                    f"{', '.join(k for k in known if k)}",
                )
        return rest

    def patient(self, record: _Record, node: _Node) -> _Patient | None:
        values = record.values
        if "patient_id" not in values:
            return None
        try:
            issuer = values.get("issuer_of_patient_id", "")
            patient = _Patient(
                _patient_id(issuer, "issuer_of_patient_id") if issuer else "",
                _patient_id(values["patient_id"], "patient_id"),
            )
        except _Bad as exc:
            self.draft.violation(record.row, record.name("patient_id"), str(exc))
            return None
        self.draft.add(node, _SUBJECT, patient, record.name("patient_id"), _NO_CLEANING)
        return patient

    def get(
        self,
        record: _Record,
        key: str,
        node: _Node,
        predicate: str,
        convert: Callable[[Any], _Term],
        cleaning: str = _DESCRIPTOR,
    ) -> bool:
        """Add `key`'s value, converted, as `predicate` of `node`; False if absent or bad.
        An absent key maps the predicate to the key all the same, for the shapes' messages."""
        name = record.name(key)
        self.draft.origins[node].fields.setdefault(predicate, name)
        if key not in record.values or record.values[key] is None:
            return False
        try:
            value = convert(record.values[key])
        except _Bad as exc:
            self.draft.violation(record.row, name, str(exc))
            self.draft.explained.add((node, predicate))
            return False
        self.draft.add(node, predicate, value, name, cleaning)
        return True

    def uids(self, record: _Record, key: str, node: _Node, predicate: str) -> None:
        name = record.name(key)
        self.draft.origins[node].fields.setdefault(predicate, name)
        if key not in record.values:
            return
        try:
            references = _uids(record.values[key])
        except _Bad as exc:
            self.draft.violation(record.row, name, str(exc))
            self.draft.explained.add((node, predicate))
            return
        for position, reference in enumerate(references):
            shown = name if len(references) == 1 else f"{name}[{position}]"
            self.draft.add(node, predicate, reference, shown, _NO_CLEANING)

    def quantity(
        self,
        record: _Record,
        node: _Node,
        predicate: str,
        value_key: str,
        unit_key: str,
        local: str,
    ) -> _Node | None:
        """A qudt:QuantityValue node from a number and a UCUM unit."""
        if value_key not in record.values and unit_key not in record.values:
            self.draft.origins[node].fields.setdefault(predicate, record.name(value_key))
            return None
        quantity = self.draft.node(local, record.row, record.name(value_key))
        self.draft.add(node, predicate, quantity, record.name(value_key), _NO_CLEANING)
        self.value_and_unit(record, quantity, value_key, unit_key)
        return quantity

    def value_and_unit(self, record: _Record, node: _Node, value_key: str, unit_key: str) -> None:
        number = functools.partial(_number, text_allowed=record.from_csv)
        self.get(record, value_key, node, QUDT + "numericValue", number)
        if self.get(record, unit_key, node, QUDT + "ucumCode", _unit, _NO_CLEANING):
            unit = qudt_unit(str(record.values[unit_key]).strip())
            if unit is not None:
                self.draft.add(node, QUDT + "hasUnit", ox.NamedNode(unit), record.name(unit_key))
        # qudt:hasUnit is derived from the unit: whatever the shapes say of it, they say of
        # the unit already.
        self.draft.explained.add((node, QUDT + "hasUnit"))

    def comment(self, record: _Record, node: _Node) -> None:
        self.get(record, "comment", node, RDFS + "comment", _string_of, _NARRATIVE)


def _unit(value: object) -> ox.Literal:
    text = _text(value)
    if not text or len(text) > 64:
        raise _Bad("a unit is a UCUM code such as mGy, Gy, MBq, h")
    return _string(text)


def _string_of(value: object) -> ox.Literal:
    return _string(_text(value))


class _CaseReportForms(_Builder):
    list_key = "forms"
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "visit_date",
        "title",
        "study_instance_uid",
        "comment",
        "fields",
    )

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        form = draft.node(f"forms/{number}", record.row)
        draft.roots.append(form)
        draft.add(form, _TYPE, ox.NamedNode(RB + "CaseReportForm"), None, _NO_CLEANING)
        patient = self.patient(record, form)
        self.get(record, "visit_date", form, RB + "visitDate", _date_value)
        self.get(record, "title", form, DCT + "title", _string_of)
        self.uids(record, "study_instance_uid", form, RB + "study")
        self.comment(record, form)
        fields_name = "(field columns)" if record.from_csv else "fields"
        draft.origins[form].fields.setdefault(RB + "field", fields_name)
        if record.from_csv:
            known = tuple(k for k in self.known if k != "fields")
            names = self.check_keys(record, known, form, patient, extra=True)
            fields = {name: record.values[name] for name in names}
        else:
            self.check_keys(record, self.known, form, patient)
            fields = record.values.get("fields", {})
            if not isinstance(fields, dict):
                draft.violation(
                    record.row, "fields", "fields is a JSON object: field name -> value"
                )
                return
        for position, (name, value) in enumerate(fields.items(), start=1):
            shown = name if record.from_csv else f"fields.{name}"
            if _is_identifying(name):
                draft.identifying(patient or form, shown, value)
                continue
            if value is None:
                continue  # not filled in
            item = draft.node(f"forms/{number}/fields/{position}", record.row, shown)
            draft.add(form, RB + "field", item, shown, _NO_CLEANING)
            draft.add(item, _TYPE, ox.NamedNode(RB + "CaseReportFormField"), None, _NO_CLEANING)
            draft.add(item, RB + "fieldName", _string(name), shown, _NO_CLEANING)
            try:
                converted = _value(value, from_csv=record.from_csv)
            except _Bad as exc:
                draft.violation(record.row, shown, str(exc))
                draft.explained.add((item, RB + "fieldValue"))
                continue
            draft.add(item, RB + "fieldValue", converted, shown, _VALUE)


class _Outcomes(_Builder):
    list_key = "outcomes"
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "code",
        "date",
        "value",
        "unit",
        "study_instance_uid",
        "comment",
    )

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        outcome = draft.node(f"outcomes/{number}", record.row)
        draft.roots.append(outcome)
        draft.add(outcome, _TYPE, ox.NamedNode(RB + "Outcome"), None, _NO_CLEANING)
        patient = self.patient(record, outcome)
        self.check_keys(record, self.known, outcome, patient)
        self.get(record, "code", outcome, RB + "code", _code, _NO_CLEANING)
        self.get(record, "date", outcome, DCT + "date", _date_value)
        if "unit" in record.values:
            self.quantity(
                record, outcome, RB + "observedValue", "value", "unit", f"outcomes/{number}/value"
            )
        else:
            self.get(
                record,
                "value",
                outcome,
                RB + "observedValue",
                functools.partial(_value, from_csv=record.from_csv),
                _VALUE,
            )
        self.uids(record, "study_instance_uid", outcome, RB + "study")
        self.comment(record, outcome)


class _OrganDoses(_Builder):
    list_key = "organ_doses"
    top_keys = ("simulation",)
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "study_instance_uid",
        "irradiation_event_uid",
        "organ_code",
        "organ_name",
        "value",
        "unit",
        "quantity_concept",
    )
    simulation_keys = csv_only = ("software", "method")

    def __init__(self, draft: _Draft) -> None:
        super().__init__(draft)
        self.simulation: dict[str, Any] = {}
        self.simulations: dict[str, _Node] = {}
        self.software: dict[str, _Node] = {}

    def top(self, document: Mapping[str, Any]) -> None:
        simulation = document.get("simulation")
        if not isinstance(simulation, dict):
            self.draft.violation(
                "$",
                "simulation",
                'the simulation that computed the doses: {"software": "ImpactMC 1.5", '
                '"method": "..."}',
            )
            return
        for key in set(simulation) - set(self.simulation_keys):
            self.draft.violation(
                "$", f"simulation.{key}", "unknown key; a simulation has software and method"
            )
        self.simulation = simulation

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        dose = draft.node(f"organ-doses/{number}", record.row)
        draft.roots.append(dose)
        draft.add(dose, _TYPE, ox.NamedNode(RB + "MonteCarloOrganDose"), None, _NO_CLEANING)
        known = self.known + (self.simulation_keys if record.from_csv else ())
        patient = self.patient(record, dose)
        self.check_keys(record, known, dose, patient)
        self.value_and_unit(record, dose, "value", "unit")
        if "quantity_concept" in record.values:
            self.get(record, "quantity_concept", dose, RB + "quantityConcept", _code, _NO_CLEANING)
        else:
            draft.add(dose, RB + "quantityConcept", ox.NamedNode(DCM + "113518"), None)
        self.get(record, "organ_code", dose, RB + "anatomicalRegion", _code, _NO_CLEANING)
        self.get(record, "organ_name", dose, RB + "regionName", _string_of)
        self.uids(record, "irradiation_event_uid", dose, RB + "irradiationEvent")
        self.uids(record, "study_instance_uid", dose, RB + "study")
        draft.origins[dose].fields.setdefault(
            RB + "irradiationEvent", record.name("irradiation_event_uid")
        )
        draft.origins[dose].fields.setdefault(PROV + "wasGeneratedBy", "software")
        settings = (
            {k: record.values[k] for k in self.simulation_keys if k in record.values}
            if record.from_csv
            else self.simulation
        )
        where = record if record.from_csv else _Record("$", settings, False, "simulation.")
        software = settings.get("software")
        method = settings.get("method")
        # One simulation per patient or object referenced and software: it belongs to
        # one subject, as every node of a part does.
        key = repr(
            (
                patient,
                record.values.get("irradiation_event_uid"),
                record.values.get("study_instance_uid"),
                software,
                method,
            )
        )
        simulation = self.simulations.get(key)
        if simulation is None:
            simulation = draft.node(f"simulations/{len(self.simulations) + 1}", where.row)
            self.simulations[key] = simulation
            draft.origins[simulation].fields.update(
                {
                    PROV + "wasAssociatedWith": where.name("software"),
                    RDFS + "label": where.name("software"),
                    RB + "method": where.name("method"),
                }
            )
            draft.add(
                simulation, _TYPE, ox.NamedNode(RB + "MonteCarloSimulation"), None, _NO_CLEANING
            )
            self.get(where, "method", simulation, RB + "method", _string_of)
            self.software_agent(where, simulation, software)
        draft.add(dose, PROV + "wasGeneratedBy", simulation, "software", _NO_CLEANING)

    def software_agent(self, where: _Record, simulation: _Node, software: object) -> None:
        if software is None:
            return
        try:
            label = _text(software)
        except _Bad as exc:
            self.draft.violation(where.row, where.name("software"), str(exc))
            return
        agent = self.software.get(label)
        if agent is None:
            agent = self.draft.node(f"software/{len(self.software) + 1}", where.row, "software")
            self.software[label] = agent
            self.draft.shared.add(agent)
            self.draft.add(agent, _TYPE, ox.NamedNode(_SOFTWARE_AGENT), None, _NO_CLEANING)
            self.draft.add(agent, RDFS + "label", _string(label), where.name("software"))
        self.draft.add(
            simulation, PROV + "wasAssociatedWith", agent, where.name("software"), _NO_CLEANING
        )


class _DosimetryWorkflows(_Builder):
    list_key = "workflows"
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "study_instance_uid",
        "administration_event_uid",
        "calibration",
        "segmentation",
        "volumes_of_interest",
        "time_activity_curves",
        "fit",
        "time_integrated_activities",
        "absorbed_dose_calculation",
        "absorbed_doses",
        "comment",
    )

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        base = f"workflows/{number}"
        workflow = draft.node(base, record.row)
        draft.roots.append(workflow)
        draft.add(workflow, _TYPE, ox.NamedNode(RB + "DosimetryWorkflow"), None, _NO_CLEANING)
        patient = self.patient(record, workflow)
        self.check_keys(record, self.known, workflow, patient)
        self.uids(record, "study_instance_uid", workflow, RB + "study")
        self.uids(record, "administration_event_uid", workflow, RB + "administration")
        self.comment(record, workflow)
        steps = {
            "calibration": ("SensitivityCalibration", ("sensitivity", "unit", "used")),
            "segmentation": ("Segmentation", ("used",)),
            "fit": ("CurveFit", ("model",)),
            "absorbed_dose_calculation": ("AbsorbedDoseCalculation", ("method",)),
        }
        nodes: dict[str, _Node] = {}
        for key, (cls, keys) in steps.items():
            part = self.part(record, key, keys)
            node = draft.node(f"{base}/{key.replace('_', '-')}", record.row, key)
            nodes[key] = node
            draft.origins[workflow].fields.setdefault(DCT + "hasPart", key)
            draft.add(workflow, DCT + "hasPart", node, key, _NO_CLEANING)
            draft.add(node, _TYPE, ox.NamedNode(RB + cls), None, _NO_CLEANING)
            if part is None:
                continue
            if key == "calibration":
                self.quantity(
                    part, node, RB + "sensitivity", "sensitivity", "unit", f"{base}/sensitivity"
                )
            if key in ("calibration", "segmentation"):
                self.uids(part, "used", node, PROV + "used")
            if key == "fit":
                self.get(part, "model", node, RB + "fitModel", _string_of)
            if key == "absorbed_dose_calculation":
                self.get(part, "method", node, RB + "method", _string_of)
        vois = self.volumes(record, base, nodes["segmentation"])
        curves = self.per_voi(
            record, "time_activity_curves", vois, base, ("voi", "points"), self.curve
        )
        for curve in curves:
            draft.add(nodes["fit"], PROV + "used", curve, "time_activity_curves", _NO_CLEANING)
        draft.origins[nodes["fit"]].fields.setdefault(PROV + "used", "time_activity_curves")
        activities = self.per_voi(
            record,
            "time_integrated_activities",
            vois,
            base,
            ("voi", "value", "unit"),
            functools.partial(self.result, "TimeIntegratedActivity", nodes["fit"]),
        )
        calculation = nodes["absorbed_dose_calculation"]
        for activity in activities:
            draft.add(calculation, PROV + "used", activity, "time_integrated_activities")
        draft.origins[calculation].fields.setdefault(PROV + "used", "time_integrated_activities")
        self.per_voi(
            record,
            "absorbed_doses",
            vois,
            base,
            ("voi", "value", "unit"),
            functools.partial(self.result, "VolumeOfInterestDose", calculation),
        )

    def part(self, record: _Record, key: str, keys: tuple[str, ...]) -> _Record | None:
        value = record.values.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.draft.violation(record.row, key, f"{key} is a JSON object with {', '.join(keys)}")
            return None
        part = _Record(record.row, value, False, f"{key}.")
        for unknown in set(value) - set(keys):
            self.draft.violation(
                record.row, part.name(unknown), f"unknown key; {key} has {', '.join(keys)}"
            )
        return part

    def items(self, record: _Record, key: str, keys: tuple[str, ...]) -> Iterator[_Record]:
        value = record.values.get(key, [])
        if not isinstance(value, list):
            self.draft.violation(record.row, key, f"{key} is a JSON array of objects")
            return
        for position, item in enumerate(value):
            name = record.name(f"{key}[{position}]")
            if not isinstance(item, dict):
                self.draft.violation(record.row, name, f"{_shown(item)} is not a JSON object")
                continue
            part = _Record(record.row, item, False, f"{name}.")
            for unknown in set(item) - set(keys):
                self.draft.violation(
                    record.row, part.name(unknown), f"unknown key; known: {', '.join(keys)}"
                )
            yield part

    def volumes(self, record: _Record, base: str, segmentation: _Node) -> dict[str, _Node]:
        keys = ("id", "organ_code", "organ_name", "volume", "unit")
        found: dict[str, _Node] = {}
        for number, part in enumerate(self.items(record, "volumes_of_interest", keys), 1):
            voi = self.draft.node(
                f"{base}/volumes-of-interest/{number}", record.row, part.prefix.rstrip(".")
            )
            self.draft.add(voi, _TYPE, ox.NamedNode(RB + "VolumeOfInterest"), None, _NO_CLEANING)
            self.draft.add(
                voi, PROV + "wasGeneratedBy", segmentation, part.name("id"), _NO_CLEANING
            )
            try:
                label = _text(part.values.get("id"))
            except _Bad:
                self.draft.violation(
                    record.row, part.name("id"), "each volume of interest has an id (text)"
                )
            else:
                if label in found:
                    self.draft.violation(
                        record.row, part.name("id"), f"id {label[:40]!r} is used twice"
                    )
                found[label] = voi
            self.get(part, "organ_code", voi, RB + "anatomicalRegion", _code, _NO_CLEANING)
            self.get(part, "organ_name", voi, RB + "regionName", _string_of)
            self.quantity(part, voi, RB + "volume", "volume", "unit", f"{voi.local}/volume")
        return found

    def per_voi(
        self,
        record: _Record,
        key: str,
        vois: Mapping[str, _Node],
        base: str,
        keys: tuple[str, ...],
        make: Callable[[_Record, _Node], None],
    ) -> list[_Node]:
        made = []
        for number, part in enumerate(self.items(record, key, keys), 1):
            node = self.draft.node(f"{base}/{key.replace('_', '-')}/{number}", record.row)
            self.draft.origins[node].field = part.prefix.rstrip(".")
            self.draft.origins[node].fields.setdefault(RB + "volumeOfInterest", part.name("voi"))
            voi = (
                vois.get(part.values.get("voi"))
                if isinstance(part.values.get("voi"), str)
                else None
            )
            if voi is None:
                self.draft.violation(
                    record.row,
                    part.name("voi"),
                    f"{_shown(part.values.get('voi'))} is not the id of one of the "
                    "volumes_of_interest",
                )
                self.draft.explained.add((node, RB + "volumeOfInterest"))
            else:
                self.draft.add(node, RB + "volumeOfInterest", voi, part.name("voi"), _NO_CLEANING)
            make(part, node)
            made.append(node)
        return made

    def curve(self, part: _Record, curve: _Node) -> None:
        draft = self.draft
        draft.add(curve, _TYPE, ox.NamedNode(RB + "TimeActivityCurve"), None, _NO_CLEANING)
        draft.origins[curve].fields.setdefault(RB + "timeActivityPoint", part.name("points"))
        keys = ("time", "time_unit", "activity", "activity_unit")
        for number, point in enumerate(self.items(part, "points", keys), 1):
            node = draft.node(f"{curve.local}/points/{number}", part.row, point.prefix.rstrip("."))
            draft.add(curve, RB + "timeActivityPoint", node, point.prefix.rstrip("."), _NO_CLEANING)
            draft.add(node, _TYPE, ox.NamedNode(RB + "TimeActivityPoint"), None, _NO_CLEANING)
            self.quantity(
                point,
                node,
                RB + "timeSinceAdministration",
                "time",
                "time_unit",
                f"{node.local}/time",
            )
            self.quantity(
                point,
                node,
                RB + "measuredActivity",
                "activity",
                "activity_unit",
                f"{node.local}/activity",
            )

    def result(self, cls: str, step: _Node, part: _Record, node: _Node) -> None:
        draft = self.draft
        draft.add(node, _TYPE, ox.NamedNode(RB + cls), None, _NO_CLEANING)
        draft.add(node, PROV + "wasGeneratedBy", step, None, _NO_CLEANING)
        self.value_and_unit(part, node, "value", "unit")
        if cls == "VolumeOfInterestDose":
            draft.add(node, RB + "quantityConcept", ox.NamedNode(DCM + "128513"), None)


_BUILDERS: dict[str, Callable[[_Draft], _Builder]] = {
    "crf": _CaseReportForms,
    "outcome": _Outcomes,
    "organ-doses": _OrganDoses,
    "mrt-dosimetry": _DosimetryWorkflows,
}

# ---------------------------------------------------------------------------------------
# JSON-LD
# ---------------------------------------------------------------------------------------

_PATIENT_PREFIX = "urn:radbank:patient:"
_OID_PREFIX = "urn:oid:"
# Namespaces of the vocabularies a submission uses but may not describe.
_VOCABULARIES = (RB, DCM, PROV, DCT, QUDT, UNIT, SCT, XSD, RDF, RDFS, SKOS, FOAF)
_CURIES = {
    XSD: "xsd:",
    RB: "radbank:",
    PROV: "prov:",
    DCT: "dcterms:",
    QUDT: "qudt:",
    RDFS: "rdfs:",
    RDF: "rdf:",
    FOAF: "foaf:",
    SKOS: "skos:",
    DCM: "dcm:",
    "https://schema.org/": "schema:",
    "http://schema.org/": "schema:",
}


def _curie(iri: str) -> str:
    for namespace, prefix in _CURIES.items():
        if iri.startswith(namespace):
            return prefix + iri[len(namespace) :]
    return iri


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


_ZONE = r"(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?"
_PARTIAL_DATE_FORMS = {
    XSD + "gYear": r"-?[0-9]{4}" + _ZONE,
    XSD + "gYearMonth": r"-?[0-9]{4}-(0[1-9]|1[0-2])" + _ZONE,
    XSD + "gMonthDay": r"--(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])" + _ZONE,
    XSD + "gDay": r"---(0[1-9]|[12][0-9]|3[01])" + _ZONE,
    XSD + "gMonth": r"--(0[1-9]|1[0-2])" + _ZONE,
}


def _moment(literal: ox.Literal) -> datetime.date | datetime.datetime | None:
    """The date or date-time of a date literal (None for a valid partial date, gYear...);
    _Bad when it is not one."""
    datatype = literal.datatype.value
    text = literal.value.strip()
    if datatype in _PARTIAL_DATE_FORMS:
        if re.fullmatch(_PARTIAL_DATE_FORMS[datatype], text) is None:
            raise _Bad(f"{text[:40]!r} is not a valid {_curie(datatype)}")
        return None
    try:
        if datatype == _DATE:
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}" + _ZONE, text) is None:
                raise ValueError
            return datetime.date.fromisoformat(text[:10])
        form = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?" + _ZONE
        zoned = re.search(r"(Z|[+-][0-9]{2}:[0-9]{2})$", text) is not None
        if re.fullmatch(form, text) is None or (datatype == _DATETIME_STAMP and not zoned):
            raise ValueError
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        example = "2024-03-01" if datatype == _DATE else "2024-03-01T10:30:00+01:00"
        what = "date" if datatype == _DATE else "date-time"
        raise _Bad(f"{text[:40]!r} is not a {what}: write it as {example}") from None


_SUBJECT_REFUSED = (
    "a submission names the patient as the site knows them, urn:radbank:patient:[<issuer>:]"
    "<patient id>; the node computes the pseudonym (urn:radbank:subject:... is refused)"
)


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


# ---------------------------------------------------------------------------------------
# Identity: pseudonyms, UIDs, holdings, subjects, dates, text
# ---------------------------------------------------------------------------------------

_LEVELS = {
    RB + "study": ("study",),
    RB + "series": ("series",),
    RB + "instance": ("instance",),
    RB + "irradiationEvent": ("event",),
    RB + "administration": ("administration",),
    PROV + "used": ("series", "instance"),
}
_LEVEL_NAMES = {
    "study": "a study",
    "series": "a series",
    "instance": "an instance",
    "event": "an irradiation event",
    "administration": "a radiopharmaceutical administration",
}
_REQUIRED_DATES = {
    RB + "CaseReportForm": RB + "visitDate",
    RB + "Outcome": DCT + "date",
}


class _Resolution:
    """The draft with identity applied: pseudonyms, UIDs, subjects, dates, text."""

    def __init__(
        self, draft: _Draft, project: str, identity: SiteIdentity, holdings: Holdings
    ) -> None:
        self.draft = draft
        self.project = project
        self.identity = identity
        patients = {s.value for s in draft.statements if isinstance(s.value, _Patient)}
        patients |= {k for k in draft.identifiers if isinstance(k, _Patient)}
        self.pseudonyms = {p: identity.pseudonym(p.patient_id, p.issuer) for p in patients}
        uids = {s.value for s in draft.statements if isinstance(s.value, _Uid)}
        self.uids = {u: identity.uid(u.uid) for u in uids}
        self.held_subjects = holdings.subjects(sorted(set(self.pseudonyms.values())))
        self.held = holdings.objects(sorted(set(self.uids.values())))
        self.unresolved: set[_Node] = set()
        self.components: dict[_Node, str] = {}  # node -> its component (a record and its parts)
        self.check_references(holdings)
        self.subjects = self.assign_subjects()
        self.types = self.node_types()
        self.dropped: set[_Node] = set()
        self.apply_dates()
        self.apply_text()

    # references ---------------------------------------------------------------------

    def check_references(self, holdings: Holdings) -> None:
        draft = self.draft
        misses: list[_Statement] = []
        for statement in draft.statements:
            value = statement.value
            row = draft.origins[statement.node].row
            if isinstance(value, _Patient):
                if self.pseudonyms[value] not in self.held_subjects:
                    hint = (
                        ""
                        if value.issuer
                        else "; if the images carry an Issuer of Patient ID, give it too "
                        "(issuer_of_patient_id), the pseudonym depends on it"
                    )
                    draft.violation(
                        row,
                        statement.field,
                        f"{value.describe()} is not held by project {self.project} (no study "
                        f"of this patient is stored, or it was erased){hint}",
                    )
                    self.unresolved.add(statement.node)
            elif isinstance(value, _Uid):
                held = self.held.get(self.uids[value])
                expected = _LEVELS.get(statement.predicate)
                if held is None:
                    misses.append(statement)
                    self.unresolved.add(statement.node)
                elif expected is not None and held.level not in expected:
                    draft.violation(
                        row,
                        statement.field,
                        f"{value.uid} is {_LEVEL_NAMES.get(held.level, held.level)} of project "
                        f"{self.project}, not "
                        f"{' or '.join(_LEVEL_NAMES[level] for level in expected)}",
                    )
                    draft.explained.add((statement.node, statement.predicate))
        if not misses:
            return
        # Sent as the node stores it? Then the site used a pseudonymised UID.
        raw = holdings.objects(sorted({s.value.uid for s in misses if isinstance(s.value, _Uid)}))
        for statement in misses:
            assert isinstance(statement.value, _Uid)
            expected = _LEVELS.get(statement.predicate, ("study",))
            what = " or ".join(_LEVEL_NAMES[level].split(" ", 1)[1] for level in expected)
            if statement.predicate not in _LEVELS:
                what = "object"
            if statement.value.uid in raw:
                reason = (
                    f"{statement.value.uid} is a UID as the node stores it (already "
                    "pseudonymised); a submission names objects by their original UIDs at the site"
                )
            else:
                reason = (
                    f"{what} {statement.value.uid} is not held by project {self.project} "
                    "(never stored, or erased)"
                )
            draft.violation(draft.origins[statement.node].row, statement.field, reason)
            draft.explained.add((statement.node, statement.predicate))

    # subjects -----------------------------------------------------------------------

    def assign_subjects(self) -> dict[_Node, str]:
        """Each minted node's subject pseudonym: the patient it names, or whose object it
        references, or the one of the nodes it is linked with (a record and its parts)."""
        draft = self.draft
        parent: dict[_Node, _Node] = {node: node for node in draft.origins}

        def find(node: _Node) -> _Node:
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        anchors: dict[_Node, list[tuple[str, _Statement]]] = {}
        for statement in draft.statements:
            if statement.node in draft.shared:
                continue
            value = statement.value
            if isinstance(value, _Node) and value not in draft.shared:
                a, b = find(statement.node), find(value)
                if a is not b:
                    parent[a] = b
            elif isinstance(value, _Patient):
                anchors.setdefault(statement.node, []).append((self.pseudonyms[value], statement))
            elif isinstance(value, _Uid):
                held = self.held.get(self.uids[value])
                if held is not None and held.pseudonym:
                    anchors.setdefault(statement.node, []).append((held.pseudonym, statement))
        components: dict[_Node, list[_Node]] = {}
        for node in draft.origins:
            if node not in draft.shared:
                root = find(node)
                components.setdefault(root, []).append(node)
                self.components[node] = root.local
        roots = set(draft.roots)
        subjects: dict[_Node, str] = {}
        for members in components.values():
            found: dict[str, list[_Statement]] = {}
            for member in members:
                for pseudonym, statement in anchors.get(member, []):
                    found.setdefault(pseudonym, []).append(statement)
            named = [m for m in members if m in roots] or members[:1]
            if len(found) == 1:
                pseudonym = next(iter(found))
                subjects.update(dict.fromkeys(members, pseudonym))
                continue
            if any(m in self.unresolved for m in members):
                continue  # the unresolved reference is reported already
            for node in named:
                row = draft.origins[node].row
                if found:
                    groups = "; ".join(
                        " and ".join(f"{s.field} {_sent(s.value)}" for s in group)
                        for group in found.values()
                    )
                    reason = (
                        f"refers to {len(found)} different patients ({groups}): a record "
                        "and everything in it is about one patient"
                    )
                else:
                    reason = (
                        "says nothing that ties it to a patient: give patient_id (JSON, CSV) or "
                        "radbank:subject (JSON-LD), or a study, series, instance or irradiation "
                        "event the project holds"
                    )
                draft.violation(row, None, reason)
                draft.explained.add((node, _SUBJECT))
        return subjects

    def node_types(self) -> dict[_Node, set[str]]:
        types: dict[_Node, set[str]] = {}
        for statement in self.draft.statements:
            if statement.predicate == _TYPE and isinstance(statement.value, ox.NamedNode):
                types.setdefault(statement.node, set()).update(
                    _superclasses(statement.value.value) | {statement.value.value}
                )
        return types

    # dates ----------------------------------------------------------------------------

    def apply_dates(self) -> None:
        draft = self.draft
        for statement in draft.statements:
            value = statement.value
            if not isinstance(value, ox.Literal):
                continue
            datatype = value.datatype.value
            if (
                datatype not in (_DATE, _DATETIME, _DATETIME_STAMP)
                and datatype not in _PARTIAL_DATES
            ):
                continue
            row = draft.origins[statement.node].row
            try:
                _moment(value)
            except _Bad as exc:
                draft.violation(row, statement.field, str(exc))
                draft.explained.add((statement.node, statement.predicate))
                statement.dropped = True  # reported; not given to the shapes either
                continue
            pseudonym = self.subjects.get(statement.node)
            if pseudonym is None:
                continue  # no subject: reported, or a software agent's date
            shifted = self.shift(value, pseudonym)
            if shifted is not None:
                statement.value = shifted
                continue
            required = next(
                (
                    p
                    for cls, p in _REQUIRED_DATES.items()
                    if cls in self.types.get(statement.node, ())
                ),
                None,
            )
            if required == statement.predicate:
                draft.violation(
                    row,
                    statement.field,
                    f"the de-identification profile of project {self.project} "
                    f"({self.identity.profile_name}) removes dates, and a "
                    f"{draft.kind} record cannot be stored without this one; ask the data "
                    "steward for a profile that shifts dates (e.g. basic-dates, research-dose)",
                )
                draft.explained.add((statement.node, statement.predicate))
                continue
            draft.removed.add(statement.field or _curie(statement.predicate))
            statement.dropped = True
            if statement.predicate in _VALUE_PREDICATES:
                self.dropped.add(statement.node)  # a form field without its value goes whole

    def shift(self, value: ox.Literal, pseudonym: str) -> ox.Literal | None:
        """The value moved by the patient's shift, kept, or None (the profile removes it)."""
        moment = _moment(value)
        if moment is None:
            # A partial date cannot be shifted without giving the shift away; kept only
            # where full dates are kept (as DICOM empties partial dates it shifts).
            kept = self.identity.date(datetime.date(2000, 1, 1), pseudonym)
            return value if kept == datetime.date(2000, 1, 1) else None
        if isinstance(moment, datetime.datetime):
            shifted = self.identity.datetime(moment, pseudonym)
            return _typed(value.datatype.value, shifted.isoformat()) if shifted else None
        result = self.identity.date(moment, pseudonym)
        zone = value.value.strip()[10:]  # an xsd:date may carry a time zone: "2024-03-01Z"
        return _typed(_DATE, result.isoformat() + zone) if result else None

    # text -----------------------------------------------------------------------------

    def apply_text(self) -> None:
        draft = self.draft
        by_subject: dict[str, set[str]] = {}
        everything: set[str] = set()
        for about, values in draft.identifiers.items():
            pseudonym = (
                self.pseudonyms.get(about)
                if isinstance(about, _Patient)
                else self.subjects.get(about)
            )
            everything |= values
            if pseudonym is not None:
                by_subject.setdefault(pseudonym, set()).update(values)
        for patient, pseudonym in self.pseudonyms.items():
            known = {patient.patient_id, patient.issuer} - {""}
            by_subject.setdefault(pseudonym, set()).update(known)
            everything |= known
        names = {
            s.node: s.value.value
            for s in draft.statements
            if s.predicate == RB + "fieldName" and isinstance(s.value, ox.Literal)
        }
        for statement in draft.statements:
            value = statement.value
            if statement.cleaning == _NO_CLEANING or not isinstance(value, ox.Literal):
                continue
            if value.datatype.value not in (_XSD_STRING, _LANG_STRING):
                continue
            pseudonym = self.subjects.get(statement.node)
            identifiers = by_subject.get(pseudonym, set()) if pseudonym else everything
            narrative = statement.cleaning == _NARRATIVE or (
                statement.cleaning == _VALUE
                and (
                    bool(set(_words(names.get(statement.node, ""))) & _NARRATIVE_WORDS)
                    or len(value.value.split()) > 3
                )
            )
            cleaned = self.identity.clean_text(value.value, identifiers, narrative=narrative)
            if cleaned != value.value:
                statement.value = (
                    ox.Literal(cleaned, language=value.language)
                    if value.language
                    else _string(cleaned)
                )

    # output ---------------------------------------------------------------------------

    def iri(self, term: _Term, submission: str) -> ox.NamedNode | ox.Literal:
        if isinstance(term, _Node):
            return ox.NamedNode(f"{submission}/{term.local}")
        if isinstance(term, _Patient):
            return ox.NamedNode(subject_iri(self.project, self.pseudonyms[term]))
        if isinstance(term, _Uid):
            return ox.NamedNode(_OID_PREFIX + self.uids[term])
        return term

    def quads(
        self, submission: str, submitted_by: str, submitted_at: datetime.datetime
    ) -> tuple[list[ox.Triple], list[str | None], list[str | None]]:
        """The triples; for each, the subject IRI of the part it belongs to (None for the
        shared ones, _ORPHAN for nodes of no subject: a violation, kept for validation);
        and the component it belongs to (None: shared), which validates on its own."""
        draft = self.draft
        triples: list[ox.Triple] = []
        owners: list[str | None] = []
        groups: list[str | None] = []
        seen: set[ox.Triple] = set()

        def emit(triple: ox.Triple, node: _Node | None) -> None:
            if triple not in seen:
                seen.add(triple)
                triples.append(triple)
                owners.append(owner(node))
                groups.append(self.components.get(node) if node is not None else None)

        def owner(node: _Node | None) -> str | None:
            if node is None or node in draft.shared:
                return None
            pseudonym = self.subjects.get(node)
            return subject_iri(self.project, pseudonym) if pseudonym else _ORPHAN

        for statement in draft.statements:
            if statement.dropped or statement.node in self.dropped:
                continue
            if isinstance(statement.value, _Node) and statement.value in self.dropped:
                continue
            subject = self.iri(statement.node, submission)
            value = self.iri(statement.value, submission)
            assert isinstance(subject, ox.NamedNode)
            emit(ox.Triple(subject, ox.NamedNode(statement.predicate), value), statement.node)
        activity = ox.NamedNode(submission)
        for node in draft.origins:
            if node in draft.shared or node in self.dropped:
                continue
            pseudonym = self.subjects.get(node)
            if pseudonym is None:
                continue
            subject = self.iri(node, submission)
            assert isinstance(subject, ox.NamedNode)
            emit(
                ox.Triple(
                    subject,
                    ox.NamedNode(_SUBJECT),
                    ox.NamedNode(subject_iri(self.project, pseudonym)),
                ),
                node,
            )
        for root in draft.roots:
            subject = self.iri(root, submission)
            assert isinstance(subject, ox.NamedNode)
            emit(ox.Triple(subject, ox.NamedNode(PROV + "wasInfluencedBy"), activity), root)
            emit(
                ox.Triple(
                    subject, ox.NamedNode(RB + "project"), ox.NamedNode(project_iri(self.project))
                ),
                root,
            )
        if submitted_at.tzinfo is None:
            submitted_at = submitted_at.replace(tzinfo=datetime.UTC)
        agent = ox.NamedNode("urn:radbank:user:" + urllib.parse.quote(submitted_by, safe=""))
        for predicate, value in (
            (_TYPE, ox.NamedNode(PROV + "Activity")),
            (RB + "submissionKind", _string(draft.kind)),
            (PROV + "startedAtTime", _typed(_DATETIME, submitted_at.isoformat())),
            (PROV + "wasAssociatedWith", agent),
            (RB + "project", ox.NamedNode(project_iri(self.project))),
        ):
            emit(ox.Triple(activity, ox.NamedNode(predicate), value), None)
        emit(ox.Triple(agent, ox.NamedNode(_TYPE), ox.NamedNode(PROV + "Agent")), None)
        emit(ox.Triple(agent, ox.NamedNode(RDFS + "label"), _string(submitted_by)), None)
        return triples, owners, groups


def _sent(value: _Term) -> str:
    if isinstance(value, _Patient):
        return value.patient_id
    if isinstance(value, _Uid):
        return value.uid
    return str(value)


# ---------------------------------------------------------------------------------------
# SHACL
# ---------------------------------------------------------------------------------------


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
