"""Non-DICOM submissions in the index: one row per accepted submission, one per subject part
of it (the part's pseudonymised N-Quads are a blob), and the lookups that check a
submission's references: which subjects and which studies, series, instances, irradiation
events and radiopharmaceutical administrations a project holds."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from radbank.index._audit import PendingAudit
from radbank.index._audit import append as append_audit
from radbank.index._engine import write_transaction
from radbank.index._rows import CHUNK, loaded_time, refuse_withdrawn, require_project, stored_time
from radbank.index._schema import (
    dose_events,
    instances,
    series,
    studies,
    submission_parts,
    submissions,
)


@dataclass(frozen=True)
class SubmissionPart:
    """One subject's share of a submission (pseudonym None: what concerns no subject)."""

    pseudonym: str | None
    blob_key: str
    sha256: str
    quads: int


@dataclass(frozen=True)
class SubmissionRecord:
    submission_id: str
    kind: str
    media_type: str
    name: str
    submitted_by: str
    submitted_at: datetime
    records: int
    removed_fields: tuple[str, ...] = ()
    parts: tuple[SubmissionPart, ...] = ()


class SubmissionExists(ValueError):
    """add_submission with an id the project already holds."""


class SubmissionMethods:
    _engine: sa.Engine

    def add_submission(
        self, project_id: int, record: SubmissionRecord, audit: PendingAudit | None = None
    ) -> None:
        """Index a submission and its parts in one transaction (their blobs are durable
        already). Raises SubjectWithdrawn for a part of a withdrawn subject, SubmissionExists."""
        with write_transaction(self._engine) as connection:
            require_project(connection, project_id)
            refuse_withdrawn(connection, project_id, {part.pseudonym for part in record.parts})
            taken = connection.scalar(
                sa.select(submissions.c.id).where(
                    submissions.c.project_id == project_id,
                    submissions.c.submission_id == record.submission_id,
                )
            )
            if taken is not None:
                raise SubmissionExists(f"submission {record.submission_id} exists already")
            pk = connection.execute(
                submissions.insert()
                .values(
                    project_id=project_id,
                    submission_id=record.submission_id,
                    kind=record.kind,
                    media_type=record.media_type,
                    name=record.name,
                    submitted_by=record.submitted_by,
                    submitted_at=stored_time(record.submitted_at),
                    records=record.records,
                    removed_fields=list(record.removed_fields),
                )
                .returning(submissions.c.id)
            ).scalar_one()
            if record.parts:
                connection.execute(
                    submission_parts.insert(),
                    [
                        {
                            "project_id": project_id,
                            "submission_pk": pk,
                            "pseudonym": part.pseudonym,
                            "blob_key": part.blob_key,
                            "sha256": part.sha256,
                            "quads": part.quads,
                        }
                        for part in record.parts
                    ],
                )
            if audit is not None:
                append_audit(connection, audit)

    def list_submissions(self, project_id: int) -> list[SubmissionRecord]:
        """The project's submissions, oldest first, with their parts that are left (a
        subject's parts go when the subject is erased)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(submissions)
                .where(submissions.c.project_id == project_id)
                .order_by(submissions.c.id)
            ).all()
            parts: dict[int, list[SubmissionPart]] = {row.id: [] for row in rows}
            for part in connection.execute(
                sa.select(submission_parts)
                .where(submission_parts.c.project_id == project_id)
                .order_by(submission_parts.c.id)
            ):
                parts.setdefault(part.submission_pk, []).append(_part(part))
        return [_submission(row, parts[row.id]) for row in rows]

    def get_submission(self, project_id: int, submission_id: str) -> SubmissionRecord | None:
        return next(
            (s for s in self.list_submissions(project_id) if s.submission_id == submission_id),
            None,
        )

    def iter_submission_parts(self, project_id: int) -> Iterator[SubmissionPart]:
        """Every part of every submission of the project (for rebuilding its graph)."""
        select = (
            sa.select(submission_parts)
            .where(submission_parts.c.project_id == project_id)
            .order_by(submission_parts.c.id)
        )
        with self._engine.connect() as connection:
            for row in connection.execution_options(yield_per=1000).execute(select):
                yield _part(row)

    def delete_submission(
        self, project_id: int, submission_id: str, audit: PendingAudit | None = None
    ) -> list[str] | None:
        """Delete a submission and its parts; returns the parts' blob keys (to delete after),
        None when the project holds no such submission."""
        with write_transaction(self._engine) as connection:
            pk = connection.scalar(
                sa.select(submissions.c.id).where(
                    submissions.c.project_id == project_id,
                    submissions.c.submission_id == submission_id,
                )
            )
            if pk is None:
                return None
            keys = list(
                connection.scalars(
                    sa.select(submission_parts.c.blob_key).where(
                        submission_parts.c.submission_pk == pk
                    )
                )
            )
            connection.execute(
                submission_parts.delete().where(submission_parts.c.submission_pk == pk)
            )
            connection.execute(submissions.delete().where(submissions.c.id == pk))
            if audit is not None:
                append_audit(connection, audit)
        return keys

    def held_subjects(self, project_id: int, pseudonyms: Collection[str]) -> set[str]:
        """The subjects among `pseudonyms` that have at least one study in the project."""
        found: set[str] = set()
        names = list(dict.fromkeys(pseudonyms))
        with self._engine.connect() as connection:
            for start in range(0, len(names), CHUNK):
                found.update(
                    connection.scalars(
                        sa.select(studies.c.patient_id)
                        .where(
                            studies.c.project_id == project_id,
                            studies.c.patient_id.in_(names[start : start + CHUNK]),
                        )
                        .distinct()
                    )
                )
        return found

    def held_objects(
        self, project_id: int, uids: Collection[str]
    ) -> dict[str, tuple[str, str | None]]:
        """Which of these (pseudonymised) UIDs the project holds, as what, and whose:
        uid -> (level, pseudonym), level one of study, series, instance, event (an
        irradiation event) or administration (a radiopharmaceutical administration)."""
        found: dict[str, tuple[str, str | None]] = {}
        wanted = list(dict.fromkeys(uids))
        with self._engine.connect() as connection:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                for level, select in _held_selects(project_id, chunk):
                    for uid, pseudonym, kind in connection.execute(select):
                        administration = level == "event" and kind == "NM"
                        found.setdefault(
                            uid, ("administration" if administration else level, pseudonym)
                        )
        return found


def _held_selects(project_id: int, uids: Sequence[str]) -> list[tuple[str, sa.Select]]:
    none = sa.literal(None, sa.String)
    return [
        (
            "study",
            sa.select(studies.c.study_instance_uid, studies.c.patient_id, none).where(
                studies.c.project_id == project_id, studies.c.study_instance_uid.in_(uids)
            ),
        ),
        (
            "series",
            sa.select(series.c.series_instance_uid, studies.c.patient_id, none)
            .join(studies, studies.c.id == series.c.study_pk)
            .where(series.c.project_id == project_id, series.c.series_instance_uid.in_(uids)),
        ),
        (
            "instance",
            sa.select(instances.c.sop_instance_uid, studies.c.patient_id, none)
            .join(studies, studies.c.id == instances.c.study_pk)
            .where(instances.c.project_id == project_id, instances.c.sop_instance_uid.in_(uids)),
        ),
        (
            "event",
            sa.select(
                dose_events.c.irradiation_event_uid, dose_events.c.pseudonym, dose_events.c.kind
            )
            .where(
                dose_events.c.project_id == project_id,
                dose_events.c.irradiation_event_uid.in_(uids),
            )
            .distinct(),
        ),
    ]


def subject_submission_blob_keys(
    connection: sa.Connection, project_id: int, pseudonym: str
) -> list[str]:
    return list(
        connection.scalars(
            sa.select(submission_parts.c.blob_key).where(
                submission_parts.c.project_id == project_id,
                submission_parts.c.pseudonym == pseudonym,
            )
        )
    )


def delete_subject_submissions(connection: sa.Connection, project_id: int, pseudonym: str) -> None:
    """Delete the subject's parts of submissions (the rest of each submission stays)."""
    connection.execute(
        submission_parts.delete().where(
            submission_parts.c.project_id == project_id,
            submission_parts.c.pseudonym == pseudonym,
        )
    )


def _part(row: sa.Row) -> SubmissionPart:
    return SubmissionPart(row.pseudonym, row.blob_key, row.sha256, row.quads)


def _submission(row: sa.Row, parts: list[SubmissionPart]) -> SubmissionRecord:
    return SubmissionRecord(
        submission_id=row.submission_id,
        kind=row.kind,
        media_type=row.media_type,
        name=row.name,
        submitted_by=row.submitted_by,
        submitted_at=loaded_time(row.submitted_at),
        records=row.records,
        removed_fields=tuple(row.removed_fields or ()),
        parts=tuple(parts),
    )
