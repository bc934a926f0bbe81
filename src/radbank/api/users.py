"""REST for identities: sign in for a token, one's own tokens and roles, users (admin).

POST /api/auth/token          user name + password -> a personal API token (throttled)
GET  /api/users/me            who the caller is, node and project roles
GET|POST /api/tokens          the caller's own tokens (never their secrets) / a new one
DELETE /api/tokens/{id}       revoke (own tokens; an administrator: anyone's)
GET|POST /api/users, PATCH /api/users/{name}, POST /api/users/{name}/tokens   (admin)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from radbank.api.deps import Address, Admin, Caller, deny, services
from radbank.governance.identities import (
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    InvalidCredentials,
    InvalidIdentity,
    SignInRefused,
)
from radbank.governance.policy import NODE, SCOPES, Action, can
from radbank.index import ApiToken, User, UserExists

router = APIRouter(tags=["users and tokens"])

Node = Annotated[Any, Depends(services)]
UserName = Annotated[str, Path(max_length=128)]
TokenId = Annotated[str, Path(max_length=40)]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="token", max_length=100, description="What the token is for")
    scopes: list[str] | None = Field(
        default=None,
        max_length=len(SCOPES),
        description=f"Some of {', '.join(SCOPES)}; default: all",
    )
    days: int = Field(default=DEFAULT_TOKEN_DAYS, ge=1, le=MAX_TOKEN_DAYS)


class SignIn(TokenRequest):
    username: str = Field(max_length=128)
    password: str = Field(max_length=4096)


class TokenOut(BaseModel):
    token_id: str
    name: str
    user: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken, user: str) -> TokenOut:
        return cls(
            token_id=token.token_id,
            name=token.name,
            user=user,
            scopes=sorted(token.scopes),
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The bearer token. Shown once: store it safely")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=128)
    display_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, max_length=4096)
    node_roles: list[str] = Field(default_factory=list, max_length=2)


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, max_length=4096)
    node_roles: list[str] | None = Field(default=None, max_length=2)
    disabled: bool | None = None


class UserOut(BaseModel):
    name: str
    display_name: str
    source: str = Field(description="local, or oidc for users of the OpenID Connect issuer")
    node_roles: list[str]
    project_roles: dict[str, list[str]]
    disabled: bool
    created_at: datetime


class MeOut(BaseModel):
    name: str
    via: str = Field(description="How you were recognised: api-token, oidc, admin-token")
    node_roles: list[str]
    project_roles: dict[str, list[str]]
    scopes: list[str] | None = Field(description="Your token's scopes; null: not narrowed")


def _user_out(node: Any, user: User) -> UserOut:
    roles = node.index.user_roles(user.id)
    return UserOut(
        name=user.name,
        display_name=user.display_name,
        source=user.source,
        node_roles=sorted(user.node_roles),
        project_roles={p: sorted(r) for p, r in sorted(roles.items())},
        disabled=user.disabled,
        created_at=user.created_at,
    )


def _own_user(request: Request, caller: Caller) -> User:
    """The caller's user row; the admin token and anonymous callers have none."""
    node = services(request)
    user = node.index.get_user(caller.name) if caller.via in ("api-token", "oidc") else None
    if user is None:
        raise deny(
            caller, "only a user (signed in with a personal or OpenID Connect token) has tokens"
        )
    return user


# A dependency, so that the caller is checked before the request body is.
OwnUser = Annotated[User, Depends(_own_user)]


@router.post(
    "/api/auth/token",
    status_code=201,
    summary="Sign in with user name and password; get a personal API token",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Throttled"}},
)
async def sign_in(body: SignIn, address: Address, node: Node) -> IssuedTokenOut:
    try:
        user = await run_in_threadpool(
            node.identities.sign_in, body.username, body.password, address=address
        )
    except SignInRefused as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    except InvalidCredentials as exc:
        raise HTTPException(401, str(exc)) from exc
    return _issue(node, user, body, actor=user.name, address=address)


def _issue(
    node: Any, user: User, body: TokenRequest, *, actor: str, address: str
) -> IssuedTokenOut:
    try:
        issued = node.identities.issue_token(
            user, name=body.name, scopes=body.scopes, days=body.days, actor=actor, source=address
        )
    except InvalidIdentity as exc:
        raise HTTPException(400, str(exc)) from exc
    return IssuedTokenOut(token=issued.secret, **TokenOut.of(issued.token, user.name).model_dump())


@router.get("/api/users/me", summary="Who you are and what roles you have")
def me(caller: Caller) -> MeOut:
    if not caller.authenticated:
        raise deny(caller, "not signed in")
    return MeOut(
        name=caller.name,
        via=caller.via,
        node_roles=sorted(caller.node_roles),
        project_roles={p: sorted(r) for p, r in sorted(caller.project_roles.items())},
        scopes=sorted(caller.scopes) if caller.scopes is not None else None,
    )


@router.get("/api/tokens", summary="Your personal API tokens (without their secrets)")
def my_tokens(user: OwnUser, node: Node) -> list[TokenOut]:
    return [TokenOut.of(t, user.name) for t in node.index.list_tokens(user.id)]


@router.post("/api/tokens", status_code=201, summary="Issue yourself a new token")
def new_token(
    user: OwnUser, body: TokenRequest, caller: Caller, address: Address, node: Node
) -> IssuedTokenOut:
    if user.source == "oidc":
        # Such a token would outlive the user's account at the issuer.
        raise HTTPException(
            403,
            "users of the OpenID Connect issuer use the issuer's tokens; an administrator can "
            "issue a token for a service account",
        )
    if caller.scopes is not None:
        wanted = set(body.scopes) if body.scopes is not None else set(SCOPES)
        if not wanted <= caller.scopes:
            raise HTTPException(
                403, "a token cannot give more scopes than the token it is asked with"
            )
        if body.scopes is None:
            body = body.model_copy(update={"scopes": sorted(caller.scopes)})
    return _issue(node, user, body, actor=caller.name, address=address)


@router.delete("/api/tokens/{token_id}", status_code=204, summary="Revoke a token")
def revoke_token(token_id: TokenId, caller: Caller, address: Address, node: Node) -> Response:
    token = node.index.get_token(token_id)
    owner = node.index.get_user_by_id(token.user_id) if token is not None else None
    if not caller.authenticated:
        raise deny(caller, "not signed in")
    if owner is None or (owner.name != caller.name and not can(caller, Action.ADMINISTER, NODE)):
        raise HTTPException(404, f"you have no token with id {token_id[:40]!r}")
    node.identities.revoke_token(token_id, actor=caller.name, source=address)
    return Response(status_code=204)


@router.get("/api/users", summary="All users of the node (administrator)")
def list_users(_: Admin, node: Node) -> list[UserOut]:
    return [_user_out(node, u) for u in node.index.list_users()]


@router.post("/api/users", status_code=201, summary="Create a local user (administrator)")
def create_user(body: UserIn, caller: Admin, address: Address, node: Node) -> UserOut:
    try:
        user = node.identities.create_user(
            body.name,
            password=body.password,
            display_name=body.display_name,
            node_roles=body.node_roles,
            actor=caller.name,
            source=address,
        )
    except InvalidIdentity as exc:
        raise HTTPException(400, str(exc)) from exc
    except UserExists as exc:
        raise HTTPException(409, str(exc)) from exc
    return _user_out(node, user)


@router.patch(
    "/api/users/{name}", summary="Change a user's password, roles or status (administrator)"
)
def change_user(
    name: UserName, body: UserChange, caller: Admin, address: Address, node: Node
) -> UserOut:
    if node.index.get_user(name) is None:
        raise HTTPException(404, f"no user named {name[:80]!r}")
    try:
        if body.password is not None:
            node.identities.set_password(name, body.password, actor=caller.name, source=address)
        if body.node_roles is not None:
            node.identities.set_node_roles(name, body.node_roles, actor=caller.name, source=address)
        if body.disabled is not None:
            node.identities.set_disabled(name, body.disabled, actor=caller.name, source=address)
    except InvalidIdentity as exc:
        raise HTTPException(400, str(exc)) from exc
    return _user_out(node, node.index.get_user(name))


@router.post(
    "/api/users/{name}/tokens",
    status_code=201,
    summary="Issue a token for a user, e.g. a service account (administrator)",
)
def issue_for(
    name: UserName, body: TokenRequest, caller: Admin, address: Address, node: Node
) -> IssuedTokenOut:
    user = node.index.get_user(name)
    if user is None:
        raise HTTPException(404, f"no user named {name[:80]!r}")
    return _issue(node, user, body, actor=caller.name, address=address)
