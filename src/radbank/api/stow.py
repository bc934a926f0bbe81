"""STOW-RS (PS3.18 10.5): store instances into a project, streamed part by part."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from radbank.api.deps import Caller, WritableProject, check_uid, services
from radbank.api.media import require_json
from radbank.api.multipart import MultipartError, PartTooLarge, parse_content_type, read_parts
from radbank.api.urls import instance_url, study_url
from radbank.dicom.instance import Unreadable, read_instance, uids_as_read
from radbank.governance.policy import Principal
from radbank.index import Project
from radbank.ingest import Item, Outcome, Pipeline, Status
from radbank.ingest.pipeline import (
    FAILURE_CANNOT_UNDERSTAND,
    FAILURE_OUT_OF_RESOURCES,
    WARNING_QUARANTINED,
    PreparedBatch,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/dicom-web/projects/{project}", tags=["DICOMweb STOW-RS"])

# Parts ingested together: one index transaction, one journal entry and one directory
# flush per batch (32 CT slices of 0.5 MB cost 4 % less CPU per instance than 16). At
# most _IN_FLIGHT + 1 batches of a request are held in memory, and a batch is
# de-identified on the event loop in one go: its bytes bound both.
_BATCH_BYTES = 16 * 1024 * 1024
_BATCH_PARTS = 32
_IN_FLIGHT = 2
_DICOM_JSON = "application/dicom+json"
_ACCEPTED_PART_TYPES = ("application/dicom", "application/octet-stream", "")
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            'multipart/related; type="application/dicom"': {
                "schema": {"type": "string", "format": "binary"}
            }
        },
    }
}


@router.post(
    "/studies",
    summary="Store instances (STOW-RS)",
    openapi_extra=_BODY_DOC,
    response_class=JSONResponse,
)
async def store_instances(
    request: Request, project: WritableProject, caller: Caller
) -> JSONResponse:
    return await _store(request, project, caller, None)


@router.post(
    "/studies/{study}",
    summary="Store instances of one study (STOW-RS)",
    openapi_extra=_BODY_DOC,
    response_class=JSONResponse,
)
async def store_study_instances(
    request: Request, project: WritableProject, caller: Caller, study: str
) -> JSONResponse:
    check_uid(study, "study")
    return await _store(request, project, caller, study)


async def _store(
    request: Request, project: Project, caller: Principal, study: str | None
) -> JSONResponse:
    node = services(request)
    settings = node.settings
    # Before any part is read: a client that cannot read the answer must not have stored
    # instances it is never told about.
    require_json(request.headers.get("accept"), "the STOW-RS response")
    media_type, params = parse_content_type(request.headers.get("content-type", ""))
    if media_type != "multipart/related":
        raise HTTPException(
            415,
            f'STOW-RS needs Content-Type multipart/related; type="application/dicom", got '
            f"{media_type or 'none'!r}",
        )
    part_type = params.get("type", "application/dicom").lower()
    if part_type != "application/dicom":
        raise HTTPException(
            415,
            f"multipart/related type {part_type!r} is not supported; send application/dicom parts",
        )
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, f"invalid Content-Length {length[:40]!r}")
        if int(length) > settings.max_request_bytes:
            raise HTTPException(
                413,
                f"request body of {length} bytes exceeds the limit of {settings.max_request_bytes} "
                "bytes (RADBANK_MAX_REQUEST_BYTES); split the upload into several requests",
            )
    # Outcomes in request order: refused parts at once, batches when their ingest finishes.
    # Up to _IN_FLIGHT batches are ingested while the next parts arrive, so receiving,
    # computing and waiting for the disk overlap.
    slots: list[Outcome | asyncio.Future[list[Outcome]]] = []
    in_flight: deque[asyncio.Future[list[Outcome]]] = deque()
    batch: list[Item] = []
    batch_bytes = 0
    received = 0
    last_part = 0  # the number of the last part read in full
    first_in_batch = 0  # the number of the first part of `batch`

    async def flush() -> None:
        nonlocal batch, batch_bytes
        if batch:
            while len(in_flight) >= _IN_FLIGHT:
                await in_flight.popleft()
            # De-identification runs on the event loop on purpose: it is pure CPU work,
            # and a worker process busy with it lets new connections go to an idle worker
            # instead of accepting them itself. Writing and indexing wait on the disk and
            # run in a thread while the next parts arrive.
            prepared = node.pipeline.prepare(
                batch, project, source="stow-rs", principal=caller, study_instance_uid=study
            )
            task = asyncio.ensure_future(
                run_in_threadpool(_commit, node.pipeline, prepared, [i.data for i in batch])
            )
            in_flight.append(task)
            slots.append(task)
        batch, batch_bytes = [], 0

    async def outcomes() -> list[Outcome]:
        await flush()
        return await settled()

    async def settled() -> list[Outcome]:
        """The outcomes of the parts handed to ingest; parts still waiting for their batch
        are dropped (a request that failed stores nothing more)."""
        await asyncio.gather(*in_flight)
        done: list[Outcome] = []
        for slot in slots:
            done.extend([slot] if isinstance(slot, Outcome) else slot.result())
        return done

    def unstored(reason: str) -> str:
        first = first_in_batch if batch else last_part + 1
        if first == 1:
            return f"{reason}; nothing of this request was stored"
        return f"{reason}; part {first} and the parts after it were not stored, send them again"

    async def body() -> AsyncIterator[bytes]:
        nonlocal received
        async for chunk in request.stream():
            received += len(chunk)
            if received > settings.max_request_bytes:
                raise PartTooLarge(0, settings.max_request_bytes)
            yield chunk

    try:
        async for part in read_parts(
            body(), params.get("boundary", ""), max_part_bytes=settings.max_instance_bytes
        ):
            last_part = part.index
            name = f"part {part.index}"
            part_media, _ = parse_content_type(part.content_type)
            if part_media not in _ACCEPTED_PART_TYPES:
                slots.append(
                    Outcome(
                        name,
                        Status.REJECTED,
                        f"{name}: Content-Type {part.content_type!r} is not application/dicom",
                        FAILURE_CANNOT_UNDERSTAND,
                    )
                )
                continue
            if not batch:
                first_in_batch = part.index
            batch.append(Item(name, part.data))
            batch_bytes += len(part.data)
            if batch_bytes >= _BATCH_BYTES or len(batch) >= _BATCH_PARTS:
                await flush()
    except PartTooLarge as exc:
        detail = (
            f"request body exceeds the limit of {exc.limit} bytes (RADBANK_MAX_REQUEST_BYTES); "
            "split the upload into several requests"
            if exc.index == 0
            else f"{exc}, the largest object this node accepts (RADBANK_MAX_INSTANCE_BYTES, "
            "which its operator can raise)"
        )
        error = (413, FAILURE_OUT_OF_RESOURCES, unstored(detail))
        return _response(request, project.name, await settled(), error)
    except MultipartError as exc:
        error = (400, FAILURE_CANNOT_UNDERSTAND, unstored(f"malformed multipart body: {exc}"))
        return _response(request, project.name, await settled(), error)
    except ClientDisconnect:
        # Nobody reads this answer; it goes into the audit trail as the client's failure.
        # The batches already handed over finish: their instances are complete, and a
        # sender that tries again finds them stored (acknowledged as duplicates).
        done = await settled()
        stored = sum(o.status in _HELD for o in done)
        reason = unstored(f"the client closed the connection during part {last_part + 1}")
        log.warning("STOW-RS to project %s: %s (%d instance(s) kept)", project.name, reason, stored)
        return _response(request, project.name, done, (400, FAILURE_CANNOT_UNDERSTAND, reason))
    return _response(request, project.name, await outcomes())


# The outcomes that leave the object in the node's hands: stored, found stored, or held
# in quarantine until a steward releases it.
_HELD = (Status.STORED, Status.DUPLICATE, Status.QUARANTINED)


def _commit(pipeline: Pipeline, prepared: PreparedBatch, data: list[bytes]) -> list[Outcome]:
    """Store a prepared batch. A refused instance is named by the UIDs its sender gave it
    (the sender knows those; nothing is stored under the de-identified ones), read from
    the received bytes where they are readable."""
    outcomes = pipeline.commit(prepared)
    return [
        outcome if outcome.status in _HELD else _as_sent(outcome, part)
        for outcome, part in zip(outcomes, data, strict=True)
    ]


def _as_sent(outcome: Outcome, data: bytes) -> Outcome:
    try:
        dataset = read_instance(outcome.name, data)
    except Unreadable:
        return outcome
    sop_class = "\\".join(uids_as_read(dataset, 0x00080016))
    sop_instance = "\\".join(uids_as_read(dataset, 0x00080018))
    return dataclasses.replace(
        outcome,
        sop_class_uid=sop_class or outcome.sop_class_uid,
        sop_instance_uid=sop_instance or outcome.sop_instance_uid,
    )


def _response(
    request: Request,
    project: str,
    outcomes: list[Outcome],
    error: tuple[int, int, str] | None = None,
) -> JSONResponse:
    """The Store Instances Response (PS3.18 10.5.3). `error` is a failure of the request
    itself (status, Failure Reason, text), after which the instances stored before it are
    still acknowledged."""
    referenced: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    studies: set[str] = set()
    for outcome in outcomes:
        if outcome.acknowledged:
            studies.add(outcome.study_instance_uid or "")
            item = {
                "00081150": _ui(outcome.sop_class_uid),
                "00081155": _ui(outcome.sop_instance_uid),
                "00081190": {
                    "vr": "UR",
                    "Value": [
                        instance_url(
                            request,
                            project,
                            outcome.study_instance_uid,
                            outcome.series_instance_uid,
                            outcome.sop_instance_uid,
                        )
                    ],
                },
            }
            if outcome.status == Status.DUPLICATE:
                item.update(_reason_text(outcome.reason))
            referenced.append(item)
        elif outcome.status == Status.QUARANTINED:
            # Kept, so a sender must not send it again, but not retrievable until a steward
            # releases it: acknowledged with a Warning Reason and without a Retrieve URL.
            item = {
                "00081150": _ui(outcome.sop_class_uid),
                "00081155": _ui(outcome.sop_instance_uid),
                "00081196": {"vr": "US", "Value": [WARNING_QUARANTINED]},
            }
            item.update(_reason_text(outcome.reason))
            referenced.append(item)
        else:
            item = {
                "00081150": _ui(outcome.sop_class_uid),
                "00081155": _ui(outcome.sop_instance_uid),
                "00081197": {
                    "vr": "US",
                    "Value": [outcome.failure_reason or FAILURE_CANNOT_UNDERSTAND],
                },
            }
            item.update(_reason_text(outcome.reason or outcome.status.value))
            failed.append(item)
    body: dict[str, Any] = {}
    if len(studies) == 1:
        body["00081190"] = {"vr": "UR", "Value": [study_url(request, project, studies.pop())]}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if error is not None:
        # 400/413 say that nothing was stored; where earlier batches were, 202 says so.
        status = 202 if referenced else error[0]
        body["0008119A"] = {
            "vr": "SQ",
            "Value": [{"00081197": {"vr": "US", "Value": [error[1]]}, **_reason_text(error[2])}],
        }
        body.update(_reason_text(error[2]))
    elif not outcomes:
        status = 400
        body.update(_reason_text("the request contained no DICOM instances"))
    elif not failed and all(o.acknowledged for o in outcomes):
        status = 200
    elif referenced:
        status = 202  # some stored, or held in quarantine for review
    elif all(o.failure_reason == FAILURE_CANNOT_UNDERSTAND for o in outcomes):
        status = 400
    elif any(o.failure_reason == FAILURE_OUT_OF_RESOURCES for o in outcomes):
        status = 503  # nothing stored, for want of space: the sender may try again later
    else:
        status = 409
    # Closing the connection after a store lets the sender's next request reach whichever
    # worker process is idle; a kept-alive connection would pin a busy sender to one
    # process while another idles (the kernel hands new connections out unevenly).
    return JSONResponse(
        body, status_code=status, media_type=_DICOM_JSON, headers={"Connection": "close"}
    )


def _ui(value: str | None) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


# Human-readable reasons travel in a private element of creator "RADBANK" so that DICOM
# JSON clients can ignore them while people and scripts can read what went wrong.
def _reason_text(text: str) -> dict[str, Any]:
    return {
        "00090010": {"vr": "LO", "Value": ["RADBANK"]},
        "00091001": {"vr": "LT", "Value": [text[:10000]]},
    }
