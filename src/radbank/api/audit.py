"""The audit trail for auditors: export (FHIR AuditEvent bundle or NDJSON, syslog lines)
and the check of its hash chain. Reading the trail is itself audited (by the access log)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from radbank.api.deps import Auditor, services
from radbank.governance.audit_export import FORMATS, export
from radbank.index import AuditRecord

router = APIRouter(prefix="/api/audit", tags=["audit"])

_MEDIA_TYPES = {
    "fhir-bundle": "application/fhir+json",
    "fhir-ndjson": "application/fhir+ndjson",
    "syslog": "text/plain; charset=utf-8",
}
MAX_RECORDS = 100_000


def records_after(
    records: Iterator[AuditRecord], project: str | None, limit: int
) -> Iterator[AuditRecord]:
    """The records (of one project, when given), at most `limit` of them."""
    if project is not None:
        records = (r for r in records if r.project == project)
    return islice(records, limit)


@router.get(
    "",
    summary="Export audit records (auditor)",
    responses={200: {"content": {t: {} for t in _MEDIA_TYPES.values()}}},
)
def export_audit(
    _: Auditor,
    node: Annotated[Any, Depends(services)],
    format: Annotated[str, Query(description=f"One of {', '.join(FORMATS)}")] = "fhir-bundle",
    after: Annotated[int, Query(ge=0, le=2**62, description="Only records with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_RECORDS)] = 10_000,
    project: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    if format not in FORMATS:
        raise HTTPException(
            400, f"unknown format {format[:40]!r}; choose one of {', '.join(FORMATS)}"
        )
    chunks = export(
        records_after(node.index.iter_audit(after), project, limit),
        format,
        node=node.settings.node_name,
    )
    return StreamingResponse((chunk.encode() for chunk in chunks), media_type=_MEDIA_TYPES[format])


class ChainOut(BaseModel):
    intact: bool
    records: int = Field(description="Id of the newest record (0: empty trail)")
    head_hash: str | None = Field(description="Note it to check later that nothing was rewritten")
    problems: list[str]


@router.get("/verify", summary="Check the hash chain of the audit trail (auditor)")
def verify_audit(_: Auditor, node: Annotated[Any, Depends(services)]) -> ChainOut:
    problems = node.trail.verify()
    head = node.trail.head()
    return ChainOut(
        intact=not problems,
        records=head.id if head else 0,
        head_hash=head.hash if head else None,
        problems=[str(p) for p in problems],
    )
