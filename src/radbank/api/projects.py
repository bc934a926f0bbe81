"""REST administration of projects: create, list, show, change de-identification settings.

Every change is recorded in the audit trail with the caller and their address. No route
opens the pseudonym vault: that is done by the honest broker with `radbank vault open`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from radbank.api.deps import Address, Admin, AdministeredProject, services
from radbank.index import Project, ProjectExists
from radbank.projects import InvalidProject, SettingsChange, create_project, update_settings

router = APIRouter(prefix="/api/projects", tags=["projects"])

OverrideKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
OverrideAction = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ProjectIn(BaseModel):
    name: str = Field(max_length=63, examples=["ct-dose-trial"])
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    profile: str = Field(default="basic", max_length=64, description="De-identification profile")


class ProjectSettingsIn(BaseModel):
    """De-identification settings to change; a field left out (or null) stays as it is."""

    model_config = ConfigDict(extra="forbid")

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
    name: str
    title: str
    description: str
    profile: str
    overrides: dict[str, str]
    pixel_rules: list[dict[str, Any]]
    ocr_check: bool
    settings_version: int = Field(description="Grows with every change of the settings")
    vault: VaultOut | None = Field(
        description="The pseudonym vault, or null: original identifiers are not kept"
    )
    created_at: datetime

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            name=project.name,
            title=project.title,
            description=project.description,
            profile=project.profile,
            overrides=dict(project.overrides),
            pixel_rules=[dict(rule) for rule in project.pixel_rules],
            ocr_check=project.ocr_check,
            settings_version=project.settings_version,
            vault=(
                VaultOut(key_id=project.vault_key_id, broker=project.vault_broker)
                if project.vault_key_id
                else None
            ),
            created_at=project.created_at,
        )


@router.post("", status_code=201, summary="Create a project")
def create(
    body: ProjectIn,
    caller: Admin,
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
    return ProjectOut.of(project)


@router.get("", summary="List projects")
def list_projects(_: Admin, node: Annotated[object, Depends(services)]) -> list[ProjectOut]:
    return [ProjectOut.of(p) for p in node.index.list_projects()]


@router.get("/{project}", summary="Show a project and its de-identification settings")
def show(project: AdministeredProject) -> ProjectOut:
    return ProjectOut.of(project)


@router.patch(
    "/{project}",
    summary="Change a project's de-identification settings",
    responses={400: {"description": "An invalid setting; the message names it and says why"}},
)
def change_settings(
    body: ProjectSettingsIn,
    project: AdministeredProject,
    caller: Admin,
    address: Address,
    node: Annotated[object, Depends(services)],
) -> ProjectOut:
    change = SettingsChange(
        profile=body.profile,
        overrides=body.overrides,
        pixel_rules=body.pixel_rules,
        ocr_check=body.ocr_check,
    )
    if not change.as_json():
        return ProjectOut.of(project)
    try:
        updated = update_settings(
            node.index, project, change, trail=node.trail, actor=caller.name, source=address
        )
    except InvalidProject as exc:
        raise HTTPException(400, f"project {project.name!r}: {exc}") from exc
    return ProjectOut.of(updated)


class QuarantinedOut(BaseModel):
    sop_instance_uid: str | None = Field(description="De-identified SOP Instance UID")
    reason: str
    source: str = Field(description="Receiver that took it in: stow-rs, cli-import, ...")
    received_at: datetime


@router.get("/{project}/quarantine", summary="Objects held in quarantine for review")
def quarantine(
    project: AdministeredProject, node: Annotated[object, Depends(services)]
) -> list[QuarantinedOut]:
    return [
        QuarantinedOut(
            sop_instance_uid=row["sop_instance_uid"],
            reason=row["reason"],
            source=row["source"],
            received_at=row["received_at"],
        )
        for row in node.index.list_quarantine(project.id)
    ]


def schema_router(app: FastAPI) -> APIRouter:
    """GET /api/openapi.json: the node's OpenAPI document, for holders of a token."""
    schema = APIRouter(tags=["projects"])

    @schema.get(
        "/api/openapi.json", summary="OpenAPI description of this node", include_in_schema=False
    )
    def openapi(_: Admin) -> dict:
        return app.openapi()

    return schema
