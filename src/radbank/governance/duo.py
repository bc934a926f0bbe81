"""GA4GH Data Use Ontology (DUO) for access requests: the terms radbank knows, the checks on
what a project declares and on what a request states, and the match a data steward reads.

The terms, with their official ids, labels and is_a parents, are in `data/duo.json`, taken
from DUO release 2021-02-23 (`release()`); `terms()` lists them, `term(id)` looks one up.

What a project declares (`validate_conditions`): exactly one permission, which says what the
data may be used for (NRES DUO:0000004, GRU DUO:0000042, HMB DUO:0000006, DS DUO:0000007,
POA DUO:0000011), and any modifiers (DUO:0000012 ... DUO:0000046), which add conditions.
Disease-specific research names its disease after the id: "DUO:0000007:MONDO:0004992"
(cancer). DUO recommends MONDO; any PREFIX:ID code (ICD10:C34, DOID:1612) is accepted.

What a request states (`validate_purposes`): what the study is about, in the same permission
terms (DUOS and the DUO matching guide express research purposes this way) or in DUO's
investigation terms, which radbank places among the permissions by their definitions:
biomedical (DUO:0000037), genetic (DUO:0000038) and drug development (DUO:0000039) research
count as HMB; disease category research ("DUO:0000040:<disease>") counts as DS for that
disease; ancestry research (DUO:0000033) counts as POA. Method development (DUO:0000031),
population (DUO:0000032), age category (DUO:0000034), gender category (DUO:0000035) research
and research control (DUO:0000036) say how or on whom a study works, not what it is about, so
a request needs a topic beside them. Clinical care use (DUO:0000043) may be stated as a
purpose: the data would be used to care for patients, not (only) for research.

How `match` decides (every condition must be met; one reason per condition):

- The permission. A request is always stated at its most specific level, and it is allowed
  when its purpose lies at or below the permission in DUO's is_a hierarchy (DS is_a HMB is_a
  GRU): cancer research on a GRU or HMB project is allowed; general research on an HMB
  project, or health research on a disease-specific project, is refused. NRES allows
  anything. GRU allows any research, ancestry research included (its definition says so,
  although DUO places POA beside GRU rather than under it). POA allows ancestry research
  only, and HMB excludes it. On a DS project only the same disease code matches: radbank holds
  no disease ontology, so lung cancer (MONDO:0008903) on a cancer (MONDO:0004992) project is
  refused here although DUO's intent would allow a subtype; the steward decides such cases.
  No permission covers clinical care except NRES, unless the project adds DUO:0000043.
- Modifiers that ask something of the requester (RS, NPUNCU, NPU, NCU, PUB, COL, IRB, GS, MOR,
  TS, US, PS, IS, RTN; see `ATTESTATIONS`) are met only when `request_attests` holds the
  modifier's id; the reason says what the requester must confirm. Attesting DUO:0000018
  (not for profit and non-commercial) covers its two children NPU DUO:0000045 and NCU
  DUO:0000046, and attesting both children covers DUO:0000018.
- NMDS (DUO:0000015) refuses a request for method development; NPOA (DUO:0000044) refuses
  ancestry research; GSO (DUO:0000016) needs genetic research among the purposes.
- Clinical care use (DUO:0000043) is the one modifier that widens use: it lets a project
  serve a clinical-care purpose. Every other modifier can only turn an allow into a refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal, NamedTuple

DUO_FILE = "duo.json"
Kind = Literal["permission", "modifier", "purpose"]

# Permissions, by DUO shorthand.
NRES = "DUO:0000004"
GRU = "DUO:0000042"
HMB = "DUO:0000006"
DS = "DUO:0000007"
POA = "DUO:0000011"
# Modifiers that turn on the request's purposes rather than on what the requester confirms.
NMDS = "DUO:0000015"
GSO = "DUO:0000016"
CC = "DUO:0000043"
NPOA = "DUO:0000044"
# Investigation terms that a modifier above refers to.
METHOD_DEVELOPMENT = "DUO:0000031"
GENETIC_RESEARCH = "DUO:0000038"

# Where each topic a request may state sits among the permissions. DUO hangs its
# investigation terms under OBI "investigation", not under the permissions, so radbank places
# them by their definitions.
TOPIC_OF: dict[str, str] = {
    GRU: GRU,
    HMB: HMB,
    DS: DS,
    POA: POA,
    "DUO:0000037": HMB,  # biomedical research
    GENETIC_RESEARCH: HMB,
    "DUO:0000039": HMB,  # drug development research
    "DUO:0000040": DS,  # disease category research, with its disease
    "DUO:0000033": POA,  # ancestry research
}

# What the requester must confirm to meet each modifier, completing "the requester must
# confirm that ...". A modifier is met when request_attests holds its id.
ATTESTATIONS: dict[str, str] = {
    "DUO:0000012": "the study is of the research type the project is restricted to",
    "DUO:0000018": "their organisation is not for profit and the use is non-commercial",
    "DUO:0000045": "their organisation is not for profit",
    "DUO:0000046": "the use is non-commercial",
    "DUO:0000019": "they will make the results available to the wider scientific community",
    "DUO:0000020": "they will collaborate with the investigators of the original study",
    "DUO:0000021": (
        "they will provide documentation of approval by their local ethics committee (IRB/ERB)"
    ),
    "DUO:0000022": "the data will be used only within the approved geographic region",
    "DUO:0000024": "they will not publish results before the moratorium date",
    "DUO:0000025": "they will use the data only for the approved number of months",
    "DUO:0000026": "only the approved users will use the data",
    "DUO:0000027": "the data will be used only within the approved project",
    "DUO:0000028": "the data will be used only within the approved institution",
    "DUO:0000029": "they will return derived or enriched data to this resource",
}
PURPOSE_MODIFIERS = frozenset({NMDS, GSO, CC, NPOA})
_MODIFIER_RULES = frozenset(ATTESTATIONS) | PURPOSE_MODIFIERS

_TERM_ID = r"DUO:\d{7}"
_CODE = re.compile(rf"(?P<id>{_TERM_ID})(?::(?P<qualifier>.*))?")
_DISEASE = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9_-]*):(?P<local>[A-Za-z0-9_.-]+)")
# Spellings people paste from OWL IRIs or type by hand, for a "did you mean".
_NEAR_MISS = re.compile(r"(?i)\s*duo[:_ ]?(\d{7})\s*")


class UnknownTerm(ValueError):
    """A code that is not a DUO term radbank knows."""


@dataclass(frozen=True)
class Term:
    id: str
    label: str  # the official DUO label
    kind: Kind
    parents: tuple[str, ...]  # is_a, as in DUO
    definition: str  # radbank's one-line paraphrase
    shorthand: str | None = None
    takes: Literal["disease"] | None = None  # a qualifier written after the id

    def __str__(self) -> str:
        tag = f"{self.shorthand}, {self.id}" if self.shorthand else self.id
        return f"{self.label} ({tag})"


@dataclass(frozen=True)
class DataUseCode:
    """One term as a project or request uses it, with the disease where the term takes one."""

    term: Term
    disease: str | None = None

    @property
    def code(self) -> str:
        return f"{self.term.id}:{self.disease}" if self.disease else self.term.id

    def __str__(self) -> str:
        return f"{self.term}" + (f" for {self.disease}" if self.disease else "")


@dataclass(frozen=True)
class DataUseConditions:
    """What a project allows: one permission and its modifiers."""

    permission: DataUseCode
    modifiers: tuple[DataUseCode, ...] = ()

    @property
    def codes(self) -> list[str]:
        return [self.permission.code, *(modifier.code for modifier in self.modifiers)]

    def has(self, term_id: str) -> bool:
        return any(use.term.id == term_id for use in (self.permission, *self.modifiers))


@dataclass(frozen=True)
class RequestPurposes:
    """What a request says the study will do."""

    purposes: tuple[DataUseCode, ...]

    @property
    def codes(self) -> list[str]:
        return [purpose.code for purpose in self.purposes]

    def has(self, term_id: str) -> bool:
        return any(purpose.term.id == term_id for purpose in self.purposes)


@dataclass(frozen=True)
class Match:
    """The outcome of `match`: allowed only when every condition of the project is met."""

    allowed: bool
    reasons: list[str]  # one sentence per condition of the project, permission first
    refused_by: list[str]  # the codes of the conditions that were not met


class _Table(NamedTuple):
    release: str
    source: str
    terms: dict[str, Term]
    obsolete: dict[str, str]


@cache
def _table() -> _Table:
    raw = json.loads(resources.files(__package__).joinpath("data", DUO_FILE).read_text("utf-8"))
    terms = {
        entry["id"]: Term(
            id=entry["id"],
            label=entry["label"],
            kind=entry["kind"],
            parents=tuple(entry["parents"]),
            definition=entry["definition"],
            shorthand=entry.get("shorthand"),
            takes=entry.get("takes"),
        )
        for entry in raw["terms"]
    }
    # A modifier added to the table without a rule here would otherwise pass every request.
    unruled = {t.id for t in terms.values() if t.kind == "modifier" and t.id not in _MODIFIER_RULES}
    if unruled:
        raise RuntimeError(f"{DUO_FILE} has modifiers duo.py has no rule for: {sorted(unruled)}")
    return _Table(raw["release"], raw["source"], terms, raw["obsolete"])


def release() -> str:
    """The DUO release the table follows, e.g. "2021-02-23"."""
    return _table().release


def terms(kind: Kind | None = None) -> list[Term]:
    """The DUO terms radbank knows, optionally only one kind."""
    return [t for t in _table().terms.values() if kind is None or t.kind == kind]


def _how_to_find() -> str:
    return (
        f"The codes radbank knows (DUO release {release()}) are listed by "
        "radbank.governance.duo.terms() and in radbank/governance/data/duo.json; "
        "every DUO term is at https://www.ebi.ac.uk/ols4/ontologies/duo."
    )


def term(code: str) -> Term:
    """The term with this id, e.g. term("DUO:0000006"); UnknownTerm for any other string."""
    table = _table()
    if isinstance(code, str) and code in table.terms:
        return table.terms[code]
    raise UnknownTerm(f"{_what_is_wrong(code)} {_how_to_find()}")


def _what_is_wrong(code: object) -> str:
    if not isinstance(code, str):
        return f"{code!r} is not a DUO code: codes are strings such as 'DUO:0000006'."
    parsed = _CODE.fullmatch(code)
    if parsed is None:
        near = _NEAR_MISS.fullmatch(code)
        hint = f"; did you mean DUO:{near[1]}?" if near else "."
        return f"'{code}' is not a DUO code: codes are written DUO: and seven digits{hint}"
    if parsed["qualifier"] is not None:
        return f"'{code}' is a qualified code; term() takes the bare id {parsed['id']}."
    replacement = _table().obsolete.get(code)
    if replacement:
        return f"{code} is obsolete in DUO: {replacement}."
    return f"{code} is not a DUO term radbank uses."


def _parse(code: str) -> DataUseCode:
    parsed = _CODE.fullmatch(code) if isinstance(code, str) else None
    if parsed is None:
        raise UnknownTerm(f"{_what_is_wrong(code)} {_how_to_find()}")
    found = term(parsed["id"])
    qualifier = parsed["qualifier"]
    if found.takes == "disease":
        if not qualifier:
            raise ValueError(
                f"{code}: {found} must name its disease after the id, written "
                f"{found.id}:<disease-id>, e.g. {found.id}:MONDO:0004992 (cancer)."
            )
        disease = _DISEASE.fullmatch(qualifier)
        if disease is None:
            raise ValueError(
                f"{code}: the disease '{qualifier}' is not a PREFIX:ID code such as "
                "MONDO:0004992 or ICD10:C34."
            )
        # Prefixes are case-insensitive by convention; local ids are left as written.
        return DataUseCode(found, f"{disease['prefix'].upper()}:{disease['local']}")
    if qualifier is not None:
        raise ValueError(f"{code}: {found} takes nothing after its id; write {found.id}.")
    return DataUseCode(found)


def _parse_all(codes: Sequence[str], what: str) -> list[DataUseCode]:
    if isinstance(codes, str):
        raise TypeError(f"{what} is a list of codes, not one string: write [{codes!r}].")
    uses: dict[str, DataUseCode] = {}
    for code in codes:
        use = _parse(code)
        uses.setdefault(use.code, use)  # a repeated code says nothing more
    if not uses:
        raise ValueError(f"{what} is empty: state at least one DUO code.")
    return list(uses.values())


def _permission_list() -> str:
    return ", ".join(str(t) for t in terms("permission"))


def validate_conditions(codes: Sequence[str]) -> DataUseConditions:
    """A project's data use conditions, checked: exactly one permission, then modifiers."""
    uses = _parse_all(codes, "A project's data use conditions")
    for use in uses:
        if use.term.kind == "purpose":
            hint = ""
            if use.term.id == METHOD_DEVELOPMENT:
                hint = f" To forbid methods research, use {term(NMDS)}."
            raise ValueError(
                f"{use.code}: {use.term} is a research purpose, which a request states; a "
                f"project declares one permission and modifiers.{hint}"
            )
    permissions = [use for use in uses if use.term.kind == "permission"]
    if len(permissions) != 1:
        found = ", ".join(use.code for use in permissions) or "none"
        raise ValueError(
            f"A project declares exactly one DUO permission, found {found}. "
            f"Keep the one its consent allows: {_permission_list()}."
        )
    (permission,) = permissions
    modifiers = tuple(use for use in uses if use.term.kind == "modifier")
    if permission.term.id == POA and any(m.term.id == NPOA for m in modifiers):
        raise ValueError(
            f"{NPOA}: {term(NPOA)} forbids the only use {term(POA)} allows; "
            "the project would allow nothing. Remove one of them."
        )
    return DataUseConditions(permission, modifiers)


def _topics_list() -> str:
    topics = [str(term(t)) for t in TOPIC_OF if term(t).takes is None]
    diseased = [f"{t}:<disease-id> ({term(t).label})" for t in TOPIC_OF if term(t).takes]
    return ", ".join([*topics, *diseased, str(term(CC))])


def validate_purposes(codes: Sequence[str]) -> RequestPurposes:
    """A request's purposes, checked: at least one says what the study is about."""
    uses = _parse_all(codes, "A request's purposes")
    for use in uses:
        if use.term.id == NRES:
            raise ValueError(
                f"{use.code}: {use.term} describes a project, not what a study does; state "
                f"the purpose instead, one of {_topics_list()}."
            )
        if use.term.kind == "modifier" and use.term.id != CC:
            confirm = (
                " A requester who meets it says so in request_attests."
                if use.term.id in ATTESTATIONS
                else ""
            )
            raise ValueError(
                f"{use.code}: {use.term} is a condition a project sets, not a purpose.{confirm}"
            )
    if not any(use.term.id in TOPIC_OF or use.term.id == CC for use in uses):
        stated = ", ".join(str(use) for use in uses)
        raise ValueError(
            f"The request states only {stated}, which say how the study works but not what it "
            f"is about; add its topic, one of {_topics_list()}."
        )
    return RequestPurposes(tuple(uses))


def describe(codes: Iterable[str]) -> list[str]:
    """Labels for display: "disease specific research for MONDO:0004992 (DS)"."""
    labels = []
    for code in codes:
        use = _parse(code)
        tag = f" ({use.term.shorthand})" if use.term.shorthand else ""
        disease = f" for {use.disease}" if use.disease else ""
        labels.append(f"{use.term.label}{disease}{tag}")
    return labels


def _ancestors(term_id: str) -> set[str]:
    found: set[str] = set()
    pending = [term_id]
    while pending:
        for parent in _table().terms[pending.pop()].parents:
            if parent in _table().terms and parent not in found:
                found.add(parent)
                pending.append(parent)
    return found


def _children(term_id: str) -> set[str]:
    return {t.id for t in _table().terms.values() if term_id in t.parents}


class _Verdict(NamedTuple):
    met: bool
    condition: str
    reason: str


def _within(purpose: DataUseCode, conditions: DataUseConditions) -> tuple[bool, str]:
    """Whether one topic or clinical-care purpose is inside the project's permission, and why."""
    permission = conditions.permission
    allowed = permission.term.label
    if purpose.term.id == CC:
        if permission.term.id == NRES:
            return True, f"Clinical care use is allowed: {allowed} places no limit on use."
        if conditions.has(CC):
            return True, f"Clinical care use is allowed by the project's {term(CC)} modifier."
        return False, (
            f"The request asks for clinical care use, but {allowed} covers research only; the "
            f"project would need the {term(CC)} modifier."
        )
    topic = TOPIC_OF[purpose.term.id]
    if permission.term.id == NRES:
        return True, f"{purpose} is allowed: {allowed} places no limit on use."
    if permission.term.id == GRU:
        return True, f"{purpose} is allowed: {allowed} covers any research purpose."
    if topic != permission.term.id and permission.term.id not in _ancestors(topic):
        if topic in _ancestors(permission.term.id):
            return False, (
                f"{purpose} is broader than {permission}, the only use the project allows; "
                "a request must state its most specific purpose."
            )
        return False, f"{purpose} is not within {permission}, the only use the project allows."
    if permission.disease is not None and purpose.disease != permission.disease:
        return False, (
            f"{purpose} is refused: the project allows research on {permission.disease} "
            "only. radbank holds no disease hierarchy, so only the same "
            "disease code matches; whether one disease is a subtype of the other is for the "
            "steward to judge."
        )
    if permission.disease is not None:
        return True, f"{purpose} is allowed: it is research on {permission.disease}, as allowed."
    if topic == permission.term.id and purpose.term.id == permission.term.id:
        return True, f"{purpose} is allowed: it is the use the project allows."
    return True, f"{purpose} is allowed: it is a kind of {allowed}."


def _judge_permission(request: RequestPurposes, conditions: DataUseConditions) -> _Verdict:
    judged = [
        _within(purpose, conditions)
        for purpose in request.purposes
        if purpose.term.id in TOPIC_OF or purpose.term.id == CC
    ]
    met = all(ok for ok, _ in judged)
    outcome = "met" if met else "not met"
    sentences = " ".join(why[0].upper() + why[1:] for _, why in judged)
    return _Verdict(
        met,
        conditions.permission.code,
        f"Permission {conditions.permission}: {outcome}. {sentences}",
    )


def _attests(term_id: str, attested: frozenset[str]) -> bool:
    if term_id in attested or _ancestors(term_id) & attested:
        return True
    children = _children(term_id)
    return bool(children) and children <= attested


def _judge_modifier(
    modifier: DataUseCode, request: RequestPurposes, attested: frozenset[str]
) -> _Verdict:
    name = f"Modifier {modifier}"
    term_id = modifier.term.id
    if term_id in ATTESTATIONS:
        must = ATTESTATIONS[term_id]
        if _attests(term_id, attested):
            return _Verdict(True, term_id, f"{name}: met. The requester confirms that {must}.")
        return _Verdict(
            False,
            term_id,
            f"{name}: not met. The requester must confirm that {must} (attest {term_id}).",
        )
    if term_id == NMDS:
        if request.has(METHOD_DEVELOPMENT):
            return _Verdict(
                False,
                term_id,
                f"{name}: not met. The request includes {term(METHOD_DEVELOPMENT)}, which the "
                "project forbids.",
            )
        return _Verdict(
            True, term_id, f"{name}: met. The request includes no {term(METHOD_DEVELOPMENT)}."
        )
    if term_id == NPOA:
        ancestry = [str(p) for p in request.purposes if TOPIC_OF.get(p.term.id) == POA]
        if ancestry:
            return _Verdict(
                False,
                term_id,
                f"{name}: not met. The request includes {', '.join(ancestry)}, which the "
                "project forbids.",
            )
        return _Verdict(True, term_id, f"{name}: met. The request includes no ancestry research.")
    if term_id == GSO:
        if request.has(GENETIC_RESEARCH):
            return _Verdict(
                True, term_id, f"{name}: met. The request is for {term(GENETIC_RESEARCH)}."
            )
        return _Verdict(
            False,
            term_id,
            f"{name}: not met. The project allows genetic studies only and the request does "
            f"not state {term(GENETIC_RESEARCH)}.",
        )
    if term_id == CC:
        asked = "which the request asks for" if request.has(CC) else "not asked for here"
        return _Verdict(True, term_id, f"{name}: met. It allows clinical care use, {asked}.")
    raise AssertionError(f"no rule for modifier {term_id}")  # _table() refuses such a table


def _validate_attests(request_attests: Iterable[str]) -> frozenset[str]:
    if isinstance(request_attests, str):
        raise TypeError(
            f"request_attests is a set of codes, not one string: write {{{request_attests!r}}}."
        )
    attested = frozenset(request_attests)
    for code in attested:
        found = term(code)
        if found.id not in ATTESTATIONS:
            raise ValueError(
                f"{code}: {found} is not something a requester confirms; request_attests "
                f"takes only {', '.join(sorted(ATTESTATIONS))}."
            )
    return attested


def match(
    request_purposes: RequestPurposes | Sequence[str],
    dataset_conditions: DataUseConditions | Sequence[str],
    *,
    request_attests: frozenset[str] = frozenset(),
) -> Match:
    """Whether a request's purposes fit a project's data use conditions, with one reason per
    condition for the steward. Lists of codes are validated first (ValueError if invalid)."""
    request = (
        request_purposes
        if isinstance(request_purposes, RequestPurposes)
        else validate_purposes(request_purposes)
    )
    conditions = (
        dataset_conditions
        if isinstance(dataset_conditions, DataUseConditions)
        else validate_conditions(dataset_conditions)
    )
    attested = _validate_attests(request_attests)
    verdicts = [
        _judge_permission(request, conditions),
        *(_judge_modifier(modifier, request, attested) for modifier in conditions.modifiers),
    ]
    return Match(
        allowed=all(verdict.met for verdict in verdicts),
        reasons=[verdict.reason for verdict in verdicts],
        refused_by=[verdict.condition for verdict in verdicts if not verdict.met],
    )
