"""STOW-RS, QIDO-RS and WADO-RS through the dicomweb-client library against a live node."""

from __future__ import annotations

import io

import corpus  # noqa: E402
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient


def _client(node) -> DICOMwebClient:  # noqa: ANN001
    return DICOMwebClient(url=node.dicomweb_url, headers=node.headers)


def _ct(name: str = "CT_small.dcm") -> pydicom.Dataset:
    return pydicom.dcmread(corpus.path(name))


def test_store_search_retrieve_round_trip(live_node) -> None:  # noqa: ANN001
    client = _client(live_node)
    original = _ct()
    response = client.store_instances([original])
    referenced = response.ReferencedSOPSequence
    assert len(referenced) == 1
    new_uid = referenced[0].ReferencedSOPInstanceUID
    assert new_uid != original.SOPInstanceUID and new_uid.startswith("2.25.")

    studies = client.search_for_studies()
    assert len(studies) == 1
    study = pydicom.Dataset.from_json(studies[0])
    assert study.PatientID != original.PatientID
    assert str(study.PatientName) != str(original.PatientName)
    assert study.NumberOfStudyRelatedInstances == 1
    assert study.ModalitiesInStudy == "CT"

    series = client.search_for_series(study.StudyInstanceUID)
    instances = client.search_for_instances(
        study.StudyInstanceUID, pydicom.Dataset.from_json(series[0]).SeriesInstanceUID
    )
    assert pydicom.Dataset.from_json(instances[0]).SOPInstanceUID == new_uid

    instance = client.retrieve_instance(
        study.StudyInstanceUID,
        series and pydicom.Dataset.from_json(series[0]).SeriesInstanceUID,
        new_uid,
    )
    assert instance.SOPInstanceUID == new_uid
    assert instance.PatientIdentityRemoved == "YES"
    assert instance.PixelData == original.PixelData
    raw = io.BytesIO()
    instance.save_as(raw)
    assert str(original.PatientName).encode() not in raw.getvalue()


def test_retrieve_study_series_and_metadata_like_ohif(live_node) -> None:  # noqa: ANN001
    client = _client(live_node)
    originals = [_ct("CT_small.dcm"), _ct("MR_small.dcm")]
    client.store_instances(originals)
    for study_json in client.search_for_studies():
        study_uid = pydicom.Dataset.from_json(study_json).StudyInstanceUID
        study = client.retrieve_study(study_uid)
        assert len(study) == 1
        series_uid = study[0].SeriesInstanceUID
        assert [d.SOPInstanceUID for d in client.retrieve_series(study_uid, series_uid)] == [
            study[0].SOPInstanceUID
        ]
        metadata = client.retrieve_series_metadata(study_uid, series_uid)
        assert len(metadata) == 1
        pixel = metadata[0]["7FE00010"]
        assert "BulkDataURI" in pixel and "InlineBinary" not in pixel
        # OHIF asks for study metadata with a plain JSON Accept header.
        with live_node.client() as http:
            reply = http.get(
                f"{live_node.dicomweb_url}/studies/{study_uid}/metadata",
                headers={"Accept": "application/json"},
            )
        assert reply.status_code == 200
        assert reply.json()[0]["0020000D"]["Value"] == [study_uid]
        bulk = client.retrieve_bulkdata(pixel["BulkDataURI"])
        assert bulk[0] == study[0].PixelData


def test_frames_uncompressed_and_transfer_syntax_negotiation(live_node) -> None:  # noqa: ANN001
    client = _client(live_node)
    original = _ct()
    sop = client.store_instances([original]).ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    found = pydicom.Dataset.from_json(client.search_for_instances()[0])
    study, series = found.StudyInstanceUID, found.SeriesInstanceUID
    frames = client.retrieve_instance_frames(study, series, sop, [1])
    assert frames == [original.PixelData]

    with live_node.client() as http:
        url = f"{live_node.dicomweb_url}/studies/{study}/series/{series}/instances/{sop}"
        implicit = http.get(
            url,
            headers={
                "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2'
            },
        )
        assert implicit.status_code == 200
        assert "transfer-syntax=1.2.840.10008.1.2\r\n" in implicit.content.decode("latin-1")
        jpeg = http.get(
            url,
            headers={
                "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
            },
        )
        assert jpeg.status_code == 406
        assert "transfer-syntax=*" in jpeg.json()["error"]
        missing_frame = http.get(
            f"{url}/frames/2",
            headers={"Accept": 'multipart/related; type="application/octet-stream"'},
        )
        assert missing_frame.status_code == 404
        assert "1 frame" in missing_frame.json()["error"]


def test_multiframe_frames(live_node) -> None:  # noqa: ANN001
    client = _client(live_node)
    original = pydicom.dcmread(corpus.path("emri_small.dcm"))
    sop = client.store_instances([original]).ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    found = pydicom.Dataset.from_json(
        client.search_for_instances(search_filters={"SOPInstanceUID": sop})[0]
    )
    frames = client.retrieve_instance_frames(
        found.StudyInstanceUID, found.SeriesInstanceUID, sop, [2, 4]
    )
    size = original.Rows * original.Columns * original.BitsAllocated // 8
    assert frames == [original.PixelData[size : 2 * size], original.PixelData[3 * size : 4 * size]]


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"])
def test_compressed_frames_as_stored(live_node, name: str) -> None:  # noqa: ANN001
    client = _client(live_node)
    original = pydicom.dcmread(corpus.path(name))
    sop = client.store_instances([original]).ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    found = pydicom.Dataset.from_json(client.search_for_instances()[0])
    from pydicom.encaps import generate_frames

    expected = next(generate_frames(original.PixelData, number_of_frames=1))
    frames = client.retrieve_instance_frames(
        found.StudyInstanceUID,
        found.SeriesInstanceUID,
        sop,
        [1],
        media_types=(("image/jp2" if "jp2k" in name else "image/dicom-rle", "*"),),
    )
    assert frames == [expected]


def test_compressed_frames_for_an_ohif_style_accept(live_node) -> None:  # noqa: ANN001
    from pydicom.encaps import generate_frames

    client = _client(live_node)
    original = pydicom.dcmread(corpus.path("MR_small_jp2klossless.dcm"))
    sop = client.store_instances([original]).ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    found = pydicom.Dataset.from_json(client.search_for_instances()[0])
    url = (
        f"{live_node.dicomweb_url}/studies/{found.StudyInstanceUID}/series/"
        f"{found.SeriesInstanceUID}/instances/{sop}/frames/1"
    )
    accept = "multipart/related; type=application/octet-stream; transfer-syntax=*"
    with live_node.client() as http:
        reply = http.get(url, headers={"Accept": accept})
    assert reply.status_code == 200
    assert "Content-Type: image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90" in reply.text[:300]
    expected = next(generate_frames(original.PixelData, number_of_frames=1))
    assert expected in reply.content


@pytest.mark.parametrize("name", ["emri_small_big_endian.dcm", "MR_small_implicit.dcm"])
def test_instances_stored_big_endian_or_implicit_are_sent_as_explicit_little_endian(
    live_node, name: str
) -> None:  # noqa: ANN001
    """Found by the WADO-RS audit against Orthanc: dicomweb-client's default request
    (transfer-syntax=*) got these objects in the syntaxes web services must not use (PS3.18
    8.7.3), an Explicit VR Little Endian request got a Big Endian image with every pixel's
    bytes reversed, and its frames were refused even with transfer-syntax=*."""
    import numpy as np

    client = _client(live_node)
    original = pydicom.dcmread(corpus.path(name))
    sop = client.store_instances([original]).ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    found = pydicom.Dataset.from_json(client.search_for_instances()[0])
    study, series = found.StudyInstanceUID, found.SeriesInstanceUID

    instance = client.retrieve_instance(study, series, sop)
    assert instance.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(instance.pixel_array, original.pixel_array)
    explicit = client.retrieve_instance(
        study, series, sop, media_types=(("application/dicom", "1.2.840.10008.1.2.1"),)
    )
    assert np.array_equal(explicit.pixel_array, original.pixel_array)

    pixels = original.pixel_array
    little_endian = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    size = len(little_endian) // int(original.get("NumberOfFrames", 1) or 1)
    assert client.retrieve_instance_frames(study, series, sop, [1]) == [little_endian[:size]]
    metadata = client.retrieve_instance_metadata(study, series, sop)
    assert client.retrieve_bulkdata(metadata["7FE00010"]["BulkDataURI"]) == [little_endian]


def test_accept_falls_back_to_the_next_transfer_syntax_it_admits(live_node) -> None:  # noqa: ANN001
    """Found by the WADO-RS audit: an Accept header naming several transfer syntaxes was
    refused with 406 when radbank could not send its first choice (Orthanc sends the next);
    now each instance goes in the most preferred one it can be sent in (PS3.18 8.7.8)."""
    client = _client(live_node)
    client.store_instances([_ct("CT_small.dcm"), _ct("MR_small_RLE.dcm")])
    any_syntax = 'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5'
    with live_node.client() as http:
        for found in client.search_for_instances():
            instance = pydicom.Dataset.from_json(found)
            url = (
                f"{live_node.dicomweb_url}/studies/{instance.StudyInstanceUID}/series/"
                f"{instance.SeriesInstanceUID}/instances/{instance.SOPInstanceUID}"
            )
            for first in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1"):
                accept = (
                    f'multipart/related; type="application/dicom"; transfer-syntax={first}, '
                    + any_syntax
                )
                reply = http.get(url, headers={"Accept": accept})
                assert reply.status_code == 200, (instance.Modality, accept, reply.text)
                # Neither can be sent in JPEG Baseline: * sends both as stored. The RLE
                # image is decoded for Explicit VR Little Endian.
                rle_as_stored = instance.Modality == "MR" and first != "1.2.840.10008.1.2.1"
                sent = "1.2.840.10008.1.2.5" if rle_as_stored else "1.2.840.10008.1.2.1"
                assert f"transfer-syntax={sent}\r\n".encode() in reply.content[:400]
