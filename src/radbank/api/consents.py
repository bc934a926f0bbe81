"""REST for a project's consents (steward): record decisions, import a site's CSV, export as
FHIR Consent, and withdraw a subject (which erases all their data)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from radbank.api.deps import Address, Caller, ManagedProject, services
from radbank.dicom.deid.pseudonyms import patient_pseudonym
from radbank.governance.consent import InvalidConsent, decision, fhir_bundle
from radbank.index import ConsentRecord

router = APIRouter(prefix="/api/projects/{project}", tags=["consent"])
Node = Annotated[Any, Depends(services)]
MAX_CSV_BYTES = 20 * 1024 * 1024


class ConsentIn(BaseModel):
    """One decision. Name the subject by pseudonym, or by the site's patient_id (and issuer),
    which is turned into the pseudonym with the project key and not kept."""

    model_config = ConfigDict(extra="forbid")

    pseudonym: str | None = Field(default=None, max_length=40)
    patient_id: str | None = Field(default=None, max_length=64)
    issuer: str = Field(default="", max_length=64)
    status: str = Field(max_length=20, examples=["given"])
    scope: list[str] = Field(default_factory=list, max_length=50, examples=[["DUO:0000042"]])
    decided_on: date
    form_reference: str = Field(max_length=200, examples=["ICF-2024-0017"])


class ConsentOut(BaseModel):
    pseudonym: str
    status: str
    scope: list[str]
    decided_on: date
    form_reference: str
    recorded_by: str
    recorded_at: datetime

    @classmethod
    def of(cls, record: ConsentRecord) -> ConsentOut:
        return cls(
            pseudonym=record.pseudonym,
            status=record.status,
            scope=list(record.scope),
            decided_on=record.decided_on,
            form_reference=record.form_reference,
            recorded_by=record.recorded_by,
            recorded_at=record.recorded_at,
        )


class ErasureOut(BaseModel):
    pseudonym: str
    objects_erased: int = Field(description="Stored and quarantined objects deleted")


class RecordedOut(BaseModel):
    recorded: int
    erased: list[ErasureOut] = Field(description="Subjects withdrawn by these decisions")


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200, description="e.g. the letter's reference")


class WithdrawalOut(BaseModel):
    pseudonym: str
    withdrawn_at: datetime
    withdrawn_by: str
    erased_at: datetime | None


def _recorded(count: int, reports: list[Any]) -> RecordedOut:
    return RecordedOut(
        recorded=count,
        erased=[ErasureOut(pseudonym=r.pseudonym, objects_erased=r.blobs) for r in reports],
    )


@router.get("/consents", summary="Current consent of every subject (or FHIR Consent bundle)")
def list_consents(
    project: ManagedProject,
    node: Node,
    format: Annotated[str, Query(pattern="^(json|fhir)$")] = "json",
) -> Any:
    records = list(node.index.current_consents(project.id).values())
    if format == "fhir":
        return fhir_bundle(records, project=project.name, node=node.settings.node_name)
    return [ConsentOut.of(r) for r in records]


@router.post("/consents", status_code=201, summary="Record consent decisions")
async def record_consents(
    body: list[ConsentIn],
    project: ManagedProject,
    caller: Caller,
    address: Address,
    node: Node,
) -> RecordedOut:
    if not 1 <= len(body) <= 10_000:
        raise HTTPException(400, "send 1 to 10,000 decisions")
    key = node.keys.project_key(project)
    decisions, problems = [], []
    for number, item in enumerate(body, start=1):
        pseudonym = item.pseudonym or (
            patient_pseudonym(item.issuer, item.patient_id, key) if item.patient_id else ""
        )
        try:
            decisions.append(
                decision(pseudonym, item.status, item.scope, item.decided_on, item.form_reference)
            )
        except InvalidConsent as exc:
            problems.extend(f"decision {number}: {p}" for p in exc.problems)
    if problems:
        raise HTTPException(400, "nothing recorded: " + "; ".join(problems[:50]))
    try:
        reports = await run_in_threadpool(
            node.consents.record, project, decisions, actor=caller.name, source=address
        )
    except InvalidConsent as exc:
        raise HTTPException(409, f"nothing recorded: {exc}") from exc
    return _recorded(len(decisions), reports)


@router.post(
    "/consents/import",
    status_code=201,
    summary="Import a site's consent CSV (all rows or none)",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_consents(
    request: Request, project: ManagedProject, caller: Caller, address: Address, node: Node
) -> RecordedOut:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
        raise HTTPException(415, "send the consent file as text/csv")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CSV_BYTES:
            raise HTTPException(413, f"a consent file may have at most {MAX_CSV_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"the consent file is not UTF-8 (byte {exc.start})") from exc
    try:
        count, reports = await run_in_threadpool(
            node.consents.import_csv, project, text, actor=caller.name, source=address
        )
    except InvalidConsent as exc:
        raise HTTPException(400, f"nothing imported: {exc}") from exc
    return _recorded(count, reports)


Pseudonym = Annotated[str, Path(pattern=r"^RB-[A-Z2-7]{20}$")]


@router.post(
    "/subjects/{pseudonym}/withdraw",
    summary="Withdraw a subject: erase all their data; later uploads are refused",
)
async def withdraw(
    pseudonym: Pseudonym,
    project: ManagedProject,
    caller: Caller,
    address: Address,
    node: Node,
    body: WithdrawIn | None = None,
) -> ErasureOut:
    report = await run_in_threadpool(
        node.consents.withdraw,
        project,
        pseudonym,
        actor=caller.name,
        source=address,
        reason=body.reason if body else "",
    )
    return ErasureOut(pseudonym=report.pseudonym, objects_erased=report.blobs)


@router.get("/withdrawals", summary="Tombstones of withdrawn (erased) subjects")
def withdrawals(project: ManagedProject, node: Node) -> list[WithdrawalOut]:
    return [
        WithdrawalOut(
            pseudonym=w.pseudonym,
            withdrawn_at=w.withdrawn_at,
            withdrawn_by=w.withdrawn_by,
            erased_at=w.erased_at,
        )
        for w in node.index.withdrawals(project.id).values()
    ]
