"""WADO-RS answers every malformed or impossible request with a 4xx that says why."""

from __future__ import annotations

import corpus
import pytest
from dicomweb_client.api import DICOMwebClient


@pytest.fixture
def stored(live_node):  # noqa: ANN001, ANN201
    import pydicom

    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    client.store_instances([pydicom.dcmread(corpus.path("CT_small.dcm"))])
    found = client.search_for_instances()[0]
    uids = [found[tag]["Value"][0] for tag in ("0020000D", "0020000E", "00080018")]
    return live_node, "/studies/{}/series/{}/instances/{}".format(*uids), uids


@pytest.mark.parametrize(
    ("suffix", "status", "words"),
    [
        ("/frames/0", 400, "frame list"),
        ("/frames/1,x", 400, "frame list"),
        ("/frames/99", 404, "frame"),
        ("/bulkdata/ZZZZ", 400, "8 hexadecimal"),
        ("/bulkdata/00100010", 404, "no bulk data"),
    ],
)
def test_bad_frames_and_bulkdata(stored, suffix: str, status: int, words: str) -> None:  # noqa: ANN001
    node, path, _ = stored
    with node.client() as http:
        reply = http.get(node.dicomweb_url + path + suffix)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/studies/not-a-uid",
        "/studies/1.2.3/series/1..2",
        "/studies/1.2.3/series/1.2/instances/01.2",
        "/studies/" + "1" * 80,
    ],
)
def test_invalid_uids_in_the_path_are_400(stored, path: str) -> None:  # noqa: ANN001
    node, _, _ = stored
    with node.client() as http:
        reply = http.get(node.dicomweb_url + path)
    assert reply.status_code == 400
    assert "UID" in reply.json()["error"]


def test_unknown_objects_are_404_naming_them(stored) -> None:  # noqa: ANN001
    node, _, (study, series, _sop) = stored
    with node.client() as http:
        for path, words in [
            ("/studies/1.2.3", "study 1.2.3"),
            (f"/studies/{study}/series/1.2.3", "series 1.2.3"),
            (f"/studies/{study}/series/{series}/instances/1.2.3/metadata", "instance 1.2.3"),
        ]:
            reply = http.get(node.dicomweb_url + path)
            assert reply.status_code == 404
            assert words in reply.json()["error"]


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "garbage;;;,,,",
        'multipart/related; type="image/png"',
        "application/dicom+xml",
    ],
)
def test_unservable_accept_headers_are_406(stored, accept: str) -> None:  # noqa: ANN001
    node, path, _ = stored
    with node.client() as http:
        reply = http.get(node.dicomweb_url + path, headers={"Accept": accept})
    assert reply.status_code == 406, (accept, reply.status_code, reply.text)
    assert reply.json()["error"]


def test_metadata_refuses_non_json_accept(stored) -> None:  # noqa: ANN001
    node, path, _ = stored
    with node.client() as http:
        reply = http.get(
            node.dicomweb_url + path + "/metadata", headers={"Accept": "application/dicom"}
        )
    assert reply.status_code == 406


def test_other_projects_do_not_see_the_instance(stored, server) -> None:  # noqa: ANN001
    from liveserver import new_project

    node, path, _ = stored
    other = new_project(server)
    with node.client() as http:
        reply = http.get(f"{node.base_url}/dicom-web/projects/{other}{path}")
    assert reply.status_code == 404
