"""Nothing acknowledged is lost: SIGKILL the server in the middle of large STOW-RS uploads,
restart it, and every acknowledged instance is there, bit-identical, and verify is clean."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import corpus  # noqa: E402
import httpx
import pydicom
import pytest
from liveserver import start_server  # noqa: E402

from radbank.api.multipart import write_parts  # noqa: E402
from radbank.dicom.deid import Profile, deidentify  # noqa: E402
from radbank.governance.keys import load_or_create  # noqa: E402
from radbank.index import Index  # noqa: E402

STUDIES, PER_STUDY = 30, 20


def _corpus() -> list[list[bytes]]:
    template = pydicom.dcmread(corpus.path("693_UNCR.dcm"))
    studies = []
    for study in range(STUDIES):
        files = []
        for number in range(PER_STUDY):
            template.PatientID = f"DUR-{study}"
            template.PatientName = f"Durable^Patient{study}"
            template.StudyInstanceUID = f"1.2.826.0.1.3680043.8.499.{study}"
            template.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.499.{study}.1"
            template.SOPInstanceUID = f"1.2.826.0.1.3680043.8.499.{study}.1.{number}"
            template.InstanceNumber = number + 1
            out = io.BytesIO()
            template.save_as(out)
            files.append(out.getvalue())
        studies.append(files)
    return studies


@pytest.mark.slow
def test_sigkill_during_upload_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    with server.client() as http:
        assert http.post("/api/projects", json={"name": "durable"}).status_code == 201
    studies = _corpus()
    acknowledged: dict[str, bytes] = {}  # de-identified SOP Instance UID -> original bytes
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            with httpx.Client(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {server.token}"},
                timeout=60,
            ) as http:
                for files in studies:
                    body = b"".join(
                        write_parts(
                            [({"Content-Type": "application/dicom"}, iter([f])) for f in files], "b"
                        )
                    )
                    reply = http.post(
                        "/dicom-web/projects/durable/studies",
                        content=body,
                        headers={
                            "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'
                        },
                    )
                    if reply.status_code in (200, 202):
                        for item, original in zip(
                            reply.json()["00081199"]["Value"], files, strict=True
                        ):
                            acknowledged[item["00081155"]["Value"][0]] = original
        except httpx.HTTPError:
            pass  # the server was killed under us: expected
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 3 * PER_STUDY and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.01)
    time.sleep(0.05)  # land inside a later request
    server.stop(kill=True)
    thread.join(60)
    assert not errors, errors
    assert 3 * PER_STUDY <= len(acknowledged) < STUDIES * PER_STUDY, (
        "the kill did not interrupt the upload"
    )

    restarted = start_server(data_dir, port=server.port)
    try:
        ring, _ = load_or_create(data_dir / "keys.json")
        index = Index(f"sqlite:///{data_dir / 'index.sqlite3'}")
        project = index.get_project("durable")
        index.close()
        key = ring.project_key(project.key_salt)
        with restarted.client() as http:
            listed = {
                i["00080018"]["Value"][0]
                for i in http.get(
                    "/dicom-web/projects/durable/instances", params={"limit": 1000}
                ).json()
            }
            assert set(acknowledged) <= listed
            for sop, original in list(acknowledged.items())[:: PER_STUDY // 4]:
                dataset = pydicom.dcmread(io.BytesIO(original))
                expected = io.BytesIO()
                pydicom.dcmwrite(
                    expected,
                    deidentify(dataset, Profile.named("basic"), key).dataset,
                    enforce_file_format=True,
                )
                hit = http.get(
                    "/dicom-web/projects/durable/instances", params={"SOPInstanceUID": sop}
                ).json()[0]
                reply = http.get(
                    hit["00081190"]["Value"][0],
                    headers={
                        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'
                    },
                )
                assert reply.status_code == 200
                assert hashlib.sha256(expected.getvalue()).hexdigest() in _part_hashes(reply)
    finally:
        restarted.stop()
    verify = subprocess.run(
        [sys.executable, "-m", "radbank", "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert " 0 problem(s)" in verify.stdout


def _part_hashes(reply: httpx.Response) -> set[str]:
    boundary = reply.headers["content-type"].split("boundary=")[1].strip('"')
    hashes = set()
    for chunk in reply.content.split(f"--{boundary}".encode())[1:-1]:
        body = chunk.split(b"\r\n\r\n", 1)[1][:-2]
        hashes.add(hashlib.sha256(body).hexdigest())
    return hashes
