"""WADO-RS bulk data in sequences: metadata gives it a BulkDataURI at any depth, and the
bulkdata resource follows such a URI to the stored value, or says why it cannot."""

from __future__ import annotations

import io

import corpus
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from multipart_parts import parts


@pytest.fixture
def waveform(live_node):  # noqa: ANN001, ANN201
    """waveform_ecg.dcm stored: (node, client, instance path, the stored object)."""
    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    receipt = client.store_instances([pydicom.dcmread(corpus.path("waveform_ecg.dcm"))])
    url = receipt.ReferencedSOPSequence[0].RetrieveURL
    with live_node.client() as http:
        reply = http.get(
            url,
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
    [(_, data)] = parts(reply)
    path = url.split(live_node.dicomweb_url, 1)[1]
    return live_node, client, path, pydicom.dcmread(io.BytesIO(data))


def test_waveform_data_in_metadata_is_a_bulk_data_uri_dicomweb_client_follows(waveform) -> None:  # noqa: ANN001
    """Before, the 240 KB Waveform Data of the first Waveform Sequence item was sent inline
    in base64 in every metadata answer (OHIF and others fetch metadata for every instance
    of a study). Orthanc gives it a URI too (`.../bulk/54000100/1/54001010`), and every
    binary value, however small; radbank keeps values of up to 1 KB inline."""
    node, client, path, stored = waveform
    study, series, sop = (path.split("/")[i] for i in (2, 4, 6))
    metadata = client.retrieve_instance_metadata(study, series, sop)
    items = metadata["54000100"]["Value"]
    uris = [item["54001010"].get("BulkDataURI") for item in items]
    assert uris == [
        f"{node.dicomweb_url}{path}/bulkdata/54000100/{number}/54001010" for number in (1, 2)
    ]
    for uri, item in zip(uris, stored.WaveformSequence, strict=True):
        assert client.retrieve_bulkdata(uri) == [item.WaveformData]
    # A client turning the metadata into a data set gets the values through the same URIs
    # (dicomweb-client gives a bytearray, which pydicom would take for a list of numbers).
    dataset = pydicom.Dataset.from_json(
        metadata, bulk_data_uri_handler=lambda uri: bytes(client.retrieve_bulkdata(uri)[0])
    )
    assert dataset.WaveformSequence[0].WaveformData == stored.WaveformSequence[0].WaveformData


@pytest.mark.parametrize(
    ("suffix", "status", "words"),
    [
        ("/bulkdata/54000100/3/54001010", 404, "has 2 items, no item 3"),
        ("/bulkdata/54000100/99999999/54001010", 404, "no item 99999999"),
        ("/bulkdata/54000100/0/54001010", 400, "number from 1"),
        ("/bulkdata/54000100/" + "9" * 40 + "/54001010", 400, "number from 1"),
        ("/bulkdata/54000100/x/54001010", 400, "number from 1"),
        ("/bulkdata/54000100/1/5400101G", 400, "8 hexadecimal"),
        ("/bulkdata/54000100/1", 400, "must end with a tag"),
        ("/bulkdata/54000100/1/54001010/", 400, "must end with a tag"),
        ("/bulkdata/54000100//54001010", 400, "number from 1"),
        ("/bulkdata/" + "54000100/1/" * 40 + "54001010", 400, "through 40 sequences: at most 32"),
        ("/bulkdata/" + "54000100/1/" * 700 + "54001010", 400, "through 700 sequences: at most 32"),
        ("/bulkdata/00080016/1/54001010", 404, "00080016 is not a sequence"),
        ("/bulkdata/54000100/1/003A0200/1/54001010", 404, "no bulk data element"),
        ("/bulkdata/54000100/1/003A0210", 404, "no bulk data element"),  # a DS in the item
    ],
)
def test_bulk_data_paths_that_lead_nowhere_are_4xx_saying_why(
    waveform,  # noqa: ANN001
    suffix: str,
    status: int,
    words: str,
) -> None:
    node, _, path, _ = waveform
    with node.client() as http:
        reply = http.get(node.dicomweb_url + path + suffix)
    assert reply.status_code == status, reply.text[:300]
    assert words in reply.json()["error"]
    if status == 404:
        assert path.rsplit("/", 1)[1] in reply.json()["error"]  # the instance is named


def test_metadata_and_frames_of_a_large_object_are_read_without_its_pixel_data(live_node) -> None:  # noqa: ANN001
    """An object above 16 MB (radbank.api.wado.DEFERRED_READ_BYTES) is read for its
    metadata and frames with its large values left in the file: the metadata is the one
    made from the whole object, the pixel data's BulkDataURI leads to the stored pixels,
    and frames are the stored frames."""
    from radbank.api.wado import DEFERRED_READ_BYTES
    from radbank.dicom.dataset_json import metadata_json

    dataset = pydicom.dcmread(corpus.path("emri_small.dcm"))  # enhanced MR, 64 x 64 x 16 bit
    frames = DEFERRED_READ_BYTES // (512 * 512 * 2) + 2
    dataset.Rows = dataset.Columns = 512
    dataset.NumberOfFrames = frames
    dataset.PixelData = bytes(range(256)) * (512 * 512 * 2 * frames // 256)
    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    url = client.store_instances([dataset]).ReferencedSOPSequence[0].RetrieveURL
    with live_node.client() as http:
        whole = http.get(
            url,
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        reply = http.get(f"{url}/metadata")
    [(_, data)] = parts(whole)
    assert len(data) > DEFERRED_READ_BYTES
    stored = pydicom.dcmread(io.BytesIO(data))
    assert reply.status_code == 200, reply.text[:300]
    [metadata] = reply.json()
    assert metadata == metadata_json(stored, lambda path: f"{url}/bulkdata/{path}")
    assert metadata["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{url}/bulkdata/7FE00010"}
    assert client.retrieve_bulkdata(metadata["7FE00010"]["BulkDataURI"]) == [stored.PixelData]
    # Its frames are read from the file one by one, not by reading the pixel data whole.
    size = 512 * 512 * 2
    study, series, sop = (url.split("/")[i] for i in (-5, -3, -1))
    got = client.retrieve_instance_frames(study, series, sop, [1, frames, 2])
    assert got == [stored.PixelData[(n - 1) * size : n * size] for n in (1, frames, 2)]
    with live_node.client() as http:
        beyond = http.get(f"{url}/frames/{frames + 1}")
    assert beyond.status_code == 404 and f"has {frames} frame(s)" in beyond.json()["error"]


@pytest.mark.parametrize("fragments_per_frame", [1, 2])
def test_frames_of_a_large_compressed_object_are_its_fragments(
    live_node,  # noqa: ANN001
    fragments_per_frame: int,
) -> None:
    """Frames of encapsulated pixel data above 16 MB, as stored: read from the file one
    fragment per frame where it holds one per frame, else split by pydicom as before."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    from radbank.api.wado import DEFERRED_READ_BYTES

    dataset = pydicom.dcmread(corpus.path("emri_small.dcm"))
    frame_size = 1024 * 1024
    count = DEFERRED_READ_BYTES // frame_size + 2
    # Stand-ins for JPEG codestreams: nothing decodes them on the way in or out.
    payloads = [
        b"\xff\xd8" + bytes([n % 256]) * (frame_size - 4) + b"\xff\xd9" for n in range(count)
    ]
    dataset.PixelData = encapsulate(
        payloads, fragments_per_frame=fragments_per_frame, has_bot=fragments_per_frame > 1
    )
    dataset["PixelData"].VR = "OB"
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.Rows = dataset.Columns = 512
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.NumberOfFrames = count
    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    url = client.store_instances([dataset]).ReferencedSOPSequence[0].RetrieveURL
    accept = 'multipart/related; type="image/jpeg"; transfer-syntax=*'
    with live_node.client() as http:
        reply = http.get(f"{url}/frames/1,{count},3,1", headers={"Accept": accept})
    assert reply.status_code == 200, reply.text[:300]
    got = [body for _, body in parts(reply)]
    if fragments_per_frame == 1:
        assert got == [payloads[0], payloads[count - 1], payloads[2], payloads[0]]
    else:  # pydicom joins a frame's fragments; a fragment is padded to an even length
        assert [frame.rstrip(b"\0") for frame in got] == [
            payloads[n].rstrip(b"\0") for n in (0, count - 1, 2, 0)
        ]
