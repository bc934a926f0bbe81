"""Byte order of the binary values pydicom leaves as read (PS3.5 7.3).

pydicom converts numbers and text between Little and Big Endian when it writes, but not
the values of OW, OF, OL, OD and OV elements: written in the other byte order as they were
read, a 16-bit image comes out with every pixel's bytes reversed. OB and UN values are
byte streams and keep their order.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.filewriter import correct_ambiguous_vr

_WORD_BYTES = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_PIXEL_DATA = 0x7FE00010


def swap_byte_order(dataset: pydicom.Dataset, is_little_endian: bool) -> None:
    """Reverse the bytes of every word of the data set's OW, OF, OL, OD and OV values, in
    items too, so that a data set read in one byte order (`is_little_endian`) is written
    right in the other. Pixel Data in OW of 32 or 64 bits per sample is swapped by sample,
    as pydicom reads it."""
    correct_ambiguous_vr(dataset, is_little_endian)  # "OB or OW" Pixel Data, LUT Data
    _swap(dataset)


def _swap(dataset: pydicom.Dataset) -> None:
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                _swap(item)
            continue
        width = _WORD_BYTES.get(element.VR)
        value = element.value
        if not width or not isinstance(value, bytes | bytearray):
            continue
        if element.tag == _PIXEL_DATA and element.VR == "OW":
            bits = dataset.get("BitsAllocated")
            width = bits // 8 if bits in (32, 64) else width
        if len(value) % width:
            continue  # not a whole number of words: no valid value to convert
        element.value = np.frombuffer(value, dtype=f"u{width}").byteswap().tobytes()
