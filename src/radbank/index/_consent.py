"""Rows of consents, withdrawal tombstones and access requests, and the deletion of every
row of one subject (erasure after a withdrawal)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from radbank.index._identity import time_of
from radbank.index._schema import (
    access_requests,
    cohorts,
    consents,
    instances,
    quarantine,
    series,
    studies,
    vault_entries,
    withdrawals,
)


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


def consent(row: Mapping[str, Any]) -> ConsentRecord:
    return ConsentRecord(
        id=row["id"],
        pseudonym=row["pseudonym"],
        status=row["status"],
        scope=tuple(row["scope"]),
        decided_on=row["decided_on"],
        form_reference=row["form_reference"],
        recorded_by=row["recorded_by"],
        recorded_at=time_of(row["recorded_at"]),  # type: ignore[arg-type]
    )


def withdrawal(row: Mapping[str, Any]) -> Withdrawal:
    return Withdrawal(
        pseudonym=row["pseudonym"],
        withdrawn_at=time_of(row["withdrawn_at"]),  # type: ignore[arg-type]
        withdrawn_by=row["withdrawn_by"],
        erased_at=time_of(row["erased_at"]),
    )


def access_request(row: Mapping[str, Any], project: str) -> AccessRequest:
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
        created_at=time_of(row["created_at"]),  # type: ignore[arg-type]
        decided_by=row["decided_by"],
        decided_at=time_of(row["decided_at"]),
        decision_note=row["decision_note"],
        grant_expires_at=time_of(row["grant_expires_at"]),
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
    return {row.pseudonym: consent(row._mapping) for row in rows}


def subject_blob_keys(connection: sa.Connection, project_id: int, pseudonym: str) -> list[str]:
    """Blobs of the subject's instances and quarantined objects."""
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
