"""Frames of pixel data (PS3.18 WADO-RS frames): native frames by offset, encapsulated by
fragment or decoded to native, and the media types of compressed transfer syntaxes."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.encaps import generate_frames
from pydicom.uid import UID

from radbank.dicom.decompression import DecodeError, decode_frames
from radbank.dicom.elements import held

UNCOMPRESSED = frozenset(
    {
        "1.2.840.10008.1.2",  # Implicit VR Little Endian
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    }
)

_PIXEL_DATA = 0x7FE00010
# An item of encapsulated pixel data: (FFFE,E000) or the delimiter (FFFE,E0DD), a length.
_ITEM_HEADER = struct.Struct("<HHL")
_UNDEFINED = 0xFFFFFFFF

# PS3.18 Table 8.7.3-2: media type of a single frame per transfer syntax.
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.100": "video/mpeg",
    "1.2.840.10008.1.2.4.102": "video/mp4",
    "1.2.840.10008.1.2.4.103": "video/mp4",
}


class FrameError(ValueError):
    """Frames cannot be served as asked; the message says why. `missing`: what was asked
    for does not exist (no such frame, no pixel data), rather than cannot be served."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def number_of_frames(dataset: pydicom.Dataset) -> int:
    try:
        return max(1, int(dataset.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def frame_media_type(transfer_syntax_uid: str) -> str:
    if transfer_syntax_uid in UNCOMPRESSED:
        return "application/octet-stream"
    return FRAME_MEDIA_TYPES.get(transfer_syntax_uid, "application/octet-stream")


def extract_frames(
    dataset: pydicom.Dataset,
    numbers: list[int],
    read: Callable[[int, int], bytes] | None = None,
) -> list[bytes]:
    """The requested frames (1-based) of the data set's pixel data, as stored.

    `read(position, size)` gives bytes of the stored file: pixel data left in the file
    (pydicom's deferred read, for a large object) is read there frame by frame, rather
    than whole, where it is native or holds one fragment per frame."""
    total = _check_numbers(dataset, numbers)
    syntax = UID(dataset.file_meta.TransferSyntaxUID)
    uid = dataset.get("SOPInstanceUID", "")
    element = held(dataset, _PIXEL_DATA, keep_deferred=True)
    deferred = element if type(element) is RawDataElement and element.value is None else None
    if syntax.is_encapsulated:
        if deferred is not None and read is not None:
            fragments = _fragments_in_file(read, deferred.value_tell, total)
            if fragments is not None:
                return _read_each(read, fragments, numbers, uid)
        try:
            frames = list(generate_frames(dataset.PixelData, number_of_frames=total))
        except ValueError as exc:
            raise FrameError(
                f"the encapsulated pixel data of instance {uid} cannot be split into frames "
                f"({exc}); retrieve the whole instance instead"
            ) from exc
        if len(frames) < max(numbers, default=0):
            raise FrameError(
                f"the encapsulated pixel data of instance {uid} holds {len(frames)} frame(s), "
                f"fewer than its NumberOfFrames {total}; retrieve the whole instance instead"
            )
        return [frames[n - 1] for n in numbers]
    try:
        bits = (
            int(dataset.Rows)
            * int(dataset.Columns)
            * int(dataset.get("SamplesPerPixel", 1) or 1)
            * int(dataset.BitsAllocated)
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise FrameError(
            f"instance {uid} lacks the Rows, Columns or BitsAllocated needed to split its "
            "pixel data into frames; retrieve the whole instance instead"
        ) from exc
    if bits % 8:
        raise FrameError("frames of bit-packed pixel data not aligned on bytes cannot be split")
    size = bits // 8
    if deferred is not None and read is not None and deferred.length != _UNDEFINED:
        if deferred.length < size * total:
            raise FrameError(
                f"pixel data of {deferred.length} bytes is shorter than {total} frame(s) of "
                f"{size} bytes"
            )
        start = deferred.value_tell
        where = [(start + (n - 1) * size, size) for n in range(1, total + 1)]
        return _read_each(read, where, numbers, uid)
    pixel_data = dataset.PixelData
    if len(pixel_data) < size * total:
        raise FrameError(
            f"pixel data of {len(pixel_data)} bytes is shorter than {total} frame(s) of {size} bytes"
        )
    # Each distinct frame is cut once: a list naming one large frame thousands of times
    # holds it once, not thousands of times over.
    cut = {n: bytes(pixel_data[(n - 1) * size : n * size]) for n in dict.fromkeys(numbers)}
    return [cut[n] for n in numbers]


def _read_each(
    read: Callable[[int, int], bytes],
    where: list[tuple[int, int]],
    numbers: list[int],
    uid: str,
) -> list[bytes]:
    """The frames `numbers` read from the stored file, `where` giving each frame's
    (position, length); each distinct frame read once."""
    frames = {}
    for number in dict.fromkeys(numbers):
        position, length = where[number - 1]
        frame = read(position, length)
        if len(frame) != length:
            raise FrameError(f"the stored file of instance {uid} ends inside frame {number}")
        frames[number] = frame
    return [frames[n] for n in numbers]


def _fragments_in_file(
    read: Callable[[int, int], bytes], position: int, frames: int
) -> list[tuple[int, int]] | None:
    """(position, length) in the file of each fragment of encapsulated pixel data whose
    value starts at `position` (its Basic Offset Table item), when it holds exactly one
    fragment per frame, as multi-frame objects are mostly written; None otherwise (more
    fragments than frames, an item that is not one), for pydicom to split them."""
    found: list[tuple[int, int]] = []
    first = True
    while len(found) <= frames:
        header = read(position, 8)
        if len(header) != 8:
            return None
        group, element, length = _ITEM_HEADER.unpack(header)
        if group != 0xFFFE or element not in (0xE000, 0xE0DD):
            return None
        if element == 0xE0DD:  # sequence delimiter: the last fragment is read
            return found if len(found) == frames else None
        if not first:
            found.append((position + 8, length))
        first = False
        position += 8 + length
    return None


def decoded_frames(dataset: pydicom.Dataset, numbers: list[int]) -> list[bytes]:
    """The requested frames (1-based) of the data set's encapsulated pixel data, decoded to
    the native bytes Explicit VR Little Endian holds (radbank.dicom.decompression); each
    distinct frame is decoded once, and only the frames asked for."""
    _check_numbers(dataset, numbers)
    distinct = list(dict.fromkeys(numbers))
    try:
        decoded = decode_frames(dataset, [n - 1 for n in distinct])
    except DecodeError as exc:
        raise FrameError(str(exc)) from exc
    by_number = dict(zip(distinct, decoded, strict=True))
    return [by_number[n] for n in numbers]


def _check_numbers(dataset: pydicom.Dataset, numbers: list[int]) -> int:
    """The data set's number of frames, after checking that it has pixel data with every
    frame asked for."""
    uid = dataset.get("SOPInstanceUID", "")
    if "PixelData" not in dataset:
        raise FrameError(f"instance {uid} has no pixel data", missing=True)
    total = number_of_frames(dataset)
    for number in numbers:
        if number < 1 or number > total:
            raise FrameError(
                f"frame {number} does not exist; instance {uid} has {total} frame(s)",
                missing=True,
            )
    return total
