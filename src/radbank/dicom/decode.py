"""Part 10 bytes to a pydicom data set, fast where the file is plain.

Every received object is read once with `pydicom.dcmread` before it is de-identified, and
pydicom's element reader spends ~3 µs per element; a CT slice has 100-150 elements, so
reading was a third of the de-identification of an image. `read_part10` reads an Explicit
VR Little Endian file into the very data set `dcmread` makes: the same `RawDataElement`s
(tag, VR, length, value bytes, value position) in the same order, the same file meta
information, preamble and original encoding; values stay undecoded, as pydicom leaves them
until asked. A sequence of undefined length and encapsulated pixel data are read by
pydicom's own functions, as its element reader reads them.

Anything else (implicit VR, big endian, deflate, a command set, a VR pydicom would guess
at, damaged file meta information) returns None, and the caller reads the file with
`dcmread`. Truncation is left as pydicom leaves it (a value cut short by the end of the
file), for `read_instance` to refuse.
"""

from __future__ import annotations

import io
import struct

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import (
    ENCODED_VR,
    _read_file_meta_info,
    empty_value_for_VR,
    read_preamble,
    read_sequence,
    read_undefined_length_value,
)
from pydicom.tag import BaseTag, SequenceDelimiterTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_string

__all__ = ["read_items", "read_part10"]

_HEADER = struct.Struct("<HH2sH").unpack_from
_LENGTH = struct.Struct("<L").unpack_from
_ITEM = struct.Struct("<HHL").unpack_from
_UNDEFINED = 0xFFFFFFFF
_CHARACTER_SET = 0x00080005
# VR bytes -> (VR, whether a 4-byte length follows two reserved bytes)
_VRS = {vr: (vr.decode(), vr.decode() in EXPLICIT_VR_LENGTH_32) for vr in ENCODED_VR}
_NOT_EXPLICIT_LITTLE = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}
)


def read_part10(data: bytes) -> FileDataset | None:
    """`pydicom.dcmread(io.BytesIO(data))` of a plain Part 10 file, or None for any other
    (read those with dcmread, which also says what is wrong with a damaged one)."""
    try:
        return _read(data)
    except Exception:  # noqa: BLE001 - damaged meta information: pydicom's error to give
        return None


def _read(data: bytes) -> FileDataset | None:
    if len(data) < 132 or data[128:132] != b"DICM" or not _at_defaults():
        return None
    buffer = io.BytesIO(data)
    meta = _file_meta(data)
    if meta is None:
        preamble = read_preamble(buffer, False)
        file_meta = _read_file_meta_info(buffer)
        position = buffer.tell()
    else:
        preamble, (file_meta, position) = data[:128], meta
    syntax = file_meta.get("TransferSyntaxUID")
    if (
        not isinstance(syntax, str)  # absent, or several values: pydicom guesses
        or syntax in _NOT_EXPLICIT_LITTLE
        or syntax in PrivateTransferSyntaxes
    ):
        return None  # pydicom guesses, inflates or reads another encoding
    if position >= len(data):
        return None  # no data set: pydicom records implicit VR
    elements = _elements(data, position)
    if elements is None:
        return None
    buffer.seek(len(data))  # where dcmread leaves it
    dataset = Dataset(elements, parent_encoding=default_encoding)
    encoding: str | list[str] = default_encoding
    character_set = elements.get(_CHARACTER_SET)
    if character_set is not None:
        encoding = convert_encodings(convert_raw_data_element(character_set).value)
    dataset.set_original_encoding(False, True, encoding)
    read = FileDataset(buffer, dataset, preamble, file_meta, False, True)
    read.set_original_encoding(False, True, dataset._character_set)
    return read


def _file_meta(data: bytes) -> tuple[FileMetaDataset, int] | None:
    """The file meta information as pydicom's `_read_file_meta_info` reads it (decoded
    where its check of the encoding decodes) and where the data set
    starts; None where anything is unusual (an unknown VR, an undefined or overlong
    length, a first element that does not convert), for pydicom to read. pydicom's
    INFO-level log line for a group length that does not match is not repeated."""
    elements: dict[BaseTag, RawDataElement] = {}
    size, position = len(data), 132
    new = tuple.__new__
    while position + 8 <= size:
        group, number, vr_bytes, length = _HEADER(data, position)
        if group != 2:
            break
        known = _VRS.get(vr_bytes)
        if known is None:
            return None
        vr, long_length = known
        if long_length:
            if position + 12 > size:
                return None
            length = _LENGTH(data, position + 8)[0]
            start = position + 12
        else:
            start = position + 8
        if length == _UNDEFINED or start + length > size:
            return None
        key = BaseTag(group << 16 | number)
        value = data[start : start + length] if length else empty_value_for_VR(vr, raw=True)
        elements[key] = new(
            RawDataElement, (key, vr, length, value, start, False, True, True, False)
        )
        position = start + length
    if position + 8 > size:
        return None  # ends in or right after the meta information: pydicom's to judge
    file_meta = FileMetaDataset(elements)
    file_meta.set_original_encoding(False, True, default_encoding)
    if elements:
        try:
            # pydicom's check of the encoding: every element through get_item (which
            # decodes those without a value), then the first in tag order decoded
            file_meta[list(file_meta.elements())[0].tag]
        except Exception:  # noqa: BLE001 - pydicom reads it again and decides
            return None
    return file_meta, position


def read_items(value: bytes, encoding: str | list[str]) -> list[Dataset] | None:
    """The items of a sequence of defined length in Explicit VR Little Endian, from its
    value's bytes, as pydicom's `read_sequence` makes them for a parent data set whose
    character set is `encoding` (their elements raw, positions counted from the value's
    start); None where an item is of undefined length or anything is unusual, for pydicom
    to read. WADO-RS metadata reads sequences this way: pydicom's reader took ~80 µs a
    sequence."""
    try:
        return _items(value, encoding)
    except Exception:  # noqa: BLE001 - pydicom reads it and says what is wrong
        return None


def _items(value: bytes, encoding: str | list[str]) -> list[Dataset] | None:
    items = []
    size, position = len(value), 0
    while position < size:
        if position + 8 > size:
            return None
        group, number, length = _ITEM(value, position)
        start = position + 8
        if group != 0xFFFE or number != 0xE000 or length == _UNDEFINED or start + length > size:
            return None
        elements = _elements(value[start : start + length], 0, encoding)
        if elements is None:
            return None
        item = Dataset(elements, parent_encoding=encoding)
        own = elements.get(_CHARACTER_SET)
        item_encoding = (
            encoding if own is None else convert_encodings(convert_raw_data_element(own).value)
        )
        item.set_original_encoding(False, True, item_encoding)
        item.is_undefined_length_sequence_item = False
        items.append(item)
        position = start + length
    return items


def _elements(
    data: bytes, position: int, parent_encoding: str | list[str] = default_encoding
) -> dict[BaseTag, RawDataElement] | None:
    """The data set's elements as pydicom's element reader yields them, or None where it
    would do anything but read a value of defined length."""
    size = len(data)
    if position + 8 <= size:
        group, _, vr_bytes, _ = _HEADER(data, position)
        if group == 0:
            return None  # a command set: pydicom merges it in
        if not (0x40 < vr_bytes[0] < 0x5B and 0x40 < vr_bytes[1] < 0x5B):
            return None  # pydicom switches to implicit VR
    elements: dict[BaseTag, RawDataElement] = {}
    vrs = _VRS
    reader: io.BytesIO | None = None
    encoding = parent_encoding  # for the items of sequences read here
    new = tuple.__new__
    while position + 8 <= size:
        group, number, vr_bytes, length = _HEADER(data, position)
        known = vrs.get(vr_bytes)
        if known is None:
            return None  # pydicom guesses the encoding of an unknown VR
        vr, long_length = known
        if long_length:
            if position + 12 > size:
                return None  # pydicom reads a short length field: its business
            length = _LENGTH(data, position + 8)[0]
            start = position + 12
        else:
            start = position + 8
        tag = group << 16 | number
        if group == 0xFFFE:
            return None  # an item tag at the top level: pydicom stops or fails
        if length == _UNDEFINED:
            # A sequence (UN is read as one) or encapsulated pixel data, read by pydicom's
            # own functions as its element reader does, so that no file is read twice.
            if vr == "UN":
                if not config.settings.infer_sq_for_un_vr:
                    return None  # pydicom looks the VR up, or ahead
                vr = "SQ"
            if reader is None:
                reader = io.BytesIO(data)
            reader.seek(start)
            if vr == "SQ":
                items = read_sequence(reader, False, True, length, encoding)
                key = BaseTag(tag)
                elements[key] = DataElement(key, vr, items, start, is_undefined_length=True)
                position = reader.tell()
                continue
            value = read_undefined_length_value(reader, True, SequenceDelimiterTag, None)
            position = reader.tell()
        else:
            position = start + length
            value = data[start:position] if length else empty_value_for_VR(vr, raw=True)
            if tag == _CHARACTER_SET:
                encoding = convert_encodings(convert_string(value or b"", True))
        key = BaseTag(tag)
        # what RawDataElement(key, vr, length, value, start, False, True) makes, without
        # the namedtuple's Python-level __new__ (a third of this loop's time)
        elements[key] = new(
            RawDataElement, (key, vr, length, value, start, False, True, True, False)
        )
    return elements


def _at_defaults() -> bool:
    """Whether pydicom's reading options are those this reader reproduces."""
    return (
        config.assume_implicit_vr_switch
        and not config.debugging
        and config.settings.reading_validation_mode != config.RAISE
    )
