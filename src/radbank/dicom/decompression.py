"""Encapsulated (compressed) pixel data decoded to native pixel data, as Explicit VR Little
Endian holds it: whole instances (`decompress`) and chosen frames (`decode_frames`).

Decoding uses pydicom's decoders with the plugins installed here: pydicom's own RLE
decoder, Pillow (8-bit JPEG, JPEG 2000) and radbank's imagecodecs plugin (codestreams.py:
JPEG Lossless, 12-bit JPEG Extended, JPEG-LS). Not GDCM (python-gdcm): it aborts
the process, beyond Python's reach, when an image's header does not match its codestream
(a stored object would take a worker down with each retrieval). Video and HTJ2K have
no decoder here. Decoded frames hold every
sample of every pixel, interleaved (Planar Configuration 0), with YCbCr converted to RGB
as pydicom converts it; Orthanc (DCMTK) sends the same values. What cannot be decoded
raises DecodeError naming the instance, its transfer syntax and why. Pure functions on a
pydicom Dataset, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import get_nr_frames
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
)
from pydicom.valuerep import VR

from radbank.dicom import codestreams

__all__ = [
    "MAX_DECODED_BYTES",
    "DecodeError",
    "can_decode",
    "decode_frames",
    "decompress",
    "lossy_compression_method",
    "pixel_arrays",
    "store_native",
]

codestreams.register()

# The most pixel data decoded in one call. A decoded frame is held about three times over
# while an instance is converted (the arrays, their bytes, the written file); 512 MiB
# takes a 200-frame ultrasound cine of 800 x 600 in RGB, and keeps a request that a few
# kilobytes of RLE can make (by declaring 30000 x 30000 pixels) within a worker's memory.
MAX_DECODED_BYTES = 512 * 1024 * 1024


# Transfer syntaxes that are always lossy, with their LossyImageCompressionMethod (CID 7013).
_LOSSY_METHODS: dict[str, str] = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
}
# Transfer syntaxes that allow either; the codestream's COD segment says which was used.
_J2K_METHODS: dict[str, str] = {
    JPEG2000: "ISO_15444_1",
    JPEG2000MC: "ISO_15444_2",
    HTJ2K: "ISO_15444_15",
}


class DecodeError(ValueError):
    """Pixel data that cannot be decoded here; the message names the instance, its
    transfer syntax and why."""


@cache
def can_decode(transfer_syntax_uid: str) -> bool:
    """Whether a decoder for pixel data encapsulated in this transfer syntax is installed.

    A decoder can still refuse a particular object: a damaged codestream, or one whose
    header describes another image than the data set, fails in `decode_frames`.
    """
    try:
        return bool(get_decoder(UID(transfer_syntax_uid)).is_available)
    except NotImplementedError:
        return False


def decode_frames(dataset: Dataset, indices: Sequence[int]) -> list[bytes]:
    """The frames at `indices` (0-based) of the data set's encapsulated pixel data, each
    decoded on its own and as the bytes Explicit VR Little Endian holds it: BitsAllocated
    per sample, little endian, samples interleaved, YCbCr as RGB.

    Raises DecodeError."""
    return [data for data, _ in _decoded(dataset, indices)] if indices else []


def decompress(dataset: Dataset) -> None:
    """Decode the data set's encapsulated pixel data in place and make it an Explicit VR
    Little Endian data set: Pixel Data native (OB for 8 bits allocated, OW above),
    Photometric Interpretation and Planar Configuration as decoded (YBR_FULL_422 JPEG
    becomes RGB, 0), the offset tables of the fragments dropped. A source compressed with
    a lossy method that did not say so gets LossyImageCompression 01 with its method
    (PS3.3 C.7.6.1.1.5: once decoded, the transfer syntax no longer tells), as DCMTK does.
    The SOP Instance UID is kept: this is the same instance in another transfer syntax.

    Raises DecodeError; the data set is unchanged then."""
    if "PixelData" not in dataset:
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        return
    try:
        total = get_nr_frames(dataset, warn=False)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{_where(dataset)} has no usable NumberOfFrames ({exc})") from None
    decoded = _decoded(dataset, range(total))
    pixel_data = b"".join(data for data, _ in decoded)
    meta = decoded[0][1]
    store_native(
        dataset,
        pixel_data,
        bits_allocated=int(meta["bits_allocated"]),
        photometric=str(meta["photometric_interpretation"]),
        samples=int(meta["samples_per_pixel"]),
        frames=total,
    )


def store_native(
    dataset: Dataset,
    data: bytes,
    *,
    bits_allocated: int,
    photometric: str,
    samples: int,
    frames: int,
) -> None:
    """Put decoded pixel `data` (interleaved samples, little endian) in place of the data
    set's encapsulated Pixel Data, with the attributes that describe it, and make its
    transfer syntax Explicit VR Little Endian."""
    lossy_method = lossy_compression_method(dataset, UID(dataset.file_meta.TransferSyntaxUID))
    element = dataset["PixelData"]
    element.value = data + b"\0" * (len(data) % 2)
    element.VR = VR.OB if bits_allocated <= 8 else VR.OW
    element.is_undefined_length = False
    dataset.PhotometricInterpretation = photometric
    if samples > 1:
        dataset.PlanarConfiguration = 0
    if "NumberOfFrames" in dataset or frames > 1:
        dataset.NumberOfFrames = frames
    # The offset tables index the compressed fragments, which are gone.
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in dataset:
            del dataset[keyword]
    if lossy_method is not None and str(dataset.get("LossyImageCompression", "")) != "01":
        # Once native, the transfer syntax no longer tells that the pixels went through
        # lossy compression; PS3.3 C.7.6.1.1.5 requires saying so here.
        dataset.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in dataset:
            dataset.LossyImageCompressionMethod = lossy_method
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def pixel_arrays(
    dataset: Dataset, indices: Sequence[int] | None = None
) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """The frames at `indices` (0-based; None: all) of the data set's pixel data, native or
    encapsulated, decoded by pydicom with YCbCr as RGB: (array, pydicom's image pixel
    properties after decoding) each. The pixel rules, the OCR check and WADO-RS all decode
    through here.

    The header alone sets how much memory decoding takes (a few kilobytes of RLE can
    declare gigabytes), so it is checked first: at most `MAX_DECODED_BYTES` are decoded in
    one call. Raises DecodeError."""
    syntax = UID(dataset.file_meta.TransferSyntaxUID)
    if syntax.is_encapsulated and not can_decode(syntax):
        raise DecodeError(
            f"{_where(dataset)}: no decoder for this transfer syntax is installed here; ask "
            "the sender for an uncompressed or otherwise compressed export"
        )
    try:
        frame_bytes = (
            int(dataset.Rows)
            * int(dataset.Columns)
            * int(dataset.get("SamplesPerPixel", 1) or 1)
            * max(int(dataset.BitsAllocated), 8)
            // 8
        )
        count = len(indices) if indices is not None else get_nr_frames(dataset, warn=False)
    except (AttributeError, TypeError, ValueError):
        raise DecodeError(
            f"{_where(dataset)} lacks the Rows, Columns, BitsAllocated or NumberOfFrames its "
            "pixels are decoded to"
        ) from None
    if frame_bytes * count > MAX_DECODED_BYTES:
        raise DecodeError(
            f"{_where(dataset)}: {count} frame(s) of {frame_bytes} bytes decoded are more than "
            f"the {MAX_DECODED_BYTES >> 20} MiB decoded at once here"
        )
    try:
        decoder = get_decoder(syntax)
        plugin = codestreams.LABEL if syntax in codestreams.PREFERRED else ""
        return list(
            decoder.iter_array(dataset, indices=indices, as_rgb=True, decoding_plugin=plugin)
        )
    except Exception as exc:  # noqa: BLE001 - every decoder plugin fails in its own way
        # pydicom lists each plugin's refusal on a line of its own.
        reason = " ".join(str(exc).split())[:400]
        raise DecodeError(f"{_where(dataset)} cannot be decoded here: {reason}") from None


def _decoded(dataset: Dataset, indices: Sequence[int]) -> list[tuple[bytes, dict[str, Any]]]:
    """(native bytes, pydicom's image pixel properties after decoding) of each frame."""
    frames = []
    for array, meta in pixel_arrays(dataset, indices):
        bits_allocated = int(meta["bits_allocated"])
        if bits_allocated % 8:
            raise DecodeError(
                f"{_where(dataset)}: {bits_allocated} bits allocated are not whole bytes"
            )
        kind = "i" if int(meta["pixel_representation"]) == 1 else "u"
        dtype = np.dtype(f"<{kind}{bits_allocated // 8}")
        frames.append((array.astype(dtype, copy=False).tobytes(), meta))
    return frames


def _where(dataset: Dataset) -> str:
    syntax = UID(dataset.file_meta.TransferSyntaxUID)
    return (
        f"the pixel data of instance {dataset.get('SOPInstanceUID', '')} in transfer "
        f"syntax {syntax.name} ({syntax})"
    )


def lossy_compression_method(dataset: Dataset, transfer_syntax: UID) -> str | None:
    """CID 7013 method when the encapsulated pixel data was lossy compressed, else None."""
    if transfer_syntax in _LOSSY_METHODS:
        return _LOSSY_METHODS[transfer_syntax]
    if transfer_syntax in _J2K_METHODS and not _j2k_reversible(dataset):
        return _J2K_METHODS[transfer_syntax]
    return None


def _j2k_reversible(dataset: Dataset) -> bool:
    """Whether the first JPEG 2000 codestream uses the reversible 5/3 wavelet (lossless).

    Reads the COD marker segment of the main header (ISO 15444-1 A.6.1). A codestream that
    cannot be parsed counts as irreversible, so the image is marked lossy rather than not.
    """
    data = bytes(dataset.PixelData[:65536])
    position = data.find(b"\xff\x4f\xff\x51")  # SOC then SIZ
    if position < 0:
        return False
    position += 2
    while position + 4 <= len(data):
        marker = data[position : position + 2]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == b"\xff\x52":  # COD: Lcod, Scod, SGcod (4 bytes), then SPcod
            transformation = position + 2 + 2 + 1 + 4 + 4
            return transformation < len(data) and data[transformation] == 1
        if marker == b"\xff\x90" or length < 2:  # first tile: the main header has ended
            return False
        position += 2 + length
    return False
