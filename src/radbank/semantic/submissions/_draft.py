"""What a submission is turned into before identity is applied: a `_Draft` of statements
about the nodes it mints, the patients (`_Patient`) and DICOM objects (`_Uid`) as the
site knows them, where each node came from (`_Origin`, for messages), and `_Bad`, the
error a value that cannot be read raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyoxigraph as ox

from radbank.semantic.submissions._contract import Violation
from radbank.semantic.vocabulary import PROV, RB, RDF, XSD

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
_OID_PREFIX = "urn:oid:"  # a DICOM object as an IRI


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
