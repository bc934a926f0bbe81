"""Identity applied to a draft: patients mapped through the project's pseudonymisation
(`SiteIdentity`, injected: nothing here knows of keys or profiles), UIDs looked up in
what the project holds (`Holdings`, one batched call), each node's subject, dates
shifted, kept or removed as the profile does with Study Date, free text cleaned; then
the triples, each with the part (subject) and the component it belongs to.
"""

from __future__ import annotations

import datetime
import urllib.parse

import pyoxigraph as ox

from radbank.semantic.submissions._contract import Holdings, SiteIdentity
from radbank.semantic.submissions._draft import (
    _DATE,
    _DATETIME,
    _DATETIME_STAMP,
    _LANG_STRING,
    _NARRATIVE,
    _NO_CLEANING,
    _OID_PREFIX,
    _PARTIAL_DATES,
    _SUBJECT,
    _TYPE,
    _VALUE,
    _XSD_STRING,
    _Bad,
    _Draft,
    _Node,
    _Patient,
    _Statement,
    _Term,
    _Uid,
)
from radbank.semantic.submissions._identifying import _NARRATIVE_WORDS, _VALUE_PREDICATES, _words
from radbank.semantic.submissions._ontology import _superclasses
from radbank.semantic.submissions._values import _curie, _moment, _string, _typed
from radbank.semantic.vocabulary import DCT, PROV, RB, RDFS, project_iri, subject_iri

_ORPHAN = ""  # the part of a node no subject could be found for (always a violation)

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
