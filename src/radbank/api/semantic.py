"""The semantic repository over HTTP: the SPARQL 1.1 Protocol endpoint (read-only, over the
graphs of the projects the caller may read whole), non-DICOM submissions, and the DCAT-AP
description of each project (and a catalogue of them) for harvesters.

    GET  /sparql?query=...                     every project the caller may read
    POST /sparql                               application/sparql-query or a form (query=)
    GET  /api/projects/{p}/sparql?query=...    one project
    POST /api/projects/{p}/submissions?kind=crf   (application/ld+json, application/json,
                                                   text/csv) -> 201, or 422 listing every
                                                   violation (row, field, reason)
    GET  /api/projects/{p}/dcat                text/turtle, application/ld+json, rdf+xml
    GET  /api/catalog                          the node's catalogue of projects it shows

A caller whose grant is limited to a cohort of a project does not query that project with
SPARQL: its graph describes every study of the project.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from radbank.api.deps import (
    Address,
    Caller,
    DiscoverableProject,
    ManagedProject,
    ReadableProject,
    WritableProject,
    services,
    visible_studies,
)
from radbank.api.media import parse_accept
from radbank.api.urls import base_url
from radbank.governance.policy import Action, Principal, Resource, can
from radbank.index import Project, SubjectWithdrawn
from radbank.semantic.store import QueryRefused, QueryTimeout, StoreUnavailable
from radbank.semantic.submissions import MEDIA_TYPES, SubmissionRejected
from radbank.semantic.vocabulary import SUBMISSION_KINDS

router = APIRouter(tags=["semantic"])
Node = Annotated[Any, Depends(services)]

MAX_QUERY_CHARS = 100_000
_DCAT_TYPES = ("text/turtle", "application/ld+json", "application/rdf+xml")
_FORM = "application/x-www-form-urlencoded"
_DIRECT = "application/sparql-query"
_QUERY_DOC = (
    "SPARQL 1.1 query (SELECT, ASK, CONSTRUCT, DESCRIBE). Results as "
    "application/sparql-results+json (default), text/csv, text/tab-separated-values or "
    "application/sparql-results+xml; graphs as text/turtle or application/n-triples."
)


class SubmissionOut(BaseModel):
    submission_id: str
    kind: str
    records: int
    subjects: int
    triples: int
    removed_fields: list[str]


class SubmissionItem(BaseModel):
    submission_id: str
    kind: str
    name: str
    media_type: str
    records: int
    subjects: int
    submitted_by: str
    submitted_at: str
    removed_fields: list[str]


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _query_text(request: Request, query: str | None) -> str:
    """The query of a SPARQL Protocol request: ?query= (GET), a form or a direct body (POST)."""
    if request.method == "GET":
        if "update" in request.query_params:
            raise HTTPException(403, "this endpoint is read-only: SPARQL updates are refused")
        if not query:
            raise HTTPException(400, "give the SPARQL query as ?query=")
        return _bounded(query)
    media = _media_type(request)
    body = await request.body()
    if media == _DIRECT:
        try:
            return _bounded(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise HTTPException(400, f"the query is not UTF-8 (byte {exc.start})") from exc
    if media == _FORM:
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise HTTPException(400, f"the form is not UTF-8 (byte {exc.start})") from exc
        if "update" in form:
            raise HTTPException(403, "this endpoint is read-only: SPARQL updates are refused")
        values = form.get("query", [])
        if len(values) != 1:
            raise HTTPException(400, "give exactly one query= field in the form")
        return _bounded(values[0])
    raise HTTPException(
        415, f"send the query as {_DIRECT} or {_FORM} (got {media or 'no content type'!r})"
    )


def _bounded(text: str) -> str:
    if len(text) > MAX_QUERY_CHARS:
        raise HTTPException(413, f"a query may have at most {MAX_QUERY_CHARS} characters")
    if not text.strip():
        raise HTTPException(400, "the query is empty")
    return text


def _dataset(request: Request, available: list[Project]) -> list[Project]:
    """The projects the protocol's default-graph-uri / named-graph-uri narrow the query to
    (all available ones when none is given); a graph outside them is refused."""
    named = request.query_params.getlist("default-graph-uri") + request.query_params.getlist(
        "named-graph-uri"
    )
    if not named:
        return available
    by_graph = {f"urn:radbank:graph:{p.name}": p for p in available}
    unknown = [g for g in named if g not in by_graph]
    if unknown:
        raise HTTPException(
            403,
            f"graph {unknown[0][:200]!r} is not one you may query (your graphs: "
            f"{', '.join(sorted(by_graph)) or 'none'})",
        )
    return [by_graph[g] for g in dict.fromkeys(named)]


async def _answer(
    request: Request, node: Any, text: str, projects: list[Project], caller: Principal, source: str
) -> Response:
    try:
        result = await run_in_threadpool(
            node.graphs.query,
            text,
            projects,
            request.headers.get("accept"),
            actor=caller.name,
            source=source,
            timeout_s=node.settings.sparql_timeout_s,
        )
    except QueryTimeout as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "60"}) from exc
    except QueryRefused as exc:
        raise HTTPException(getattr(exc, "status", 400), str(exc)) from exc
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "30"}) from exc
    return Response(result.body, media_type=result.media_type)


def _whole_projects(node: Any, caller: Principal) -> list[Project]:
    """The projects whose whole graph the caller may read."""
    readable = []
    for project in node.index.list_projects():
        resource = Resource(project.name, open_access=project.open_access)
        if not can(caller, Action.READ, resource):
            continue
        if not project.open_access and caller.visible_studies(project.name) is not None:
            continue
        readable.append(project)
    return readable


async def _node_query(
    request: Request, caller: Principal, address: str, node: Any, query: str | None
) -> Response:
    text = await _query_text(request, query)
    projects = _dataset(request, _whole_projects(node, caller))
    if not caller.authenticated and not projects:
        raise HTTPException(
            401, "sign in (send a bearer token) to query", headers={"WWW-Authenticate": "Bearer"}
        )
    return await _answer(request, node, text, projects, caller, address)


async def _project_query(
    request: Request,
    project: Project,
    caller: Principal,
    address: str,
    node: Any,
    query: str | None,
) -> Response:
    text = await _query_text(request, query)
    if visible_studies(request, project) is not None:
        raise HTTPException(
            403,
            f"your access to project {project.name!r} is limited to a cohort; SPARQL reads "
            "the project's whole graph, so it needs access to the whole project",
        )
    return await _answer(request, node, text, _dataset(request, [project]), caller, address)


_RESULTS = {
    200: {
        "content": {
            t: {}
            for t in (
                "application/sparql-results+json",
                "text/csv",
                "text/tab-separated-values",
                "application/sparql-results+xml",
                "text/turtle",
                "application/n-triples",
            )
        }
    }
}
_POST_BODY = {
    "requestBody": {
        "content": {
            _DIRECT: {"schema": {"type": "string"}},
            _FORM: {"schema": {"type": "object", "properties": {"query": {"type": "string"}}}},
        }
    }
}


@router.get(
    "/sparql", summary="SPARQL 1.1 query over every project you may read", responses=_RESULTS
)
async def sparql_get(
    request: Request,
    caller: Caller,
    address: Address,
    node: Node,
    query: Annotated[str | None, Query(description=_QUERY_DOC)] = None,
) -> Response:
    return await _node_query(request, caller, address, node, query)


@router.post(
    "/sparql",
    summary="SPARQL 1.1 query (POST) over every project you may read",
    responses=_RESULTS,
    openapi_extra=_POST_BODY,
)
async def sparql_post(request: Request, caller: Caller, address: Address, node: Node) -> Response:
    return await _node_query(request, caller, address, node, None)


@router.get(
    "/api/projects/{project}/sparql",
    summary="SPARQL 1.1 query over one project's graph",
    responses=_RESULTS,
)
async def project_sparql_get(
    request: Request,
    project: ReadableProject,
    caller: Caller,
    address: Address,
    node: Node,
    query: Annotated[str | None, Query(description=_QUERY_DOC)] = None,
) -> Response:
    return await _project_query(request, project, caller, address, node, query)


@router.post(
    "/api/projects/{project}/sparql",
    summary="SPARQL 1.1 query (POST) over one project's graph",
    responses=_RESULTS,
    openapi_extra=_POST_BODY,
)
async def project_sparql_post(
    request: Request, project: ReadableProject, caller: Caller, address: Address, node: Node
) -> Response:
    return await _project_query(request, project, caller, address, node, None)


@router.post(
    "/api/projects/{project}/submissions",
    status_code=201,
    summary="Submit non-DICOM data (all of it, or nothing with every violation listed)",
    responses={422: {"description": "Rejected: every violation (row, field, reason)"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/ld+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def submit(
    request: Request,
    project: WritableProject,
    caller: Caller,
    address: Address,
    node: Node,
    kind: Annotated[str, Query(description=f"One of {', '.join(SUBMISSION_KINDS)}")],
    name: Annotated[str, Query(max_length=200, description="File name, for the record")] = "",
) -> Any:
    if kind not in SUBMISSION_KINDS:
        raise HTTPException(400, f"kind {kind[:40]!r}: use one of {', '.join(SUBMISSION_KINDS)}")
    media = _media_type(request)
    if media not in MEDIA_TYPES:
        raise HTTPException(
            415,
            f"send the submission as one of {', '.join(sorted(MEDIA_TYPES))} "
            f"(got {media or 'no content type'!r})",
        )
    limit = node.settings.max_submission_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"a submission may have at most {limit} bytes")
    try:
        report = await run_in_threadpool(
            node.graphs.submit,
            project,
            bytes(body),
            request.headers.get("content-type", media),
            kind,
            name=name or f"{kind} submission",
            actor=caller.name,
            source=address,
        )
    except SubmissionRejected as exc:
        return JSONResponse(
            {
                "error": f"submission rejected, nothing stored: {len(exc.violations)} problem(s)",
                "status": 422,
                "violations": [
                    {"row": v.row, "field": v.field, "reason": v.reason} for v in exc.violations
                ],
            },
            status_code=422,
        )
    except SubjectWithdrawn as exc:
        raise HTTPException(409, f"nothing stored: {exc}") from exc
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "30"}) from exc
    return SubmissionOut(
        submission_id=report.submission_id,
        kind=report.kind,
        records=report.records,
        subjects=report.subjects,
        triples=report.quads,
        removed_fields=list(report.removed_fields),
    )


@router.get("/api/projects/{project}/submissions", summary="The project's submissions")
async def list_submissions(project: ReadableProject, node: Node) -> list[SubmissionItem]:
    found = await run_in_threadpool(node.index.list_submissions, project.id)
    return [
        SubmissionItem(
            submission_id=s.submission_id,
            kind=s.kind,
            name=s.name,
            media_type=s.media_type,
            records=s.records,
            subjects=sum(1 for p in s.parts if p.pseudonym),
            submitted_by=s.submitted_by,
            submitted_at=s.submitted_at.isoformat(),
            removed_fields=list(s.removed_fields),
        )
        for s in found
    ]


@router.delete(
    "/api/projects/{project}/submissions/{submission_id}",
    status_code=204,
    summary="Delete a submission and its triples",
)
async def delete_submission(
    submission_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="32 hex digits")],
    project: ManagedProject,
    caller: Caller,
    address: Address,
    node: Node,
) -> Response:
    try:
        found = await run_in_threadpool(
            node.graphs.delete_submission,
            project,
            submission_id,
            actor=caller.name,
            source=address,
        )
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "30"}) from exc
    if not found:
        raise HTTPException(404, f"project {project.name!r} has no submission {submission_id!r}")
    return Response(status_code=204)


def _dcat_type(request: Request) -> str:
    for media_range in parse_accept(request.headers.get("accept")):
        if media_range.media_type in ("*/*", "text/*"):
            return _DCAT_TYPES[0]
        if media_range.media_type == "application/*":
            return _DCAT_TYPES[1]
        if media_range.media_type in _DCAT_TYPES:
            return media_range.media_type
        if media_range.media_type == "application/json":
            return "application/ld+json"
    raise HTTPException(406, f"the description is available as {', '.join(_DCAT_TYPES)}")


@router.get(
    "/api/projects/{project}/dcat",
    summary="DCAT-AP (HealthDCAT-AP) description of the project, for catalogue harvesters",
    responses={200: {"content": {t: {} for t in _DCAT_TYPES}}},
)
async def project_dcat(request: Request, project: DiscoverableProject, node: Node) -> Response:
    media = _dcat_type(request)
    body = await run_in_threadpool(
        node.graphs.catalogue,
        [project],
        media,
        base_url=base_url(request),
        node_name=node.settings.node_name,
    )
    return Response(body, media_type=media)


@router.get(
    "/api/catalog",
    summary="DCAT-AP catalogue of the projects the caller may see",
    responses={200: {"content": {t: {} for t in _DCAT_TYPES}}},
)
async def catalog(request: Request, caller: Caller, node: Node) -> Response:
    media = _dcat_type(request)
    shown = [
        p
        for p in node.index.list_projects()
        if can(caller, Action.DISCOVER, Resource(p.name, open_access=p.open_access))
    ]
    if not caller.authenticated and not shown:
        raise HTTPException(
            401,
            "sign in (send a bearer token) to see the catalogue",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = await run_in_threadpool(
        node.graphs.catalogue,
        shown,
        media,
        base_url=base_url(request),
        node_name=node.settings.node_name,
    )
    return Response(body, media_type=media)
