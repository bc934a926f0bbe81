"""Consents, withdrawal tombstones, access requests and saved cohorts: the rows, the
deletion of every row of one subject (erasure after a withdrawal), and the Index methods
over them (ConsentMethods, mixed into Index)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from radbank.index._audit import PendingAudit
from radbank.index._audit import append as append_audit
from radbank.index._dose import delete_subject_dose
from radbank.index._engine import lock_subjects, write_transaction
from radbank.index._rows import (
    CHUNK,
    Cohort,
    cohort_of,
    loaded_time,
    optional_time,
    require_project,
    stored_time,
)
from radbank.index._schema import (
    access_requests,
    cohorts,
    consents,
    instances,
    project_members,
    projects,
    quarantine,
    series,
    studies,
    vault_entries,
    withdrawals,
)
from radbank.index._submissions import delete_subject_submissions, subject_submission_blob_keys


@dataclass(frozen=True)
class ConsentRecord:
    id: int
    pseudonym: str
    status: str
    """"given" or "withdrawn"."""
    scope: tuple[str, ...]
    """GA4GH DUO codes of the purposes consented to."""
    decided_on: date
    form_reference: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class Withdrawal:
    pseudonym: str
    withdrawn_at: datetime
    withdrawn_by: str
    erased_at: datetime | None


@dataclass(frozen=True)
class AccessRequest:
    id: int
    project: str
    requester: str
    purposes: tuple[str, ...]
    attestations: tuple[str, ...]
    description: str
    days: int
    cohort_id: int | None
    """The saved cohort asked for; None: the whole project."""
    status: str
    """"pending", "approved", "denied" or "withdrawn"."""
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    grant_expires_at: datetime | None


def consent_of(row: Mapping[str, Any]) -> ConsentRecord:
    return ConsentRecord(
        id=row["id"],
        pseudonym=row["pseudonym"],
        status=row["status"],
        scope=tuple(row["scope"]),
        decided_on=row["decided_on"],
        form_reference=row["form_reference"],
        recorded_by=row["recorded_by"],
        recorded_at=loaded_time(row["recorded_at"]),
    )


def withdrawal_of(row: Mapping[str, Any]) -> Withdrawal:
    return Withdrawal(
        pseudonym=row["pseudonym"],
        withdrawn_at=loaded_time(row["withdrawn_at"]),
        withdrawn_by=row["withdrawn_by"],
        erased_at=optional_time(row["erased_at"]),
    )


def access_request_of(row: Mapping[str, Any], project: str) -> AccessRequest:
    return AccessRequest(
        id=row["id"],
        project=project,
        requester=row["requester"],
        purposes=tuple(row["purposes"]),
        attestations=tuple(row["attestations"]),
        description=row["description"],
        days=row["days"],
        cohort_id=row["cohort_id"],
        status=row["status"],
        created_at=loaded_time(row["created_at"]),
        decided_by=row["decided_by"],
        decided_at=optional_time(row["decided_at"]),
        decision_note=row["decision_note"],
        grant_expires_at=optional_time(row["grant_expires_at"]),
    )


def current_consents(
    connection: sa.Connection, project_id: int, pseudonyms: Iterable[str] | None
) -> dict[str, ConsentRecord]:
    """The newest consent row per subject (of the given pseudonyms only)."""
    newest = (
        sa.select(sa.func.max(consents.c.id))
        .where(consents.c.project_id == project_id)
        .group_by(consents.c.pseudonym)
    )
    if pseudonyms is not None:
        newest = newest.where(consents.c.pseudonym.in_(list(pseudonyms)))
    rows = connection.execute(
        sa.select(consents).where(consents.c.id.in_(newest)).order_by(consents.c.pseudonym)
    )
    return {row.pseudonym: consent_of(row._mapping) for row in rows}


def subject_blob_keys(connection: sa.Connection, project_id: int, pseudonym: str) -> list[str]:
    """Blobs of the subject's instances, quarantined objects and parts of submissions."""
    keys = connection.scalars(
        sa.select(instances.c.blob_key)
        .join(studies, studies.c.id == instances.c.study_pk)
        .where(studies.c.project_id == project_id, studies.c.patient_id == pseudonym)
    ).all()
    keys += connection.scalars(
        sa.select(quarantine.c.blob_key).where(
            quarantine.c.project_id == project_id, quarantine.c.pseudonym == pseudonym
        )
    ).all()
    keys += subject_submission_blob_keys(connection, project_id, pseudonym)
    return list(keys)


def delete_subject_rows(connection: sa.Connection, project_id: int, pseudonym: str) -> int:
    """Delete every row of the subject, and their studies from saved cohorts; returns the
    number of instances deleted."""
    study_pks = sa.select(studies.c.id).where(
        studies.c.project_id == project_id, studies.c.patient_id == pseudonym
    )
    erased_studies = set(
        connection.scalars(
            sa.select(studies.c.study_instance_uid).where(
                studies.c.project_id == project_id, studies.c.patient_id == pseudonym
            )
        )
    )
    for cohort in connection.execute(
        sa.select(cohorts.c.id, cohorts.c.study_uids).where(cohorts.c.project_id == project_id)
    ):
        kept = [uid for uid in cohort.study_uids if uid not in erased_studies]
        if len(kept) != len(cohort.study_uids):
            connection.execute(
                cohorts.update().where(cohorts.c.id == cohort.id).values(study_uids=kept)
            )
    delete_subject_dose(connection, project_id, pseudonym)
    delete_subject_submissions(connection, project_id, pseudonym)
    deleted = connection.execute(
        instances.delete().where(instances.c.study_pk.in_(study_pks))
    ).rowcount
    connection.execute(series.delete().where(series.c.study_pk.in_(study_pks)))
    connection.execute(
        studies.delete().where(
            studies.c.project_id == project_id, studies.c.patient_id == pseudonym
        )
    )
    for table in (quarantine, vault_entries, consents):
        connection.execute(
            table.delete().where(table.c.project_id == project_id, table.c.pseudonym == pseudonym)
        )
    return deleted


def requests_select() -> sa.Select:
    return sa.select(access_requests).order_by(access_requests.c.id)


def withdrawals_select(project_id: int) -> sa.Select:
    return sa.select(withdrawals).where(withdrawals.c.project_id == project_id)


class ConsentMethods:
    """Index methods for consents, withdrawals and erasure, access requests and cohorts."""

    _engine: sa.Engine
    _dialect: str

    def add_consents(
        self,
        project_id: int,
        records: Sequence[Mapping[str, Any]],
        audit: PendingAudit | None = None,
    ) -> int:
        """Record consent decisions (pseudonym, status, scope, decided_on, form_reference,
        recorded_by), all in one transaction."""
        now = stored_time(datetime.now(UTC))
        with write_transaction(self._engine) as connection:
            require_project(connection, project_id)
            if records:
                connection.execute(
                    consents.insert(),
                    [
                        {**dict(record), "project_id": project_id, "recorded_at": now}
                        for record in records
                    ],
                )
            if audit is not None:
                append_audit(connection, audit)
        return len(records)

    def current_consents(
        self, project_id: int, pseudonyms: Iterable[str] | None = None
    ) -> dict[str, ConsentRecord]:
        """The newest consent decision per subject (of the given pseudonyms only)."""
        with self._engine.connect() as connection:
            return current_consents(
                connection, project_id, list(pseudonyms) if pseudonyms is not None else None
            )

    def withdrawals(
        self, project_id: int, pseudonyms: Iterable[str] | None = None
    ) -> dict[str, Withdrawal]:
        select = withdrawals_select(project_id)
        if pseudonyms is not None:
            select = select.where(withdrawals.c.pseudonym.in_(list(pseudonyms)))
        with self._engine.connect() as connection:
            return {
                row.pseudonym: withdrawal_of(row._mapping)
                for row in connection.execute(select.order_by(withdrawals.c.id))
            }

    def record_withdrawal(
        self, project_id: int, pseudonym: str, *, by: str, audit: PendingAudit | None = None
    ) -> Withdrawal:
        """The subject's tombstone (kept from the first withdrawal on); from now on uploads
        of the subject are refused."""
        with write_transaction(self._engine) as connection:
            require_project(connection, project_id)
            lock_subjects(connection, project_id, exclusive=True)
            row = connection.execute(
                withdrawals_select(project_id).where(withdrawals.c.pseudonym == pseudonym)
            ).one_or_none()
            if row is None:
                row = connection.execute(
                    withdrawals.insert()
                    .values(
                        project_id=project_id,
                        pseudonym=pseudonym,
                        withdrawn_at=stored_time(datetime.now(UTC)),
                        withdrawn_by=by,
                    )
                    .returning(*withdrawals.c)
                ).one()
                if audit is not None:
                    append_audit(connection, audit)
        return withdrawal_of(row._mapping)

    def subject_blob_keys(self, project_id: int, pseudonym: str) -> list[str]:
        with self._engine.connect() as connection:
            return subject_blob_keys(connection, project_id, pseudonym)

    def quarantine_without_pseudonym(self, project_id: int) -> list[tuple[int, str]]:
        """(id, blob_key) of quarantined objects stored before quarantine rows named their
        subject."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(quarantine.c.id, quarantine.c.blob_key).where(
                    quarantine.c.project_id == project_id, quarantine.c.pseudonym.is_(None)
                )
            )
            return [(row.id, row.blob_key) for row in rows]

    def set_quarantine_pseudonym(self, quarantine_id: int, pseudonym: str) -> None:
        with write_transaction(self._engine) as connection:
            connection.execute(
                quarantine.update()
                .where(quarantine.c.id == quarantine_id)
                .values(pseudonym=pseudonym)
            )

    def erase_subject(
        self, project_id: int, pseudonym: str, audit: PendingAudit | None = None
    ) -> int:
        """Delete every row of the subject (instances, series, studies, quarantine, vault
        entries, consents) and mark the withdrawal erased; returns the instances deleted."""
        with write_transaction(self._engine) as connection:
            deleted = delete_subject_rows(connection, project_id, pseudonym)
            connection.execute(
                withdrawals.update()
                .where(withdrawals.c.project_id == project_id, withdrawals.c.pseudonym == pseudonym)
                .values(erased_at=stored_time(datetime.now(UTC)))
            )
            if audit is not None:
                append_audit(connection, audit)
        return deleted

    def purge_deleted(self) -> None:
        """Push deleted rows out of the files: SQLite's write-ahead log is checkpointed and
        truncated (secure_delete zeroes the pages); PostgreSQL vacuums the tables."""
        if self._dialect == "sqlite":
            # A reader holding an old snapshot makes the checkpoint stop short ("busy"):
            # try again while readers finish.
            for _ in range(50):
                with self._engine.connect() as connection:
                    busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
                if not busy:
                    return
                time.sleep(0.1)
            raise RuntimeError(
                "the SQLite write-ahead log could not be truncated after an erasure (readers "
                "kept it busy for 5 s); the next start or erasure truncates it"
            )
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(
                "VACUUM studies, series, instances, quarantine, vault_entries, consents, cohorts, "
                "submission_parts"
            )

    # Access requests

    def add_access_request(
        self,
        project_id: int,
        *,
        requester: str,
        purposes: Sequence[str],
        attestations: Sequence[str],
        description: str,
        days: int,
        cohort_id: int | None = None,
        audit: PendingAudit | None = None,
    ) -> AccessRequest:
        with write_transaction(self._engine) as connection:
            name = require_project(connection, project_id)
            row = connection.execute(
                access_requests.insert()
                .values(
                    project_id=project_id,
                    requester=requester,
                    purposes=list(purposes),
                    attestations=list(attestations),
                    description=description,
                    days=days,
                    cohort_id=cohort_id,
                    status="pending",
                    created_at=stored_time(datetime.now(UTC)),
                )
                .returning(*access_requests.c)
            ).one()
            if audit is not None:
                append_audit(connection, audit)
        return access_request_of(row._mapping, name)

    def access_requests(
        self, project_id: int | None = None, requester: str | None = None
    ) -> list[AccessRequest]:
        select = sa.select(access_requests, projects.c.name.label("project_name")).join(
            projects, projects.c.id == access_requests.c.project_id
        )
        if project_id is not None:
            select = select.where(access_requests.c.project_id == project_id)
        if requester is not None:
            select = select.where(access_requests.c.requester == requester)
        with self._engine.connect() as connection:
            return [
                access_request_of(row._mapping, row.project_name)
                for row in connection.execute(select.order_by(access_requests.c.id))
            ]

    def decide_access_request(
        self,
        request_id: int,
        *,
        status: str,
        by: str,
        note: str,
        grant_user_id: int | None = None,
        grant_expires_at: datetime | None = None,
        audit: PendingAudit | None = None,
    ) -> AccessRequest | None:
        """Decide a pending request (None when there is no pending request of that id); an
        approval gives grant_user_id the researcher role until grant_expires_at, in the same
        transaction."""
        now = stored_time(datetime.now(UTC))
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                access_requests.update()
                .where(access_requests.c.id == request_id, access_requests.c.status == "pending")
                .values(
                    status=status,
                    decided_by=by,
                    decided_at=now,
                    decision_note=note,
                    grant_expires_at=(stored_time(grant_expires_at) if grant_expires_at else None),
                )
                .returning(*access_requests.c)
            ).one_or_none()
            if row is None:
                return None
            if grant_user_id is not None:
                connection.execute(
                    project_members.delete().where(
                        project_members.c.project_id == row.project_id,
                        project_members.c.user_id == grant_user_id,
                        project_members.c.role == "researcher",
                    )
                )
                connection.execute(
                    project_members.insert().values(
                        project_id=row.project_id,
                        user_id=grant_user_id,
                        role="researcher",
                        granted_by=by,
                        granted_at=now,
                        expires_at=stored_time(grant_expires_at) if grant_expires_at else None,
                        cohort_id=row.cohort_id,
                        access_request_id=row.id,
                    )
                )
            if audit is not None:
                append_audit(connection, audit)
            name = connection.scalar(
                sa.select(projects.c.name).where(projects.c.id == row.project_id)
            )
        return access_request_of(row._mapping, name)

    def add_cohort(
        self,
        project_id: int,
        *,
        name: str,
        description: str,
        study_uids: Sequence[str],
        created_by: str,
        audit: PendingAudit | None = None,
    ) -> Cohort:
        """Save a named set of the project's studies; ValueError names the studies it does
        not hold, or a name taken."""
        wanted = sorted(set(study_uids))
        with write_transaction(self._engine) as connection:
            require_project(connection, project_id)
            held = set()
            for start in range(0, len(wanted), CHUNK):
                held.update(
                    connection.scalars(
                        sa.select(studies.c.study_instance_uid).where(
                            studies.c.project_id == project_id,
                            studies.c.study_instance_uid.in_(wanted[start : start + CHUNK]),
                        )
                    )
                )
            missing = [uid for uid in wanted if uid not in held]
            if missing:
                raise ValueError(
                    f"the project holds no study {', '.join(missing[:5])}"
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                )
            try:
                with connection.begin_nested():
                    row = connection.execute(
                        cohorts.insert()
                        .values(
                            project_id=project_id,
                            name=name,
                            description=description,
                            study_uids=wanted,
                            created_by=created_by,
                            created_at=stored_time(datetime.now(UTC)),
                        )
                        .returning(*cohorts.c)
                    ).one()
            except sa.exc.IntegrityError:
                raise ValueError(f"the project has a cohort named {name!r} already") from None
            if audit is not None:
                append_audit(connection, audit)
        return cohort_of(row._mapping)

    def cohorts(self, project_id: int) -> list[Cohort]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(cohorts).where(cohorts.c.project_id == project_id).order_by(cohorts.c.id)
            )
            return [cohort_of(row._mapping) for row in rows]
