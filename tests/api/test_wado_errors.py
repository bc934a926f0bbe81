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
        ("/frames/+1", 400, "frame list"),
        ("/frames/%201", 400, "frame list"),
        ("/frames/%D9%A1", 400, "frame list"),  # ARABIC-INDIC DIGIT ONE
        ("/frames/" + "1" * 5000, 400, "frame list"),
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


def _odd_ct(tag: int, vr: str, value: bytes):  # noqa: ANN202
    """CT_small with one value no valid object has, as raw bytes pydicom does not check."""
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    dataset = pydicom.dcmread(corpus.path("CT_small.dcm"))
    value += b" " * (len(value) % 2)
    dataset[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{tag}"
    return dataset


@pytest.mark.parametrize(
    ("tag", "vr", "value", "expected"),
    [
        (0x00180050, "DS", b"nan", {"vr": "DS", "Value": [None]}),  # SliceThickness
        (0x00200013, "IS", b"inf", {"vr": "IS"}),  # InstanceNumber: cannot be decoded
        (0x00189345, "FD", b"\0\0\0\0", {"vr": "FD"}),  # CTDIvol of 4 bytes
    ],
    ids=["ds-nan", "is-inf", "fd-4-bytes"],
)
def test_stored_values_no_valid_object_has_are_read_back_without_server_errors(
    live_node, tag: int, vr: str, value: bytes, expected: dict
) -> None:  # noqa: ANN001
    """Found by an audit of the read paths: such objects are stored, and their metadata then
    failed with 500 (NaN is not JSON; "inf" is no integer), and their retrieval in another
    transfer syntax was cut off after its 200. Now the metadata holds the value as null or
    empty, and an instance that cannot be converted is sent as stored, its part saying so."""
    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    client.store_instances([_odd_ct(tag, vr, value)])
    [found] = client.search_for_instances()
    study, series, sop = (found[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
    [metadata] = client.retrieve_study_metadata(study)
    assert metadata[f"{tag:08X}"] == expected
    path = f"{live_node.dicomweb_url}/studies/{study}/series/{series}/instances/{sop}"
    with live_node.client() as http:
        stored = http.get(
            path,
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        for syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2"):
            reply = http.get(
                path,
                headers={
                    "Accept": f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'
                },
            )
            assert reply.status_code == 200
            if vr == "DS":  # converted
                assert f"transfer-syntax={syntax}".encode() in reply.content
            else:  # as stored, and said so
                assert b"transfer-syntax=1.2.840.10008.1.2.1" in reply.content
                assert len(reply.content) == len(stored.content)


def test_frames_of_an_object_without_pixels_are_404(live_node) -> None:  # noqa: ANN001
    """An RT Plan has no frames: the frames resource does not exist (not a media type the
    client should change)."""
    import pydicom

    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    client.store_instances([pydicom.dcmread(corpus.path("rtplan.dcm"))])
    plans = [
        found
        for found in client.search_for_instances()
        if found["00080016"]["Value"][0] == "1.2.840.10008.5.1.4.1.1.481.5"
    ]
    uids = [plans[0][tag]["Value"][0] for tag in ("0020000D", "0020000E", "00080018")]
    path = "/studies/{}/series/{}/instances/{}/frames/1".format(*uids)
    with live_node.client() as http:
        reply = http.get(live_node.dicomweb_url + path)
    assert reply.status_code == 404, reply.text
    assert "has no pixel data" in reply.json()["error"]


def test_an_invalid_q_value_is_ignored(stored) -> None:  # noqa: ANN001
    """PS3.18 8.7.7: invalid parameters are ignored; the range keeps its default weight."""
    node, path, _ = stored
    for q in ("abc", "-1", "nan", "2"):
        accept = f'multipart/related; type="application/dicom"; transfer-syntax=*; q={q}'
        with node.client() as http:
            reply = http.get(node.dicomweb_url + path, headers={"Accept": accept})
        assert reply.status_code == 200, (q, reply.text)


# Each retrieve resource with the media type it serves: instances, frames (also as an image
# type, the form rendered resources are asked for) and bulk data; metadata and QIDO-RS go
# through the same Accept parsing.
_RESOURCES = [
    ("", 'multipart/related; type="application/dicom"'),
    ("/frames/1", 'multipart/related; type="application/octet-stream"'),
    ("/frames/1", "image/jpeg"),
    ("/bulkdata/7FE00010", 'multipart/related; type="application/octet-stream"'),
    ("/metadata", "application/dicom+json"),
]


@pytest.mark.parametrize(
    "syntax",
    [
        b"abc;def",
        b"1.2.<script>",
        b"1.2.840.10008.1.2.1.",  # a trailing dot
        b"01.2",  # a leading zero
        b"1.2.840.10008.1.2.1 1.2.840.10008.1.2",
        b"1." + b"2" * 300,
        b"1.2\t\x85\xc2<b>",  # a tab and a C1 control character (header bytes are Latin-1)
    ],
)
def test_a_transfer_syntax_that_is_not_a_uid_is_400_naming_it(stored, syntax: bytes) -> None:  # noqa: ANN001
    """PS3.18 8.7.3.5.2: a transfer-syntax parameter is a UID or "*"; anything else makes
    the request malformed (400, as Orthanc answers), where a UID the server cannot send is
    406. Before, every such header was answered 406, as if the server lacked a syntax."""
    node, path, (study, _, _) = stored
    shown = syntax.decode("latin-1").split(";")[0][:64]
    with node.client() as http:
        for suffix, media_type in _RESOURCES:
            accept = media_type.encode() + b"; transfer-syntax=" + syntax
            reply = http.get(node.dicomweb_url + path + suffix, headers={"Accept": accept})
            assert reply.status_code == 400, (suffix, media_type, reply.text[:300])
            error = reply.json()["error"]
            assert repr(shown) in error and "transfer-syntax" in error, error
            assert len(error) < 300 and error.isprintable(), error
        reply = http.get(
            node.dicomweb_url + f"/studies/{study}/instances",
            headers={"Accept": b"application/dicom+json; transfer-syntax=" + syntax},
        )
        assert reply.status_code == 400, reply.text[:300]


def test_a_valid_uid_the_server_cannot_send_is_still_406(stored) -> None:  # noqa: ANN001
    """The other half of the rule: 406 for a well-formed UID no conversion reaches (Orthanc
    1.10 answers 400 for it too; PS3.18 8.7.8 has it Not Acceptable), and for a range that
    names no UID at all, or an empty one, the defaults still apply."""
    node, path, _ = stored
    with node.client() as http:
        for suffix, media_type in _RESOURCES[:3]:
            accept = f"{media_type}; transfer-syntax=1.2.3.4.5"
            reply = http.get(node.dicomweb_url + path + suffix, headers={"Accept": accept})
            assert reply.status_code == 406, (suffix, reply.text[:300])
        for syntax in ("", '"1.2.840.10008.1.2.1"', "*"):
            accept = f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'
            reply = http.get(node.dicomweb_url + path, headers={"Accept": accept})
            assert reply.status_code == 200, (syntax, reply.text[:300])
