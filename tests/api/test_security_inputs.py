"""Hostile inputs over real HTTP, each answered with a clear 4xx that changes nothing.

Path traversal in every path parameter of every operation of the node's schema (encoded
and literal dot segments, encoded slashes and backslashes, NUL bytes, overlong UTF-8, very
long names) never reaches a file: the answer is a 4xx, never holds /etc/passwd, and no
project, user, role, stored object or file anywhere under the test's temporary tree
changes. Malformed, oversized and forged bearer tokens get 401 with a WWW-Authenticate
challenge, and neither they nor passwords are repeated in the answer, the audit trail or
the server's log. SQL metacharacters in QIDO parameters, in names in paths and bodies and
in sign-in user names are data, not SQL: a search for `' OR '1'='1` finds nothing, `%` and
`_` are no wildcards (DICOM's `*` and `?` are), the projects and users stay as they were.
A revoked token and a revoked role stop working on the very next request, and a steward's
read-scoped token cannot manage the project.

Requests whose bytes matter (paths with literal `..` or NUL, header values with trailing
spaces or non-ASCII bytes) go over a raw socket, so that no client normalises them first.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import secrets
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from liveserver import RunningServer, new_project

from radbank.api.multipart import write_parts
from radbank.synthetic import demo_studies

# Sign-ins leave from their own loopback address: the throttle counts failures per address,
# and other tests (the schemathesis fuzzing) fail sign-ins from theirs.
SIGN_IN_ADDRESS = "127.0.0.44"
PASSWD_LINE = b"root:"
STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=b'
STUDY, SERIES, SOP, PATIENT_ID = "0020000D", "0020000E", "00080018", "00100020"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    server: RunningServer,
    method: str,
    target: bytes,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> Reply:
    """One HTTP/1.1 request with exactly these bytes in the request line and headers."""
    head = [
        method.encode() + b" " + target + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Connection: close",
        b"Content-Length: %d" % len(body),
        *(name + b": " + value for name, value in headers),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as connection:
        connection.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )


def admin_headers(server: RunningServer, content_type: bytes = b"") -> list[tuple[bytes, bytes]]:
    headers = [(b"Authorization", b"Bearer " + server.token.encode())]
    return headers + ([(b"Content-Type", content_type)] if content_type else [])


def assert_json_error(status: int, content_type: str, body: bytes, context: object) -> None:
    assert content_type.startswith("application/json"), (context, status, body[:200])
    error = json.loads(body)
    assert error["status"] == status and isinstance(error["error"], str) and error["error"], (
        context,
        error,
    )


def audit_head(server: RunningServer) -> int:
    with server.client() as admin:
        return admin.get("/api/audit/verify").json()["records"]


def written_since(server: RunningServer, head: int) -> bytes:
    """The audit records after `head` and the server's log: where a secret must not end up."""
    with server.client() as admin:
        trail = admin.get("/api/audit", params={"after": head, "format": "syslog"}).content
    return trail + server.log.read_bytes()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ct_instances(count: int, seed: int) -> list[bytes]:
    instances = []
    for dataset in demo_studies(
        sites=1,
        patients_per_site=count,
        studies_per_patient=1,
        series_per_study=1,
        instances_per_series=1,
        dose_reports=False,
        seed=seed,
    ):
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        instances.append(buffer.getvalue())
    return instances


def stow_body(instances: list[bytes]) -> bytes:
    parts = [({"Content-Type": "application/dicom"}, [data]) for data in instances]
    return b"".join(write_parts(parts, "b"))


@dataclass
class Site:
    """A project holding three CT studies of three patients, and a user without roles."""

    server: RunningServer
    project: str
    study: str
    series: str
    sop: str
    patient_ids: list[str]
    user: str
    spare_instance: bytes  # a valid instance that is never stored


@pytest.fixture(scope="module")
def site(server: RunningServer) -> Site:
    project = new_project(server)
    *stored, spare = _ct_instances(4, seed=23)
    user = f"sec-{secrets.token_hex(4)}"
    with server.client() as admin:
        reply = admin.post(
            f"/dicom-web/projects/{project}/studies",
            content=stow_body(stored),
            headers={"Content-Type": STOW_TYPE},
        )
        assert reply.status_code == 200, reply.text
        assert admin.post("/api/users", json={"name": user}).status_code == 201
        studies = admin.get(f"/dicom-web/projects/{project}/studies").json()
        instance = admin.get(f"/dicom-web/projects/{project}/instances").json()[0]
    assert len(studies) == 3
    return Site(
        server,
        project,
        instance[STUDY]["Value"][0],
        instance[SERIES]["Value"][0],
        instance[SOP]["Value"][0],
        sorted(s[PATIENT_ID]["Value"][0] for s in studies),
        user,
        spare,
    )


def new_user(server: RunningServer, *, roles: Sequence[str] = (), project: str = "") -> str:
    name = f"sec-{secrets.token_hex(4)}"
    with server.client() as admin:
        assert admin.post("/api/users", json={"name": name}).status_code == 201
        for role in roles:
            reply = admin.put(f"/api/projects/{project}/members/{name}/{role}")
            assert reply.status_code == 204, reply.text
    return name


def issue(server: RunningServer, user: str, scopes: list[str] | None = None) -> dict[str, Any]:
    with server.client() as admin:
        reply = admin.post(
            f"/api/users/{user}/tokens", json={"name": "security test", "scopes": scopes}
        )
    assert reply.status_code == 201, reply.text
    return reply.json()


def node_state(site: Site) -> dict[str, Any]:
    """What a hostile request must not change: projects, users, roles, stored objects, the
    triples of the semantic store, files."""
    project = f"/dicom-web/projects/{site.project}"
    with site.server.client() as admin:
        # Counted first: a query waits for the triples still on their way to the store, so
        # the files below are listed after the background writer has finished with them.
        counted = admin.get(
            "/sparql",
            params={"query": "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"},
            headers={"Accept": "application/sparql-results+json"},
        )
        assert counted.status_code == 200, counted.text
        projects = admin.get("/api/projects").json()
        users = admin.get("/api/users").json()
        return {
            "projects": sorted((p["name"], p["title"], p["open_access"]) for p in projects),
            "settings": admin.get(f"/api/projects/{site.project}").json(),
            "users": sorted(
                (u["name"], u["disabled"], u["node_roles"], sorted(u["project_roles"].items()))
                for u in users
            ),
            "members": admin.get(f"/api/projects/{site.project}/members").json(),
            "instances": sorted(
                i[SOP]["Value"][0] for i in admin.get(f"{project}/instances").json()
            ),
            "triples": counted.json()["results"]["bindings"][0]["n"]["value"],
            "files": _files(site.server.data_dir.parent.parent),
        }


def _files(root: Path) -> set[str]:
    """Every file under the session's temporary tree but the index's own (WAL, locks) and
    the embedded RDF store's (RocksDB renames its tables and logs as it compacts; what the
    store holds is compared by counting its triples)."""
    return {
        os.path.relpath(os.path.join(directory, name), root)
        for directory, _, names in os.walk(root)
        if not os.path.exists(os.path.join(directory, "CURRENT"))  # a RocksDB directory
        for name in names
        if not name.startswith("index.sqlite3")
    }


@pytest.fixture
def unchanged(site: Site) -> Iterator[None]:
    before = node_state(site)
    yield
    assert node_state(site) == before


# Path traversal ------------------------------------------------------------------------

TRAVERSALS = [
    b"..%2F..%2F..%2Fetc%2Fpasswd",
    b"%2e%2e",
    b"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"..%5c..%5cetc%5cpasswd",
    b"%252e%252e%252fetc%252fpasswd",  # encoded twice
    b"%2Fetc%2Fpasswd",
    b"..",
    b"../../../../etc/passwd",
    b"%00",
    b"passwd%00.dcm",
    b"a\x00b",  # a raw NUL: the HTTP parser refuses the request line
    b"%C0%AE%C0%AE%C0%AF",  # overlong UTF-8 for ../
    b"..;",
    b"x" * 5000,
]


def _real_values(site: Site) -> dict[str, str]:
    """A good value for every path parameter, so that only the one under attack is wrong."""
    return {
        "project": site.project,
        "study": site.study,
        "series": site.series,
        "sop": site.sop,
        "frames": "1",
        "tag": "7FE00010",
        "user": site.user,
        "name": site.user,
        "role": "steward",
        "token_id": "0123456789abcdef",
        "pseudonym": "RB-" + "A" * 20,
        "request_id": "1",
        "quarantine_id": "1",
        "table": "events",
        "set_name": "national",
        "submission_id": "0" * 32,
    }


def _bodies(site: Site) -> dict[str, bytes]:
    """Bodies that would change something, were the path accepted (by media type)."""
    return {
        "application/json": json.dumps(
            {"title": "pwned", "open_access": True, "node_roles": ["admin"]}
        ).encode(),
        "multipart/related": stow_body([site.spare_instance]),  # storing it would show
    }


def _attacks(site: Site, paths: dict[str, Any]) -> Iterator[tuple[str, bytes, bytes, bytes]]:
    """(method, request target, content type, body) with one path parameter made hostile,
    for every path parameter of every operation of the node's schema."""
    good, bodies = _real_values(site), _bodies(site)
    for template, operations in paths.items():
        names = re.findall(r"{(\w+)}", template)
        missing = set(names) - set(good)
        assert not missing, f"{template}: give _real_values a good value for {missing}"
        for method, operation in operations.items():
            media_types = list(operation.get("requestBody", {}).get("content", {}))
            content_type = media_types[0].split(";")[0] if media_types else ""
            body = bodies.get(content_type, b"")
            if content_type == "multipart/related":
                content_type = STOW_TYPE
            for name in names:
                path = template.format(**{**good, name: "{attacked}"}).encode()
                for traversal in TRAVERSALS:
                    target = path.replace(b"{attacked}", traversal)
                    yield method.upper(), target, content_type.encode(), body


def test_path_traversal_in_every_path_parameter_is_refused(site: Site, unchanged: None) -> None:
    with site.server.client() as admin:
        paths = admin.get("/api/openapi.json").json()["paths"]
    attacked = {name for template in paths for name in re.findall(r"{(\w+)}", template)}
    assert {"project", "user", "name", "token_id", "study", "series", "sop"} <= attacked
    for method, target, content_type, body in _attacks(site, paths):
        headers = admin_headers(site.server, content_type)
        reply = send(site.server, method, target, headers=headers, body=body)
        context = (method, target[:120])
        assert 400 <= reply.status < 500, (context, reply.status, reply.body[:300])
        assert PASSWD_LINE not in reply.body, context
        # Control bytes and non-ASCII in the request line are refused by the HTTP parser,
        # before the application (and its JSON errors) sees anything.
        if all(0x20 < byte < 0x7F for byte in target):
            content = reply.headers.get("content-type", "")
            assert_json_error(reply.status, content, reply.body, context)


# Bearer tokens -------------------------------------------------------------------------


def _malformed_authorizations(real_token_id: str, wrong_secret: str) -> list[bytes]:
    return [
        b"Bearer",
        b"Bearer ",
        b"Bearer    ",
        b"Basic xyz",
        b"Basic " + b"YWRtaW46YWRtaW4=",  # admin:admin
        b"Bearer " + b"A" * 100_000,
        b"Bearer a.b.c",
        b"Bearer eyJhbGciOiJub25lIn0.e30.",  # an unsigned JWT
        b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
        "Bearer tökén-ünïcode".encode(),
        b"Bearer \xff\xfe\xfd\x80",  # not UTF-8 at all
        f"Bearer rbk_{real_token_id}_{wrong_secret}".encode(),  # a real id, a wrong secret
        f"Bearer rbk_0123456789abcdef_{wrong_secret}".encode(),  # an unknown id
        b"Bearer rbk_",
        b"Bearer test-admin-token-and-more",
        b"Bearer test-admin-toke",
        b"Bearer test-admin-token, Bearer x",
    ]


def test_malformed_and_forged_bearer_tokens_get_401_and_are_not_echoed(site: Site) -> None:
    real = issue(site.server, site.user)
    wrong_secret = secrets.token_urlsafe(32)
    head = audit_head(site.server)
    assert site.server.token == "test-admin-token"  # the prefixes above are of this token
    project = f"/dicom-web/projects/{site.project}/studies"
    for authorization in _malformed_authorizations(real["token_id"], wrong_secret):
        credentials = authorization.partition(b" ")[2].strip()
        for target in (b"/api/users/me", b"/api/projects", project.encode(), b"/api/openapi.json"):
            reply = send(site.server, "GET", target, headers=[(b"Authorization", authorization)])
            context = (authorization[:60], target)
            assert reply.status == 401, (context, reply.status, reply.body[:300])
            assert reply.headers.get("www-authenticate", "").startswith("Bearer"), context
            assert_json_error(401, reply.headers.get("content-type", ""), reply.body, context)
            if len(credentials) >= 4:
                assert credentials not in reply.body, context
                assert credentials[-24:] not in reply.body, context
    reply = send(
        site.server,
        "GET",
        b"/api/users/me",
        headers=[(b"Authorization", b"Bearer " + real["token"].encode())],
    )
    assert reply.status == 200 and reply.json()["name"] == site.user  # the real one still works
    written = written_since(site.server, head)
    assert b"denied" in written  # the refusals were audited ...
    for secret in (wrong_secret, real["token"].split("_", 2)[2], "eyJzdWIiOiJhZG1pbiJ9"):
        assert secret.encode() not in written  # ... without the tokens


# SQL metacharacters --------------------------------------------------------------------

SQL_METACHARACTERS = [
    "' OR '1'='1",
    "*' OR '1'='1",
    "' OR 1=1 --",
    '"; DROP TABLE projects; --',
    "'; DELETE FROM users; --",
    "%",
    "_",
    "%_%",
    "\\",
    "\\%",
    "1; SELECT sqlite_version()",
    "') UNION SELECT name FROM sqlite_master --",
    "Łódź ünïcödé 日本語 ‮",
]
QIDO_STRING_PARAMETERS = [
    "PatientID",
    "PatientName",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
    "ModalitiesInStudy",
    "00100020",
    "includefield",
    "limit",
    "offset",
]


def test_sql_metacharacters_in_qido_parameters_match_nothing(site: Site, unchanged: None) -> None:
    base = f"/dicom-web/projects/{site.project}"
    levels = ("/studies", "/series", "/instances", f"/studies/{site.study}/instances")
    with site.server.client() as admin:
        for level in levels:
            for name in QIDO_STRING_PARAMETERS:
                for value in SQL_METACHARACTERS:
                    reply = admin.get(base + level, params={name: value})
                    context = (level, name, value)
                    if name in ("includefield", "limit", "offset"):
                        assert reply.status_code == 400, (context, reply.text[:200])
                    else:
                        assert reply.status_code in (200, 400), (context, reply.text[:200])
                    if reply.status_code == 200:
                        assert reply.json() == [], context
                    else:
                        assert_json_error(
                            400, reply.headers["content-type"], reply.content, context
                        )


def test_only_dicom_wildcards_are_wildcards(site: Site, unchanged: None) -> None:
    patient = site.patient_ids[0]
    expected = {
        patient: [patient],
        "*": site.patient_ids,
        patient[:3] + "*": site.patient_ids,
        patient[:-1] + "?": [patient],
        "*" + patient[3:]: [patient],
        patient[:-1] + "_": [],
        patient[:-1] + "%": [],
        patient[:2] + "_*": [],
        patient[:3] + "%": [],
        "%": [],
        "_" * len(patient): [],
        patient.lower(): [],  # PatientID (LO) matches case-sensitively
        "' OR '1'='1": [],
        patient + "' OR '1'='1": [],
    }
    with site.server.client() as admin:
        for value, patients in expected.items():
            reply = admin.get(
                f"/dicom-web/projects/{site.project}/studies", params={"PatientID": value}
            )
            assert reply.status_code == 200, (value, reply.text)
            found = sorted(s[PATIENT_ID]["Value"][0] for s in reply.json())
            assert found == patients, value


def test_sql_metacharacters_in_names_are_refused_or_kept_as_text(site: Site) -> None:
    before = node_state(site)
    title = "'; DROP TABLE projects; -- 日本"
    display_name = '"); DELETE FROM users; --'
    created = f"sec-{secrets.token_hex(4)}"
    with site.server.client() as admin:
        for value in SQL_METACHARACTERS:
            quoted = quote(value, safe="")
            assert admin.post("/api/projects", json={"name": value}).status_code == 400
            assert admin.post("/api/users", json={"name": value}).status_code == 400
            assert admin.get(f"/api/projects/{quoted}").status_code == 400
            assert admin.patch(f"/api/projects/{quoted}", json={"title": "x"}).status_code == 400
            assert admin.patch(f"/api/users/{quoted}", json={"disabled": True}).status_code == 404
            assert admin.post(f"/api/users/{quoted}/tokens", json={}).status_code == 404
            member = f"/api/projects/{site.project}/members/{quoted}"
            assert admin.put(f"{member}/researcher").status_code == 404
            assert admin.delete(f"{member}/researcher").status_code == 404
            role = f"/api/projects/{site.project}/members/{site.user}/{quoted}"
            assert admin.put(role).status_code == 400
            reply = admin.get("/api/audit", params={"project": value, "limit": 5})
            assert reply.status_code == 200
        # Values of JSON bodies are stored as they were sent, not run.
        reply = admin.patch(f"/api/projects/{site.project}", json={"title": title})
        assert reply.status_code == 200, reply.text
        reply = admin.post("/api/users", json={"name": created, "display_name": display_name})
        assert reply.status_code == 201, reply.text
        after = node_state(site)
        assert admin.get(f"/api/projects/{site.project}").json()["title"] == title
        users = {u["name"]: u for u in admin.get("/api/users").json()}
        assert users[created]["display_name"] == display_name
        admin.patch(f"/api/projects/{site.project}", json={"title": before["settings"]["title"]})
    assert [p for p in after["projects"] if p[0] != site.project] == [
        p for p in before["projects"] if p[0] != site.project
    ]
    assert after["users"] == sorted([*before["users"], (created, False, [], [])])
    assert (after["members"], after["instances"]) == (before["members"], before["instances"])


def test_sql_metacharacters_in_sign_in_user_names_sign_nobody_in(site: Site) -> None:
    password = secrets.token_urlsafe(16)
    name = f"sec-{secrets.token_hex(4)}"
    with site.server.client() as admin:
        reply = admin.post("/api/users", json={"name": name, "password": password})
        assert reply.status_code == 201, reply.text
    head = audit_head(site.server)
    transport = httpx.HTTPTransport(local_address=SIGN_IN_ADDRESS)
    with httpx.Client(base_url=site.server.base_url, transport=transport, timeout=60) as http:
        # Each user name is tried once, so neither it nor the address gets locked.
        for username in [*SQL_METACHARACTERS, f"{name}' --", f"{name}' OR '1'='1", f"{name}%"]:
            reply = http.post("/api/auth/token", json={"username": username, "password": password})
            assert reply.status_code == 401, (username, reply.status_code, reply.text)
            assert reply.json()["error"] == "unknown user name or wrong password"
            assert password not in reply.text
        reply = http.post("/api/auth/token", json={"username": name, "password": password})
        assert reply.status_code == 201, reply.text  # the same address may still sign in
        assert reply.json()["user"] == name
    written = written_since(site.server, head)
    assert f'actor="{name}"'.encode() in written  # the sign-ins were audited ...
    assert password.encode() not in written  # ... without the password
    assert reply.json()["token"].split("_", 2)[2].encode() not in written


# Revocation of tokens and roles; scopes ------------------------------------------------


def test_a_revoked_token_is_refused_on_its_next_use(site: Site) -> None:
    user = new_user(site.server)
    revoked, kept = issue(site.server, user), issue(site.server, user)
    with httpx.Client(base_url=site.server.base_url, timeout=60) as http:
        reply = http.get("/api/users/me", headers=bearer(revoked["token"]))
        assert reply.status_code == 200 and reply.json()["name"] == user
        with site.server.client() as admin:
            assert admin.delete(f"/api/tokens/{revoked['token_id']}").status_code == 204
        for reply in (
            http.get("/api/users/me", headers=bearer(revoked["token"])),
            http.post("/api/tokens", json={}, headers=bearer(revoked["token"])),
        ):
            assert reply.status_code == 401, reply.text
            assert reply.headers["www-authenticate"].startswith("Bearer")
            assert "revoked" in reply.json()["error"]
            assert revoked["token"].split("_", 2)[2] not in reply.text  # the secret part
        reply = http.get("/api/users/me", headers=bearer(kept["token"]))
        assert reply.status_code == 200  # revocation is of one token, not of the user


def test_a_role_given_for_days_works_and_stops_at_once_when_taken_away(site: Site) -> None:
    user = new_user(site.server)
    token = issue(site.server, user)["token"]
    member = f"/api/projects/{site.project}/members/{user}/researcher"
    search = f"/dicom-web/projects/{site.project}/studies"
    with site.server.client() as admin, httpx.Client(base_url=site.server.base_url) as http:
        assert http.get(search, headers=bearer(token)).status_code == 403
        for days in (0, -1, 3651, "1; DROP TABLE memberships", 1.5):
            assert admin.put(member, json={"days": days}).status_code == 400, days
        assert http.get(search, headers=bearer(token)).status_code == 403  # nothing was given

        assert admin.put(member, json={"days": 1}).status_code == 204
        grants = admin.get(f"/api/projects/{site.project}/members").json()
        expires = [datetime.fromisoformat(m["expires_at"]) for m in grants if m["user"] == user]
        assert len(expires) == 1
        ends_in = expires[0].replace(tzinfo=expires[0].tzinfo or UTC) - datetime.now(UTC)
        assert timedelta(hours=23) < ends_in <= timedelta(days=1)
        reply = http.get(search, headers=bearer(token))
        assert reply.status_code == 200 and len(reply.json()) == 3

        assert admin.delete(member).status_code == 204
        reply = http.get(search, headers=bearer(token))
        assert reply.status_code == 403, reply.text
        me = http.get("/api/users/me", headers=bearer(token)).json()
        assert site.project not in me["project_roles"]


def test_a_read_scoped_token_cannot_manage_even_for_a_steward(site: Site) -> None:
    steward = new_user(site.server, roles=["steward"], project=site.project)
    read_only = issue(site.server, steward, scopes=["read"])["token"]
    everything = issue(site.server, steward)["token"]
    project = f"/api/projects/{site.project}"
    with site.server.client() as admin, httpx.Client(base_url=site.server.base_url) as http:
        title = admin.get(project).json()["title"]
        reply = http.patch(
            project, json={"title": "changed by a read token"}, headers=bearer(read_only)
        )
        assert reply.status_code == 403, reply.text
        assert admin.get(project).json()["title"] == title
        reply = http.put(f"{project}/members/{site.user}/steward", headers=bearer(read_only))
        assert reply.status_code == 403
        reply = http.post("/api/tokens", json={"scopes": ["manage"]}, headers=bearer(read_only))
        assert reply.status_code == 403  # nor mint itself a token that could
        search = f"/dicom-web/projects/{site.project}/studies"
        assert http.get(search, headers=bearer(read_only)).status_code == 200
        # The same steward with an unnarrowed token may: the scope refused, not the role.
        reply = http.patch(project, json={"title": title}, headers=bearer(everything))
        assert reply.status_code == 200, reply.text
