"""OpenID Connect users on a live node: a local issuer (real keys, JWKS over HTTP on
loopback) vouches for them, the node maps their groups to roles, and refuses expired,
mis-addressed and forged tokens; an issuer that cannot be reached gives 503, not 401."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from liveserver import RunningServer, start_server
from oidc_issuer import Issuer, Keys, make_keys

from radbank.governance.audit import AuditTrail
from radbank.index import Index

PROJECT = "oidc-ct"
AUDIENCE = "radbank-node"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def issuer(keys: Keys) -> Iterator[Issuer]:
    running = Issuer()
    running.keys = [keys.rsa.jwk()]
    yield running
    running.stop()


def _oidc_env(issuer_url: str) -> dict[str, str]:
    return {
        "RADBANK_OIDC_ISSUER": issuer_url,
        "RADBANK_OIDC_AUDIENCE": AUDIENCE,
        "RADBANK_OIDC_ROLES_CLAIM": "realm_access.roles",
        "RADBANK_OIDC_ROLE_MAP": json.dumps(
            {"ct-readers": f"project:{PROJECT}:researcher", "node-auditors": "auditor"}
        ),
    }


@pytest.fixture(scope="module")
def node(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("oidc") / "data", extra_env=_oidc_env(issuer.url)
    )
    with running.client() as admin:
        for name in (PROJECT, "oidc-other"):
            assert admin.post("/api/projects", json={"name": name}).status_code == 201
    yield running
    running.stop()


def _token(keys: Keys, issuer: Issuer, user: str, roles: list[str], **changes: object) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer.url,
        "aud": AUDIENCE,
        "sub": f"sub-{user}",
        "preferred_username": user,
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": roles},
        **changes,
    }
    return keys.rsa.sign(claims)


def _get(node: RunningServer, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{node.base_url}{path}", headers={"Authorization": f"Bearer {token}"})


def test_an_issuer_user_gets_the_roles_its_groups_map_to(
    node: RunningServer, issuer: Issuer, keys: Keys
) -> None:
    token = _token(keys, issuer, "dr.lind", ["ct-readers", "unrelated-group"])
    me = _get(node, "/api/users/me", token)
    assert me.status_code == 200, me.text
    assert me.json()["via"] == "oidc" and me.json()["name"] == "dr.lind"
    assert me.json()["project_roles"] == {PROJECT: ["researcher"]}
    assert _get(node, f"/dicom-web/projects/{PROJECT}/studies", token).status_code == 200
    assert _get(node, "/dicom-web/projects/oidc-other/studies", token).status_code == 403
    stow = httpx.post(
        f"{node.base_url}/dicom-web/projects/{PROJECT}/studies",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        content=b"x",
    )
    assert stow.status_code == 403


def test_roles_given_on_the_node_add_to_the_issuer_roles(
    node: RunningServer, issuer: Issuer, keys: Keys
) -> None:
    token = _token(keys, issuer, "dr.berg", [])
    assert _get(node, "/api/users/me", token).json()["project_roles"] == {}
    with node.client() as admin:
        reply = admin.put("/api/projects/oidc-other/members/dr.berg/contributor")
        assert reply.status_code == 204, reply.text
    assert _get(node, "/api/users/me", token).json()["project_roles"] == {
        "oidc-other": ["contributor"]
    }


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 600}, "expired"),
        ({"aud": "another-service"}, "audience"),
        ({"iss": "https://impostor.example.org/realms/radbank"}, "issuer"),
    ],
)
def test_expired_and_misaddressed_tokens_are_refused(
    node: RunningServer, issuer: Issuer, keys: Keys, changes: dict, reason: str
) -> None:
    reply = _get(node, "/api/users/me", _token(keys, issuer, "dr.lind", ["ct-readers"], **changes))
    assert reply.status_code == 401
    assert reason in reply.json()["error"]


def test_forged_and_malformed_tokens_are_refused(
    node: RunningServer, issuer: Issuer, keys: Keys
) -> None:
    claims_of_admin = _token(keys, issuer, "mallory", ["node-auditors"])
    forged = keys.impostor.sign(json.loads(_payload(claims_of_admin)))
    for token in (forged, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c", "x" * 20000):
        reply = _get(node, "/api/users/me", token)
        assert reply.status_code == 401, token[:40]
        assert token not in reply.text


def _payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_issuer_users_are_audited_by_name(node: RunningServer, issuer: Issuer, keys: Keys) -> None:
    token = _token(keys, issuer, "dr.audit", ["node-auditors"])
    assert _get(node, "/api/users/me", token).status_code == 200
    index = Index(f"sqlite:///{Path(node.data_dir) / 'index.sqlite3'}")
    try:
        records = [r for r in AuditTrail(index).records() if r.actor == "dr.audit"]
    finally:
        index.close()
    assert any(r.action == "api.me" and r.detail.get("via") == "oidc" for r in records)
    assert all(token not in json.dumps(r.detail) for r in records)


def test_an_unreachable_issuer_gives_503(tmp_path: Path, keys: Keys) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = f"http://127.0.0.1:{closed}/realms/radbank"
    running = start_server(tmp_path / "data", extra_env=_oidc_env(gone))
    try:
        now = int(time.time())
        token = keys.rsa.sign(
            {"iss": gone, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 60}
        )
        reply = _get(running, "/api/users/me", token)
        assert reply.status_code == 503 and "Retry-After" in reply.headers
        assert "cannot" in reply.json()["error"]
    finally:
        running.stop()


def test_a_user_name_stays_with_the_account_that_first_used_it(
    node: RunningServer, issuer: Issuer, keys: Keys
) -> None:
    first = _token(keys, issuer, "dr.same", ["ct-readers"])
    assert _get(node, "/api/users/me", first).status_code == 200
    # The issuer gives the name to another account (another subject): no takeover.
    other = _token(keys, issuer, "dr.same", [], sub="someone-else")
    reply = _get(node, "/api/users/me", other)
    assert reply.status_code == 401 and "another account" in reply.json()["error"]


def test_issuer_users_cannot_make_tokens_that_outlive_their_account(
    node: RunningServer, issuer: Issuer, keys: Keys
) -> None:
    token = _token(keys, issuer, "dr.tokens", [])
    reply = httpx.post(
        f"{node.base_url}/api/tokens",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "script"},
    )
    assert reply.status_code == 403 and "issuer's tokens" in reply.json()["error"]
