"""`radbank rdf` on the node's machine: submit a non-DICOM file (stored, or refused with every
problem and exit 1), query the graphs (CSV by default, JSON on request), rebuild a project's
graph; `radbank verify` checks the stored submissions too."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from test_cli import radbank

from radbank.synthetic import demo_studies


def _import_demo(data: Path, tmp_path: Path) -> list:
    datasets = list(demo_studies(sites=1, patients_per_site=2, studies_per_patient=1, seed=71))
    folder = tmp_path / "in"
    folder.mkdir()
    for number, dataset in enumerate(datasets):
        dataset.save_as(folder / f"{number}.dcm", enforce_file_format=True)
    assert radbank(data, "project", "create", "trial", "--profile", "research-dose").returncode == 0
    done = radbank(data, "import", str(folder), "--project", "trial")
    assert done.returncode == 0, done.stderr
    return datasets


def test_submit_query_rebuild_and_verify(tmp_path: Path) -> None:
    data = tmp_path / "data"
    datasets = _import_demo(data, tmp_path)
    patient = datasets[0]
    form = tmp_path / "visits.csv"
    form.write_text(
        "patient_id,issuer_of_patient_id,patient_name,visit_date,title,study_instance_uid,"
        "weight_kg\n"
        f"{patient.PatientID},{patient.get('IssuerOfPatientID', '')},{patient.PatientName},"
        "2024-03-01,Baseline,"
        f"{patient.StudyInstanceUID},71.5\n"
    )
    stored = radbank(data, "rdf", "submit", str(form), "--project", "trial", "--kind", "crf")
    assert stored.returncode == 0, stored.stderr
    assert "1 crf record(s) of 1 subject(s)" in stored.stdout
    assert "patient_name" in stored.stdout  # told which identifying field was removed

    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,visit_date,weight_kg\nNOBODY,2024-03-01,70\n")
    refused = radbank(data, "rdf", "submit", str(bad), "--project", "trial", "--kind", "crf")
    assert refused.returncode == 1
    assert "nothing was stored" in refused.stderr and "NOBODY" in refused.stderr

    query = (
        "PREFIX radbank: <https://w3id.org/radbank/ontology#> "
        "SELECT ?form ?subject WHERE { ?form a radbank:CaseReportForm ; radbank:subject ?subject }"
    )
    answer = radbank(data, "rdf", "query", query, "--project", "trial")
    assert answer.returncode == 0, answer.stderr
    rows = list(csv.DictReader(io.StringIO(answer.stdout)))
    assert len(rows) == 1 and rows[0]["subject"].startswith("urn:radbank:subject:trial:RB-")
    as_json = radbank(data, "rdf", "query", query, "--format", "json")
    assert len(json.loads(as_json.stdout)["results"]["bindings"]) == 1
    update = radbank(data, "rdf", "query", "DROP ALL")
    assert update.returncode == 2 and "update" in update.stderr.lower()

    rebuilt = radbank(data, "rdf", "rebuild", "--project", "trial")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 submission part(s)" in rebuilt.stdout  # the subject's and the shared one
    again = radbank(data, "rdf", "query", query, "--project", "trial")
    assert list(csv.DictReader(io.StringIO(again.stdout))) == rows

    listed = radbank(data, "rdf", "submissions", "trial")
    assert "visits.csv" in listed.stdout
    verified = radbank(data, "verify")
    assert verified.returncode == 0, verified.stdout
