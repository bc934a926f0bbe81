"""REST for a project's dose data: events and studies with filters, paging and sorting,
streamed CSV and Parquet exports, a subject's cumulative dose, DRLs and the examinations
above them; and the node's reference DRL sets (national or European values from CSV).

Filters are query parameters: a text column by name (`modality=CT`, `protocol=*HEAD*`,
wildcards * and ?), `date_from`/`date_to` (YYYYMMDD, the study date), `age_min`/`age_max`
(years), `sex`, and value ranges on any numeric column as `min_<column>`/`max_<column>`
(`min_ctdivol_mGy=20`). An unknown parameter or column is a 400 naming it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from radbank.analytics.dose import EXPORT_FORMATS, public_row
from radbank.analytics.drl import DEFAULT_MIN_PATIENTS, QUANTITIES, DrlError, parse_reference_csv
from radbank.api.deps import Admin, Caller, ReadableProject, deny, services, visible_studies
from radbank.index import DoseFilter, InvalidDoseFilter, Project
from radbank.index._dose import stored_name

router = APIRouter(tags=["dose"])
Node = Annotated[Any, Depends(services)]
MAX_PAGE = 10_000
MAX_REFERENCE_BYTES = 2 * 1024 * 1024
PROJECT = "/api/projects/{project}/dose"

_COMMON = {"limit", "offset", "sort", "date_from", "date_to", "age_min", "age_max", "sex"}
_ANALYSIS = {"quantity", "group", "min_patients", "reference", "against", "format"}
_DATE = re.compile(r"^\d{8}$")
_TEXT_FILTERS = (
    "modality",
    "manufacturer",
    "model_name",
    "station_name",
    "device_key",
    "device",
    "protocol",
    "target_region",
    "procedure",
    "study_description",
    "acquisition_type",
    "source",
    "kind",
    "study_instance_uid",
    "pseudonym",
)


def _number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise HTTPException(400, f"{name}={value[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise HTTPException(400, f"{name} must be a finite number")
    return number


def dose_filter(request: Request, project: Project, *, extra: set[str] = frozenset()) -> DoseFilter:
    """The query parameters as a DoseFilter; 400 naming any parameter it cannot use."""
    params = request.query_params
    equal: dict[str, str] = {}
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for name in params:
        values = params.getlist(name)
        if len(values) > 1:
            raise HTTPException(
                400, f"parameter {name!r} is given {len(values)} times; give it once"
            )
        value = values[0]
        if len(value) > 200:
            raise HTTPException(400, f"parameter {name!r} is longer than 200 characters")
        if name in _COMMON or name in extra:
            continue
        if name in _TEXT_FILTERS:
            equal[name] = value
        elif name.startswith(("min_", "max_")) and len(name) > 4:
            column = stored_name(name[4:])
            low, high = ranges.get(column, (None, None))
            number = _number(name, value)
            ranges[column] = (number, high) if name.startswith("min_") else (low, number)
        else:
            raise HTTPException(
                400,
                f"unknown parameter {name[:60]!r}; filters are {', '.join(_TEXT_FILTERS)}, "
                "date_from, date_to, age_min, age_max, sex and min_/max_<numeric column>",
            )
    for name in ("date_from", "date_to"):
        if name in params and not _DATE.match(params[name]):
            raise HTTPException(400, f"{name} must be a date YYYYMMDD, not {params[name][:20]!r}")
    if "sex" in params:
        equal["patient_sex"] = params["sex"].upper()
    limit = int(_number("limit", params["limit"])) if "limit" in params else 100
    offset = int(_number("offset", params["offset"])) if "offset" in params else 0
    if not 1 <= limit <= MAX_PAGE:
        raise HTTPException(400, f"limit must be 1 to {MAX_PAGE}; use the export for more")
    if offset < 0:
        raise HTTPException(400, "offset must not be negative")
    sort = params.get("sort")
    return DoseFilter(
        equal=equal,
        date_from=params.get("date_from"),
        date_to=params.get("date_to"),
        age_min=_number("age_min", params["age_min"]) if "age_min" in params else None,
        age_max=_number("age_max", params["age_max"]) if "age_max" in params else None,
        ranges=ranges,
        study_uids=visible_studies(request, project),
        sort=stored_name(sort) if sort else None,
        limit=limit,
        offset=offset,
    )


class Page(BaseModel):
    total: int = Field(description="Rows matching the filters, all pages")
    limit: int
    offset: int
    rows: list[dict[str, Any]]


_FILTER_DOC = (
    "Filters: " + ", ".join(_TEXT_FILTERS) + " (wildcards * ?, case-blind), date_from, date_to "
    "(YYYYMMDD), age_min, age_max (years), sex, min_<column>, max_<column> on numeric columns; "
    "sort=<column> or -<column>; limit (1-10000), offset."
)


async def _page(node: Any, search: str, project: Project, query: DoseFilter) -> Page:
    method = getattr(node.index, search)
    try:
        rows, total = await run_in_threadpool(method, project.id, query)
    except InvalidDoseFilter as exc:
        raise HTTPException(400, str(exc)) from exc
    return Page(
        total=total,
        limit=query.limit or 0,
        offset=query.offset,
        rows=[public_row(row) for row in rows],
    )


@router.get(PROJECT + "/events", summary="Irradiation events", description=_FILTER_DOC)
async def events(request: Request, project: ReadableProject, node: Node) -> Page:
    return await _page(node, "dose_events", project, dose_filter(request, project))


@router.get(PROJECT + "/studies", summary="Studies with dose values", description=_FILTER_DOC)
async def dose_studies(request: Request, project: ReadableProject, node: Node) -> Page:
    return await _page(node, "dose_studies", project, dose_filter(request, project))


@router.get(
    PROJECT + "/{table}/export",
    summary="Stream a dose table as CSV or Parquet",
    description=_FILTER_DOC + " format=csv (default) or parquet. No page: every matching row.",
    response_class=StreamingResponse,
)
async def export(
    request: Request,
    project: ReadableProject,
    node: Node,
    table: Annotated[str, Path(pattern="^(events|studies)$")],
    format: Annotated[str, Query(pattern="^(csv|parquet)$")] = "csv",
) -> StreamingResponse:
    query = dose_filter(request, project, extra={"format"})
    chunks = node.dose.export(project, table, query, format)
    try:
        first = await run_in_threadpool(next, chunks, b"")
    except InvalidDoseFilter as exc:
        raise HTTPException(400, str(exc)) from exc

    async def body() -> Any:
        yield first
        while True:
            chunk = await run_in_threadpool(next, chunks, None)
            if chunk is None:
                return
            yield chunk

    suffix = "csv" if format == "csv" else "parquet"
    return StreamingResponse(
        body(),
        media_type=EXPORT_FORMATS[format],
        headers={
            "Content-Disposition": f'attachment; filename="{project.name}-dose-{table}.{suffix}"'
        },
    )


@router.get(
    PROJECT + "/subjects/{pseudonym}",
    summary="A subject's dose over time, with cumulative DLP, effective dose and activity",
)
async def subject(
    project: ReadableProject,
    node: Node,
    request: Request,
    pseudonym: Annotated[str, Path(max_length=64)],
) -> dict[str, Any]:
    history = await run_in_threadpool(node.dose.subject, project, pseudonym)
    visible = visible_studies(request, project)
    if visible is not None:
        history["studies"] = [s for s in history["studies"] if s["study_instance_uid"] in visible]
    if not history["studies"]:
        raise HTTPException(404, f"no dose values of subject {pseudonym!r} in this project")
    return history


def _analysis_params(request: Request) -> dict[str, Any]:
    params = request.query_params
    quantity = params.get("quantity", "dlp")
    if quantity not in QUANTITIES:
        raise HTTPException(400, f"quantity must be one of {', '.join(QUANTITIES)}")
    min_patients = int(
        _number("min_patients", params.get("min_patients", str(DEFAULT_MIN_PATIENTS)))
    )
    if not 1 <= min_patients <= 100_000:
        raise HTTPException(400, "min_patients must be 1 to 100000")
    return {
        "quantity": quantity,
        "group": params.get("group"),
        "min_patients": min_patients,
        "reference_set": params.get("reference"),
    }


@router.get(
    PROJECT + "/drl",
    summary="Diagnostic reference levels (ICRP 135) per examination and device",
    description="quantity (" + ", ".join(QUANTITIES) + "), group (examination grouping), "
    "min_patients per device (default 20), reference (a loaded reference DRL set); " + _FILTER_DOC,
)
async def drls(request: Request, project: ReadableProject, node: Node) -> dict[str, Any]:
    query = dose_filter(request, project, extra=_ANALYSIS)
    options = _analysis_params(request)
    quantity = options.pop("quantity")
    try:
        levels = await run_in_threadpool(
            lambda: node.dose.drls(project, quantity, query, **options)
        )
    except (DrlError, InvalidDoseFilter) as exc:
        raise HTTPException(400, str(exc)) from exc
    unit = QUANTITIES[quantity]
    return {
        "quantity": quantity,
        "unit": unit.unit,
        "description": unit.description,
        "min_patients": options["min_patients"],
        "examinations": [asdict(level) for level in levels],
    }


@router.get(
    PROJECT + "/above",
    summary="Examinations above their DRL, or CT events above their notification value",
    description="against=local (the local DRL), reference (a loaded set, with reference=) or "
    "notification; quantity, group, min_patients as for /drl; limit (1-10000). " + _FILTER_DOC,
)
async def above(request: Request, project: ReadableProject, node: Node) -> dict[str, Any]:
    query = dose_filter(request, project, extra=_ANALYSIS)
    options = _analysis_params(request)
    against = request.query_params.get("against", "local")
    if against not in ("local", "reference", "notification"):
        raise HTTPException(400, "against must be local, reference or notification")
    if against == "reference" and not options["reference_set"]:
        raise HTTPException(400, "against=reference needs reference=<set name>")
    quantity = options.pop("quantity")
    try:
        rows = await run_in_threadpool(
            lambda: node.dose.above(
                project, quantity, query, against=against, limit=query.limit or 100, **options
            )
        )
    except (DrlError, InvalidDoseFilter) as exc:
        raise HTTPException(400, str(exc)) from exc
    return {"against": against, "quantity": quantity, "rows": rows}


class ReferenceOut(BaseModel):
    set_name: str
    examination: str
    quantity: str
    value: float
    age_band: str
    source: str


@router.get("/api/dose/references", summary="Reference DRL sets loaded on this node")
async def list_references(caller: Caller, node: Node) -> list[ReferenceOut]:
    if not caller.authenticated:
        raise deny(caller, "not signed in")
    levels = await run_in_threadpool(node.index.reference_drls)
    return [ReferenceOut(**asdict(level)) for level in levels]


@router.put(
    "/api/dose/references/{set_name}",
    summary="Load (or replace) a reference DRL set from CSV",
    description="CSV columns: examination, quantity (" + ", ".join(QUANTITIES) + "), value, "
    "unit, and optionally age_band and source. All rows or none.",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def load_references(
    request: Request,
    caller: Admin,
    node: Node,
    set_name: Annotated[str, Path(max_length=80, pattern=r"^[\w .()-]+$")],
) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
        raise HTTPException(415, "send the reference DRLs as text/csv")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REFERENCE_BYTES:
            raise HTTPException(
                413, f"a reference file may have at most {MAX_REFERENCE_BYTES} bytes"
            )
    try:
        levels = parse_reference_csv(body.decode("utf-8"), set_name)
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"the reference file is not UTF-8 (byte {exc.start})") from exc
    except DrlError as exc:
        raise HTTPException(400, str(exc)) from exc
    count = await run_in_threadpool(
        node.index.replace_reference_drls, set_name, levels, caller.name
    )
    return {"set_name": set_name, "loaded": count}
