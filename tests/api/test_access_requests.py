"""Access requests over real HTTP: a researcher asks for a project's data for a DUO-coded
purpose, the steward sees how it matches the project's data-use conditions, approves or
denies; an approval gives time-limited read access, a purpose the conditions do not allow
cannot be approved, and a denial gives nothing."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from liveserver import RunningServer


@dataclass
class Setup:
    server: RunningServer
    project: str
    steward: httpx.Client
    researcher: httpx.Client
    researcher_name: str


@pytest.fixture
def setup(server: RunningServer) -> Iterator[Setup]:
    tag = secrets.token_hex(3)
    project = f"access-{tag}"
    tokens = {}
    with server.client() as admin:
        assert admin.post("/api/projects", json={"name": project}).status_code == 201
        reply = admin.patch(
            f"/api/projects/{project}",
            json={"data_use": ["DUO:0000006", "DUO:0000019"], "licence": "CC-BY-4.0"},
        )
        assert reply.status_code == 200, reply.text
        for name in (f"steward-{tag}", f"researcher-{tag}"):
            assert admin.post("/api/users", json={"name": name}).status_code == 201
            tokens[name] = admin.post(f"/api/users/{name}/tokens", json={"name": "t"}).json()[
                "token"
            ]
        assert (
            admin.put(f"/api/projects/{project}/members/steward-{tag}/steward").status_code == 204
        )

    def client(name: str) -> httpx.Client:
        return httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {tokens[name]}"},
            timeout=60,
        )

    with client(f"steward-{tag}") as steward, client(f"researcher-{tag}") as researcher:
        yield Setup(server, project, steward, researcher, f"researcher-{tag}")


def _record_of(event: dict) -> str:
    """The radbank audit record an exported FHIR AuditEvent carries."""
    for entity in event["entity"]:
        for detail in entity.get("detail", []):
            if detail["type"] == "radbank-record":
                return detail["valueString"]
    raise AssertionError("no radbank-record in the event")


def _request(setup: Setup, purposes: list[str], attestations: list[str]) -> dict:
    reply = setup.researcher.post(
        f"/api/projects/{setup.project}/access-requests",
        json={
            "purposes": purposes,
            "attestations": attestations,
            "description": "CT dose by protocol in adults",
            "days": 30,
        },
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_an_approved_request_gives_read_access_for_the_days_granted(setup: Setup) -> None:
    studies = f"/dicom-web/projects/{setup.project}/studies"
    assert setup.researcher.get(studies).status_code == 403
    # Disease-specific research is more specific than the project's health/medical research.
    asked = _request(setup, ["DUO:0000007:MONDO:0004992"], ["DUO:0000019"])
    assert asked["status"] == "pending" and asked["match"]["allowed"] is True
    listed = setup.steward.get(f"/api/projects/{setup.project}/access-requests").json()
    assert [r["id"] for r in listed] == [asked["id"]]
    assert listed[0]["match"]["reasons"]
    decided = setup.steward.post(
        f"/api/projects/{setup.project}/access-requests/{asked['id']}/decision",
        json={"approve": True, "note": "ethics approval seen", "days": 7},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved" and decided.json()["grant_expires_at"]
    assert setup.researcher.get(studies).status_code == 200
    with setup.server.client() as admin:
        events = admin.get(
            "/api/audit", params={"format": "fhir-ndjson", "project": setup.project}
        ).text.splitlines()
    searches = [json.loads(_record_of(json.loads(line))) for line in events]
    reads = [
        r
        for r in searches
        if r["actor"] == setup.researcher_name and r["detail"].get("status") == 200
    ]
    assert reads and reads[-1]["detail"]["grant"] == asked["id"]  # the grant is in the trail
    me = setup.researcher.get("/api/users/me").json()
    assert me["project_roles"] == {setup.project: ["researcher"]}
    mine = setup.researcher.get("/api/access-requests").json()
    assert mine[0]["status"] == "approved"
    again = setup.steward.post(
        f"/api/projects/{setup.project}/access-requests/{asked['id']}/decision",
        json={"approve": False},
    )
    assert again.status_code == 409


def test_a_request_the_conditions_do_not_allow_cannot_be_approved(setup: Setup) -> None:
    # Health/medical research without confirming publication (DUO:0000019) of the results.
    asked = _request(setup, ["DUO:0000006"], [])
    assert asked["match"]["allowed"] is False
    assert any("DUO:0000019" in reason for reason in asked["match"]["reasons"])
    refused = setup.steward.post(
        f"/api/projects/{setup.project}/access-requests/{asked['id']}/decision",
        json={"approve": True},
    )
    assert refused.status_code == 409 and "does not fit" in refused.json()["error"]
    assert setup.researcher.get(f"/dicom-web/projects/{setup.project}/studies").status_code == 403


def test_a_denied_request_gives_nothing_and_a_researcher_cannot_decide(setup: Setup) -> None:
    asked = _request(setup, ["DUO:0000006"], ["DUO:0000019"])
    assert (
        setup.researcher.post(
            f"/api/projects/{setup.project}/access-requests/{asked['id']}/decision",
            json={"approve": True},
        ).status_code
        == 403
    )
    denied = setup.steward.post(
        f"/api/projects/{setup.project}/access-requests/{asked['id']}/decision",
        json={"approve": False, "note": "no protocol attached"},
    )
    assert denied.json()["status"] == "denied"
    assert setup.researcher.get(f"/dicom-web/projects/{setup.project}/studies").status_code == 403


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"purposes": ["DUO:0000042x"], "description": "x", "days": 5}, "DUO"),
        (
            {"purposes": ["DUO:0000006"], "attestations": ["NOPE"], "description": "x", "days": 5},
            "NOPE",
        ),
        ({"purposes": ["DUO:0000006"], "description": "x", "days": 0}, "days"),
        ({"purposes": [], "description": "x", "days": 5}, "purposes"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(setup: Setup, body: dict, reason: str) -> None:
    reply = setup.researcher.post(f"/api/projects/{setup.project}/access-requests", json=body)
    assert reply.status_code == 400 and reason in reply.json()["error"]


def test_a_grant_limited_to_a_saved_cohort_shows_only_its_studies(
    setup: Setup, server: RunningServer
) -> None:
    from radbank.api.multipart import write_parts
    from radbank.synthetic import planted_ct_instances

    with server.client() as admin:
        for data in planted_ct_instances(2, 2, seed=7):
            body = b"".join(
                write_parts([({"Content-Type": "application/dicom"}, iter([data]))], "b")
            )
            reply = admin.post(
                f"/dicom-web/projects/{setup.project}/studies",
                content=body,
                headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
            )
            assert reply.status_code == 200, reply.text
    studies_url = f"/dicom-web/projects/{setup.project}/studies"
    everything = setup.steward.get(studies_url).json()
    chosen, other = (s["0020000D"]["Value"][0] for s in everything)
    saved = setup.steward.post(
        f"/api/projects/{setup.project}/cohorts",
        json={"name": "follow-up", "description": "one study", "study_uids": [chosen]},
    )
    assert saved.status_code == 201, saved.text
    cohort = saved.json()["id"]
    listed = setup.researcher.get(f"/api/projects/{setup.project}/cohorts").json()
    assert listed[0]["studies"] == 1 and listed[0]["study_uids"] is None  # not readable yet

    asked = setup.researcher.post(
        f"/api/projects/{setup.project}/access-requests",
        json={
            "purposes": ["DUO:0000006"],
            "attestations": ["DUO:0000019"],
            "description": "follow-up dose",
            "days": 10,
            "cohort": cohort,
        },
    ).json()
    assert asked["cohort"] == cohort
    decided = setup.steward.post(
        f"/api/projects/{setup.project}/access-requests/{asked['id']}/decision",
        json={"approve": True},
    )
    assert decided.status_code == 200, decided.text

    seen = setup.researcher.get(studies_url).json()
    assert [s["0020000D"]["Value"][0] for s in seen] == [chosen]
    series = setup.researcher.get(f"/dicom-web/projects/{setup.project}/series").json()
    assert {s["0020000D"]["Value"][0] for s in series} == {chosen}
    assert setup.researcher.get(f"{studies_url}/{chosen}/metadata").status_code == 200
    hidden = setup.researcher.get(f"{studies_url}/{other}/metadata")
    assert hidden.status_code == 404
    assert setup.researcher.get(f"{studies_url}/{other}/series").json() == []
    # The steward, who may read the whole project, still sees both.
    assert len(setup.steward.get(studies_url).json()) == 2
    unknown = setup.steward.post(
        f"/api/projects/{setup.project}/cohorts",
        json={"name": "bad", "study_uids": ["1.2.3.4"]},
    )
    assert unknown.status_code == 400 and "1.2.3.4" in unknown.json()["error"]
