"""Compressed pixel data decoded to native: only the frames asked for, refusals that name
the instance, the transfer syntax and why, and headers that would need more memory than a
DICOM value holds refused before anything is decoded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import corpus
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from radbank.dicom.decompression import (
    MAX_DECODED_BYTES,
    DecodeError,
    can_decode,
    decode_frames,
    decompress,
    pixel_arrays,
)


def _read(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(corpus.path(name))


def test_the_frames_asked_for_come_in_the_order_asked() -> None:
    reference = _read("emri_small.dcm").pixel_array
    frames = decode_frames(_read("emri_small_RLE.dcm"), [7, 0])
    assert frames == [reference[7].astype("<u2").tobytes(), reference[0].astype("<u2").tobytes()]


@pytest.mark.parametrize(
    ("syntax", "decodable"),
    [
        ("1.2.840.10008.1.2.5", True),  # RLE, pydicom's own decoder
        ("1.2.840.10008.1.2.4.50", True),  # JPEG Baseline, Pillow
        # imagecodecs (radbank.dicom.codestreams); not GDCM, which aborts the process on a
        # header that does not match the codestream, nor the GPL libjpeg.
        ("1.2.840.10008.1.2.4.51", True),  # JPEG Extended (12 bits: imagecodecs)
        ("1.2.840.10008.1.2.4.57", True),  # JPEG Lossless
        ("1.2.840.10008.1.2.4.70", True),  # JPEG Lossless SV1
        ("1.2.840.10008.1.2.4.80", True),  # JPEG-LS
        ("1.2.840.10008.1.2.4.81", True),  # JPEG-LS near-lossless
        # imagecodecs' OpenJPH spent over 4 minutes allocating on a fuzzed HTJ2K header.
        ("1.2.840.10008.1.2.4.201", False),  # HTJ2K lossless
        ("1.2.840.10008.1.2.4.100", False),  # MPEG2 video
        ("1.2.3.4", False),  # not a transfer syntax
    ],
)
def test_which_transfer_syntaxes_have_a_decoder(syntax: str, decodable: bool) -> None:
    assert can_decode(syntax) is decodable


@pytest.mark.parametrize("side", [65535, 30000, 16385])
def test_a_header_declaring_more_than_the_decode_budget_is_refused_before_decoding(
    side: int,
) -> None:
    """A few kilobytes of RLE can declare 30000 x 30000 pixels of 16 bits (1.8 GB a frame):
    refused from the header alone, for a frame as for the whole instance, not by taking a
    worker's memory (pydicom's RLE decoder allocates what the header declares)."""
    dataset = _read("MR_small_RLE.dcm")
    dataset.Rows = dataset.Columns = side
    assert side * side * 2 > MAX_DECODED_BYTES
    with pytest.raises(DecodeError, match="MiB decoded at once here"):
        decode_frames(dataset, [0])
    with pytest.raises(DecodeError, match="MiB decoded at once here"):
        decompress(dataset)
    with pytest.raises(DecodeError, match="MiB decoded at once here"):
        pixel_arrays(dataset)


def test_a_damaged_codestream_names_the_instance_the_syntax_and_why() -> None:
    dataset = _read("MR_small_jp2klossless.dcm")
    [frame] = generate_frames(dataset.PixelData, number_of_frames=1)
    dataset.PixelData = encapsulate([frame[: len(frame) // 2]])
    with pytest.raises(DecodeError) as refused:
        decode_frames(dataset, [0])
    message = str(refused.value)
    assert dataset.SOPInstanceUID in message
    assert "JPEG 2000" in message and "1.2.840.10008.1.2.4.90" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "uncompressed"),
    [
        ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb.dcm"),  # JPEG Lossless SV1, RGB
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),  # JPEG-LS, 16 bits signed
        ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),  # JPEG-LS, 10 frames
    ],
)
def test_lossless_jpeg_and_jpeg_ls_decode_to_the_uncompressed_pixels(
    name: str, uncompressed: str
) -> None:
    dataset = _read(name)
    decompress(dataset)
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert "LossyImageCompression" not in dataset or dataset.LossyImageCompression == "00"
    assert np.array_equal(dataset.pixel_array, _read(uncompressed).pixel_array)


def test_12_bit_jpeg_extended_decodes_to_16_bits_allocated_and_says_lossy() -> None:
    """Pillow refuses 12 bits; imagecodecs' libjpeg-turbo decodes them (that the values are
    Orthanc's is tested in tests/api/test_wado_decompression.py)."""
    dataset = _read("JPGExtended.dcm")
    decompress(dataset)
    assert (dataset.BitsAllocated, dataset["PixelData"].VR) == (16, "OW")
    assert dataset.LossyImageCompression == "01"
    pixels = dataset.pixel_array
    assert pixels.shape == (1024, 256) and 0 < pixels.max() < 4096


def _codestream(name: str) -> tuple[pydicom.Dataset, bytes]:
    dataset = _read(name)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    return dataset, next(generate_frames(dataset.PixelData, number_of_frames=frames))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Rows": 32}, "the codestream holds 64 x 64 pixels of 1 sample(s), the data set 32 x 64"),
        ({"SamplesPerPixel": 3, "PlanarConfiguration": 0}, "the data set 64 x 64 of 3"),
        (
            {"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7},
            "16 bits, more than the 8 bits allocated",
        ),
    ],
)
def test_a_header_that_does_not_match_its_codestream_is_refused(
    change: dict[str, int], reason: str
) -> None:
    """GDCM aborted the process on such an image; here it is a DecodeError naming both."""
    dataset = _read("MR_small_jpeg_ls_lossless.dcm")
    for keyword, value in change.items():
        setattr(dataset, keyword, value)
    pixel_data = dataset.PixelData
    with pytest.raises(DecodeError) as refused:
        decompress(dataset)
    assert reason in str(refused.value)
    assert dataset.SOPInstanceUID in str(refused.value)
    assert dataset.PixelData == pixel_data
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"


def test_a_codestream_declaring_a_huge_image_is_refused_before_decoding() -> None:
    """The decoders size their output from the codestream: a JPEG Lossless frame header
    rewritten to 65535 x 65535 (8 GB decoded) under a 1024 x 256 data set is refused from
    the header, before any memory is taken."""
    dataset, frame = _codestream("JPEG-LL.dcm")
    sof = frame.find(b"\xff\xc3")
    huge = frame[: sof + 5] + b"\xff\xff\xff\xff" + frame[sof + 9 :]
    dataset.PixelData = encapsulate([huge])
    with pytest.raises(DecodeError, match="codestream holds 65535 x 65535 pixels"):
        decode_frames(dataset, [0])


@pytest.mark.parametrize(
    "name",
    ["JPEG-LL.dcm", "JPGExtended.dcm", "MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_gdcm.dcm"],
)
def test_damaged_codestreams_are_refused_and_never_take_the_process_down(
    name: str, tmp_path: Path
) -> None:
    """300 codestreams damaged at random (bytes changed in the header and anywhere, cut
    short, junk inserted), decoded in a child process so that a crash fails this test
    instead of ending pytest: each decodes or is a DecodeError, and the child exits
    normally (GDCM aborted it on some of these)."""
    script = tmp_path / "damaged.py"
    script.write_text(_DAMAGED_SCRIPT)
    child = subprocess.run(
        [sys.executable, str(script), str(corpus.path(name))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    decoded, refused = map(int, child.stdout.split())
    assert decoded + refused == 300 and refused > 0


_DAMAGED_SCRIPT = """
import random, sys
import pydicom
from pydicom.encaps import encapsulate, generate_frames
from radbank.dicom.decompression import DecodeError, decode_frames

dataset = pydicom.dcmread(sys.argv[1])
frames = int(dataset.get("NumberOfFrames", 1) or 1)
frame = next(generate_frames(dataset.PixelData, number_of_frames=frames))
dataset.NumberOfFrames = 1
random_ = random.Random(1)
decoded = refused = 0
for attempt in range(300):
    data = bytearray(frame)
    kind = attempt % 4
    if kind == 0:
        for _ in range(random_.randrange(1, 6)):
            data[random_.randrange(min(len(data), 300))] = random_.randrange(256)
    elif kind == 1:
        for _ in range(random_.randrange(1, 30)):
            data[random_.randrange(len(data))] = random_.randrange(256)
    elif kind == 2:
        del data[random_.randrange(len(data)):]
    else:
        at = random_.randrange(len(data))
        data[at:at] = random_.randbytes(random_.randrange(1, 64))
    dataset.PixelData = encapsulate([bytes(data)])
    try:
        decode_frames(dataset, [0])
        decoded += 1
    except DecodeError:
        refused += 1
print(decoded, refused)
"""


def test_decompress_makes_an_explicit_little_endian_instance_of_the_same_uid() -> None:
    """YBR_FULL JPEG becomes interleaved RGB; a lossy source that did not say so says so."""
    dataset = _read("SC_rgb_jpeg_lossy_gdcm.dcm")
    del dataset.LossyImageCompression
    expected = dataset.pixel_array
    uid = dataset.SOPInstanceUID
    decompress(dataset)
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert dataset.SOPInstanceUID == uid
    assert (dataset.PhotometricInterpretation, dataset.PlanarConfiguration) == ("RGB", 0)
    assert dataset["PixelData"].VR == "OB" and not dataset["PixelData"].is_undefined_length
    assert (dataset.LossyImageCompression, dataset.LossyImageCompressionMethod) == (
        "01",
        "ISO_10918_1",
    )
    assert np.array_equal(dataset.pixel_array, expected)


def test_decompress_a_jpeg_2000_whose_signedness_differs_from_its_header() -> None:
    """pydicom's own Dataset.decompress fails on this file ("output array is read-only");
    frame by frame it decodes."""
    dataset = _read("J2K_pixelrep_mismatch.dcm")
    expected = dataset.pixel_array
    decompress(dataset)
    assert np.array_equal(dataset.pixel_array, expected)
    assert "LossyImageCompression" not in dataset


def test_a_progressive_frame_under_a_lossless_syntax_is_refused() -> None:
    """libjpeg-turbo would decode it; thousands of tiny progressive scans of a large image
    kept it busy for minutes (a review's 262 KB file: 25 s)."""
    dataset, frame = _codestream("JPEG-LL.dcm")
    sof = frame.find(b"\xff\xc3")
    dataset.PixelData = encapsulate([frame[: sof + 1] + b"\xc2" + frame[sof + 2 :]])
    with pytest.raises(DecodeError, match="frame is SOF2, which JPEG Lossless"):
        decode_frames(dataset, [0])


def test_more_scans_than_components_are_refused() -> None:
    dataset, frame = _codestream("JPEG-LL.dcm")
    scan = frame[frame.find(b"\xff\xda") : frame.rfind(b"\xff\xd9")]
    dataset.PixelData = encapsulate([frame[:-2] + scan * 3 + b"\xff\xd9"])
    with pytest.raises(DecodeError, match="4 scans for 1 component"):
        decode_frames(dataset, [0])


def test_jpeg_ls_and_lossless_decode_through_radbank_s_plugin_whatever_else_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pydicom tries GDCM, pylibjpeg and pyjpegls before a plugin added later, and GDCM
    aborts the process on a header mismatch. A plugin put first (a stand-in for GDCM,
    which is not installed here) is never asked for these syntaxes."""
    from pydicom.pixels import get_decoder

    asked: list[str] = []

    def first(src: bytes, runner: object) -> bytes:
        asked.append("first")
        raise AssertionError("the plugin installed first was used")

    for name in ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LL.dcm"):
        dataset = _read(name)
        decoder = get_decoder(dataset.file_meta.TransferSyntaxUID)
        monkeypatch.setattr(decoder, "_available", {"first": first, **decoder._available})
        assert decode_frames(dataset, [0])
    assert asked == []


def test_an_application_segment_holding_scan_markers_is_not_taken_for_scans() -> None:
    """An APP1 segment before the frame (an EXIF thumbnail is a whole JPEG) may hold FF DA:
    only markers from the first scan on are counted."""
    dataset, frame = _codestream("JPEG-LL.dcm")
    thumbnail = b"\xff\xd8\xff\xda\x00\x02\xff\xda\x00\x02\xff\xd9"
    app1 = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    expected = decode_frames(dataset, [0])
    dataset.PixelData = encapsulate([frame[:2] + app1 + frame[2:]])
    assert decode_frames(dataset, [0]) == expected
