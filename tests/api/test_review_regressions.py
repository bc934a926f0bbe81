"""Client mistakes and odd stored objects found by the security review answer 4xx, not 500:
frames of an image without its dimensions or with broken encapsulation, and an audit
export asked to start past the largest record id."""

from __future__ import annotations

import io

import httpx
from liveserver import LiveNode
from pydicom.uid import JPEGBaseline8Bit

from radbank.api.multipart import write_parts
from radbank.synthetic import demo_studies


def _ct(seed: int):  # noqa: ANN202
    return next(
        demo_studies(
            sites=1,
            patients_per_site=1,
            studies_per_patient=1,
            series_per_study=1,
            instances_per_series=1,
            seed=seed,
        )
    )


def _stow(http: httpx.Client, node: LiveNode, dataset) -> str:  # noqa: ANN001
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    body = b"".join(
        write_parts([({"Content-Type": "application/dicom"}, [buffer.getvalue()])], "b")
    )
    reply = http.post(
        f"{node.dicomweb_url}/studies",
        content=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )
    assert reply.status_code == 200, reply.text
    found = http.get(f"{node.dicomweb_url}/instances").json()[0]
    study, series, sop = (found[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
    return f"{node.dicomweb_url}/studies/{study}/series/{series}/instances/{sop}"


def test_frames_of_an_image_without_columns_answer_406(live_node: LiveNode) -> None:
    dataset = _ct(41)
    del dataset.Columns
    with live_node.client() as http:
        reply = http.get(_stow(http, live_node, dataset) + "/frames/1")
    assert reply.status_code == 406 and "Rows, Columns or BitsAllocated" in reply.json()["error"]


def test_frames_of_broken_encapsulated_pixel_data_answer_406(live_node: LiveNode) -> None:
    dataset = _ct(43)
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    dataset["PixelData"].is_undefined_length = True
    with live_node.client() as http:
        reply = http.get(
            _stow(http, live_node, dataset) + "/frames/1",
            headers={
                "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"
            },
        )
    assert reply.status_code == 406 and "cannot be split into frames" in reply.json()["error"]


def test_an_audit_export_past_the_largest_id_is_a_400(live_node: LiveNode) -> None:
    with live_node.client() as http:
        reply = http.get("/api/audit", params={"after": 2**63})
    assert reply.status_code == 400
