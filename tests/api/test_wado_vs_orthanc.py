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

    def get(self, server: str, path: str, accept: str | None = None) -> httpx.Response:
        base = self.radbank_url if server == "radbank" else self.orthanc_url
        headers = dict(self.headers) if server == "radbank" else {}
        if accept is not None:
            headers["Accept"] = accept
        return httpx.get(base + path, headers=headers, timeout=60)


@pytest.fixture
def peers(live_node: Any, tmp_path: Path) -> Iterator[Peers]:
    client = DICOMwebClient(url=live_node.dicomweb_url, headers=live_node.headers)
    stored = []
    with OrthancPeer(tmp_path / "orthanc") as orthanc, live_node.client() as http:
        for name in FILES:
            original = pydicom.dcmread(corpus.path(name))
            receipt = client.store_instances([original])
            url = receipt.ReferencedSOPSequence[0].RetrieveURL
            # Asking for the syntax it was received in fetches the stored file itself.
            syntax = original.file_meta.TransferSyntaxUID
            reply = http.get(
                url,
                headers={
                    "Accept": f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'
                },
            )
            [(_, data)] = parts(reply)
            assert httpx.post(f"{orthanc.base_url}/instances", content=data).status_code == 200
            dataset = pydicom.dcmread(io.BytesIO(data))
            path = url.split("/dicom-web/projects/", 1)[1].split("/", 1)[1]
            stored.append(Stored(name, "/" + path, int(dataset.get("NumberOfFrames", 1) or 1)))
        yield Peers(live_node.dicomweb_url, orthanc.dicomweb_url, live_node.headers, stored)


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
