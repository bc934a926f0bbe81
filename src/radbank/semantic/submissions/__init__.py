"""Non-DICOM submissions, from the bytes a site sends to validated, pseudonymised quads.

    submission = prepare_submission(body, "text/csv", "crf", project="ct-trial",
                                    submission_id="...", submitted_by="alice",
                                    submitted_at=now, identity=identity, holdings=holdings)
    submission.parts      # subject IRI -> the quads about that subject
    submission.shared     # the submission activity and software agents: no personal data
    submission.removed    # identifying fields dropped ("patient_name", "fields.email")

A submission (JSON-LD, JSON or CSV, docs/submissions.md) names subjects, studies, series,
instances, irradiation events and administrations by their identifiers at the site. They
are mapped through the project's pseudonymisation (`SiteIdentity`, injected: this package
knows nothing of keys or profiles) and looked up in what the project holds (`Holdings`, one
batched call). Identifying values follow the DICOM rules: names, birth dates, addresses,
telephone numbers and e-mail addresses are removed (and reported), dates are shifted, kept
or removed as the project's profile does with Study Date, free text is cleaned. The
pseudonymised graph is validated against the SHACL shapes of the declared kind.

Nothing here stores anything, and nothing is returned half-done: `prepare_submission`
either returns the whole `Submission` or raises `SubmissionRejected` listing every
violation (row, field, reason). JSON-LD never loads a remote @context: the radbank context
is known by name (`CONTEXT_URL`, resolved to `CONTEXT`), any other must be inline.

Modules: _contract (the public types, re-exported here), _parse (bytes -> text -> draft),
_records (CSV and JSON records, the builder of each kind), _jsonld (the context and the
JSON-LD reader), _draft (what a submission is turned into before identity is applied),
_values, _identifying (identifying field names), _identity (pseudonyms, UIDs, holdings,
subjects, dates, text), _ontology (the ontology and shapes, parsed once), _shacl.
"""

from __future__ import annotations

import datetime
import re

import pyoxigraph as ox

from radbank.semantic.submissions._contract import (
    KINDS,
    MEDIA_TYPES,
    Held,
    Holdings,
    SiteIdentity,
    Submission,
    SubmissionRejected,
    Violation,
)
from radbank.semantic.submissions._draft import _Draft
from radbank.semantic.submissions._identity import _ORPHAN, _Resolution
from radbank.semantic.submissions._jsonld import CONTEXT, CONTEXT_URL
from radbank.semantic.submissions._parse import _parse
from radbank.semantic.submissions._shacl import _validate
from radbank.semantic.submissions._values import VOCABULARIES
from radbank.semantic.vocabulary import SUBMISSION_KINDS, graph_iri, project_iri

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
