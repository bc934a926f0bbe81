"""The public contract of submissions: what `prepare_submission` takes (the project's
pseudonymisation, what it holds) and what it returns or raises; re-exported by the
package.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

import pyoxigraph as ox

from radbank.semantic.vocabulary import SUBMISSION_KINDS

KINDS = tuple(SUBMISSION_KINDS)
MEDIA_TYPES = {"application/ld+json", "application/json", "text/csv"}


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
