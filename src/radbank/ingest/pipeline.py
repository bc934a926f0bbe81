"""parse -> de-identify -> pixel rules -> OCR check -> quality checks -> dose extraction
-> store blob (durable) -> index (with the pseudonym vault entries and the dose rows) ->
outcome.

Identified data exists only in memory here: the first byte written anywhere is the
de-identified object, and the original identifiers leave this module only sealed to the
honest broker's key, in the same transaction as the rows of the instances they belong to.
A batch (one STOW-RS request, one folder chunk) is written blob by blob and then indexed in
one transaction, so an instance is acknowledged only once both its blob and its row are
durable.

What a project's settings give (key, compiled profile, pixel rules, vault sealer) is built
once per settings version and key state, not per instance or per batch.
"""

from __future__ import annotations

import errno
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from radbank.dicom.dataset_json import index_attributes
from radbank.dicom.deid import DeidentificationError
from radbank.dicom.instance import (
    InstanceSettings,
    Unreadable,
    adopt_deidentified,
    deidentify_instance,
    failure,
    read_instance,
    uids_as_read,
)
from radbank.dicom.pydicom_warnings import object_in_hand
from radbank.governance.keys import NodeKeys
from radbank.governance.policy import Principal
from radbank.governance.vault import Identifiers, Sealer
from radbank.index import (
    DuplicateInstance,
    HierarchyConflict,
    Index,
    InstanceRecord,
    PendingAudit,
    Project,
    SubjectWithdrawn,
    UnknownProject,
    VaultEntry,
    VaultKeyChanged,
    VaultWrite,
    out_of_space,
    unstorable_value,
)
from radbank.ingest.dose import DoseReader, dose_rows, water_equivalent_diameter
from radbank.ingest.journal import Journal
from radbank.projects import deid_profile, pixel_rules
from radbank.store import BlobStore

if TYPE_CHECKING:  # the graphs service imports the ingest package; only the type comes back
    from radbank.graphs import Graphs

log = logging.getLogger(__name__)

# DICOM status codes used as FailureReason (0008,1197) in STOW-RS responses (PS3.4 Annex B).
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE_CONFLICT = 0x0111
FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_SOP_CLASS_NOT_SUPPORTED = 0x0122
FAILURE_STUDY_MISMATCH = 0xA900
FAILURE_OUT_OF_RESOURCES = 0xA700
WARNING_QUARANTINED = 0xB000


class Status(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Item:
    """One object offered for ingest: its raw bytes and a name that identifies it to the
    sender. `deidentified`: written by `radbank deid` under the project's key (its tag is
    in the site's manifest), stored as it is (`adopt_deidentified`)."""

    name: str
    data: bytes
    deidentified: bool = False


@dataclass(frozen=True)
class Outcome:
    name: str
    status: Status
    reason: str = ""
    failure_reason: int | None = None
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status in (Status.STORED, Status.DUPLICATE)


# Bound on the vault digests remembered as recorded, per process.
_RECORDED_DIGESTS = 100_000
_VAULT_ATTEMPTS = 3


@dataclass
class _Prepared:
    name: str
    # The encoded file in pieces, written without joining them (`write_parts`). Runs copied
    # unchanged are views of the received bytes: the identified input stays in memory, and
    # only there, until the batch is written.
    parts: list[bytes | memoryview]
    sha256: str
    record: InstanceRecord
    quarantine_reason: str | None
    pseudonym: str
    identifiers: Identifiers | None  # in memory only, for the vault entry
    digest: bytes | None  # keyed digest of the identifiers (vault deduplication)


@dataclass(frozen=True)
class _Setup:
    """What the settings and keys of one project give, built once per version of them."""

    version: tuple[object, ...]
    key: bytes
    instance: InstanceSettings
    sealer: Sealer | None


@dataclass
class PreparedBatch:
    """De-identified instances of one batch, ready to be stored, and the early outcomes."""

    project: Project
    outcomes: list[Outcome | None] = field(default_factory=list)
    prepared: list[tuple[int, _Prepared]] = field(default_factory=list)


class Pipeline:
    def __init__(
        self,
        store: BlobStore,
        index: Index,
        keys: NodeKeys,
        journal: Journal,
        graphs: Graphs | None = None,
    ) -> None:
        self.graphs = graphs
        self.store = store
        self.index = index
        self.keys = keys
        self.journal = journal
        self._setups: dict[int, _Setup] = {}
        self._recorded: dict[int, set[bytes]] = {}  # vault digests known to be in the index
        self._dose = DoseReader()

    def ingest(
        self,
        items: Iterable[Item],
        project: Project,
        *,
        source: str,
        principal: Principal,
        study_instance_uid: str | None = None,
    ) -> list[Outcome]:
        """Ingest a batch; one outcome per item, in order.

        study_instance_uid (study-scoped STOW-RS) is the study's UID as the sender sent it or
        as it is stored (de-identified); instances of another study are rejected.
        """
        batch = self.prepare(
            items,
            project,
            source=source,
            principal=principal,
            study_instance_uid=study_instance_uid,
        )
        return self.commit(batch)

    def prepare(
        self,
        items: Iterable[Item],
        project: Project,
        *,
        source: str,
        principal: Principal,
        study_instance_uid: str | None = None,
    ) -> PreparedBatch:
        """The CPU-bound half of `ingest`: parse, de-identify, check, encode. Writes nothing."""
        setup = self._setup(project)
        received_at = datetime.now(UTC)
        batch = PreparedBatch(project)
        subjects = _SubjectCheck(self.index, project)
        for position, item in enumerate(items):
            naming = object_in_hand.set(item.name)
            try:
                result = self._prepare(
                    item, project, setup, subjects, source, received_at, study_instance_uid
                )
            finally:
                object_in_hand.reset(naming)
            if isinstance(result, Outcome):
                batch.outcomes.append(result)
                continue
            batch.outcomes.append(None)
            batch.prepared.append((position, result))
        return batch

    def commit(self, batch: PreparedBatch) -> list[Outcome]:
        """The I/O-bound half of `ingest`: durable blobs, then one index transaction."""
        outcomes = list(batch.outcomes)
        for position, outcome in self._commit(batch.prepared, batch.project):
            outcomes[position] = outcome
        return [o for o in outcomes if o is not None]

    def _setup(self, project: Project) -> _Setup:
        version = (
            project.settings_version,
            project.key_id,
            project.wrapped_key,
            project.vault_key_id,
        )
        setup = self._setups.get(project.id)
        if setup is None or setup.version != version:
            key = self.keys.project_key(project)
            setup = _Setup(
                version=version,
                key=key,
                instance=InstanceSettings(
                    profile=deid_profile(project.profile, project.overrides),
                    key=key,
                    pixel_rules=pixel_rules(project.pixel_rules),
                    ocr_check=project.ocr_check,
                ),
                sealer=Sealer(project, key) if project.vault_key_id else None,
            )
            self._setups[project.id] = setup
        return setup

    def _prepare(
        self,
        item: Item,
        project: Project,
        setup: _Setup,
        subjects: _SubjectCheck,
        source: str,
        received_at: datetime,
        expected_study: str | None,
    ) -> Outcome | _Prepared:
        try:
            dataset = read_instance(item.name, item.data)
        except Unreadable as exc:
            return Outcome(item.name, Status.REJECTED, str(exc), FAILURE_CANNOT_UNDERSTAND)
        # As the file holds them, without decoding (which would change how a kept UID is
        # written, and then differ from `radbank deid`'s output for the same input).
        original_sop = "\\".join(uids_as_read(dataset, 0x00080018))
        label = f"{item.name} (SOP Instance UID {original_sop or 'missing'})"
        original_study = "\\".join(uids_as_read(dataset, 0x0020000D))
        # The URL may name the study as sent or as stored (its RetrieveURL), checked once
        # the object is de-identified.
        other_study = bool(expected_study) and original_study != expected_study
        # Read before de-identification changes the dataset in place; the site's output
        # holds pseudonyms only, which the vault has no use for.
        identifiers = Identifiers.of(dataset) if setup.sealer and not item.deidentified else None
        try:
            if item.deidentified:
                done = adopt_deidentified(dataset, item.data)
            else:
                done = deidentify_instance(dataset, setup.instance, item.data)
            if done.rejects:
                reason = "; ".join(done.rejects)
                return Outcome(
                    item.name, Status.REJECTED, f"{label}: {reason}", FAILURE_CANNOT_UNDERSTAND
                )
            result = done.result
            deidentified = result.dataset
            if other_study and str(deidentified.get("StudyInstanceUID", "")) != expected_study:
                return Outcome(
                    item.name,
                    Status.REJECTED,
                    f"{label}: belongs to study {original_study or '(none)'}, not to study "
                    f"{expected_study} named in the request URL",
                    FAILURE_STUDY_MISMATCH,
                )
            attributes = index_attributes(deidentified)
        except DeidentificationError as exc:
            return Outcome(item.name, Status.REJECTED, f"{label}: {exc}", FAILURE_CANNOT_UNDERSTAND)
        except Exception as exc:  # noqa: BLE001 - hostile input can fail anywhere in pydicom
            return Outcome(
                item.name,
                Status.REJECTED,
                f"{label}: cannot be read as a DICOM dataset ({failure(exc)})",
                FAILURE_CANNOT_UNDERSTAND,
            )
        refusal, held = subjects.verdict(result.patient_pseudonym)
        if refusal:
            return Outcome(item.name, Status.REJECTED, f"{label}: {refusal}", FAILURE_PROCESSING)
        quarantines = [*done.quarantines, *([held] if held else [])]
        checksum = hashlib.sha256()
        for part in done.parts:
            checksum.update(part)
        sha256 = checksum.hexdigest()
        record = InstanceRecord(
            project_id=project.id,
            study_instance_uid=str(deidentified.StudyInstanceUID),
            series_instance_uid=str(deidentified.SeriesInstanceUID),
            sop_instance_uid=str(deidentified.SOPInstanceUID),
            sop_class_uid=str(deidentified.SOPClassUID),
            transfer_syntax_uid=str(deidentified.file_meta.TransferSyntaxUID),
            blob_key=_blob_key(
                project, str(deidentified.StudyInstanceUID), sha256, quarantined=bool(quarantines)
            ),
            size_bytes=sum(map(len, done.parts)),
            sha256=sha256,
            attributes=attributes,
            received_at=received_at,
            source=source,
            dose_rows=() if quarantines else self._dose.rows(deidentified, lambda: done.blob),
            dw_cm=None if quarantines else water_equivalent_diameter(deidentified),
        )
        # Only the findings are kept at rest: a sender's file name may carry identity.
        reason = "; ".join(quarantines) if quarantines else None
        digest = setup.sealer.digest(identifiers) if setup.sealer and identifiers else None
        return _Prepared(
            item.name,
            done.parts,
            sha256,
            record,
            reason,
            result.patient_pseudonym,
            identifiers,
            digest,
        )

    def _commit(
        self, prepared: Sequence[tuple[int, _Prepared]], project: Project
    ) -> list[tuple[int, Outcome]]:
        results: list[tuple[int, Outcome]] = []
        to_store: list[tuple[int, _Prepared]] = []
        to_quarantine: list[tuple[int, _Prepared]] = []
        known_copies: list[_Prepared] = []
        seen: dict[str, str] = {}
        existing = self.index.get_instances(
            project.id,
            [p.record.sop_instance_uid for _, p in prepared if not p.quarantine_reason],
        )
        for position, p in prepared:
            uid = p.record.sop_instance_uid
            if p.quarantine_reason:
                to_quarantine.append((position, p))
                continue
            known = existing.get(uid)
            known_sha = known.sha256 if known else seen.get(uid)
            if known_sha is None:
                seen[uid] = p.sha256
                to_store.append((position, p))
            else:
                results.append((position, _against_stored(p, known_sha)))
                known_copies.append(p)
        if known_copies:
            # Re-sent instances: stored before the vault existed, their identifiers may
            # be missing from it.
            project = self._with_vault(project, known_copies, self._add_vault_entries)
        if not (to_store or to_quarantine):
            return results
        offered = [*to_store, *to_quarantine]
        written = [p for _, p in offered]
        keys = [p.record.blob_key for p in written]
        # If anything below fails (a full disk included), the journal entry stays: recovery
        # at the next start removes what no row refers to, when no other ingest can be
        # writing the same content-addressed key (removed now, a blob could be that of a
        # concurrent upload of the same object, written and about to be indexed).
        try:
            entry = self.journal.begin(keys)
        except OSError as exc:
            return results + _not_written(offered, exc)
        try:
            self.store.put_many([(p.record.blob_key, p.parts) for p in written])
        except OSError as exc:
            return results + _not_written(offered, exc)
        unwritten = False
        try:
            indexed, project = self._index(to_store, project)
        except Exception as exc:
            if not out_of_space(exc):
                raise
            indexed, unwritten = _not_written(to_store, exc), True
        not_held: list[str] = []
        already_held: set[str] = set()
        for position, p in to_quarantine:

            def hold(vault: VaultWrite | None, p: _Prepared = p) -> None:
                if not self.index.add_quarantine(
                    p.record.project_id,
                    reason=p.quarantine_reason or "",
                    source=p.record.source,
                    blob_key=p.record.blob_key,
                    sop_instance_uid=p.record.sop_instance_uid,
                    pseudonym=p.pseudonym,
                    vault=vault,
                ):
                    already_held.add(p.record.blob_key)

            try:
                project = self._with_vault(project, [p], hold)
            except SubjectWithdrawn as exc:
                not_held.append(p.record.blob_key)
                results.append((position, _withdrawn(p, exc)))
                continue
            except Exception as exc:
                if not out_of_space(exc):
                    raise
                results.extend(_not_written([(position, p)], exc))
                unwritten = True
                continue
            results.append(
                (
                    position,
                    _outcome(
                        p,
                        Status.QUARANTINED,
                        f"{p.name}: "
                        + (
                            "already quarantined for review"
                            if p.record.blob_key in already_held
                            else "quarantined for review"
                        )
                        + f": {p.quarantine_reason}",
                        WARNING_QUARANTINED,
                    ),
                )
            )
        not_stored = [
            p.record.blob_key
            for (_, p), (_, outcome) in zip(to_store, indexed, strict=True)
            if outcome.status != Status.STORED
        ]
        if not unwritten:
            self._discard_unreferenced(not_stored + not_held)
            self.journal.end(entry)
        if self.graphs is not None:
            self.graphs.record(
                project,
                [
                    p.record
                    for (_, p), (_, outcome) in zip(to_store, indexed, strict=True)
                    if outcome.status == Status.STORED
                ],
            )
        return results + indexed

    def _index(
        self, to_store: list[tuple[int, _Prepared]], project: Project
    ) -> tuple[list[tuple[int, Outcome]], Project]:
        """Index the batch in one transaction; if that fails on one instance, one by one.

        Returns the outcomes and the project as last read (its vault key may have changed).
        """
        if not to_store:
            return [], project
        try:
            project = self._with_vault(
                project,
                [p for _, p in to_store],
                lambda vault: self.index.add_instances([p.record for _, p in to_store], vault),
            )
            return [(position, _outcome(p, Status.STORED)) for position, p in to_store], project
        except (DuplicateInstance, HierarchyConflict, SubjectWithdrawn):
            pass
        except Exception as exc:
            if not unstorable_value(exc):
                raise  # the database's fault (unreachable, full): the whole batch fails
        results = []
        for position, p in to_store:
            uid = p.record.sop_instance_uid
            try:
                project = self._with_vault(
                    project,
                    [p],
                    lambda vault, p=p: self.index.add_instances([p.record], vault),
                )
                results.append((position, _outcome(p, Status.STORED)))
            except DuplicateInstance:
                # A concurrent request stored the same SOP Instance UID first.
                known = self.index.get_instances(project.id, [uid])[uid]
                results.append((position, _against_stored(p, known.sha256)))
            except SubjectWithdrawn as exc:
                results.append((position, _withdrawn(p, exc)))
            except HierarchyConflict as exc:
                results.append(
                    (
                        position,
                        _outcome(p, Status.REJECTED, f"{p.name}: {exc}", FAILURE_STUDY_MISMATCH),
                    )
                )
            except Exception as exc:
                if not unstorable_value(exc):
                    raise
                results.append((position, _unindexable(p, exc)))
        return results, project

    def _with_vault(
        self,
        project: Project,
        items: Sequence[_Prepared],
        write: Callable[[VaultWrite | None], None],
    ) -> Project:
        """Run `write` with the vault entries of `items` that are not recorded yet.

        When the vault key changed since the batch was prepared (vault init or rotation),
        the project is read again and the entries sealed to the new key. Returns the
        project as last read.
        """
        for _ in range(_VAULT_ATTEMPTS):
            setup = self._setup(project)
            vault = self._vault_write(project, setup, items)
            try:
                write(vault)
            except VaultKeyChanged:
                fresh = self.index.get_project(project.name)
                if fresh is None:
                    raise UnknownProject(f"project {project.name!r} no longer exists") from None
                project = fresh
                continue
            if vault is not None:
                recorded = self._recorded.setdefault(project.id, set())
                if len(recorded) > _RECORDED_DIGESTS:
                    recorded.clear()
                recorded.update(entry.digest for entry in vault.entries)
            return project
        raise VaultKeyChanged(project.id, None, project.vault_key_id)

    def _add_vault_entries(self, vault: VaultWrite | None) -> None:
        if vault is not None and vault.entries:
            self.index.add_vault_entries(vault)

    def _vault_write(
        self, project: Project, setup: _Setup, items: Sequence[_Prepared]
    ) -> VaultWrite | None:
        if setup.sealer is None:
            return None
        recorded = self._recorded.get(project.id, set())
        entries: dict[bytes, VaultEntry] = {}
        for p in items:
            if p.identifiers is None:
                continue  # prepared before the project had a vault
            digest = p.digest or setup.sealer.digest(p.identifiers)
            if digest not in recorded and digest not in entries:
                entries[digest] = setup.sealer.entry(p.identifiers, p.pseudonym, digest)
        return VaultWrite(project.id, setup.sealer.key_id, list(entries.values()))

    def release(
        self,
        project: Project,
        quarantine_id: int,
        *,
        actor: str,
        source: str,
        audit: Callable[..., PendingAudit],
    ) -> Outcome:
        """Move a quarantined object into the archive after review: its blob is stored under
        the archive's key and indexed, the quarantine row dropped, in one transaction. A
        subject without the consent the project requires, or who withdrew, stays out."""
        row = next(
            (r for r in self.index.list_quarantine(project.id) if r["id"] == quarantine_id), None
        )
        name = f"quarantined object {quarantine_id}"
        if row is None:
            return Outcome(name, Status.REJECTED, f"{name}: not in the project's quarantine")
        try:
            blob = self.store.get(row["blob_key"])
        except FileNotFoundError:
            return Outcome(
                name,
                Status.REJECTED,
                f"{name}: not released: its file {row['blob_key']} is missing from the blob "
                "store (`radbank verify` lists what else is)",
            )
        if hashlib.sha256(blob).hexdigest() != content_sha256(row["blob_key"]):
            return Outcome(
                name,
                Status.REJECTED,
                f"{name}: not released: its file {row['blob_key']} does not match its checksum "
                "(changed on disk since it was stored; `radbank verify` lists what else is)",
            )
        dataset = read_instance(name, blob)
        pseudonym = str(dataset.get("PatientID", "") or "")
        refusal, held = _SubjectCheck(self.index, project).verdict(pseudonym)
        if refusal or held:
            return Outcome(
                name, Status.QUARANTINED, f"{name}: stays in quarantine: {refusal or held}"
            )
        sha256 = hashlib.sha256(blob).hexdigest()
        study = str(dataset.StudyInstanceUID)
        record = InstanceRecord(
            project_id=project.id,
            study_instance_uid=study,
            series_instance_uid=str(dataset.SeriesInstanceUID),
            sop_instance_uid=str(dataset.SOPInstanceUID),
            sop_class_uid=str(dataset.SOPClassUID),
            transfer_syntax_uid=str(dataset.file_meta.TransferSyntaxUID),
            blob_key=_blob_key(project, study, sha256, quarantined=False),
            size_bytes=len(blob),
            sha256=sha256,
            attributes=index_attributes(dataset),
            received_at=row["received_at"],
            source=row["source"],
            dose_rows=dose_rows(dataset, blob),
            dw_cm=water_equivalent_diameter(dataset),
        )
        entry = self.journal.begin([record.blob_key])
        self.store.put_many([(record.blob_key, blob)])
        outcome_uids = dict(
            sop_class_uid=record.sop_class_uid,
            sop_instance_uid=record.sop_instance_uid,
            study_instance_uid=record.study_instance_uid,
            series_instance_uid=record.series_instance_uid,
        )
        try:
            self.index.release_quarantine(
                quarantine_id,
                record,
                audit(
                    "quarantine.release",
                    actor=actor,
                    resource=f"project:{project.name}",
                    project=project.name,
                    source=source,
                    detail={
                        "quarantine": quarantine_id,
                        "uids": {"SOPInstanceUID": record.sop_instance_uid},
                    },
                ),
            )
        except (DuplicateInstance, HierarchyConflict, SubjectWithdrawn, LookupError) as exc:
            self._discard_unreferenced([record.blob_key])
            self.journal.end(entry)
            return Outcome(name, Status.REJECTED, f"{name}: not released: {exc}", **outcome_uids)
        # Rows held before re-sent objects were held once may share the file.
        self._discard_unreferenced([row["blob_key"]])
        self.journal.end(entry)
        if self.graphs is not None:
            self.graphs.record(project, [record])
        return Outcome(name, Status.STORED, "released from quarantine", **outcome_uids)

    def _discard_unreferenced(self, keys: Iterable[str]) -> None:
        """Remove blobs written for instances refused after all (conflicts, hierarchy errors).

        Such a blob holds content that no committed or concurrent instance shares: equal
        content would have been a duplicate, which keeps its blob."""
        for key in keys:
            if not self.index.blob_key_exists(key):
                self.store.delete(key)


def _against_stored(p: _Prepared, stored_sha256: str) -> Outcome:
    """Outcome of an instance whose SOP Instance UID is already stored (or earlier in the batch)."""
    if stored_sha256 == p.sha256:
        return _outcome(p, Status.DUPLICATE, "already stored with identical content")
    return _outcome(
        p,
        Status.CONFLICT,
        f"{p.name}: an instance with SOP Instance UID {p.record.sop_instance_uid} is "
        "already stored with different content; it was not replaced",
        FAILURE_DUPLICATE_CONFLICT,
    )


def _outcome(p: _Prepared, status: Status, reason: str = "", failure: int | None = None) -> Outcome:
    r = p.record
    return Outcome(
        p.name,
        status,
        reason,
        failure,
        r.sop_class_uid,
        r.sop_instance_uid,
        r.study_instance_uid,
        r.series_instance_uid,
    )


class _SubjectCheck:
    """Whether a batch's subjects may be stored, by the project's withdrawals and, where
    the project requires consent, its consent records; one lookup per subject and batch."""

    def __init__(self, index: Index, project: Project) -> None:
        self.index = index
        self.project = project
        self._verdicts: dict[str, tuple[str | None, str | None]] = {}

    def verdict(self, pseudonym: str) -> tuple[str | None, str | None]:
        """(reason to refuse, reason to quarantine), each None when there is none."""
        if pseudonym not in self._verdicts:
            self._verdicts[pseudonym] = self._decide(pseudonym)
        return self._verdicts[pseudonym]

    def _decide(self, pseudonym: str) -> tuple[str | None, str | None]:
        withdrawn = self.index.withdrawals(self.project.id, [pseudonym]).get(pseudonym)
        if withdrawn is not None:
            return (
                f"subject {pseudonym} withdrew consent from project {self.project.name!r} on "
                f"{withdrawn.withdrawn_at:%Y-%m-%d}; their data is not accepted",
                None,
            )
        if not self.project.consent_required:
            return None, None
        consent = self.index.current_consents(self.project.id, [pseudonym]).get(pseudonym)
        if consent is None or consent.status != "given":
            return None, (
                f"no valid consent recorded for subject {pseudonym} in project "
                f"{self.project.name!r}, which requires one; record the consent, then release "
                "the subject's objects (radbank project release --subject)"
            )
        return None, None


def _not_written(
    items: Sequence[tuple[int, _Prepared]], exc: BaseException
) -> list[tuple[int, Outcome]]:
    """Outcomes of instances the node could not write (a full disk, a failing device):
    refused, nothing of them kept; the sender may send them again later."""
    log.error("ingest: %d object(s) could not be written: %s", len(items), exc)
    if isinstance(exc, OSError):
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        cause = exc.strerror or type(exc).__name__  # the path stays in the server's log
    else:
        full, cause = True, "the index database has no space left"
    failure = FAILURE_OUT_OF_RESOURCES if full else FAILURE_PROCESSING
    return [
        (
            position,
            _outcome(
                p,
                Status.REJECTED,
                f"{p.name}: not stored: the node could not write it ({cause}); nothing of "
                "it was kept, send it again once the node's operator has made room"
                if full
                else f"{p.name}: not stored: the node could not write it ({cause}); nothing "
                "of it was kept",
                failure,
            ),
        )
        for position, p in items
    ]


def _unindexable(p: _Prepared, exc: BaseException) -> Outcome:
    """The outcome of an instance the index cannot hold a value of; the rest of its batch
    is stored. The error is logged with its traceback: the bounds on column values should
    have kept it out."""
    log.exception("ingest: %s could not be indexed", p.record.sop_instance_uid)
    cause = getattr(exc, "orig", None) or exc
    detail = (str(cause).splitlines() or [""])[0][:200]
    return _outcome(
        p,
        Status.REJECTED,
        f"{p.name}: an attribute value cannot be stored in the index "
        f"({type(cause).__name__}: {detail}); correct the object at its source and send it again",
        FAILURE_CANNOT_UNDERSTAND,  # a value no valid object has: malformed, as for the rules
    )


def _withdrawn(p: _Prepared, exc: SubjectWithdrawn) -> Outcome:
    return _outcome(p, Status.REJECTED, f"{p.name}: {exc}", FAILURE_PROCESSING)


def _blob_key(project: Project, study_instance_uid: str, sha256: str, *, quarantined: bool) -> str:
    """Content-addressed, grouped by study: a study's files share a directory, so a batch
    needs one directory flush, and re-sent identical content maps to the same key."""
    area = "quarantine" if quarantined else "studies"
    return f"{project.id}/{area}/{study_instance_uid}/{sha256}.dcm"


def content_sha256(blob_key: str) -> str:
    """The SHA-256 a blob's content must have, from its content-addressed key (`_blob_key`);
    what quarantined objects are checked against, as they have no checksum column."""
    return blob_key.rsplit("/", 1)[-1].removesuffix(".dcm")


def read_file(path: Path) -> Item:
    return Item(str(path), path.read_bytes())
