"""WADO-RS compared with Orthanc 1.10 and its DICOMweb plugin as an independent peer.

radbank's de-identified instances are fetched as stored and given to Orthanc, so both
servers hold the same objects; then both are asked the same retrieve requests and their
answers compared as data sets, frames and metadata (not as bytes: boundaries and the
order of elements in JSON differ).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import corpus
import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from multipart_parts import parts
from peers.orthanc import OrthancPeer, orthanc_available, orthanc_missing_reason
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

pytestmark = [
    pytest.mark.orthanc,
    pytest.mark.skipif(not orthanc_available(), reason=str(orthanc_missing_reason())),
]

# Uncompressed objects in every byte order and VR encoding radbank keeps as received, one
# multi-frame; Orthanc converts all of them, so every answer can be compared.
FILES = ("CT_small.dcm", "MR_small_implicit.dcm", "emri_small_big_endian.dcm", "rtplan.dcm")
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@dataclass
class Stored:
    name: str
    path: str
    """/studies/{study}/series/{series}/instances/{sop}, the same on both servers."""
    frames: int


@dataclass
class Peers:
    radbank_url: str
    orthanc_url: str
    headers: dict[str, str]
    stored: list[Stored]
    client: DICOMwebClient
    orthanc_base_url: str

    def store(self, name: str, original: pydicom.Dataset) -> Stored:
        """`original` stored on radbank, and what radbank stored (de-identified) on Orthanc."""
        receipt = self.client.store_instances([original])
        url = receipt.ReferencedSOPSequence[0].RetrieveURL
        # Asking for the syntax it was received in fetches the stored file itself.
        syntax = original.file_meta.TransferSyntaxUID
        accept = f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'
        reply = httpx.get(url, headers={**self.headers, "Accept": accept}, timeout=60)
        [(_, data)] = parts(reply)
        posted = httpx.post(f"{self.orthanc_base_url}/instances", content=data, timeout=60)
        assert posted.status_code == 200, posted.text[:300]
        dataset = pydicom.dcmread(io.BytesIO(data))
        path = url.split("/dicom-web/projects/", 1)[1].split("/", 1)[1]
        return Stored(name, "/" + path, int(dataset.get("NumberOfFrames", 1) or 1))

    def get(self, server: str, path: str, accept: str | None = None) -> httpx.Response:
        base = self.radbank_url if server == "radbank" else self.orthanc_url
        headers = dict(self.headers) if server == "radbank" else {}
        if accept is not None:
            headers["Accept"] = accept
        return httpx.get(base + path, headers=headers, timeout=60)


@pytest.fixture
def peers(live_node: Any, tmp_path: Path) -> Iterator[Peers]:
    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    with OrthancPeer(tmp_path / "orthanc") as orthanc:
        both = Peers(
            radbank_url=live_node.dicomweb_url,
            orthanc_url=orthanc.dicomweb_url,
            headers=live_node.headers,
            stored=[],
            client=client,
            orthanc_base_url=orthanc.base_url,
        )
        both.stored.extend(both.store(name, pydicom.dcmread(corpus.path(name))) for name in FILES)
        yield both


def _instance(reply: httpx.Response) -> pydicom.Dataset:
    assert reply.status_code == 200, reply.text[:300]
    [(_, data)] = parts(reply)
    return pydicom.dcmread(io.BytesIO(data))


@pytest.mark.parametrize(
    "accept",
    [
        'multipart/related; type="application/dicom"',
        f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_LE}',
    ],
    ids=["default", "explicit-little-endian"],
)
def test_retrieved_instances_match_orthanc(peers: Peers, accept: str) -> None:
    """Without a transfer syntax or with Explicit VR Little Endian, both servers send that
    syntax (PS3.18 Table 8.7.3-2) with the same elements and the same pixel values: before
    the audit radbank sent Implicit VR and Big Endian as stored, and swapped nothing when it
    converted Big Endian, reversing the bytes of every pixel."""
    for stored in peers.stored:
        mine = _instance(peers.get("radbank", stored.path, accept))
        theirs = _instance(peers.get("orthanc", stored.path, accept))
        assert mine.file_meta.TransferSyntaxUID == theirs.file_meta.TransferSyntaxUID, stored.name
        assert mine.file_meta.TransferSyntaxUID == EXPLICIT_LE, stored.name
        differing = [
            element.keyword or str(element.tag)
            for element in theirs
            if element.tag != 0x7FE00010 and mine.get(element.tag) != element
        ]
        assert not differing, (stored.name, differing)
        if "PixelData" in theirs:
            assert np.array_equal(mine.pixel_array, theirs.pixel_array), stored.name


def test_frames_match_orthanc(peers: Peers) -> None:
    """Frames of native pixel data are the same bytes on both servers, those of an object
    stored as Big Endian included (radbank refused them with 406, even with transfer-syntax=*)."""
    accept = 'multipart/related; type="application/octet-stream"'
    for stored in peers.stored:
        if stored.name == "rtplan.dcm":
            continue
        numbers = ",".join(str(n) for n in [stored.frames, 1, stored.frames][: stored.frames + 1])
        path = f"{stored.path}/frames/{numbers}"
        mine = peers.get("radbank", path, accept)
        theirs = peers.get("orthanc", path, accept)
        assert mine.status_code == theirs.status_code == 200, (stored.name, mine.text[:300])
        assert [body for _, body in parts(mine)] == [body for _, body in parts(theirs)]
        assert {content_type for content_type, _ in parts(mine)} == {
            f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        }


def test_metadata_matches_orthanc(peers: Peers) -> None:
    """The same attributes with the same VRs; pixel data of a Big Endian object is served at
    its BulkDataURI in Little Endian, the bytes of its frames."""
    for stored in peers.stored:
        [mine] = peers.get("radbank", f"{stored.path}/metadata", "application/dicom+json").json()
        [theirs] = peers.get("orthanc", f"{stored.path}/metadata", "application/dicom+json").json()
        assert {t: e["vr"] for t, e in mine.items()} == {t: e["vr"] for t, e in theirs.items()}
        if "7FE00010" not in mine:
            continue
        bulk = httpx.get(mine["7FE00010"]["BulkDataURI"], headers=peers.headers, timeout=60)
        frames = peers.get(
            "orthanc",
            f"{stored.path}/frames/" + ",".join(str(n + 1) for n in range(stored.frames)),
            'multipart/related; type="application/octet-stream"',
        )
        assert [body for _, body in parts(bulk)] == [b"".join(body for _, body in parts(frames))], (
            stored.name
        )


def _with_raw(name: str, elements: dict[int, tuple[str, bytes]]) -> pydicom.Dataset:
    """A corpus object with values as a sender wrote them: raw bytes pydicom does not check."""
    dataset = pydicom.dcmread(corpus.path(name))
    for tag, (vr, value) in elements.items():
        value += b" " * (len(value) % 2)
        dataset[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()  # another instance than the corpus's
    return dataset


def test_empty_values_among_several_are_null_as_on_orthanc(peers: Peers) -> None:
    """PS3.18 F.2.5: an empty value in a Value array is null, as Orthanc gives it in metadata
    and in QIDO-RS results. radbank gave "" for text, and dropped the whole value of a DS
    with an empty one (pydicom cannot convert it): Image Orientation (Patient) was missing.
    (Person names, which de-identification replaces, are compared in
    tests/dicom/test_dataset_json.py: Orthanc gives an empty one as {}, the standard null.)"""
    elements = {
        0x00080008: ("CS", b"ORIGINAL\\\\PRIMARY"),  # ImageType
        0x00200037: ("DS", b"1\\\\0\\0\\1\\0"),  # ImageOrientationPatient
        0x00280030: ("DS", b"\\0.5"),  # PixelSpacing
    }
    stored = peers.store("empty values", _with_raw("CT_small.dcm", elements))
    [mine] = peers.get("radbank", f"{stored.path}/metadata", "application/dicom+json").json()
    [theirs] = peers.get("orthanc", f"{stored.path}/metadata", "application/dicom+json").json()
    sop = stored.path.rsplit("/", 1)[1]
    query = (
        "/instances?SOPInstanceUID=" + sop + "".join(f"&includefield={tag:08X}" for tag in elements)
    )
    [found] = peers.get("radbank", query, "application/dicom+json").json()
    [found_there] = peers.get("orthanc", query, "application/dicom+json").json()
    expected = {
        "00080008": {"vr": "CS", "Value": ["ORIGINAL", None, "PRIMARY"]},
        "00200037": {"vr": "DS", "Value": [1, None, 0, 0, 1, 0]},
        "00280030": {"vr": "DS", "Value": [None, 0.5]},
    }
    for tag, element in expected.items():
        assert mine[tag] == theirs[tag] == element, tag
        assert found[tag] == found_there[tag] == element, tag


@pytest.mark.parametrize("syntax", ["abc;def", "1.2.<script>", "1.2.840.10008.1.2.1."])
def test_a_transfer_syntax_that_is_not_a_uid_is_400_as_on_orthanc(
    peers: Peers, syntax: str
) -> None:
    """Both answer a malformed transfer-syntax with 400 (radbank said 406). For a valid UID
    that cannot be sent (1.2.3.4.5) Orthanc 1.10 also says 400; radbank keeps 406, the
    answer PS3.18 8.7.8 gives a request the server understands but cannot satisfy."""
    stored = peers.stored[0]
    for suffix, part_type in [("", "application/dicom"), ("/frames/1", "application/octet-stream")]:
        accept = f'multipart/related; type="{part_type}"; transfer-syntax={syntax}'
        mine = peers.get("radbank", stored.path + suffix, accept)
        theirs = peers.get("orthanc", stored.path + suffix, accept)
        assert mine.status_code == theirs.status_code == 400, (suffix, mine.text[:300])
        assert repr(syntax.split(";")[0]) in mine.json()["error"]
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4.5'
    assert peers.get("radbank", stored.path, accept).status_code == 406
    assert peers.get("orthanc", stored.path, accept).status_code == 400


def test_bulk_data_in_sequences_is_the_same_bytes_as_on_orthanc(peers: Peers) -> None:
    """Waveform Data in Waveform Sequence items: both servers give it a BulkDataURI (radbank
    sent it inline), Orthanc at `.../bulk/54000100/{item from 1}/54001010`, radbank at
    `.../bulkdata/54000100/{item from 1}/54001010`, and both URIs give the same bytes.
    Orthanc also gives small binary values (the private OB elements of this object, 2 to
    520 bytes) a URI; radbank keeps values of up to 1 KB inline."""
    stored = peers.store("waveform_ecg.dcm", pydicom.dcmread(corpus.path("waveform_ecg.dcm")))
    [mine] = peers.get("radbank", f"{stored.path}/metadata", "application/dicom+json").json()
    [theirs] = peers.get("orthanc", f"{stored.path}/metadata", "application/dicom+json").json()
    pairs = zip(mine["54000100"]["Value"], theirs["54000100"]["Value"], strict=True)
    for number, (my_item, their_item) in enumerate(pairs, 1):
        my_uri = my_item["54001010"]["BulkDataURI"]
        their_uri = their_item["54001010"]["BulkDataURI"]
        assert my_uri.endswith(f"{stored.path}/bulkdata/54000100/{number}/54001010")
        assert their_uri.endswith(f"{stored.path}/bulk/54000100/{number}/54001010")
        my_bytes = parts(httpx.get(my_uri, headers=peers.headers, timeout=60))
        their_bytes = parts(httpx.get(their_uri, timeout=60))
        assert [body for _, body in my_bytes] == [body for _, body in their_bytes]
        assert len(my_bytes[0][1]) == (240000, 28800)[number - 1]
