"""The audit trail: an append-only, hash-chained record of who did what, when, from where.

Each record's hash is SHA-256 over its canonical form (sorted-key JSON of every field,
including its id and the hash of the record before it), so changing, removing or inserting
a record breaks the chain at that point and `verify` names the record. Appenders take turns
through the index's writer lock (SQLite) or an advisory lock (PostgreSQL), so several
processes never fork the chain. A record that belongs to a change (a new project, a vault
rotation) is written in the same transaction as the change: `event` builds it for the
index method that makes the change.

    trail = AuditTrail(index)
    trail.record("vault.open", actor="dr-broker", resource="project:ct", project="ct",
                 detail={"pseudonyms": ["RB-..."], "reason": "withdrawal"}, source="local")
    problems = trail.verify()   # [] when intact

A chain detects changes made by anyone who does not recompute it from that record on; to
detect that too, keep the head (`head()`, printed by `radbank audit verify`) elsewhere and
check it later with `verify(anchor=...)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import Any

from radbank.index import GENESIS_HASH, AuditRecord, Index, PendingAudit


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


class Problem(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"


@dataclass(frozen=True)
class ChainProblem:
    """One break of the chain: the record where it shows, what is wrong, in words."""

    record_id: int
    kind: Problem
    message: str

    def __str__(self) -> str:
        return self.message


def record_hash(record: AuditRecord) -> str:
    """SHA-256 (hex) of the canonical form of `record` (its own hash left out)."""
    canonical = json.dumps(
        {
            "id": record.id,
            "time": record.time.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": record.actor,
            "action": record.action,
            "resource": record.resource,
            "project": record.project,
            "detail": record.detail,
            "source": record.source,
            "outcome": record.outcome,
            "prev_hash": record.prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditTrail:
    def __init__(self, index: Index) -> None:
        self.index = index

    def event(
        self,
        action: str,
        *,
        actor: str,
        resource: str,
        project: str | None = None,
        detail: Mapping[str, Any] | None = None,
        source: str = "",
        outcome: str = Outcome.SUCCESS,
    ) -> PendingAudit:
        """A record for an index method to append in the transaction of its change.

        action: dotted verb ("project.create", "vault.open"); resource: what it acted on
        ("node", "project:<name>"); source: where the request came from (client address,
        "local" for the command line). detail must be JSON and hold no identifying data.
        """
        return PendingAudit(
            actor=actor,
            action=action,
            resource=resource,
            seal=record_hash,
            project=project,
            detail=dict(detail or {}),
            source=source,
            outcome=str(outcome),
        )

    def project_event(
        self,
        action: str,
        project: str,
        *,
        actor: str,
        source: str = "",
        detail: Mapping[str, Any] | None = None,
        outcome: str = Outcome.SUCCESS,
    ) -> PendingAudit:
        """`event` for an action on one project (resource "project:<name>")."""
        return self.event(
            action,
            actor=actor,
            resource=f"project:{project}",
            project=project,
            detail=detail,
            source=source,
            outcome=outcome,
        )

    def record(
        self,
        action: str,
        *,
        actor: str,
        resource: str,
        project: str | None = None,
        detail: Mapping[str, Any] | None = None,
        source: str = "",
        outcome: str = Outcome.SUCCESS,
    ) -> AuditRecord:
        """Append a record now (see `event` for the fields); returns it as stored."""
        return self.index.append_audit(
            self.event(
                action,
                actor=actor,
                resource=resource,
                project=project,
                detail=detail,
                source=source,
                outcome=outcome,
            )
        )

    def records(self) -> Iterator[AuditRecord]:
        return self.index.iter_audit()

    def head(self) -> AuditRecord | None:
        """The newest record (its id and hash anchor the chain so far)."""
        return self.index.audit_head()

    def verify(self, anchor: tuple[int, str] | None = None) -> list[ChainProblem]:
        """Every break of the chain, in chain order; [] when the trail is intact.

        anchor: an (id, hash) noted earlier from `head()`; a trail recomputed from before
        that record on no longer contains it.
        """
        problems: list[ChainProblem] = []
        expected = GENESIS_HASH
        previous_id = 0
        seen: dict[str, int] = {}  # stored hash -> id, to recognise links to older records
        anchored = anchor is None
        for record in self.index.iter_audit():
            if record.prev_hash != expected:
                problem = self._link_problem(record, previous_id, seen)
                problems.append(problem)
                if problem.kind is Problem.INSERTED:
                    # The genuine successor still links to the record before the insertion.
                    seen[record.hash] = record.id
                    continue
            if record_hash(record) != record.hash:
                problems.append(
                    ChainProblem(
                        record.id,
                        Problem.CHANGED,
                        f"audit record {record.id} ({record.action} by {record.actor}) was "
                        "changed after it was written (or inserted): its content no longer "
                        "matches its hash",
                    )
                )
            if anchor is not None and record.id == anchor[0]:
                anchored = record.hash == anchor[1]
            seen[record.hash] = record.id
            expected, previous_id = record.hash, record.id
        if not anchored:
            assert anchor is not None
            problems.append(
                ChainProblem(
                    anchor[0],
                    Problem.CHANGED,
                    f"audit record {anchor[0]} no longer has the hash {anchor[1]} noted "
                    "earlier: the trail was rewritten from there on, or that record removed",
                )
            )
        return problems

    @staticmethod
    def _link_problem(record: AuditRecord, previous_id: int, seen: dict[str, int]) -> ChainProblem:
        if record.prev_hash in seen:
            return ChainProblem(
                record.id,
                Problem.INSERTED,
                f"audit record {record.id} ({record.action} by {record.actor}) was inserted: "
                f"it links to record {seen[record.prev_hash]}, which another record already "
                "follows",
            )
        missing = list(range(previous_id + 1, record.id))
        if missing:
            shown = (
                f"record {missing[0]}"
                if len(missing) == 1
                else f"records {missing[0]} to {missing[-1]}"
            )
            return ChainProblem(
                missing[0],
                Problem.REMOVED,
                f"audit {shown} removed: record {record.id} links to a record that is no "
                "longer in the trail",
            )
        return ChainProblem(
            record.id,
            Problem.REMOVED,
            f"audit record {record.id} does not link to record {previous_id}: records between "
            f"them were removed, or record {previous_id} was replaced and its hash recomputed",
        )
