"""Request dependencies shared by routers: services, the caller, the project they address."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from radbank.dicom.uids import is_valid_uid
from radbank.governance.policy import ADMIN, Action, Principal, can
from radbank.index import Project
from radbank.projects import InvalidProject, validate_name

if TYPE_CHECKING:  # the composition root imports this package; only the type comes back
    from radbank.app import Services

_bearer = HTTPBearer(auto_error=False, description="Admin API token")


def services(request: Request) -> Services:
    return request.app.state.services


def client_address(request: Request) -> str:
    """Where a request came from, for the audit trail (the peer address, as connected)."""
    return request.client.host if request.client else ""


Address = Annotated[str, Depends(client_address)]


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            401,
            "missing bearer token (send 'Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if services(request).keys.is_admin_token(credentials.credentials):
        return ADMIN
    raise HTTPException(
        401,
        "invalid or expired token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


Caller = Annotated[Principal, Depends(principal)]


def _project(request: Request, caller: Principal, name: str, action: Action) -> Project:
    try:
        validate_name(name)
    except InvalidProject as exc:
        raise HTTPException(400, str(exc)) from exc
    if not can(caller, action, f"project:{name}"):
        raise HTTPException(403, f"not allowed to {action} project {name!r}")
    project = services(request).index.get_project(name)
    if project is None:
        raise HTTPException(404, f"unknown project {name!r}")
    return project


ProjectName = Annotated[str, Path(description="Project name", max_length=200)]


def readable_project(request: Request, caller: Caller, project: ProjectName) -> Project:
    return _project(request, caller, project, Action.READ)


def writable_project(request: Request, caller: Caller, project: ProjectName) -> Project:
    return _project(request, caller, project, Action.WRITE)


def administered_project(request: Request, caller: Caller, project: ProjectName) -> Project:
    return _project(request, caller, project, Action.ADMINISTER)


def require_admin(caller: Caller) -> Principal:
    if not can(caller, Action.ADMINISTER, "node"):
        raise HTTPException(403, "administrator role required")
    return caller


ReadableProject = Annotated[Project, Depends(readable_project)]
WritableProject = Annotated[Project, Depends(writable_project)]
AdministeredProject = Annotated[Project, Depends(administered_project)]
Admin = Annotated[Principal, Depends(require_admin)]


def check_uid(value: str, what: str) -> str:
    """A UID from a URL path: 400 with the reason when it is not a valid DICOM UID."""
    if not is_valid_uid(value):
        raise HTTPException(400, f"invalid {what} UID {value[:80]!r} in the URL")
    return value
