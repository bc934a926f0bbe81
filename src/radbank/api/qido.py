"""QIDO-RS (PS3.18 10.6): search studies, series and instances of a project."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from radbank.api.deps import ReadableProject, check_uid, services, visible_studies
from radbank.api.media import require_json
from radbank.api.urls import instance_url, series_url, study_url
from radbank.dicom.query import parse_qido
from radbank.index import Project

router = APIRouter(prefix="/dicom-web/projects/{project}", tags=["DICOMweb QIDO-RS"])

_STUDY, _SERIES, _SOP = "0020000D", "0020000E", "00080018"


def _first(result: dict[str, Any], tag: str) -> str | None:
    values = result.get(tag, {}).get("Value")
    return values[0] if values else None


async def _search(
    request: Request,
    project: Project,
    level: str,
    study: str | None = None,
    series: str | None = None,
) -> JSONResponse:
    node = services(request)
    # The accept query parameter (PS3.18 8.3.3.1) takes precedence over the header.
    require_json(
        request.query_params.get("accept", request.headers.get("accept")), "a search result"
    )
    query = parse_qido(
        level,
        list(request.query_params.multi_items()),
        study_instance_uid=study,
        series_instance_uid=series,
        max_limit=node.settings.qido_max_limit,
    )
    capped = query.limit is None
    if capped:
        query = replace(query, limit=node.settings.qido_max_limit)
    results = await run_in_threadpool(
        node.index.search, project.id, query, visible_studies(request, project)
    )
    for result in results:
        study_uid, series_uid = _first(result, _STUDY), _first(result, _SERIES)
        if level == "study":
            url = study_url(request, project.name, study_uid)
        elif level == "series":
            url = series_url(request, project.name, study_uid, series_uid)
        else:
            url = instance_url(request, project.name, study_uid, series_uid, _first(result, _SOP))
        result["00081190"] = {"vr": "UR", "Value": [url]}
    warnings = []
    if capped and len(results) == query.limit:
        warnings.append(
            "299 radbank: The number of results exceeded the maximum supported by the server. "
            "Additional results can be requested."
        )
    if query.fuzzy_matching:
        warnings.append(
            "299 radbank: The fuzzymatching parameter is not supported. Only literal matching "
            "has been performed."
        )
    # Both, when both apply, in one header (a field's values are a comma-separated list).
    headers = {"Warning": ", ".join(warnings)} if warnings else {}
    return JSONResponse(results, media_type="application/dicom+json", headers=headers)


@router.get("/studies", summary="Search for studies")
async def search_studies(request: Request, project: ReadableProject) -> JSONResponse:
    return await _search(request, project, "study")


@router.get("/series", summary="Search for series")
async def search_series(request: Request, project: ReadableProject) -> JSONResponse:
    return await _search(request, project, "series")


@router.get("/instances", summary="Search for instances")
async def search_instances(request: Request, project: ReadableProject) -> JSONResponse:
    return await _search(request, project, "instance")


@router.get("/studies/{study}/series", summary="Search for series of a study")
async def search_study_series(
    request: Request, project: ReadableProject, study: str
) -> JSONResponse:
    return await _search(request, project, "series", check_uid(study, "study"))


@router.get("/studies/{study}/instances", summary="Search for instances of a study")
async def search_study_instances(
    request: Request, project: ReadableProject, study: str
) -> JSONResponse:
    return await _search(request, project, "instance", check_uid(study, "study"))


@router.get(
    "/studies/{study}/series/{series}/instances", summary="Search for instances of a series"
)
async def search_series_instances(
    request: Request, project: ReadableProject, study: str, series: str
) -> JSONResponse:
    return await _search(
        request, project, "instance", check_uid(study, "study"), check_uid(series, "series")
    )
