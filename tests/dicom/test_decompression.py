"""Compressed pixel data decoded to native: only the frames asked for, refusals that name
the instance, the transfer syntax and why, and headers that would need more memory than a
DICOM value holds refused before anything is decoded."""

from __future__ import annotations

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
        # Only GDCM (not installed: it aborts the process on a header that does not match
        # the codestream) or the GPL libjpeg decode these.
        ("1.2.840.10008.1.2.4.70", False),  # JPEG Lossless
        ("1.2.840.10008.1.2.4.80", False),  # JPEG-LS
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


def test_12_bit_jpeg_extended_is_refused_and_left_as_it_was() -> None:
    dataset = _read("JPGExtended.dcm")
    pixel_data = dataset.PixelData
    with pytest.raises(DecodeError, match="12-bit"):
        decompress(dataset)
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51"
    assert dataset.PixelData == pixel_data


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
