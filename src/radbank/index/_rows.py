"""What the index's parts share: time conversion, the project check, the refusal of
withdrawn subjects, and the errors they raise."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from radbank.index._engine import lock_subjects
from radbank.index._schema import projects, withdrawals

# Stays below SQLite's bound-parameter limit on old builds (999).
CHUNK = 500


class UnknownProject(LookupError):
    """A project id that the index does not hold."""


class SubjectWithdrawn(ValueError):
    """Instances of subjects who withdrew their consent from the project."""

    def __init__(self, pseudonyms: Iterable[str]) -> None:
        self.pseudonyms = sorted(set(pseudonyms))
        super().__init__(
            f"subject {', '.join(self.pseudonyms)} withdrew consent from the project: their "
            "data is not accepted"
        )


@dataclass(frozen=True)
class Cohort:
    id: int
    name: str
    description: str
    study_uids: tuple[str, ...]
    created_by: str
    created_at: datetime


def cohort_of(row: Mapping[str, Any]) -> Cohort:
    return Cohort(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        study_uids=tuple(row["study_uids"]),
        created_by=row["created_by"],
        created_at=loaded_time(row["created_at"]),
    )


def refuse_withdrawn(
    connection: sa.Connection, project_id: int, pseudonyms: set[str | None]
) -> None:
    """Raise SubjectWithdrawn for subjects with a withdrawal tombstone (taking the subjects
    lock shared, so a withdrawal waits for this transaction or this one sees it)."""
    lock_subjects(connection, project_id, exclusive=False)
    named = [p for p in pseudonyms if p]
    if not named:
        return
    withdrawn = connection.scalars(
        sa.select(withdrawals.c.pseudonym).where(
            withdrawals.c.project_id == project_id, withdrawals.c.pseudonym.in_(named)
        )
    ).all()
    if withdrawn:
        raise SubjectWithdrawn(withdrawn)


def require_project(connection: sa.Connection, project_id: int) -> str:
    """The project's name; UnknownProject when there is no such project."""
    found = connection.scalar(sa.select(projects.c.name).where(projects.c.id == project_id))
    if found is None:
        raise UnknownProject(f"no project with id {project_id} in the index")
    return found


def stored_time(moment: datetime) -> datetime:
    """UTC; a naive datetime is taken to be UTC already (SQLite keeps no offset)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def loaded_time(moment: datetime) -> datetime:
    """UTC-aware; SQLite gives naive datetimes back."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def optional_time(moment: datetime | None) -> datetime | None:
    return None if moment is None else loaded_time(moment)
