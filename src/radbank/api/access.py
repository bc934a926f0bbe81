"""REST for access requests and saved cohorts: a researcher asks for a project's data, or a
saved cohort of its studies, for a purpose (GA4GH DUO codes, free text, duration); the
steward sees how the purpose matches the project's data-use conditions and approves or
denies; an approval gives the researcher role for the approved number of days, limited to
the cohort when one was asked for. A request whose purpose the conditions do not allow
cannot be approved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from radbank.api.deps import (
    Address,
    Caller,
    DiscoverableProject,
    ManagedProject,
    ReadableProject,
    UserCaller,
    deny,
    services,
    visible_studies,
)
from radbank.governance.duo import (
    describe,
    match,
    term,
    validate_conditions,
    validate_purposes,
)
from radbank.governance.policy import Action, Resource, can
from radbank.index import AccessRequest, Cohort, Project

router = APIRouter(tags=["access requests"])
Node = Annotated[Any, Depends(services)]
Code = Annotated[str, StringConstraints(max_length=80)]
MAX_DAYS = 3650


class AccessRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purposes: list[Code] = Field(
        min_length=1,
        max_length=20,
        description="DUO codes of the research purpose",
        examples=[["DUO:0000006"]],
    )
    attestations: list[Code] = Field(
        default_factory=list,
        max_length=30,
        description="DUO codes of the conditions you confirm (e.g. DUO:0000019: you will "
        "publish the results)",
    )
    description: str = Field(min_length=1, max_length=4000, description="What you will do")
    days: int = Field(ge=1, le=MAX_DAYS, description="How long you need access")
    cohort: int | None = Field(
        default=None, ge=1, description="Id of a saved cohort; omitted: the whole project"
    )


class MatchOut(BaseModel):
    allowed: bool = Field(description="Whether the purpose fits the data-use conditions")
    reasons: list[str]


class AccessRequestOut(BaseModel):
    id: int
    project: str
    requester: str
    purposes: list[str]
    purposes_described: list[str]
    attestations: list[str]
    description: str
    days: int
    cohort: int | None
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    grant_expires_at: datetime | None
    match: MatchOut


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: str = Field(default="", max_length=2000)
    days: int | None = Field(
        default=None, ge=1, le=MAX_DAYS, description="Fewer days than requested, if so decided"
    )


def _match(request: AccessRequest, project: Project) -> MatchOut:
    if not project.data_use:
        return MatchOut(
            allowed=True,
            reasons=["the project declares no data-use conditions: the steward decides alone"],
        )
    result = match(
        list(request.purposes),
        validate_conditions(list(project.data_use)),
        request_attests=frozenset(request.attestations),
    )
    return MatchOut(allowed=result.allowed, reasons=list(result.reasons))


def _out(request: AccessRequest, project: Project) -> AccessRequestOut:
    return AccessRequestOut(
        id=request.id,
        project=request.project,
        requester=request.requester,
        purposes=list(request.purposes),
        purposes_described=describe(list(request.purposes)),
        attestations=list(request.attestations),
        description=request.description,
        days=request.days,
        cohort=request.cohort_id,
        status=request.status,
        created_at=request.created_at,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        decision_note=request.decision_note,
        grant_expires_at=request.grant_expires_at,
        match=_match(request, project),
    )


@router.post(
    "/api/projects/{project}/access-requests",
    status_code=201,
    summary="Ask for access to a project's data for a purpose",
)
def create_request(
    caller: UserCaller,
    project: DiscoverableProject,
    body: AccessRequestIn,
    address: Address,
    node: Node,
) -> AccessRequestOut:
    try:
        validate_purposes(list(body.purposes))
        for code in body.attestations:
            term(code)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if body.cohort is not None and body.cohort not in {
        c.id for c in node.index.cohorts(project.id)
    }:
        raise HTTPException(400, f"project {project.name!r} has no cohort {body.cohort}")
    request = node.index.add_access_request(
        project.id,
        requester=caller.name,
        purposes=body.purposes,
        attestations=body.attestations,
        description=body.description,
        days=body.days,
        cohort_id=body.cohort,
        audit=node.trail.project_event(
            "access.request",
            project.name,
            actor=caller.name,
            source=address,
            detail={"purposes": body.purposes, "days": body.days},
        ),
    )
    return _out(request, project)


@router.get(
    "/api/projects/{project}/access-requests",
    summary="Access requests of the project, with how each matches its conditions (steward)",
)
def project_requests(project: ManagedProject, node: Node) -> list[AccessRequestOut]:
    return [_out(r, project) for r in node.index.access_requests(project_id=project.id)]


@router.get("/api/access-requests", summary="Your own access requests")
def my_requests(caller: Caller, node: Node) -> list[AccessRequestOut]:
    if not caller.authenticated:
        raise deny(caller, "not signed in")
    projects = {p.name: p for p in node.index.list_projects()}
    return [_out(r, projects[r.project]) for r in node.index.access_requests(requester=caller.name)]


RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/api/projects/{project}/access-requests/{request_id}/decision",
    summary="Approve or deny a pending access request (steward)",
)
def decide(
    request_id: RequestId,
    body: DecisionIn,
    project: ManagedProject,
    caller: Caller,
    address: Address,
    node: Node,
) -> AccessRequestOut:
    pending = next(
        (r for r in node.index.access_requests(project_id=project.id) if r.id == request_id),
        None,
    )
    if pending is None:
        raise HTTPException(404, f"project {project.name!r} has no access request {request_id}")
    if pending.status != "pending":
        raise HTTPException(409, f"access request {request_id} was {pending.status} already")
    grant_user = None
    expires = None
    if body.approve:
        fit = _match(pending, project)
        if not fit.allowed:
            raise HTTPException(
                409,
                "the purpose does not fit the project's data-use conditions: "
                + " ".join(fit.reasons),
            )
        user = node.index.get_user(pending.requester)
        if user is None or user.disabled:
            raise HTTPException(409, f"user {pending.requester!r} no longer exists or is disabled")
        grant_user = user.id
        expires = datetime.now(UTC) + timedelta(days=min(body.days or pending.days, pending.days))
    decided = node.index.decide_access_request(
        request_id,
        status="approved" if body.approve else "denied",
        by=caller.name,
        note=body.note,
        grant_user_id=grant_user,
        grant_expires_at=expires,
        audit=node.trail.event(
            "access.approve" if body.approve else "access.deny",
            actor=caller.name,
            resource=f"project:{project.name}",
            project=project.name,
            source=address,
            detail={
                "request": request_id,
                "requester": pending.requester,
                "grant_expires_at": expires.isoformat() if expires else None,
            },
        ),
    )
    if decided is None:
        raise HTTPException(409, f"access request {request_id} was decided meanwhile")
    return _out(decided, project)


class CohortIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=4000)
    study_uids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=10_000, description="StudyInstanceUIDs (as the node serves them)"
    )


class CohortOut(BaseModel):
    id: int
    name: str
    description: str
    studies: int
    created_by: str
    created_at: datetime
    study_uids: list[str] | None = Field(description="null unless you may read them")


def _cohort_out(cohort: Cohort, readable: frozenset[str] | None, shown: bool) -> CohortOut:
    return CohortOut(
        id=cohort.id,
        name=cohort.name,
        description=cohort.description,
        studies=len(cohort.study_uids),
        created_by=cohort.created_by,
        created_at=cohort.created_at,
        study_uids=(
            [u for u in cohort.study_uids if readable is None or u in readable] if shown else None
        ),
    )


@router.post(
    "/api/projects/{project}/cohorts",
    status_code=201,
    summary="Save a cohort: a named set of the project's studies, to ask for access to",
)
def create_cohort(
    body: CohortIn,
    project: ReadableProject,
    request: Request,
    caller: Caller,
    address: Address,
    node: Node,
) -> CohortOut:
    readable = visible_studies(request, project)
    outside = [u for u in body.study_uids if readable is not None and u not in readable]
    if outside:
        raise HTTPException(400, f"the project holds no study {outside[0]!r} you may read")
    try:
        cohort = node.index.add_cohort(
            project.id,
            name=body.name,
            description=body.description,
            study_uids=body.study_uids,
            created_by=caller.name,
            audit=node.trail.project_event(
                "cohort.create",
                project.name,
                actor=caller.name,
                source=address,
                detail={"name": body.name, "studies": len(set(body.study_uids))},
            ),
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _cohort_out(cohort, readable, shown=True)


@router.get(
    "/api/projects/{project}/cohorts",
    summary="The project's saved cohorts (their studies to those who may read them)",
)
def list_cohorts(
    project: DiscoverableProject, request: Request, caller: Caller, node: Node
) -> list[CohortOut]:
    shown = can(caller, Action.READ, Resource(project.name, open_access=project.open_access))
    readable = visible_studies(request, project)
    return [_cohort_out(c, readable, shown) for c in node.index.cohorts(project.id)]
