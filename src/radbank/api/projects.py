"""REST administration of projects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

from radbank.api.deps import Admin, AdministeredProject, services
from radbank.index import Project, ProjectExists
from radbank.projects import InvalidProject, create_project

router = APIRouter(prefix="/api/projects", tags=["projects"])


class ProjectIn(BaseModel):
    name: str = Field(max_length=63, examples=["ct-dose-trial"])
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    profile: str = Field(default="basic", max_length=64, description="De-identification profile")


class ProjectOut(BaseModel):
    name: str
    title: str
    description: str
    profile: str
    created_at: datetime

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            name=project.name,
            title=project.title,
            description=project.description,
            profile=project.profile,
            created_at=project.created_at,
        )


@router.post("", status_code=201, summary="Create a project")
def create(body: ProjectIn, _: Admin, node: Annotated[object, Depends(services)]) -> ProjectOut:
    try:
        project = create_project(
            node.index,
            body.name,
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


@router.get("/{project}", summary="Show a project")
def show(project: AdministeredProject) -> ProjectOut:
    return ProjectOut.of(project)


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
