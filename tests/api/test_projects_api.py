"""REST administration of a project's de-identification settings, over real HTTP: changes
take effect on the next upload, bad settings get 400 naming them, never a 500, and every
change lands in the audit trail."""

from __future__ import annotations

import io

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from liveserver import LiveNode

from radbank.api.multipart import write_parts
from radbank.governance.audit import AuditTrail
from radbank.index import Index
from radbank.synthetic import demo_studies


def planted_ct() -> bytes:
    dataset = next(demo_studies(sites=1, patients_per_site=1, studies_per_patient=1))
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def stow(http: httpx.Client, node: LiveNode, data: bytes) -> httpx.Response:
    body = b"".join(write_parts([({"Content-Type": "application/dicom"}, iter([data]))], "b"))
    return http.post(
        f"{node.dicomweb_url}/studies",
        content=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )


def test_settings_are_shown_changed_and_applied_to_the_next_upload(live_node: LiveNode) -> None:
    url = f"/api/projects/{live_node.project}"
    with live_node.client() as http:
        shown = http.get(url).json()
        assert shown["overrides"] == {} and shown["pixel_rules"] == []
        assert shown["ocr_check"] is False and shown["vault"] is None
        version = shown["settings_version"]

        reply = http.patch(url, json={"overrides": {"PatientWeight": "keep"}})
        assert reply.status_code == 200, reply.text
        assert reply.json()["overrides"] == {"PatientWeight": "keep"}
        assert reply.json()["settings_version"] == version + 1
        assert http.get(url).json()["overrides"] == {"PatientWeight": "keep"}

        assert stow(http, live_node, planted_ct()).status_code == 200
        [instance] = http.get(
            f"{live_node.dicomweb_url}/instances", params={"includefield": "PatientWeight"}
        ).json()
        assert instance["00101030"]["Value"] == [78.0]

        unchanged = http.patch(url, json={})
        assert unchanged.status_code == 200
        assert unchanged.json()["settings_version"] == version + 1

    index = Index(f"sqlite:///{live_node.data_dir / 'index.sqlite3'}")
    try:
        trail = AuditTrail(index)
        [change] = [
            r
            for r in trail.records()
            if r.action == "project.settings" and r.project == live_node.project
        ]
        assert change.actor == "admin" and change.source == "127.0.0.1"
        assert change.detail == {"changed": {"overrides": {"PatientWeight": "keep"}}}
        assert trail.verify() == []
    finally:
        index.close()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"overrides": {"NoSuchKeyword": "keep"}}, "NoSuchKeyword"),
        ({"overrides": {"PatientWeight": "shred"}}, "shred"),
        ({"profile": "nope"}, "nope"),
        ({"pixel_rules": [{"name": "banner"}]}, "missing field"),
        (
            {
                "pixel_rules": [
                    {"name": "b", "manufacturer": "X", "rows": 0, "columns": 8, "rectangles": []}
                ]
            },
            "'rows'",
        ),
        ({"overrides": ["PatientWeight"]}, "overrides"),
        ({"ocr_check": "perhaps"}, "ocr_check"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_settings_get_400_naming_them(live_node: LiveNode, body: dict, named: str) -> None:
    with live_node.client() as http:
        reply = http.patch(f"/api/projects/{live_node.project}", json=body)
        assert reply.status_code == 400, reply.text
        assert named in reply.json()["error"]
        assert http.get(f"/api/projects/{live_node.project}").json()["settings_version"] == 1


def test_unknown_project_anonymous_caller_and_bad_names(live_node: LiveNode) -> None:
    with live_node.client() as http:
        assert http.patch("/api/projects/no-such", json={"ocr_check": True}).status_code == 404
        assert http.patch("/api/projects/BAD..name", json={}).status_code == 400
    anonymous = httpx.patch(
        f"{live_node.base_url}/api/projects/{live_node.project}", json={"ocr_check": True}
    )
    assert anonymous.status_code == 401


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "profile": JSON,
            "overrides": st.dictionaries(st.text(max_size=20), JSON, max_size=3) | JSON,
            "pixel_rules": st.lists(st.dictionaries(st.text(max_size=12), JSON), max_size=2) | JSON,
            "ocr_check": JSON,
        },
    )
)
def test_random_settings_never_get_a_server_error(live_node: LiveNode, body: dict) -> None:
    with live_node.client() as http:
        reply = http.patch(f"/api/projects/{live_node.project}", json=body)
    assert reply.status_code in (200, 400), (body, reply.status_code, reply.text[:300])
