"""WADO-RS sends compressed instances and frames decoded when the client asks for an
uncompressed form, as PS3.18 Table 8.7.3-2 says and Orthanc does: an instance without a
transfer-syntax parameter (or with Explicit VR Little Endian) comes as Explicit VR Little
Endian, frames asked for as application/octet-stream come as native pixels; `*` and the
compressed media types still give what is stored.

pydicom's compressed test files are stored through STOW-RS (de-identified on the way, so
pixel data is compared, never UIDs); their pixels are compared with the uncompressed
counterparts in pydicom's corpus where the compression is lossless, with pydicom's own
decoding of the original file otherwise, and with what Orthanc sends for the same stored
object where Orthanc is installed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import corpus
import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from liveserver import LiveNode, RunningServer, new_project
from multipart_parts import parts
from peers.orthanc import OrthancPeer, orthanc_available, orthanc_missing_reason
from pydicom.uid import generate_uid

from radbank.dicom import codestreams

# pydicom in this process decodes the originals compared with, JPEG Lossless, 12-bit JPEG
# and JPEG-LS through the same plugin as the server: those are checked against their
# uncompressed counterparts in the corpus and against Orthanc.
codestreams.register()

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DICOM = 'multipart/related; type="application/dicom"'
OCTETS = 'multipart/related; type="application/octet-stream"'

# Compressed file -> its uncompressed counterpart in the corpus (None: lossy, or none there).
DECODABLE = {
    "MR_small_jp2klossless.dcm": "MR_small.dcm",  # JPEG 2000 lossless
    "MR_small_RLE.dcm": "MR_small.dcm",
    "emri_small_RLE.dcm": "emri_small.dcm",  # RLE, 10 frames
    "SC_rgb_jpeg_lossy_gdcm.dcm": None,  # JPEG Baseline, YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+np.dcm": None,  # JPEG Baseline, YBR_FULL_422
    "JPEG2000.dcm": None,  # JPEG 2000, irreversible
    # Through imagecodecs (radbank.dicom.codestreams):
    "JPEG-LL.dcm": None,  # JPEG Lossless SV1, 16 bits signed
    "SC_rgb_jpeg_gdcm.dcm": "SC_rgb.dcm",  # JPEG Lossless SV1, RGB
    "JPGExtended.dcm": None,  # JPEG Extended, 12 bits
    "emri_small_jpeg_ls_lossless.dcm": "emri_small.dcm",  # JPEG-LS lossless, 10 frames
    "MR_small_jpeg_ls_lossless.dcm": "MR_small.dcm",  # JPEG-LS lossless, signed
    "JPEGLSNearLossless_16.dcm": None,  # JPEG-LS near-lossless, 16 bits
}
LOSSY = {
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "JPEGLSNearLossless_16.dcm",
}
# A decoder is installed but refuses: a JPEG-LS image whose header says 32 rows while its
# codestream holds 64 (GDCM aborted the process on such a mismatch; docs/design.md).
UNDECODABLE = "emri_small_jpeg_ls_lossless.dcm (32 rows)"
# No decoder here at all: video. An MPEG-4 AVC/H.264 instance (its "codestream" is JPEG:
# nothing here reads it).
NO_DECODER = {"SC_rgb_jpeg_lossy_gdcm.dcm (as H.264)": "1.2.840.10008.1.2.4.102"}
# Orthanc 1.10 as Debian packages it has no JPEG 2000 decoder (it answers 500), and no
# decoder of JPEG-LS near-lossless at 16 bits (its DCMTK answers 500 too).
ORTHANC_DECODES = [
    n
    for n in DECODABLE
    if n not in ("MR_small_jp2klossless.dcm", "JPEG2000.dcm", "JPEGLSNearLossless_16.dcm")
]


def _rows_32(dataset: pydicom.Dataset) -> None:
    dataset.Rows = 32


def _as_h264(dataset: pydicom.Dataset) -> None:
    dataset.file_meta.TransferSyntaxUID = NO_DECODER["SC_rgb_jpeg_lossy_gdcm.dcm (as H.264)"]
    # In the study of UNDECODABLE, of its patient, for the test of a study mixing the three.
    study = pydicom.dcmread(corpus.path("emri_small_jpeg_ls_lossless.dcm"), stop_before_pixels=True)
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate"):
        setattr(dataset, keyword, study.get(keyword, ""))
    dataset.SeriesInstanceUID = generate_uid()


# Stored name -> (corpus file, its change).
VARIANTS: dict[str, tuple[str, Callable[[pydicom.Dataset], None]]] = {
    UNDECODABLE: ("emri_small_jpeg_ls_lossless.dcm", _rows_32),
    "SC_rgb_jpeg_lossy_gdcm.dcm (as H.264)": ("SC_rgb_jpeg_lossy_gdcm.dcm", _as_h264),
}
needs_orthanc = pytest.mark.skipif(not orthanc_available(), reason=str(orthanc_missing_reason()))


@dataclass
class Stored:
    original: pydicom.Dataset
    """The corpus file as read, before de-identification."""
    url: str
    """Its RetrieveURL in radbank."""

    @property
    def path(self) -> str:
        """/studies/{study}/series/{series}/instances/{sop}."""
        return "/" + self.url.split("/dicom-web/projects/", 1)[1].split("/", 1)[1]

    @property
    def uids(self) -> list[str]:
        return self.path.split("/")[2::2]


@dataclass
class Archive:
    node: LiveNode
    log: Path
    stored: dict[str, Stored]

    def get(self, name: str, suffix: str = "", accept: str = DICOM) -> httpx.Response:
        with self.node.client() as http:
            return http.get(self.stored[name].url + suffix, headers={"Accept": accept})


@pytest.fixture(scope="module")
def archive(server: RunningServer) -> Archive:
    """Every file of DECODABLE, UNDECODABLE and NO_DECODER stored in one project of the session's
    server (the tests only read it)."""
    node = LiveNode(server.base_url, server.token, server.data_dir, new_project(server))
    stored = {}
    for name in [*DECODABLE, UNDECODABLE, *NO_DECODER]:
        source, change = VARIANTS.get(name, (name, None))
        url = _store(node, source, change)
        original = pydicom.dcmread(corpus.path(source))
        if change is not None:
            change(original)
        stored[name] = Stored(original, url)
    return Archive(node, server.log, stored)


def _store(
    node: LiveNode, name: str, change: Callable[[pydicom.Dataset], None] | None = None
) -> str:
    """Store the corpus file `name`, changed by `change`; its RetrieveURL."""
    dataset = pydicom.dcmread(corpus.path(name))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):  # JPEGLSNearLossless_16 has none
        if keyword not in dataset:
            setattr(dataset, keyword, generate_uid(prefix=None))
    # MR_small_RLE and MR_small_jp2klossless are one instance in two syntaxes; the project
    # would take the second for a conflicting copy of the first.
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    # Secondary captures are held in quarantine unless the source says they show no
    # identity (docs/burned-in.md); these show none.
    dataset.BurnedInAnnotation = "NO"
    if change is not None:
        change(dataset)
    client = DICOMwebClient(url=node.dicomweb_url, headers=node.headers)
    return str(client.store_instances([dataset]).ReferencedSOPSequence[0].RetrieveURL)


def _instance(reply: httpx.Response) -> tuple[str, pydicom.Dataset]:
    assert reply.status_code == 200, reply.text[:300]
    [(content_type, data)] = parts(reply)
    return content_type, pydicom.dcmread(io.BytesIO(data))


def _frames(dataset: pydicom.Dataset) -> list[bytes]:
    """pydicom's decoding of every frame, as the bytes Explicit VR Little Endian holds."""
    pixels = dataset.pixel_array
    if int(dataset.get("NumberOfFrames", 1) or 1) == 1:
        pixels = pixels[np.newaxis]
    little_endian = pixels.dtype.newbyteorder("<")
    return [frame.astype(little_endian).tobytes() for frame in pixels]


@pytest.mark.parametrize(
    "accept", [DICOM, f"{DICOM}; transfer-syntax={EXPLICIT_LE}"], ids=["default", "explicit-le"]
)
@pytest.mark.parametrize("name", DECODABLE)
def test_compressed_instances_are_sent_decoded(archive: Archive, name: str, accept: str) -> None:
    """Without a transfer syntax (PS3.18's default) or with Explicit VR Little Endian, a
    compressed instance comes decoded: before, the first sent it still compressed and the
    second was a 406. Its pixels are the uncompressed original's where the compression was
    lossless; YCbCr JPEG comes as RGB, and lossy sources still say they were."""
    content_type, dataset = _instance(archive.get(name, accept=accept))
    original = archive.stored[name].original
    assert content_type == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    assert dataset.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert not dataset["PixelData"].is_undefined_length
    assert np.array_equal(dataset.pixel_array, original.pixel_array)
    if DECODABLE[name]:
        uncompressed = pydicom.dcmread(corpus.path(DECODABLE[name]))
        assert np.array_equal(dataset.pixel_array, uncompressed.pixel_array)
    if original.SamplesPerPixel == 3:
        assert (dataset.PhotometricInterpretation, dataset.PlanarConfiguration) == ("RGB", 0)
    if name in LOSSY:
        assert dataset.LossyImageCompression == "01"


@pytest.mark.parametrize("name", DECODABLE)
def test_decoded_instances_are_valid_dicom(archive: Archive, name: str, tmp_path: Path) -> None:
    """dciodvfy (dicom3tools, an independent validator) finds no error in a decoded
    instance that it does not find in the instance as stored."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    errors = {}
    for form, accept in (("stored", f"{DICOM}; transfer-syntax=*"), ("decoded", DICOM)):
        [(_, data)] = parts(archive.get(name, accept=accept))
        (tmp_path / form).write_bytes(data)
        report = subprocess.run(
            ["dciodvfy", str(tmp_path / form)], capture_output=True, text=True, timeout=60
        )
        errors[form] = {
            line for line in (report.stdout + report.stderr).splitlines() if "Error" in line
        }
    assert errors["decoded"] <= errors["stored"], errors["decoded"] - errors["stored"]


@pytest.mark.parametrize("name", [*DECODABLE, UNDECODABLE])
def test_any_transfer_syntax_sends_compressed_instances_as_stored(
    archive: Archive, name: str
) -> None:
    original = archive.stored[name].original
    content_type, dataset = _instance(archive.get(name, accept=f"{DICOM}; transfer-syntax=*"))
    assert (
        content_type == f"application/dicom; transfer-syntax={original.file_meta.TransferSyntaxUID}"
    )
    assert dataset.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert dataset.PixelData == original.PixelData


def test_dicomweb_client_round_trip(archive: Archive) -> None:
    """dicomweb-client's retrieve_instance asks for transfer-syntax=* by default and gets
    each instance as stored; asking for application/dicom alone gets it decoded, pixels
    its caller reads without a decoder of its own (12-bit JPEG Extended still as stored).
    Its retrieve_study asks for the default and gets a study of JPEG images decoded."""
    client = DICOMwebClient(url=archive.node.dicomweb_url, headers=archive.node.headers)
    study = client.retrieve_study(archive.stored["SC_rgb_jpeg_lossy_gdcm.dcm"].uids[0])
    assert study
    assert {dataset.file_meta.TransferSyntaxUID for dataset in study} == {EXPLICIT_LE}
    for name, stored in archive.stored.items():
        syntax = stored.original.file_meta.TransferSyntaxUID
        as_stored = client.retrieve_instance(*stored.uids)
        assert as_stored.file_meta.TransferSyntaxUID == syntax, name
        assert as_stored.PixelData == stored.original.PixelData, name
        decoded = client.retrieve_instance(*stored.uids, media_types=("application/dicom",))
        if name == UNDECODABLE or name in NO_DECODER:
            assert decoded.file_meta.TransferSyntaxUID == syntax
            continue
        assert decoded.file_meta.TransferSyntaxUID == EXPLICIT_LE, name
        assert np.array_equal(decoded.pixel_array, stored.original.pixel_array), name


def test_other_uncompressed_syntaxes_of_compressed_instances_stay_406(archive: Archive) -> None:
    """Implicit VR Little Endian and Big Endian are not for web services (PS3.18 8.7.3):
    a compressed instance is only decoded to Explicit VR Little Endian."""
    for syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2"):
        reply = archive.get("MR_small_RLE.dcm", accept=f"{DICOM}; transfer-syntax={syntax}")
        assert reply.status_code == 406, reply.text
        assert "transfer-syntax=*" in reply.json()["error"]


@pytest.mark.parametrize(
    "accept", [DICOM, f"{DICOM}; transfer-syntax={EXPLICIT_LE}"], ids=["default", "explicit-le"]
)
def test_an_instance_no_decoder_here_reads_comes_as_stored_and_says_so(
    archive: Archive, accept: str
) -> None:
    """A JPEG-LS image whose header does not match its codestream cannot be decoded: the
    answer has started (200) before the instance is decoded, so it comes as stored, its
    part naming its transfer syntax, and the server logs why (and stays up)."""
    stored = archive.stored[UNDECODABLE]
    syntax = stored.original.file_meta.TransferSyntaxUID
    content_type, dataset = _instance(archive.get(UNDECODABLE, accept=accept))
    assert content_type == f"application/dicom; transfer-syntax={syntax}"
    assert dataset.file_meta.TransferSyntaxUID == syntax
    assert dataset.PixelData == stored.original.PixelData
    sop = stored.uids[2]
    logged = [line for line in archive.log.read_text().splitlines() if sop in line]
    assert any(
        "sent as stored" in line and "codestream holds 64 x 64 pixels" in line for line in logged
    ), logged


@pytest.mark.parametrize("name", NO_DECODER)
def test_an_instance_of_a_syntax_without_a_decoder_here(archive: Archive, name: str) -> None:
    """Video: by default as stored, its part naming its syntax (decided
    before the answer starts, so nothing is logged); asked for in Explicit VR Little
    Endian by name, 406; its frames as octet-stream, 406 saying how to get them as stored."""
    stored = archive.stored[name]
    syntax = NO_DECODER[name]
    content_type, dataset = _instance(archive.get(name, accept=DICOM))
    assert content_type == f"application/dicom; transfer-syntax={syntax}"
    assert dataset.PixelData == stored.original.PixelData
    explicit = archive.get(name, accept=f"{DICOM}; transfer-syntax={EXPLICIT_LE}")
    assert explicit.status_code == 406, explicit.text
    assert "transfer-syntax=*" in explicit.json()["error"]
    frames = archive.get(name, "/frames/1", OCTETS)
    assert frames.status_code == 406, frames.text
    assert syntax in frames.json()["error"] and "transfer-syntax=*" in frames.json()["error"]


def test_a_study_mixing_decodable_and_undecodable_instances(archive: Archive) -> None:
    """Each part is in the syntax it could be sent in (PS3.18 8.7.3.4): decoded where it
    can be, as stored where it cannot."""
    study = archive.stored[UNDECODABLE].uids[0]
    with archive.node.client() as http:
        reply = http.get(f"{archive.node.dicomweb_url}/studies/{study}", headers={"Accept": DICOM})
    assert reply.status_code == 200
    syntaxes = {
        str(pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID): content_type
        for content_type, data in parts(reply)
    }
    # emri_small's RLE and JPEG-LS files, the JPEG-LS one with 32 rows, the H.264 one.
    assert syntaxes == {
        EXPLICIT_LE: f"application/dicom; transfer-syntax={EXPLICIT_LE}",
        "1.2.840.10008.1.2.4.80": "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.102": "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.102",
    }
    in_study = [name for name, stored in archive.stored.items() if stored.uids[0] == study]
    assert len(in_study) == 4, in_study
    assert len(parts(reply)) == len(in_study)


def test_a_lossy_source_that_did_not_say_so_says_so_once_decoded(live_node: LiveNode) -> None:
    """Once decoded, the transfer syntax no longer tells that JPEG Baseline was lossy:
    LossyImageCompression 01 with its method says it (PS3.3 C.7.6.1.1.5; Orthanc's DCMTK
    sets it too). Lossless sources are not marked."""

    def forget_lossy(dataset: pydicom.Dataset) -> None:
        del dataset.LossyImageCompression

    url = _store(live_node, "SC_rgb_jpeg_lossy_gdcm.dcm", forget_lossy)
    lossless = _store(live_node, "MR_small_RLE.dcm")
    with live_node.client() as http:
        _, stored = _instance(http.get(url, headers={"Accept": f"{DICOM}; transfer-syntax=*"}))
        _, decoded = _instance(http.get(url, headers={"Accept": DICOM}))
        _, decoded_lossless = _instance(http.get(lossless, headers={"Accept": DICOM}))
    assert "LossyImageCompression" not in stored
    assert (decoded.LossyImageCompression, decoded.LossyImageCompressionMethod) == (
        "01",
        "ISO_10918_1",
    )
    assert "LossyImageCompression" not in decoded_lossless


def test_a_damaged_codestream(live_node: LiveNode) -> None:
    """A stored JPEG whose codestream is cut in half: the instance comes as stored, its
    part saying so; its frames as octet-stream are a 406 naming the instance, the transfer
    syntax and why, never a 500."""

    def cut(dataset: pydicom.Dataset) -> None:
        [frame] = pydicom.encaps.generate_frames(dataset.PixelData, number_of_frames=1)
        dataset.PixelData = pydicom.encaps.encapsulate([frame[: len(frame) // 2]])

    url = _store(live_node, "SC_rgb_jpeg_lossy_gdcm.dcm", cut)
    with live_node.client() as http:
        content_type, dataset = _instance(http.get(url, headers={"Accept": DICOM}))
        frames = http.get(url + "/frames/1", headers={"Accept": OCTETS})
    assert content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert frames.status_code == 406
    error = frames.json()["error"]
    for words in (url.rsplit("/", 1)[1], "1.2.840.10008.1.2.4.50", "cannot be decoded"):
        assert words in error, error


@pytest.mark.parametrize(
    "accept", [OCTETS, f"{OCTETS}; transfer-syntax={EXPLICIT_LE}"], ids=["default", "explicit-le"]
)
@pytest.mark.parametrize("name", DECODABLE)
def test_frames_as_octet_stream_are_decoded(archive: Archive, name: str, accept: str) -> None:
    """application/octet-stream frames of a compressed instance are its native pixels, in
    the order asked, repeats included (they were a 406)."""
    original = archive.stored[name].original
    expected = _frames(original)
    numbers = [3, 1, 3] if len(expected) > 1 else [1]
    reply = archive.get(name, "/frames/" + ",".join(map(str, numbers)), accept)
    assert reply.status_code == 200, reply.text[:300]
    assert [body for _, body in parts(reply)] == [expected[n - 1] for n in numbers]
    assert {content_type for content_type, _ in parts(reply)} == {
        f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    }


def test_frames_of_an_instance_no_decoder_here_reads(archive: Archive) -> None:
    """As octet-stream only: 406 naming the instance, its transfer syntax and why; with
    image/jpeg acceptable as well, its frames come as stored."""
    stored = archive.stored[UNDECODABLE]
    refused = archive.get(UNDECODABLE, "/frames/1", OCTETS)
    assert refused.status_code == 406
    error = refused.json()["error"]
    for words in (stored.uids[2], "1.2.840.10008.1.2.4.80", "64 x 64", "transfer-syntax=*"):
        assert words in error, error
    accept = f'{OCTETS}, multipart/related; type="image/jls"; q=0.5'
    reply = archive.get(UNDECODABLE, "/frames/1", accept)
    assert reply.status_code == 200, reply.text
    [(content_type, body)] = parts(reply)
    assert content_type == "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert body == next(
        pydicom.encaps.generate_frames(stored.original.PixelData, number_of_frames=10)
    )


@pytest.fixture(scope="module")
def orthanc(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Orthanc holding radbank's stored files of ORTHANC_DECODES; its DICOMweb URL."""
    with OrthancPeer(tmp_path_factory.mktemp("orthanc")) as peer:
        for name in ORTHANC_DECODES:
            [(_, data)] = parts(archive.get(name, accept=f"{DICOM}; transfer-syntax=*"))
            assert httpx.post(f"{peer.base_url}/instances", content=data).status_code == 200
        yield peer.dicomweb_url


def _orthanc_instance(orthanc: str, path: str) -> pydicom.Dataset:
    reply = httpx.get(orthanc + path, headers={"Accept": DICOM}, timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    [(_, data)] = parts(reply)
    return pydicom.dcmread(io.BytesIO(data))


@pytest.mark.orthanc
@needs_orthanc
@pytest.mark.parametrize("name", ORTHANC_DECODES)
def test_decoded_instances_match_orthanc(archive: Archive, orthanc: str, name: str) -> None:
    """Orthanc sends the same pixels, Photometric Interpretation, Planar Configuration and
    LossyImageCompression."""
    _, mine = _instance(archive.get(name))
    theirs = _orthanc_instance(orthanc, archive.stored[name].path)
    assert mine.file_meta.TransferSyntaxUID == theirs.file_meta.TransferSyntaxUID == EXPLICIT_LE
    for keyword in ("PhotometricInterpretation", "PlanarConfiguration", "LossyImageCompression"):
        assert mine.get(keyword) == theirs.get(keyword), keyword
    assert np.array_equal(mine.pixel_array, theirs.pixel_array)


@pytest.mark.orthanc
@needs_orthanc
@pytest.mark.parametrize("name", ORTHANC_DECODES)
def test_decoded_frames_match_orthanc(archive: Archive, orthanc: str, name: str) -> None:
    """Frames asked for as application/octet-stream are the same bytes on both servers,
    colour JPEG as interleaved RGB on both."""
    path = archive.stored[name].path
    numbers = "3,1" if "emri" in name else "1"
    mine = archive.get(name, f"/frames/{numbers}", OCTETS)
    theirs = httpx.get(f"{orthanc}{path}/frames/{numbers}", headers={"Accept": OCTETS}, timeout=60)
    assert mine.status_code == theirs.status_code == 200, mine.text[:300]
    assert [body for _, body in parts(mine)] == [body for _, body in parts(theirs)]
