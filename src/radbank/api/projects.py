"""REST administration of projects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from radbank.api.deps import Admin, services
from radbank.index import Project, ProjectExists
from radbank.projects import InvalidProject, create_project, validate_name

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


@router.get("/{name}", summary="Show a project")
def show(name: str, _: Admin, node: Annotated[object, Depends(services)]) -> ProjectOut:
    try:
        validate_name(name)
    except InvalidProject as exc:
        raise HTTPException(400, str(exc)) from exc
    project = node.index.get_project(name)
    if project is None:
        raise HTTPException(404, f"unknown project {name!r}")
    return ProjectOut.of(project)
