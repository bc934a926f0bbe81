"""Storage of the pseudonym vault: sealed entries, written in the transaction of the data they
describe and only under the vault key the project holds at commit time.

Sealing and opening belong to governance.vault; rows here are opaque bytes plus the
pseudonym they belong to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from radbank.index._schema import projects, vault_entries


@dataclass(frozen=True)
class VaultEntry:
    """One sealed set of original identifiers; `digest` deduplicates it within the project."""

    pseudonym: str
    digest: bytes
    sealed: bytes
    key_id: str
    id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class VaultWrite:
    """Entries to record for one project, sealed to its vault key `key_id`.

    `key_id` None says the project had no vault when the entries were prepared (then there
    are none); either way the write fails with VaultKeyChanged if the project's vault key
    is another one by the time it commits.
    """

    project_id: int
    key_id: str | None
    entries: Sequence[VaultEntry] = ()


class VaultKeyChanged(RuntimeError):
    """The project's vault key changed (vault init or rotation) while a batch was prepared;
    its entries must be sealed again to the current key."""

    def __init__(self, project_id: int, expected: str | None, current: str | None) -> None:
        self.project_id = project_id
        super().__init__(
            f"the vault key of project {project_id} is now {current or '(none)'}, not "
            f"{expected or '(none)'}; seal the entries again"
        )


def write(connection: sa.Connection, vault: VaultWrite) -> None:
    """Check the project's vault key (holding it until commit) and insert the new entries."""
    # FOR SHARE: a vault rotation (FOR UPDATE on the row) waits for this transaction, and
    # this one for a rotation in progress, so no entry is ever sealed to a replaced key.
    current = connection.scalar(
        sa.select(projects.c.vault_key_id)
        .where(projects.c.id == vault.project_id)
        .with_for_update(read=True)
    )
    if current != vault.key_id:
        raise VaultKeyChanged(vault.project_id, vault.key_id, current)
    if not vault.entries:
        return
    now = datetime.now(UTC)
    insert = (
        postgresql.insert(vault_entries)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(vault_entries)
    )
    connection.execute(
        insert.on_conflict_do_nothing(index_elements=["project_id", "digest"]),
        [
            {
                "project_id": vault.project_id,
                "pseudonym": entry.pseudonym,
                "digest": entry.digest,
                "sealed": entry.sealed,
                "key_id": entry.key_id,
                "recorded_at": now,
            }
            for entry in vault.entries
        ],
    )


def select(project_id: int, pseudonyms: Iterable[str] | None = None) -> sa.Select:
    statement = sa.select(vault_entries).where(vault_entries.c.project_id == project_id)
    if pseudonyms is not None:
        statement = statement.where(vault_entries.c.pseudonym.in_(list(pseudonyms)))
    return statement.order_by(vault_entries.c.pseudonym, vault_entries.c.id)


def entry(row: Mapping[str, Any]) -> VaultEntry:
    moment = row["recorded_at"]
    return VaultEntry(
        pseudonym=row["pseudonym"],
        digest=bytes(row["digest"]),
        sealed=bytes(row["sealed"]),
        key_id=row["key_id"],
        id=row["id"],
        recorded_at=moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment,
    )
