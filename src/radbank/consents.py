"""Consent of a project's subjects: recording decisions (one by one or from a site's CSV),
and withdrawal, which erases everything of the subject.

    consents = Consents(index, store, keys, trail, journal, graphs)
    consents.record(project, [decision(...)], actor="steward", source="10.0.0.5")
    consents.import_csv(project, text, actor=..., source=...)
    report = consents.withdraw(project, "RB-...", actor=..., source=..., reason="letter 12/3")

Withdrawal first writes the subject's tombstone (pseudonym, time, who), from which moment
uploads of the subject are refused, then removes their triples from the RDF store, then
deletes their index rows (instances, series, studies, quarantine entries, vault entries,
consent records, parts of submissions) in one transaction, then their blobs, then pushes
the deleted rows out of the database files. The blob keys are journalled first, so a
crash in between leaves blobs that the next start deletes (`resume` finishes erasures a
crash interrupted). The audit trail keeps the tombstone; it never held data.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pydicom

from radbank.dicom.deid.pseudonyms import patient_pseudonym
from radbank.governance.audit import AuditTrail
from radbank.governance.consent import ConsentDecision, InvalidConsent, parse_csv
from radbank.governance.keys import NodeKeys
from radbank.graphs import Graphs
from radbank.index import Index, Project
from radbank.ingest.journal import Journal
from radbank.store import BlobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureReport:
    pseudonym: str
    instances: int
    blobs: int


class Consents:
    def __init__(
        self,
        index: Index,
        store: BlobStore,
        keys: NodeKeys,
        trail: AuditTrail,
        journal: Journal,
        graphs: Graphs,
    ) -> None:
        self.graphs = graphs
        self.index = index
        self.store = store
        self.keys = keys
        self.trail = trail
        self.journal = journal

    def record(
        self,
        project: Project,
        decisions: Sequence[ConsentDecision],
        *,
        actor: str,
        source: str,
    ) -> list[ErasureReport]:
        """Store the decisions; each withdrawal among them erases its subject. A decision
        for a subject who has withdrawn already is refused (InvalidConsent)."""
        withdrawn = self.index.withdrawals(project.id, {d.pseudonym for d in decisions})
        late = [d for d in decisions if d.pseudonym in withdrawn and d.status == "given"]
        if late:
            raise InvalidConsent(
                [
                    f"subject {d.pseudonym} withdrew on {withdrawn[d.pseudonym].withdrawn_at:%Y-%m-%d} "
                    "and was erased; a new consent needs a new enrolment"
                    for d in late
                ]
            )
        given = [d for d in decisions if d.status == "given"]
        if given:
            self.index.add_consents(
                project.id,
                [d.as_row(actor) for d in given],
                self.trail.project_event(
                    "consent.record",
                    project.name,
                    actor=actor,
                    source=source,
                    detail={
                        "given": len(given),
                        "pseudonyms": sorted({d.pseudonym for d in given})[:1000],
                    },
                ),
            )
            try:
                self.graphs.record_consents(project, [d.pseudonym for d in given])
            except Exception:  # noqa: BLE001 - the index holds them; the next start writes them
                log.exception(
                    "RDF: the consents of %d subject(s) of project %s were recorded but not "
                    "described in its graph; the next start rebuilds the graph (or run "
                    "`radbank rdf rebuild --project %s`)",
                    len(given),
                    project.name,
                    project.name,
                )
        return [
            self.withdraw(project, d.pseudonym, actor=actor, source=source, reason=d.form_reference)
            for d in decisions
            if d.status == "withdrawn"
        ]

    def import_csv(
        self, project: Project, text: str, *, actor: str, source: str
    ) -> tuple[int, list[ErasureReport]]:
        """Record every decision of a consent CSV, or none (InvalidConsent lists the rows)."""
        key = self.keys.project_key(project)
        decisions = parse_csv(
            text, lambda issuer, patient_id: patient_pseudonym(issuer, patient_id, key)
        )
        return len(decisions), self.record(project, decisions, actor=actor, source=source)

    def withdraw(
        self, project: Project, pseudonym: str, *, actor: str, source: str, reason: str = ""
    ) -> ErasureReport:
        """Tombstone the subject and erase all their data (idempotent)."""
        self.index.record_withdrawal(
            project.id,
            pseudonym,
            by=actor,
            audit=self.trail.project_event(
                "consent.withdraw",
                project.name,
                actor=actor,
                source=source,
                detail={"pseudonym": pseudonym, "reason": reason[:200]},
            ),
        )
        return self.erase(project, pseudonym, actor=actor, source=source)

    def erase(self, project: Project, pseudonym: str, *, actor: str, source: str) -> ErasureReport:
        self._name_legacy_quarantine(project)
        keys = self.index.subject_blob_keys(project.id, pseudonym)
        entry = self.journal.begin(keys)
        # The triples go first: if this fails (a remote store down), the withdrawal stays
        # unfinished and `resume` tries again at the next start.
        self.graphs.erase_subject(project, pseudonym)
        instances = self.index.erase_subject(
            project.id,
            pseudonym,
            self.trail.project_event(
                "subject.erase",
                project.name,
                actor=actor,
                source=source,
                detail={"pseudonym": pseudonym, "objects": len(keys)},
            ),
        )
        for key in keys:
            self.store.delete(key)
        self.journal.end(entry)
        self.index.purge_deleted()
        return ErasureReport(pseudonym, instances, len(keys))

    def resume(self) -> list[ErasureReport]:
        """Finish erasures that a crash interrupted (withdrawn, not yet erased)."""
        reports = []
        for project in self.index.list_projects():
            for withdrawal in self.index.withdrawals(project.id).values():
                if withdrawal.erased_at is None:
                    reports.append(
                        self.erase(project, withdrawal.pseudonym, actor="recovery", source="local")
                    )
        return reports

    def _name_legacy_quarantine(self, project: Project) -> None:
        """Quarantine entries stored before they named their subject: read the pseudonym
        from the object itself (its PatientID), once."""
        for quarantine_id, blob_key in self.index.quarantine_without_pseudonym(project.id):
            try:
                dataset = pydicom.dcmread(
                    io.BytesIO(self.store.get(blob_key)), stop_before_pixels=True, force=True
                )
                pseudonym = str(dataset.get("PatientID", "") or "")
            except Exception:  # noqa: BLE001, S112 - an unreadable entry has no subject to find
                continue
            if pseudonym:
                self.index.set_quarantine_pseudonym(quarantine_id, pseudonym)
