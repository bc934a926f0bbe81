"""Non-DICOM submissions over real HTTP, against real stored objects: a molecular
radiotherapy dosimetry that names the site's patient, study, series and administration of a
vendor radiopharmaceutical dose report is stored linked to their pseudonymised
descriptions, so the example query gives absorbed dose per organ with the administered
activity; a case report form in CSV is pseudonymised and cleaned; an invalid submission or
one naming objects the node does not hold is refused whole with every problem listed; a
withdrawn subject's submissions are gone; `radbank rdf rebuild` gives the same graph."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pydicom
import pytest
from liveserver import SHARED_DATA, LiveNode, RunningServer, new_project
from test_semantic_api import JSON_RESULTS, QUERIES, select, stow

from radbank.ingest.dose import dose_rows

NM_REPORT = SHARED_DATA / "rdsr" / "NM-RRDSR-Siemens.dcm"
pytestmark = pytest.mark.skipif(
    not NM_REPORT.exists(), reason=f"vendor dose reports not found in {SHARED_DATA}"
)


def workflow(report: pydicom.Dataset) -> dict:
    (row,) = [r for r in dose_rows(report) if r.get("irradiation_event_uid")]
    series = str(report.SeriesInstanceUID)
    return {
        "workflows": [
            {
                "patient_id": str(report.PatientID),
                "study_instance_uid": [str(report.StudyInstanceUID)],
                "administration_event_uid": row["irradiation_event_uid"],
                "calibration": {"sensitivity": 9.8, "unit": "s-1.MBq-1", "used": [series]},
                "segmentation": {"used": [series]},
                "volumes_of_interest": [
                    {"id": "liver", "organ_code": "SCT:10200004", "organ_name": "liver"},
                    {"id": "kidney", "organ_name": "left kidney", "volume": 150, "unit": "mL"},
                ],
                "time_activity_curves": [
                    {
                        "voi": voi,
                        "points": [
                            {"time": 4, "time_unit": "h", "activity": 80, "activity_unit": "MBq"},
                            {"time": 24, "time_unit": "h", "activity": 50, "activity_unit": "MBq"},
                        ],
                    }
                    for voi in ("liver", "kidney")
                ],
                "fit": {"model": "mono-exponential"},
                "time_integrated_activities": [
                    {"voi": "liver", "value": 4100, "unit": "MBq.h"},
                    {"voi": "kidney", "value": 900, "unit": "MBq.h"},
                ],
                "absorbed_dose_calculation": {"method": "MIRD S-values, OLINDA/EXM 2.2"},
                "absorbed_doses": [
                    {"voi": "liver", "value": 4.2, "unit": "Gy"},
                    {"voi": "kidney", "value": 3.1, "unit": "Gy"},
                ],
                "comment": f"cycle 1 of patient {report.PatientID}",
            }
        ]
    }


@pytest.fixture(scope="module")
def node(server: RunningServer) -> LiveNode:
    project = new_project(server, "research-dose")
    with server.client() as http:
        stow(http, project, [NM_REPORT.read_bytes()])
    return LiveNode(server.base_url, server.token, server.data_dir, project)


def submit(
    http: httpx.Client, node: LiveNode, kind: str, body: bytes, media: str
) -> httpx.Response:
    return http.post(
        f"/api/projects/{node.project}/submissions",
        params={"kind": kind, "name": f"{kind} test"},
        content=body,
        headers={"Content-Type": media},
    )


def test_mrt_dosimetry_links_to_the_administration_of_the_dose_report(node: LiveNode) -> None:
    report = pydicom.dcmread(NM_REPORT)
    with node.client() as http:
        reply = submit(
            http, node, "mrt-dosimetry", json.dumps(workflow(report)).encode(), "application/json"
        )
        assert reply.status_code == 201, reply.text
        assert reply.json()["records"] == 1 and reply.json()["subjects"] == 1
        answered = select(
            http,
            f"/api/projects/{node.project}/sparql",
            (QUERIES / "mrt-absorbed-dose-per-organ.rq").read_text(),
        )
        activity = http.get(
            f"/api/projects/{node.project}/dose/events", params={"kind": "NM"}
        ).json()["rows"]
        listed = http.get(f"/api/projects/{node.project}/submissions").json()
    assert {(row["region"], float(row["absorbed_dose"])) for row in answered} == {
        ("liver", 4.2),
        ("left kidney", 3.1),
    }
    administered = {r["administered_activity_MBq"] for r in activity} - {None}
    assert administered and all(
        float(row["administered_activity_MBq"]) in administered for row in answered
    )
    # Linked by the pseudonym, never the site's patient ID.
    assert all(row["subject"].split(":")[-1].startswith("RB-") for row in answered)
    assert str(report.PatientID) not in json.dumps(answered)
    assert [s["kind"] for s in listed] == ["mrt-dosimetry"]


def test_invalid_submission_is_refused_whole_with_every_problem(node: LiveNode) -> None:
    report = pydicom.dcmread(NM_REPORT)
    broken = workflow(report)
    item = broken["workflows"][0]
    item["study_instance_uid"] = ["1.2.3.4.5.6.7.8.9"]  # a study the node does not hold
    item["absorbed_doses"][0]["value"] = -1  # a negative dose
    del item["fit"]
    with node.client() as http:
        before = select(
            http, f"/api/projects/{node.project}/sparql", "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"
        )
        reply = submit(http, node, "mrt-dosimetry", json.dumps(broken).encode(), "application/json")
        after = select(
            http, f"/api/projects/{node.project}/sparql", "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"
        )
        wrong_type = submit(http, node, "crf", b"a,b\n1,2\n", "text/plain")
        unknown_kind = submit(http, node, "diary", b"{}", "application/json")
    assert reply.status_code == 422, reply.text
    violations = reply.json()["violations"]
    reasons = " | ".join(v["reason"] for v in violations)
    assert "1.2.3.4.5.6.7.8.9" in reasons  # named as the site sent it
    assert len(violations) >= 2 and all(v["row"] for v in violations)
    assert before == after
    assert wrong_type.status_code == 415
    assert unknown_kind.status_code == 400


def test_crf_csv_is_pseudonymised_and_cleaned(node: LiveNode) -> None:
    report = pydicom.dcmread(NM_REPORT)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["patient_id", "patient_name", "birth_date", "visit_date", "weight_kg", "comment"]
    )
    writer.writerow(
        [report.PatientID, "Doe^Jane", "1950-01-02", "2024-03-01", "71.5", "Jane Doe felt well"]
    )
    with node.client() as http:
        reply = submit(http, node, "crf", buffer.getvalue().encode(), "text/csv")
        assert reply.status_code == 201, reply.text
        dump = http.get(
            f"/api/projects/{node.project}/sparql",
            params={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"},
            headers={"Accept": "application/n-triples"},
        )
    assert set(reply.json()["removed_fields"]) >= {"patient_name", "birth_date"}
    assert dump.status_code == 200
    text = dump.text
    assert "71.5" in text
    for identifying in ("Jane", "Doe", "1950-01-02", f'"{report.PatientID}"'):
        assert identifying not in text


def test_rebuild_gives_the_same_graph(node: LiveNode, server: RunningServer) -> None:
    query = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"

    def triples() -> set[str]:
        with node.client() as http:
            reply = http.get(
                f"/api/projects/{node.project}/sparql",
                params={"query": query},
                headers={"Accept": "application/n-triples"},
            )
        assert reply.status_code == 200, reply.text
        return set(reply.text.splitlines())

    before = triples()
    done = subprocess.run(
        [sys.executable, "-m", "radbank", "rdf", "rebuild", "--project", node.project],
        env={**server.env, "RADBANK_DATA_DIR": str(server.data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"rebuilt graph of project {node.project}" in done.stdout
    assert triples() == before


def test_withdrawal_erases_the_subjects_submissions(server: RunningServer) -> None:
    project = new_project(server, "research-dose")
    report = pydicom.dcmread(NM_REPORT)
    live = LiveNode(server.base_url, server.token, server.data_dir, project)
    with server.client() as http:
        stow(http, project, [NM_REPORT.read_bytes()])
        reply = submit(
            http, live, "mrt-dosimetry", json.dumps(workflow(report)).encode(), "application/json"
        )
        assert reply.status_code == 201, reply.text
        (subject,) = select(
            http,
            f"/api/projects/{project}/sparql",
            "PREFIX radbank: <https://w3id.org/radbank/ontology#> "
            "SELECT DISTINCT ?s WHERE { ?w a radbank:DosimetryWorkflow ; radbank:subject ?s }",
        )
        pseudonym = subject["s"].rsplit(":", 1)[1]
        reply = http.post(f"/api/projects/{project}/subjects/{pseudonym}/withdraw", json={})
        assert reply.status_code == 200, reply.text
        left = http.get(
            f"/api/projects/{project}/sparql",
            params={
                "query": "SELECT DISTINCT ?t WHERE { GRAPH "
                f"<urn:radbank:graph:{project}> {{ ?s a ?t }} }}"
            },
            headers={"Accept": JSON_RESULTS},
        ).json()
        mentions = http.get(
            f"/api/projects/{project}/sparql",
            params={
                "query": f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <urn:radbank:graph:{project}> "
                f'{{ ?s ?p ?o FILTER(CONTAINS(STR(?s), "{pseudonym}") || '
                f'CONTAINS(STR(?o), "{pseudonym}")) }} }}'
            },
            headers={"Accept": JSON_RESULTS},
        ).json()
        listed = http.get(f"/api/projects/{project}/submissions").json()
    # What is left concerns nobody: the project, the device, the ingest and submission
    # activities and their agents.
    types = {row["t"]["value"].rsplit("#", 1)[-1] for row in left["results"]["bindings"]}
    personal = {
        "Subject", "ImagingStudy", "Series", "Instance", "RadiationDoseReport",
        "RadiopharmaceuticalAdministration", "DoseQuantity", "DosimetryWorkflow",
        "VolumeOfInterest", "VolumeOfInterestDose", "TimeActivityCurve",
    }  # fmt: skip
    assert types and not types & personal
    assert int(mentions["results"]["bindings"][0]["n"]["value"]) == 0
    assert all(s["subjects"] == 0 for s in listed)
    parts = list(Path(server.data_dir, "blobs").rglob("*.nq"))
    assert not any(pseudonym in p.read_text() for p in parts)
