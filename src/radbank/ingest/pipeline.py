"""parse -> de-identify -> quality checks -> store blob (durable) -> index -> outcome.

Identified data exists only in memory here: the first byte written anywhere is the
de-identified object. A batch (one STOW-RS request, one folder chunk) is written blob by
blob and then indexed in one transaction, so an instance is acknowledged only once both
its blob and its row are durable.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radbank.dicom import quality
from radbank.dicom.dataset_json import index_attributes
from radbank.dicom.deid import DeidentificationError, Profile, deidentify
from radbank.dicom.encode import part10_bytes
from radbank.governance.keys import KeyRing
from radbank.governance.policy import Principal
from radbank.index import DuplicateInstance, HierarchyConflict, Index, InstanceRecord, Project
from radbank.ingest.journal import Journal
from radbank.store import BlobStore

# DICOM status codes used as FailureReason (0008,1197) in STOW-RS responses (PS3.4 Annex B).
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE_CONFLICT = 0x0111
FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_SOP_CLASS_NOT_SUPPORTED = 0x0122
FAILURE_STUDY_MISMATCH = 0xA900
WARNING_QUARANTINED = 0xB000


class Status(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Item:
    """One object offered for ingest: its raw bytes and a name that identifies it to the sender."""

    name: str
    data: bytes


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


@dataclass
class _Prepared:
    name: str  # the identified input is not kept once it is de-identified
    blob: bytes
    sha256: str
    record: InstanceRecord
    quarantine_reason: str | None


@dataclass
class PreparedBatch:
    """De-identified instances of one batch, ready to be stored, and the early outcomes."""

    project: Project
    outcomes: list[Outcome | None] = field(default_factory=list)
    prepared: list[tuple[int, _Prepared]] = field(default_factory=list)


class Pipeline:
    def __init__(self, store: BlobStore, index: Index, keys: KeyRing, journal: Journal) -> None:
        self.store = store
        self.index = index
        self.keys = keys
        self.journal = journal

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

        study_instance_uid (study-scoped STOW-RS) is the original, identified UID the sender
        used; instances of another study are rejected.
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
        key = self.keys.project_key(project.key_salt)
        profile = Profile.named(project.profile)
        received_at = datetime.now(UTC)
        batch = PreparedBatch(project)
        for position, item in enumerate(items):
            result = self._prepare(
                item, project, profile, key, source, received_at, study_instance_uid
            )
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

    def _prepare(
        self,
        item: Item,
        project: Project,
        profile: Profile,
        key: bytes,
        source: str,
        received_at: datetime,
        expected_study: str | None,
    ) -> Outcome | _Prepared:
        try:
            dataset = _parse(item)
        except _Rejected as exc:
            return Outcome(item.name, Status.REJECTED, str(exc), FAILURE_CANNOT_UNDERSTAND)
        original_sop = str(dataset.get("SOPInstanceUID", "") or "")
        label = f"{item.name} (SOP Instance UID {original_sop or 'missing'})"
        original_study = str(dataset.get("StudyInstanceUID", "") or "")
        if expected_study and original_study != expected_study:
            return Outcome(
                item.name,
                Status.REJECTED,
                f"{label}: belongs to study {original_study or '(none)'}, not to study "
                f"{expected_study} named in the request URL",
                FAILURE_STUDY_MISMATCH,
            )
        try:
            result = deidentify(dataset, profile, key)
            deidentified = result.dataset
            findings = quality.check(deidentified)
            rejects = [f for f in findings if f.severity == quality.Severity.REJECT]
            if rejects:
                reason = "; ".join(f.message for f in rejects)
                return Outcome(
                    item.name, Status.REJECTED, f"{label}: {reason}", FAILURE_CANNOT_UNDERSTAND
                )
            blob = part10_bytes(deidentified)
            attributes = index_attributes(deidentified)
        except DeidentificationError as exc:
            return Outcome(item.name, Status.REJECTED, f"{label}: {exc}", FAILURE_CANNOT_UNDERSTAND)
        except Exception as exc:  # noqa: BLE001 - hostile input can fail anywhere in pydicom
            return Outcome(
                item.name,
                Status.REJECTED,
                f"{label}: cannot be read as a DICOM dataset ({type(exc).__name__}: {exc})",
                FAILURE_CANNOT_UNDERSTAND,
            )
        quarantines = [f for f in findings if f.severity == quality.Severity.QUARANTINE]
        sha256 = hashlib.sha256(blob).hexdigest()
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
            size_bytes=len(blob),
            sha256=sha256,
            attributes=attributes,
            received_at=received_at,
            source=source,
        )
        # Only the findings are kept at rest: a sender's file name may carry identity.
        reason = "; ".join(f.message for f in quarantines) if quarantines else None
        return _Prepared(item.name, blob, sha256, record, reason)

    def _commit(
        self, prepared: Sequence[tuple[int, _Prepared]], project: Project
    ) -> list[tuple[int, Outcome]]:
        results: list[tuple[int, Outcome]] = []
        to_store: list[tuple[int, _Prepared]] = []
        to_quarantine: list[tuple[int, _Prepared]] = []
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
        if not (to_store or to_quarantine):
            return results
        written = [p for _, p in (*to_store, *to_quarantine)]
        keys = [p.record.blob_key for p in written]
        # If anything below fails, the journal entry stays: recovery at the next start
        # removes what no row refers to, when no other ingest can be writing the same
        # content-addressed key.
        entry = self.journal.begin(keys)
        self.store.put_many([(p.record.blob_key, p.blob) for p in written])
        indexed = self._index(to_store, project)
        for position, p in to_quarantine:
            self.index.add_quarantine(
                project.id,
                reason=p.quarantine_reason or "",
                source=p.record.source,
                blob_key=p.record.blob_key,
                sop_instance_uid=p.record.sop_instance_uid,
            )
            results.append(
                (
                    position,
                    _outcome(
                        p,
                        Status.QUARANTINED,
                        f"{p.name}: quarantined for review: {p.quarantine_reason}",
                        WARNING_QUARANTINED,
                    ),
                )
            )
        not_stored = [
            p.record.blob_key
            for (_, p), (_, outcome) in zip(to_store, indexed, strict=True)
            if outcome.status != Status.STORED
        ]
        self._discard_unreferenced(not_stored)
        self.journal.end(entry)
        return results + indexed

    def _index(
        self, to_store: list[tuple[int, _Prepared]], project: Project
    ) -> list[tuple[int, Outcome]]:
        """Index the batch in one transaction; if that fails on one instance, one by one."""
        if not to_store:
            return []
        try:
            self.index.add_instances([p.record for _, p in to_store])
            return [(position, _outcome(p, Status.STORED)) for position, p in to_store]
        except (DuplicateInstance, HierarchyConflict):
            pass
        results = []
        for position, p in to_store:
            uid = p.record.sop_instance_uid
            try:
                self.index.add_instances([p.record])
                results.append((position, _outcome(p, Status.STORED)))
            except DuplicateInstance:
                # A concurrent request stored the same SOP Instance UID first.
                known = self.index.get_instances(project.id, [uid])[uid]
                results.append((position, _against_stored(p, known.sha256)))
            except HierarchyConflict as exc:
                results.append(
                    (
                        position,
                        _outcome(p, Status.REJECTED, f"{p.name}: {exc}", FAILURE_STUDY_MISMATCH),
                    )
                )
        return results

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


class _Rejected(ValueError):
    pass


def _parse(item: Item) -> pydicom.Dataset:
    data = item.data
    if len(data) < 132:
        raise _Rejected(f"{item.name}: only {len(data)} bytes, too short to be a DICOM file")
    try:
        if data[128:132] == b"DICM":
            dataset = pydicom.dcmread(io.BytesIO(data))
        else:
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
            if "SOPInstanceUID" not in dataset or "SOPClassUID" not in dataset:
                raise _Rejected(
                    f"{item.name}: not a DICOM file (no 'DICM' prefix at byte 128 and no "
                    "SOP Class/Instance UID in the data set)"
                )
        _check_complete(item, dataset)
        syntax = dataset.file_meta.get("TransferSyntaxUID")
        if syntax is not None and not UID(str(syntax)).is_transfer_syntax:
            raise _Rejected(
                f"{item.name}: unknown transfer syntax {str(syntax)[:64]!r} in the file meta "
                "information; send the file as the modality or PACS wrote it"
            )
        if "TransferSyntaxUID" not in dataset.file_meta:
            # Files without meta information: record the encoding they were read in.
            implicit, little = dataset.original_encoding
            dataset.file_meta.TransferSyntaxUID = (
                ImplicitVRLittleEndian
                if implicit
                else ExplicitVRLittleEndian
                if little
                else ExplicitVRBigEndian
            )
    except _Rejected:
        raise
    except (InvalidDicomError, Exception) as exc:  # noqa: BLE001 - hostile input
        raise _Rejected(
            f"{item.name}: not a readable DICOM file ({type(exc).__name__}: {exc})"
        ) from exc
    return dataset


def _check_complete(item: Item, dataset: pydicom.Dataset) -> None:
    """pydicom reads a truncated file without complaint; storing it would lose data silently."""
    for tag in dataset.keys():
        element = dataset.get_item(tag)
        if (
            isinstance(element, RawDataElement)
            and element.length != 0xFFFFFFFF
            and element.value is not None
            and len(element.value) != element.length
        ):
            raise _Rejected(
                f"{item.name}: truncated: attribute ({tag.group:04X},{tag.element:04X}) declares "
                f"{element.length} bytes but the file ends after {len(element.value)}; "
                "send the complete file"
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


def _blob_key(project: Project, study_instance_uid: str, sha256: str, *, quarantined: bool) -> str:
    """Content-addressed, grouped by study: a study's files share a directory, so a batch
    needs one directory flush, and re-sent identical content maps to the same key."""
    area = "quarantine" if quarantined else "studies"
    return f"{project.id}/{area}/{study_instance_uid}/{sha256}.dcm"


def read_file(path: Path) -> Item:
    return Item(str(path), path.read_bytes())
