"""Storage of the audit chain: appending one record inside a write transaction, reading back.

The rule that computes a record's hash belongs to governance.audit and arrives here as the
`seal` of a PendingAudit; this module only guarantees that appenders take turns (so two
processes never link to the same predecessor) and that ids follow the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from radbank.index._engine import AUDIT_LOCK, serialise
from radbank.index._schema import audit_events

GENESIS_HASH = "0" * 64
"""The prev_hash of the first record of the chain."""


@dataclass(frozen=True)
class AuditRecord:
    """One stored record of the audit trail."""

    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    project: str | None
    detail: Mapping[str, Any]
    source: str
    outcome: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class PendingAudit:
    """An audit record to append in the same transaction as the change it records.

    `seal` returns the record's hash, given the record as stored with hash "".
    """

    actor: str
    action: str
    resource: str
    seal: Callable[[AuditRecord], str] = field(repr=False)
    project: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    outcome: str = "success"


def append(connection: sa.Connection, pending: PendingAudit) -> AuditRecord:
    """Append `pending` after the newest record; call inside a write transaction."""
    serialise(connection, AUDIT_LOCK)
    last = connection.execute(
        sa.select(audit_events.c.id, audit_events.c.hash)
        .order_by(audit_events.c.id.desc())
        .limit(1)
    ).first()
    record = AuditRecord(
        id=last.id + 1 if last else 1,
        time=datetime.now(UTC),
        actor=pending.actor,
        action=pending.action,
        resource=pending.resource,
        project=pending.project,
        detail=dict(pending.detail),
        source=pending.source,
        outcome=pending.outcome,
        prev_hash=last.hash if last else GENESIS_HASH,
        hash="",
    )
    record = replace(record, hash=pending.seal(record))
    connection.execute(
        audit_events.insert(),
        {
            "id": record.id,
            "time": record.time,
            "actor": record.actor,
            "action": record.action,
            "resource": record.resource,
            "project": record.project,
            "detail": record.detail,
            "source": record.source,
            "outcome": record.outcome,
            "prev_hash": record.prev_hash,
            "hash": record.hash,
        },
    )
    return record


def head(connection: sa.Connection) -> AuditRecord | None:
    row = connection.execute(
        sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(1)
    ).first()
    return _record(row._mapping) if row else None


def records(connection: sa.Connection, after_id: int = 0) -> Iterator[AuditRecord]:
    """Records in chain (id) order, streamed."""
    select = sa.select(audit_events).where(audit_events.c.id > after_id).order_by(audit_events.c.id)
    for row in connection.execution_options(yield_per=1000).execute(select):
        yield _record(row._mapping)


def _record(row: Mapping[str, Any]) -> AuditRecord:
    moment = row["time"]
    return AuditRecord(
        id=row["id"],
        time=moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC),
        actor=row["actor"],
        action=row["action"],
        resource=row["resource"],
        project=row["project"],
        detail=row["detail"],
        source=row["source"],
        outcome=row["outcome"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
