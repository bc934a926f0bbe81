"""REST for projects: create, list, show and change them (dataset description and
de-identification settings), their members' roles and their quarantine.

Every change is recorded in the audit trail with the caller and their address. The list
holds only the projects the caller may see (open-access ones to anyone). No route opens
the pseudonym vault: that is done by the honest broker with `radbank vault open`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from radbank.api.deps import (
    Address,
    Caller,
    DiscoverableProject,
    ManagedProject,
    ProjectCreator,
    ReviewableProject,
    deny,
    services,
)
from radbank.governance.policy import Action, Principal, Resource, can
from radbank.index import Project, ProjectExists
from radbank.ingest import Status
from radbank.projects import (
    DatasetChange,
    InvalidProject,
    SettingsChange,
    UnknownUser,
    create_project,
    grant_role,
    revoke_role,
    update_dataset,
    update_settings,
    validate_dataset,
)

router = APIRouter(prefix="/api/projects", tags=["projects"])

OverrideKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
OverrideAction = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ProjectIn(BaseModel):
    name: str = Field(max_length=63, examples=["ct-dose-trial"])
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    profile: str = Field(default="basic", max_length=64, description="De-identification profile")


class ProjectSettingsIn(BaseModel):
    """Dataset description and de-identification settings to change; a field left out (or
    null) stays as it is."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    licence: str | None = Field(
        default=None,
        max_length=80,
        description="SPDX or Creative Commons licence id of the de-identified data",
        examples=["CC-BY-4.0"],
    )
    ip_statement: str | None = Field(
        default=None,
        max_length=4000,
        description="Intellectual-property statement (required where the licence is not open)",
    )
    data_use: list[Annotated[str, StringConstraints(max_length=80)]] | None = Field(
        default=None,
        max_length=50,
        description="Data-use conditions as GA4GH DUO codes: one permission and modifiers",
        examples=[["DUO:0000042", "DUO:0000019"]],
    )
    consent_required: bool | None = Field(
        default=None,
        description="Quarantine data of subjects without a valid consent",
    )
    open_access: bool | None = Field(
        default=None,
        description="Serve the de-identified data to anonymous readers (read-only, audited)",
    )

    profile: str | None = Field(
        default=None, max_length=64, description="De-identification profile", examples=["basic"]
    )
    overrides: dict[OverrideKey, OverrideAction] | None = Field(
        default=None,
        max_length=1000,
        description="Replaces all overrides: attribute keyword, tag or path -> keep, remove, "
        "empty, dummy, pseudonymise or replace:<value>",
        examples=[{"PatientWeight": "keep", "(0018,1000)": "remove"}],
    )
    pixel_rules: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=500,
        description="Replaces all pixel rules: where devices burn identity into images "
        "(manufacturer, model, rows, columns, rectangles, name, sop_class_uids)",
    )
    ocr_check: bool | None = Field(
        default=None, description="Check the pixels of every image for text with OCR"
    )


class VaultOut(BaseModel):
    key_id: str = Field(description="Public id of the honest broker's key")
    broker: str | None


class ProjectOut(BaseModel):
    """A project as a dataset; its de-identification settings only for those who manage it."""

    name: str
    title: str
    description: str
    licence: str = Field(description="SPDX or Creative Commons id; empty: not yet declared")
    ip_statement: str
    data_use: list[str] = Field(description="GA4GH DUO codes")
    consent_required: bool
    open_access: bool
    profile: str = Field(description="De-identification profile")
    created_at: datetime
    your_roles: list[str] = Field(description="The caller's roles in this project")
    overrides: dict[str, str] | None = Field(description="null unless you manage the project")
    pixel_rules: list[dict[str, Any]] | None = Field(
        description="null unless you manage the project"
    )
    ocr_check: bool | None = Field(description="null unless you manage the project")
    settings_version: int | None = Field(description="Grows with every change of the settings")
    vault: VaultOut | None = Field(
        description="The pseudonym vault, or null: original identifiers are not kept (or you "
        "do not manage the project)"
    )

    @classmethod
    def of(cls, project: Project, caller: Principal) -> ProjectOut:
        manages = can(caller, Action.MANAGE, _resource(project))
        roles = set(caller.roles_in(project.name)) | ({"admin"} if caller.is_admin else set())
        return cls(
            name=project.name,
            title=project.title,
            description=project.description,
            licence=project.licence,
            ip_statement=project.ip_statement,
            data_use=list(project.data_use),
            consent_required=project.consent_required,
            open_access=project.open_access,
            profile=project.profile,
            created_at=project.created_at,
            your_roles=sorted(roles),
            overrides=dict(project.overrides) if manages else None,
            pixel_rules=[dict(rule) for rule in project.pixel_rules] if manages else None,
            ocr_check=project.ocr_check if manages else None,
            settings_version=project.settings_version if manages else None,
            vault=(
                VaultOut(key_id=project.vault_key_id, broker=project.vault_broker)
                if manages and project.vault_key_id
                else None
            ),
        )


def _resource(project: Project) -> Resource:
    return Resource(project.name, open_access=project.open_access)


@router.post("", status_code=201, summary="Create a project")
def create(
    body: ProjectIn,
    caller: ProjectCreator,
    address: Address,
    node: Annotated[object, Depends(services)],
) -> ProjectOut:
    try:
        project = create_project(
            node.index,
            body.name,
            keys=node.keys,
            trail=node.trail,
            actor=caller.name,
            source=address,
            title=body.title,
            description=body.description,
            profile=body.profile,
        )
    except InvalidProject as exc:
        raise HTTPException(400, str(exc)) from exc
    except ProjectExists as exc:
        raise HTTPException(409, f"project {body.name!r} already exists") from exc
    return ProjectOut.of(project, caller)


@router.get("", summary="List the projects you may see (open-access ones to anyone)")
def list_projects(caller: Caller, node: Annotated[object, Depends(services)]) -> list[ProjectOut]:
    return [
        ProjectOut.of(p, caller)
        for p in node.index.list_projects()
        if can(caller, Action.DISCOVER, _resource(p))
    ]


@router.get("/{project}", summary="Show a project (its settings to those who manage it)")
def show(project: DiscoverableProject, caller: Caller) -> ProjectOut:
    return ProjectOut.of(project, caller)


@router.patch(
    "/{project}",
    summary="Change a project's dataset description and de-identification settings",
    responses={400: {"description": "An invalid setting; the message names it and says why"}},
)
def change_settings(
    body: ProjectSettingsIn,
    project: ManagedProject,
    caller: Caller,
    address: Address,
    node: Annotated[object, Depends(services)],
) -> ProjectOut:
    change = SettingsChange(
        profile=body.profile,
        overrides=body.overrides,
        pixel_rules=body.pixel_rules,
        ocr_check=body.ocr_check,
    )
    dataset = DatasetChange(
        title=body.title,
        description=body.description,
        licence=body.licence,
        ip_statement=body.ip_statement,
        data_use=body.data_use,
        consent_required=body.consent_required,
        open_access=body.open_access,
    )
    try:
        validate_dataset(project, dataset)  # both parts are checked before either is stored
        if change.as_json():
            project = update_settings(
                node.index, project, change, trail=node.trail, actor=caller.name, source=address
            )
        project = update_dataset(
            node.index, project, dataset, trail=node.trail, actor=caller.name, source=address
        )
    except InvalidProject as exc:
        raise HTTPException(400, f"project {project.name!r}: {exc}") from exc
    return ProjectOut.of(project, caller)


class MemberOut(BaseModel):
    user: str
    role: str
    granted_by: str
    granted_at: datetime
    expires_at: datetime | None


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int | None = Field(
        default=None, ge=1, le=3650, description="The role ends after this many days"
    )
    cohort: int | None = Field(
        default=None, ge=1, description="Limit reading to this saved cohort (researcher role)"
    )


UserName = Annotated[str, Path(max_length=128)]
RoleName = Annotated[str, Path(max_length=40)]


@router.get("/{project}/members", summary="Who has which role in the project")
def members(project: ManagedProject, node: Annotated[object, Depends(services)]) -> list[MemberOut]:
    return [
        MemberOut(
            user=m.user,
            role=m.role,
            granted_by=m.granted_by,
            granted_at=m.granted_at,
            expires_at=m.expires_at,
        )
        for m in node.index.memberships(project_id=project.id)
    ]


@router.put(
    "/{project}/members/{user}/{role}",
    status_code=204,
    summary="Give a user a role in the project (for a number of days, or until revoked)",
)
def grant(
    project: ManagedProject,
    user: UserName,
    role: RoleName,
    caller: Caller,
    address: Address,
    node: Annotated[object, Depends(services)],
    body: MemberIn | None = None,
) -> Response:
    try:
        grant_role(
            node.index,
            project,
            user,
            role,
            trail=node.trail,
            actor=caller.name,
            source=address,
            days=body.days if body is not None else None,
            cohort_id=body.cohort if body is not None else None,
        )
    except InvalidProject as exc:
        raise HTTPException(400, str(exc)) from exc
    except UnknownUser as exc:
        raise HTTPException(404, str(exc)) from exc
    return Response(status_code=204)


@router.delete("/{project}/members/{user}/{role}", status_code=204, summary="Take a role away")
def revoke(
    project: ManagedProject,
    user: UserName,
    role: RoleName,
    caller: Caller,
    address: Address,
    node: Annotated[object, Depends(services)],
) -> Response:
    try:
        removed = revoke_role(
            node.index, project, user, role, trail=node.trail, actor=caller.name, source=address
        )
    except UnknownUser as exc:
        raise HTTPException(404, str(exc)) from exc
    if not removed:
        raise HTTPException(404, f"user {user!r} has no role {role!r} in project {project.name!r}")
    return Response(status_code=204)


class QuarantinedOut(BaseModel):
    id: int = Field(description="Names the object to release it")
    sop_instance_uid: str | None = Field(description="De-identified SOP Instance UID")
    pseudonym: str | None = Field(description="The subject's pseudonym")
    reason: str
    source: str = Field(description="Receiver that took it in: stow-rs, cli-import, ...")
    received_at: datetime


@router.get("/{project}/quarantine", summary="Objects held in quarantine for review")
def quarantine(
    project: ReviewableProject, node: Annotated[object, Depends(services)]
) -> list[QuarantinedOut]:
    return [
        QuarantinedOut(
            id=row["id"],
            sop_instance_uid=row["sop_instance_uid"],
            pseudonym=row["pseudonym"],
            reason=row["reason"],
            source=row["source"],
            received_at=row["received_at"],
        )
        for row in node.index.list_quarantine(project.id)
    ]


class ReleasedOut(BaseModel):
    released: bool
    reason: str
    sop_instance_uid: str | None


@router.post(
    "/{project}/quarantine/{quarantine_id}/release",
    summary="Release a reviewed object from quarantine into the archive (steward)",
)
async def release(
    quarantine_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    project: ManagedProject,
    caller: Caller,
    address: Address,
    node: Annotated[object, Depends(services)],
) -> ReleasedOut:
    outcome = await run_in_threadpool(
        node.pipeline.release,
        project,
        quarantine_id,
        actor=caller.name,
        source=address,
        audit=node.trail.event,
    )
    if outcome.status == Status.REJECTED and outcome.sop_instance_uid is None:
        raise HTTPException(404, outcome.reason)  # no such object in the quarantine
    if outcome.status != Status.STORED:
        raise HTTPException(409, outcome.reason)
    return ReleasedOut(
        released=True, reason=outcome.reason, sop_instance_uid=outcome.sop_instance_uid
    )


def schema_router(app: FastAPI) -> APIRouter:
    """GET /api/openapi.json: the node's OpenAPI document, for holders of a token."""
    schema = APIRouter(tags=["projects"])

    @schema.get(
        "/api/openapi.json", summary="OpenAPI description of this node", include_in_schema=False
    )
    def openapi(caller: Caller) -> dict:
        if not caller.authenticated:
            raise deny(caller, "the API description is for signed-in users")
        return app.openapi()

    return schema
