"""Every access is audited, over real HTTP: searches with their query, retrievals with their
UIDs, refusals as denied; auditors export the trail as FHIR AuditEvent and syslog and check
its chain; nobody else may read it."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from liveserver import RunningServer

from radbank.api.multipart import write_parts
from radbank.synthetic import planted_ct_instances


@dataclass
class Setup:
    server: RunningServer
    project: str
    researcher: str  # user name
    researcher_token: str
    auditor_token: str
    uids: tuple[str, str, str]


def _client(server: RunningServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def setup(server: RunningServer) -> Iterator[Setup]:
    tag = secrets.token_hex(3)
    project = f"audited-{tag}"
    with server.client() as admin:
        assert admin.post("/api/projects", json={"name": project}).status_code == 201
        body = b"".join(
            write_parts(
                [({"Content-Type": "application/dicom"}, iter([next(planted_ct_instances(1, 1))]))],
                "b",
            )
        )
        reply = admin.post(
            f"/dicom-web/projects/{project}/studies",
            content=body,
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        )
        assert reply.status_code == 200, reply.text
        found = admin.get(f"/dicom-web/projects/{project}/instances").json()[0]
        uids = tuple(found[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
        tokens = {}
        for name, roles in ((f"reader-{tag}", []), (f"auditor-{tag}", ["auditor"])):
            assert (
                admin.post("/api/users", json={"name": name, "node_roles": roles}).status_code
                == 201
            )
            tokens[name] = admin.post(f"/api/users/{name}/tokens", json={"name": "t"}).json()[
                "token"
            ]
        reply = admin.put(f"/api/projects/{project}/members/reader-{tag}/researcher")
        assert reply.status_code == 204
    yield Setup(
        server,
        project,
        f"reader-{tag}",
        tokens[f"reader-{tag}"],
        tokens[f"auditor-{tag}"],
        uids,  # type: ignore[arg-type]
    )


def _events(setup: Setup) -> list[dict]:
    with _client(setup.server, setup.auditor_token) as auditor:
        reply = auditor.get(
            "/api/audit", params={"format": "fhir-ndjson", "project": setup.project}
        )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/fhir+ndjson")
    return [json.loads(line) for line in reply.text.splitlines() if line]


def _subtype(event: dict) -> str:
    return event["subtype"][0]["code"]


def _actor(event: dict) -> str:
    return event["agent"][0]["who"]["identifier"]["value"]


def _record(event: dict) -> dict:
    entity = next(
        e
        for e in event["entity"]
        if any(d["type"] == "radbank-record" for d in e.get("detail", []))
    )
    text = next(d["valueString"] for d in entity["detail"] if d["type"] == "radbank-record")
    return json.loads(text)


def test_a_search_is_audited_with_its_query_before_the_answer(setup: Setup) -> None:
    marker = f"PatientID=RB-{secrets.token_hex(4)}*"
    with _client(setup.server, setup.researcher_token) as reader:
        reply = reader.get(f"/dicom-web/projects/{setup.project}/studies?{marker}")
    assert reply.status_code == 200
    searches = [
        _record(e)
        for e in _events(setup)
        if _subtype(e) == "dicomweb.search_studies" and _actor(e) == setup.researcher
    ]
    assert any(r["detail"].get("query") == marker for r in searches)
    found = next(r for r in searches if r["detail"].get("query") == marker)
    assert found["outcome"] == "success" and found["detail"]["status"] == 200
    assert found["detail"]["via"] == "api-token" and found["detail"]["token"]
    assert setup.researcher_token not in json.dumps(found)


def test_a_retrieval_is_audited_with_the_uids(setup: Setup) -> None:
    study, series, sop = setup.uids
    with _client(setup.server, setup.researcher_token) as reader:
        url = f"/dicom-web/projects/{setup.project}/studies/{study}/series/{series}/instances/{sop}"
        assert (
            reader.get(
                url, headers={"Accept": "multipart/related; type=application/dicom"}
            ).status_code
            == 200
        )
    retrievals = [
        e
        for e in _events(setup)
        if _subtype(e) == "dicomweb.retrieve_instance" and _actor(e) == setup.researcher
    ]
    assert retrievals
    identifiers = {
        entity["what"]["identifier"]["value"]
        for entity in retrievals[-1]["entity"]
        if "what" in entity and "identifier" in entity["what"]
    }
    assert {f"urn:oid:{uid}" for uid in setup.uids} <= identifiers


def test_refusals_are_audited_as_denied(setup: Setup) -> None:
    with _client(setup.server, None) as anonymous:
        assert anonymous.get(f"/dicom-web/projects/{setup.project}/series").status_code == 401
    with _client(setup.server, setup.researcher_token) as reader:
        assert reader.patch(f"/api/projects/{setup.project}", json={}).status_code == 403
    events = _events(setup)
    denied = [(e["outcome"], _actor(e), _subtype(e)) for e in events if e["outcome"] == "4"]
    assert ("4", "anonymous", "dicomweb.search_series") in denied
    assert ("4", setup.researcher, "api.change_settings") in denied


def test_auditors_get_syslog_and_the_chain_check_others_get_nothing(setup: Setup) -> None:
    with _client(setup.server, setup.auditor_token) as auditor:
        lines = auditor.get(
            "/api/audit", params={"format": "syslog", "limit": 50}
        ).text.splitlines()
        assert lines and all(
            re.match(r"<\d+>1 \S+ \S+ radbank - \S+ \[radbank@", line) for line in lines
        )
        chain = auditor.get("/api/audit/verify").json()
        assert chain["intact"] is True and chain["problems"] == []
        bad = auditor.get("/api/audit", params={"format": "pdf"})
        assert bad.status_code == 400 and "fhir-bundle" in bad.json()["error"]
    with _client(setup.server, setup.researcher_token) as reader:
        assert reader.get("/api/audit").status_code == 403
        assert reader.get("/api/audit/verify").status_code == 403


def test_request_bodies_are_bounded_before_they_are_read(setup: Setup) -> None:
    with _client(setup.server, None) as anonymous:
        huge = anonymous.post(
            "/api/auth/token",
            content=b'{"username": "' + b"x" * (5 * 1024 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413 and "larger than" in huge.json()["error"]

        def chunks():  # noqa: ANN202 - no Content-Length: counted as it arrives
            for _ in range(80):
                yield b"x" * 65536

        chunked = anonymous.post(
            "/api/auth/token", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413
    denied = [
        e for e in _events_all(setup) if _subtype(e) == "http.unmatched" or e["outcome"] != "0"
    ]
    assert denied  # refused bodies are audited too


def _events_all(setup: Setup) -> list[dict]:
    with _client(setup.server, setup.auditor_token) as auditor:
        reply = auditor.get("/api/audit", params={"format": "fhir-ndjson", "limit": 100000})
    return [json.loads(line) for line in reply.text.splitlines() if line]


def test_a_read_only_admin_token_cannot_revoke_other_tokens(setup: Setup) -> None:
    with setup.server.client() as admin:
        name = f"ro-admin-{secrets.token_hex(3)}"
        assert (
            admin.post("/api/users", json={"name": name, "node_roles": ["admin"]}).status_code
            == 201
        )
        read_only = admin.post(
            f"/api/users/{name}/tokens", json={"name": "ro", "scopes": ["read"]}
        ).json()["token"]
        victim = admin.post(f"/api/users/{setup.researcher}/tokens", json={"name": "v"}).json()
    with _client(setup.server, read_only) as ro:
        assert ro.delete(f"/api/tokens/{victim['token_id']}").status_code == 404
    with _client(setup.server, victim["token"]) as still:
        assert still.get("/api/users/me").status_code == 200
