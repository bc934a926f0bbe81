"""The authorisation matrix over real HTTP: every endpoint x every role x own project /
other project / open-access project, against expectations written out here (not computed
by the policy under test). Zero unexpected allows, zero unexpected denials, and a new route
without an entry here fails the test.

Allowed means the answer is neither 401 nor 403: requests that change something are built
so that an allowed caller gets past the policy and then a 4xx for the body (or a no-op),
so the matrix leaves the projects as they were.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from liveserver import RunningServer

from radbank.api.multipart import write_parts
from radbank.synthetic import demo_studies

# What each project role may do in its own project, as the issue and docs/security.md say.
D, R, W, V, M = "discover", "read", "write", "review", "manage"
ROLE_ACTIONS = {
    "steward": {D, R, V, M},
    "contributor": {D, W, V},
    "researcher": {D, R},
    "honest_broker": {D},
    "steward-read-token": {D, R, V},  # a steward's token narrowed to the "read" scope
}
OPEN_PROJECT_ACTIONS = {D, R}

# (method, path) -> the action it needs in the project of its path
PROJECT_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/projects/{project}"): D,
    ("PATCH", "/api/projects/{project}"): M,
    ("GET", "/api/projects/{project}/quarantine"): V,
    ("POST", "/api/projects/{project}/quarantine/{quarantine_id}/release"): M,
    ("GET", "/api/projects/{project}/members"): M,
    ("PUT", "/api/projects/{project}/members/{user}/{role}"): M,
    ("DELETE", "/api/projects/{project}/members/{user}/{role}"): M,
    ("GET", "/api/projects/{project}/consents"): M,
    ("POST", "/api/projects/{project}/consents"): M,
    ("POST", "/api/projects/{project}/consents/import"): M,
    ("POST", "/api/projects/{project}/subjects/{pseudonym}/withdraw"): M,
    ("GET", "/api/projects/{project}/withdrawals"): M,
    ("GET", "/api/projects/{project}/access-requests"): M,
    ("POST", "/api/projects/{project}/access-requests"): "discover-as-user",
    ("GET", "/api/projects/{project}/cohorts"): D,
    ("POST", "/api/projects/{project}/cohorts"): R,
    ("POST", "/api/projects/{project}/access-requests/{request_id}/decision"): M,
    ("GET", "/api/projects/{project}/dose/events"): R,
    ("GET", "/api/projects/{project}/dose/studies"): R,
    ("GET", "/api/projects/{project}/dose/{table}/export"): R,
    ("GET", "/api/projects/{project}/dose/subjects/{pseudonym}"): R,
    ("GET", "/api/projects/{project}/dose/drl"): R,
    ("GET", "/api/projects/{project}/dose/above"): R,
    ("GET", "/api/projects/{project}/sparql"): R,
    ("POST", "/api/projects/{project}/sparql"): R,
    ("POST", "/api/projects/{project}/submissions"): W,
    ("GET", "/api/projects/{project}/submissions"): R,
    ("DELETE", "/api/projects/{project}/submissions/{submission_id}"): M,
    ("GET", "/api/projects/{project}/dcat"): D,
    ("POST", "/dicom-web/projects/{project}/studies"): W,
    ("POST", "/dicom-web/projects/{project}/studies/{study}"): W,
    ("GET", "/dicom-web/projects/{project}/studies"): R,
    ("GET", "/dicom-web/projects/{project}/series"): R,
    ("GET", "/dicom-web/projects/{project}/instances"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/metadata"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/series"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/instances"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/series/{series}"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/series/{series}/metadata"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}"): R,
    (
        "GET",
        "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}/metadata",
    ): R,
    (
        "GET",
        "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}/frames/{frames}",
    ): R,
    (
        "GET",
        "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag}",
    ): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/thumbnail"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/series/{series}/thumbnail"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/rendered"): R,
    ("GET", "/dicom-web/projects/{project}/studies/{study}/series/{series}/rendered"): R,
    (
        "GET",
        "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}/rendered",
    ): R,
    (
        "GET",
        "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}/thumbnail",
    ): R,
    (
        "GET",
        "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered",
    ): R,
    (
        "GET",
        "/dicom-web/projects/{project}/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/thumbnail",
    ): R,
}

# Node routes: (method, path) -> which callers are allowed ("admin", "auditor", "user":
# any user with a personal token, "signed-in": any authenticated caller, "anyone").
NODE_ROUTES: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/projects"): {"anyone"},
    ("POST", "/api/projects"): {"admin"},
    ("GET", "/api/users"): {"admin"},
    ("POST", "/api/users"): {"admin"},
    ("PATCH", "/api/users/{name}"): {"admin"},
    ("POST", "/api/users/{name}/tokens"): {"admin"},
    ("GET", "/api/users/me"): {"signed-in"},
    ("GET", "/api/tokens"): {"user"},
    ("POST", "/api/tokens"): {"user"},
    ("DELETE", "/api/tokens/{token_id}"): {"user", "admin"},
    ("POST", "/api/auth/token"): {"anyone"},
    ("GET", "/healthz"): {"anyone"},
    ("GET", "/api/audit"): {"admin", "auditor"},
    ("GET", "/api/audit/verify"): {"admin", "auditor"},
    ("GET", "/api/access-requests"): {"signed-in"},
    ("GET", "/api/dose/references"): {"signed-in"},
    ("PUT", "/api/dose/references/{set_name}"): {"admin"},
    # Anonymous callers query and see the open-access projects (the matrix has one).
    ("GET", "/sparql"): {"anyone"},
    ("POST", "/sparql"): {"anyone"},
    ("GET", "/api/catalog"): {"anyone"},
}

PRINCIPALS = (
    "anonymous",
    "admin",
    "auditor",
    "nobody",
    "steward",
    "contributor",
    "researcher",
    "honest_broker",
    "steward-read-token",
)


@dataclass
class Matrix:
    server: RunningServer
    tokens: dict[str, str | None]  # principal -> bearer token (None: anonymous)
    projects: dict[str, str]  # "own" / "other" / "open" -> project name
    uids: dict[str, tuple[str, str, str]]  # project name -> study, series, sop
    target_user: str

    def headers(self, principal: str) -> dict[str, str]:
        token = self.tokens[principal]
        return {"Authorization": f"Bearer {token}"} if token else {}


def _planted_ct(seed: int) -> bytes:
    dataset = next(demo_studies(sites=1, patients_per_site=1, studies_per_patient=1, seed=seed))
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _stow_body(data: bytes) -> bytes:
    return b"".join(write_parts([({"Content-Type": "application/dicom"}, iter([data]))], "b"))


@pytest.fixture(scope="module")
def matrix(server: RunningServer) -> Iterator[Matrix]:
    tag = secrets.token_hex(3)
    projects = {kind: f"mx-{kind}-{tag}" for kind in ("own", "other", "open")}
    with server.client() as admin:
        for name in projects.values():
            assert admin.post("/api/projects", json={"name": name}).status_code == 201
        reply = admin.patch(f"/api/projects/{projects['open']}", json={"open_access": True})
        assert reply.status_code == 200, reply.text
        uids = {}
        for seed, name in enumerate(projects.values(), start=1):
            reply = admin.post(
                f"/dicom-web/projects/{name}/studies",
                content=_stow_body(_planted_ct(seed)),
                headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
            )
            assert reply.status_code == 200, reply.text
            found = admin.get(f"/dicom-web/projects/{name}/instances").json()[0]
            uids[name] = tuple(found[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
        tokens: dict[str, str | None] = {"anonymous": None, "admin": server.token}
        users = [p for p in PRINCIPALS if p not in ("anonymous", "admin", "steward-read-token")]
        target = f"mx-target-{tag}"
        for name in [*(f"{user}-{tag}" for user in users), target]:
            roles = ["auditor"] if name == f"auditor-{tag}" else []
            reply = admin.post("/api/users", json={"name": name, "node_roles": roles})
            assert reply.status_code == 201, reply.text
        for role in ROLE_ACTIONS:
            if role in ("steward-read-token",):
                continue
            reply = admin.put(f"/api/projects/{projects['own']}/members/{role}-{tag}/{role}")
            assert reply.status_code == 204, reply.text
        for user in users:
            reply = admin.post(f"/api/users/{user}-{tag}/tokens", json={"name": "matrix"})
            assert reply.status_code == 201, reply.text
            tokens[user] = reply.json()["token"]
        reply = admin.post(
            f"/api/users/steward-{tag}/tokens", json={"name": "read only", "scopes": ["read"]}
        )
        tokens["steward-read-token"] = reply.json()["token"]
    yield Matrix(server, tokens, projects, uids, target)


def _expected_in_project(principal: str, kind: str, action: str) -> bool:
    if action == "discover-as-user":  # asking for access: users who can see the project
        return principal not in ("anonymous", "admin") and _expected_in_project(principal, kind, D)
    if principal == "admin":
        return True
    if kind == "open" and action in OPEN_PROJECT_ACTIONS:
        return True
    if action == D and principal != "anonymous":
        return True  # the catalogue of dataset descriptions is open to signed-in users
    if principal == "auditor":
        return False
    if kind == "own" and principal in ROLE_ACTIONS:
        return action in ROLE_ACTIONS[principal]
    return False


def _expected_on_node(principal: str, allowed: set[str]) -> bool:
    if "anyone" in allowed:
        return True
    if principal == "anonymous":
        return False
    if "signed-in" in allowed:
        return True
    if principal == "admin":
        return "admin" in allowed
    # a user with a personal token
    return "user" in allowed or (principal == "auditor" and "auditor" in allowed)


def _project_request(
    matrix: Matrix, method: str, path: str, project: str
) -> tuple[str, dict[str, object]]:
    study, series, sop = matrix.uids[project]
    url = path.format(
        project=project,
        study=study,
        series=series,
        sop=sop,
        frames="1",
        tag="7FE00010",
        user=matrix.target_user,
        role="researcher",
        pseudonym="RB-not-a-pseudonym",  # refused after the policy: nobody is withdrawn
        request_id="999999",
        quarantine_id="999999",  # no such object: 404 after the policy
        table="events",
        submission_id="0" * 32,  # no such submission: 404 after the policy
    )
    options: dict[str, object] = {}
    if method == "PATCH":
        options["json"] = {}  # changes nothing
    elif method == "POST":  # STOW with a body the server refuses after the policy
        options["content"] = b"not multipart"
        options["headers"] = {"Content-Type": "text/plain"}
    return url, options


def test_every_route_of_the_node_is_in_the_matrix(matrix: Matrix) -> None:
    with matrix.server.client() as admin:
        schema = admin.get("/api/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }
    known = set(PROJECT_ROUTES) | set(NODE_ROUTES)
    assert routes - known == set(), "routes without an entry in the authorisation matrix"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_project_routes(matrix: Matrix, principal: str) -> None:
    unexpected = []
    with httpx.Client(base_url=matrix.server.base_url, timeout=60) as http:
        for kind, project in matrix.projects.items():
            for (method, path), action in PROJECT_ROUTES.items():
                url, options = _project_request(matrix, method, path, project)
                headers = {**matrix.headers(principal), **options.pop("headers", {})}  # type: ignore[dict-item]
                reply = http.request(method, url, headers=headers, **options)  # type: ignore[arg-type]
                allowed = reply.status_code not in (401, 403)
                expected = _expected_in_project(principal, kind, action)
                if allowed != expected or reply.status_code >= 500:
                    unexpected.append(f"{method} {path} in {kind} project: {reply.status_code}")
                if not allowed and principal == "anonymous":
                    assert reply.status_code == 401 and "WWW-Authenticate" in reply.headers
    assert unexpected == []


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_node_routes(matrix: Matrix, principal: str) -> None:
    unexpected = []
    requests = {
        ("GET", "/api/projects"): ("/api/projects", {}),
        ("POST", "/api/projects"): ("/api/projects", {"json": {"name": "Not A Valid Name"}}),
        ("GET", "/api/users"): ("/api/users", {}),
        ("POST", "/api/users"): ("/api/users", {"json": {"name": "../bad"}}),
        ("PATCH", "/api/users/{name}"): (f"/api/users/{matrix.target_user}", {"json": {}}),
        ("POST", "/api/users/{name}/tokens"): (
            f"/api/users/{matrix.target_user}/tokens",
            {"json": {"days": 0}},
        ),
        ("GET", "/api/users/me"): ("/api/users/me", {}),
        ("GET", "/api/tokens"): ("/api/tokens", {}),
        ("POST", "/api/tokens"): ("/api/tokens", {"json": {"days": 0}}),
        ("DELETE", "/api/tokens/{token_id}"): ("/api/tokens/0000000000000000", {}),
        ("POST", "/api/auth/token"): (
            "/api/auth/token",
            {"json": {"username": "nobody-at-all", "password": "x" * 12}},
        ),
        ("GET", "/healthz"): ("/healthz", {}),
        ("GET", "/api/audit"): ("/api/audit", {"params": {"limit": 1}}),
        ("GET", "/api/audit/verify"): ("/api/audit/verify", {}),
        ("GET", "/api/access-requests"): ("/api/access-requests", {}),
        ("GET", "/api/dose/references"): ("/api/dose/references", {}),
        ("PUT", "/api/dose/references/{set_name}"): (
            "/api/dose/references/matrix",
            {"content": b"not,a,drl\n", "headers": {"Content-Type": "text/csv"}},
        ),
        ("GET", "/sparql"): ("/sparql", {}),  # no query: 400 after the policy
        ("POST", "/sparql"): (
            "/sparql",
            {"content": b"not a query", "headers": {"Content-Type": "text/plain"}},
        ),
        ("GET", "/api/catalog"): ("/api/catalog", {}),
    }
    assert set(requests) == set(NODE_ROUTES)
    with httpx.Client(base_url=matrix.server.base_url, timeout=60) as http:
        for route, (url, options) in requests.items():
            options = dict(options)
            headers = {**matrix.headers(principal), **options.pop("headers", {})}  # type: ignore[dict-item]
            reply = http.request(route[0], url, headers=headers, **options)  # type: ignore[arg-type]
            allowed = reply.status_code not in (401, 403)
            if route == ("POST", "/api/auth/token"):
                # Reaches the password check (repeated failures from one address: throttled).
                allowed = reply.status_code == 429 or (
                    reply.status_code == 401 and "wrong password" in reply.text
                )
            if (
                allowed != _expected_on_node(principal, NODE_ROUTES[route])
                or reply.status_code >= 500
            ):
                unexpected.append(f"{route[0]} {route[1]}: {reply.status_code} {reply.text[:120]}")
    assert unexpected == []


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_the_project_list_holds_only_what_the_caller_may_see(
    matrix: Matrix, principal: str
) -> None:
    with httpx.Client(base_url=matrix.server.base_url, timeout=60) as http:
        reply = http.get("/api/projects", headers=matrix.headers(principal))
    assert reply.status_code == 200
    seen = {p["name"] for p in reply.json()} & set(matrix.projects.values())
    expected = {
        name for kind, name in matrix.projects.items() if _expected_in_project(principal, kind, D)
    }
    assert seen == expected
    for project in reply.json():
        if project["name"] in matrix.projects.values() and principal not in ("admin", "steward"):
            assert project["overrides"] is None and project["vault"] is None


def test_an_unknown_project_answers_like_a_forbidden_one(matrix: Matrix) -> None:
    with httpx.Client(base_url=matrix.server.base_url, timeout=60) as http:
        for principal in ("researcher", "anonymous"):
            headers = matrix.headers(principal)
            missing = http.get("/dicom-web/projects/no-such-project-xyz/studies", headers=headers)
            other = http.get(
                f"/dicom-web/projects/{matrix.projects['other']}/studies", headers=headers
            )
            assert missing.status_code == other.status_code
            assert missing.json()["error"].replace("no-such-project-xyz", "P") == other.json()[
                "error"
            ].replace(matrix.projects["other"], "P")
