"""Request dependencies shared by routers: services, the caller, the project they address.

Every route states what it does to what (`project_access(Action.READ)`, `node_access(...)`)
and these dependencies ask `governance.policy.can`. A refusal is 401 for a caller without
credentials (who may try again with some) and 403 for one whose credentials do not allow
it; an unknown project answers like a forbidden one to whoever may not see it, so names of
projects do not leak.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from radbank.dicom.uids import is_valid_uid
from radbank.governance.identities import CannotVerify, InvalidCredentials
from radbank.governance.policy import ADMIN, ANONYMOUS, NODE, Action, Principal, Resource, can
from radbank.index import Project
from radbank.projects import InvalidProject, validate_name

if TYPE_CHECKING:  # the composition root imports this package; only the type comes back
    from radbank.app import Services

_bearer = HTTPBearer(
    auto_error=False,
    description="A personal API token (rbk_...), an OpenID Connect access token of the "
    "configured issuer, or the node's admin token",
)
# Long enough for any OpenID Connect token; longer ones are refused before any parsing.
MAX_TOKEN_CHARS = 16384


def services(request: Request) -> Services:
    return request.app.state.services


def client_address(request: Request) -> str:
    """Where a request came from, for the audit trail (the peer address, as connected)."""
    return request.client.host if request.client else ""


Address = Annotated[str, Depends(client_address)]


def _unauthorised(message: str, error: str | None = "invalid_token") -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(401, message, headers={"WWW-Authenticate": challenge})


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: anonymous without an Authorization header, else whom the token names."""
    if request.headers.get("authorization") is None:
        request.state.principal = ANONYMOUS
        return ANONYMOUS
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorised("send 'Authorization: Bearer <token>'", error=None)
    token = credentials.credentials
    if len(token) > MAX_TOKEN_CHARS:
        raise _unauthorised(f"token longer than {MAX_TOKEN_CHARS} characters")
    node = services(request)
    if node.keys.is_admin_token(token):
        request.state.principal = ADMIN
        return ADMIN
    try:
        caller = await run_in_threadpool(node.identities.principal_for_token, token)
    except CannotVerify as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "30"}) from exc
    except InvalidCredentials as exc:
        raise _unauthorised(str(exc)) from exc
    request.state.principal = caller
    request.state.token_id = node.identities.token_id_of(token)
    return caller


Caller = Annotated[Principal, Depends(principal)]


def deny(caller: Principal, message: str) -> HTTPException:
    if not caller.authenticated:
        return _unauthorised(f"{message}: sign in (send a bearer token)", error=None)
    return HTTPException(403, message)


def project_access(action: Action) -> Callable[..., Any]:
    """A dependency giving the project named in the path, when the caller may `action` it."""

    def dependency(request: Request, caller: Caller, project: ProjectName) -> Project:
        try:
            validate_name(project)
        except InvalidProject as exc:
            raise HTTPException(400, str(exc)) from exc
        found = services(request).index.get_project(project)
        resource = Resource(project, open_access=found.open_access if found else False)
        if not can(caller, action, resource):
            raise deny(caller, f"not allowed to {action} in project {project!r}")
        if found is None:
            raise HTTPException(404, f"unknown project {project!r}")
        return found

    return dependency


def node_access(action: Action) -> Callable[..., Any]:
    def dependency(caller: Caller) -> Principal:
        if not can(caller, action, NODE):
            raise deny(caller, f"not allowed to {action} on this node")
        return caller

    return dependency


def user_caller(caller: Caller) -> Principal:
    """A caller who is a user of the node (personal or OpenID Connect token), not the admin
    token or an anonymous reader."""
    if caller.via not in ("api-token", "oidc"):
        raise deny(caller, "this is done by a user (personal or OpenID Connect token)")
    return caller


UserCaller = Annotated[Principal, Depends(user_caller)]

ProjectName = Annotated[str, Path(description="Project name", max_length=200)]

DiscoverableProject = Annotated[Project, Depends(project_access(Action.DISCOVER))]
ReadableProject = Annotated[Project, Depends(project_access(Action.READ))]
WritableProject = Annotated[Project, Depends(project_access(Action.WRITE))]
ReviewableProject = Annotated[Project, Depends(project_access(Action.REVIEW))]
ManagedProject = Annotated[Project, Depends(project_access(Action.MANAGE))]
Admin = Annotated[Principal, Depends(node_access(Action.ADMINISTER))]
ProjectCreator = Annotated[Principal, Depends(node_access(Action.CREATE_PROJECT))]
Auditor = Annotated[Principal, Depends(node_access(Action.AUDIT))]


def visible_studies(request: Request, project: Project) -> frozenset[str] | None:
    """The studies of the project the caller may read (a cohort-limited grant); None: all."""
    if project.open_access:
        return None
    caller: Principal = getattr(request.state, "principal", ANONYMOUS)
    return caller.visible_studies(project.name)


def check_uid(value: str, what: str) -> str:
    """A UID from a URL path: 400 with the reason when it is not a valid DICOM UID."""
    if not is_valid_uid(value):
        raise HTTPException(400, f"invalid {what} UID {value[:80]!r} in the URL")
    return value
