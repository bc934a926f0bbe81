"""Consent decisions: their validation, the CSV a site sends, and FHIR R4 Consent resources.

A decision concerns one subject of one project, known here only by the project pseudonym
(a CSV may name subjects by their site identifiers instead: those are turned into the
pseudonym with the project key as they are read and never kept). Status is "given" or
"withdrawn"; scope lists the GA4GH DUO codes of the uses consented to; decided_on is the
date of the signature (or of the withdrawal); form_reference points to the signed form kept
at the site (a document number, never a scan).

CSV columns (header row required, comma-separated, UTF-8):

    pseudonym | patient_id[,issuer]   status   scope             decided_on   form_reference
    RB-...                            given    DUO:0000042       2024-03-01   ICF-2024-0017

scope holds codes separated by spaces or semicolons. A file is taken whole or not at all:
every row is checked and every problem reported (row number, column, reason).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from radbank.governance.duo import validate_conditions
from radbank.index import ConsentRecord

STATUSES = ("given", "withdrawn")
MAX_ROWS = 100_000
MAX_FORM_REFERENCE = 200
_PSEUDONYM = re.compile(r"RB-[A-Z2-7]{20}")
DUO_SYSTEM = "http://purl.obolibrary.org/obo/duo.owl"


class InvalidConsent(ValueError):
    """One or more decisions that cannot be recorded; `problems` lists each, in words."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:20])
        more = len(self.problems) - 20
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class ConsentDecision:
    pseudonym: str
    status: str
    scope: tuple[str, ...]
    decided_on: date
    form_reference: str

    def as_row(self, recorded_by: str) -> dict[str, Any]:
        return {
            "pseudonym": self.pseudonym,
            "status": self.status,
            "scope": list(self.scope),
            "decided_on": self.decided_on,
            "form_reference": self.form_reference,
            "recorded_by": recorded_by,
        }


def decision(
    pseudonym: str,
    status: str,
    scope: Iterable[str],
    decided_on: date | str,
    form_reference: str,
    *,
    today: date | None = None,
) -> ConsentDecision:
    """A checked decision; InvalidConsent names each field that is wrong."""
    problems = []
    if not _PSEUDONYM.fullmatch(pseudonym or ""):
        problems.append(
            f"pseudonym {pseudonym[:40]!r} is not a radbank subject pseudonym (RB- and 20 "
            "characters); name the subject by patient_id (and issuer) instead"
        )
    if status not in STATUSES:
        problems.append(f"status {status[:20]!r}: write 'given' or 'withdrawn'")
    codes = tuple(dict.fromkeys(scope))
    if status == "given":
        try:
            validate_conditions(list(codes))
        except ValueError as exc:
            problems.append(f"scope: {exc}")
    when: date | None = None
    try:
        when = decided_on if isinstance(decided_on, date) else date.fromisoformat(decided_on)
    except ValueError:
        problems.append(f"decided_on {str(decided_on)[:20]!r}: write a date as YYYY-MM-DD")
    if when is not None and when > (today or date.today()):
        problems.append(f"decided_on {when.isoformat()} is in the future")
    if not form_reference.strip():
        problems.append("form_reference is empty: name the signed form kept at the site")
    elif len(form_reference) > MAX_FORM_REFERENCE:
        problems.append(f"form_reference longer than {MAX_FORM_REFERENCE} characters")
    if problems:
        raise InvalidConsent(problems)
    assert when is not None
    return ConsentDecision(pseudonym, status, codes, when, form_reference.strip())


def parse_csv(
    text: str, pseudonymise: Callable[[str, str], str], *, today: date | None = None
) -> list[ConsentDecision]:
    """Decisions of a consent CSV; pseudonymise(issuer, patient_id) gives the pseudonym of a
    subject named by site identifiers. Raises InvalidConsent with every problem found."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = set(reader.fieldnames or ())
    required = {"status", "scope", "decided_on", "form_reference"}
    missing = sorted(required - columns)
    if "pseudonym" not in columns and "patient_id" not in columns:
        missing.insert(0, "pseudonym or patient_id")
    if missing:
        raise InvalidConsent([f"the header row lacks the column(s) {', '.join(missing)}"])
    decisions: list[ConsentDecision] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            problems.append(f"more than {MAX_ROWS} rows: split the file")
            break
        if None in row:
            problems.append(f"row {number}: more values than columns")
            continue
        pseudonym = (row.get("pseudonym") or "").strip()
        patient_id = (row.get("patient_id") or "").strip()
        if not pseudonym and patient_id:
            pseudonym = pseudonymise((row.get("issuer") or "").strip(), patient_id)
        try:
            decisions.append(
                decision(
                    pseudonym,
                    (row.get("status") or "").strip().lower(),
                    re.split(r"[\s;]+", (row.get("scope") or "").strip())
                    if row.get("scope")
                    else [],
                    (row.get("decided_on") or "").strip(),
                    row.get("form_reference") or "",
                    today=today,
                )
            )
        except InvalidConsent as exc:
            # Site identifiers are never quoted back: the row number says which subject.
            problems.extend(f"row {number}: {p}" for p in exc.problems)
    if problems:
        raise InvalidConsent(problems)
    if not decisions:
        raise InvalidConsent(["the file holds no consent rows"])
    return decisions


def fhir_consent(record: ConsentRecord, *, project: str, node: str) -> dict[str, Any]:
    """A FHIR R4 Consent resource for one recorded decision (research consent, subject by
    pseudonym identifier only, permit or deny of the DUO-coded purposes)."""
    given = record.status == "given"
    return {
        "resourceType": "Consent",
        "id": f"{project}-{record.id}",
        "status": "active" if given else "inactive",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "research",
                    "display": "Research",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "59284-0",
                        "display": "Patient Consent",
                    }
                ]
            }
        ],
        "patient": {
            "identifier": {
                "system": f"urn:radbank:{node}:project:{project}:pseudonym",
                "value": record.pseudonym,
            }
        },
        "dateTime": record.decided_on.isoformat(),
        "sourceReference": {"identifier": {"value": record.form_reference}},
        "provision": {
            "type": "permit" if given else "deny",
            **(
                {
                    "purpose": [
                        # DS carries its disease after the term: DUO:0000007:MONDO:0004992
                        {"system": DUO_SYSTEM, "code": code}
                        for code in record.scope
                    ]
                }
                if record.scope
                else {}
            ),
        },
        "meta": {"lastUpdated": record.recorded_at.isoformat()},
    }


def fhir_bundle(records: Iterable[ConsentRecord], *, project: str, node: str) -> dict[str, Any]:
    entries = [{"resource": fhir_consent(r, project=project, node=node)} for r in records]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    if entries:
        bundle["entry"] = entries
    return bundle
