"""DICOM JSON model (PS3.18 Annex F) of data sets, for the index and for WADO-RS metadata.

The index needs the JSON of every top-level attribute of every instance at ingest.
pydicom's conversion (raw bytes -> Python value -> JSON) costs ~10 µs per element; most
elements after de-identification are still the raw bytes read from the sender, so common
value representations are decoded straight from those bytes here. The result equals
`DataElement.to_json_dict` (tested element by element on the whole corpus) where pydicom
follows PS3.18; anything unusual (other character sets, empty values among several,
ambiguous VRs) goes to pydicom's decoded values, with two corrections (`_value_json`): an
empty value among several is null (F.2.5), and a person name has only its non-empty
component groups (F.2.2).

WADO-RS metadata gives large binary values at any depth as a BulkDataURI whose last part
is a bulk data path: the element's tag, after the tag and item number (from 1, as Orthanc
numbers them) of each sequence it is in: `7FE00010` at the top level, `54000100/1/54001010`
for Waveform Data in the first item of Waveform Sequence. PS3.18 leaves the form to the
origin server; `parse_bulk_data_path` and `bulk_data_element` read it back.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue
from pydicom.tag import _LUT_DESCRIPTOR_TAGS, BaseTag
from pydicom.uid import UID
from pydicom.valuerep import PersonName

from radbank.dicom.decode import read_items
from radbank.dicom.elements import held, held_items

BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Large SR content trees and waveform data belong to WADO-RS metadata, not to the index.
_NOT_INDEXED = frozenset({0x0040A730, 0x54000100, 0x7FE00010, 0x7FE00008, 0x7FE00009})
_INLINE_LIMIT = 1024
# Sequences a bulk data path may go through; deeper values are sent inline. Far beyond
# real objects (SR content trees nest a dozen deep), and it bounds what a URL makes us walk.
BULK_DATA_MAX_DEPTH = 32
# VRs holding several values separated by backslashes, where one may be empty.
_MULTI_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UC", "UI"}
)
# VRs whose values _raw_json gives as floats, which may be NaN or infinite.
_FLOAT_VRS = frozenset({"DS", "FL", "FD"})
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
# pydicom corrects the first value of these
_LUT_DESCRIPTORS = frozenset(_LUT_DESCRIPTOR_TAGS)

_CODECS = {
    None: "latin-1",
    "": "latin-1",
    "ISO_IR 6": "latin-1",
    "ISO_IR 100": "latin-1",
    "ISO_IR 192": "utf-8",
}
_ASCII_VRS = frozenset({"AS", "CS", "DA", "DT", "TM", "UI"})
_TEXT_VRS = frozenset({"LO", "SH", "UC"})
_SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT"})
_NUMBER_FORMATS = {
    "US": "H",
    "SS": "h",
    "UL": "L",
    "SL": "l",
    "FL": "f",
    "FD": "d",
    "SV": "q",
    "UV": "Q",
}


def index_attributes(dataset: pydicom.Dataset) -> dict[str, Any]:
    """The top-level attributes worth searching and returning from QIDO-RS, without bulk data."""
    codec = _codec(dataset)
    attributes: dict[str, Any] = {}
    for tag, element in held_items(dataset):
        if tag >> 16 == 0x0002 or tag in _NOT_INDEXED:
            continue
        try:
            if element.VR == "UN" or element.VR is None:
                element = dataset[tag]  # pydicom may know the real VR (private dictionaries)
            if element.VR in BULK_VRS:
                continue
            attributes[f"{tag:08X}"] = element_json(dataset, tag, element, codec)
        except Exception:  # noqa: BLE001, S112 - an unparsable value is simply not indexed
            continue
    return attributes


def element_json(
    dataset: pydicom.Dataset, tag: BaseTag, element: DataElement | RawDataElement, codec: str | None
) -> dict[str, Any]:
    """The DICOM JSON of one element, from its raw bytes where possible; with `codec` None
    (a character set only pydicom knows) every value is decoded by pydicom."""
    if isinstance(element, RawDataElement):
        if codec is not None:
            fast = _from_raw(element, codec)
            if fast is not None:
                return fast
        element = dataset[tag]
    if element.VR == "SQ":
        return _sequence_json(element, codec)
    fast = _from_value(element)
    if fast is not None:
        return fast
    return _value_json(element)


def _sequence_json(element: DataElement, codec: str | None) -> dict[str, Any]:
    """A sequence's JSON with its items' elements done as the top level's are (pydicom
    converts every element of every item first); the text of an item with a character set
    of its own is decoded by pydicom."""
    items = []
    for item in element.value:
        item_codec = None if 0x00080005 in item else codec
        items.append(
            {
                f"{tag:08X}": element_json(item, tag, element, item_codec)
                for tag, element in held_items(item)
            }
        )
    return {"vr": "SQ", "Value": items}


def _value_json(element: DataElement) -> dict[str, Any]:
    """pydicom's JSON of a decoded element other than a sequence, corrected where it departs
    from PS3.18: an empty value among several is null (F.2.5), where pydicom gives "" or
    fails (IS, DS, PN); a person name has its non-empty component groups only (F.2.2),
    where pydicom gives "Alphabetic": "" to a name with only an ideographic group. Orthanc
    1.10 gives null for empty values but {} for an empty name and keeps empty groups; this
    follows the standard."""
    vr = element.VR
    value = element.value
    if vr in _MULTI_STRING_VRS and value is not None and value != "":
        values = list(value) if isinstance(value, MultiValue) else [value]
        if vr == "PN":
            return _values_json(vr, [_person_name_json(name) for name in values])
        if len(values) > 1 and any(_is_empty(v) for v in values):
            convert = int if vr == "IS" else float if vr == "DS" else str
            return _values_json(vr, [None if _is_empty(v) else convert(v) for v in values])
    return element.to_json_dict(None, _INLINE_LIMIT)


def _is_empty(value: Any) -> bool:
    """Whether one of several string values is empty: padding alone is no value."""
    return isinstance(value, str) and not value.strip(" \0")


def _person_name_json(name: PersonName) -> dict[str, str] | None:
    groups = {key: group for key, group in zip(_PN_GROUPS, name.components, strict=False) if group}
    return groups or None


def _values_json(vr: str, values: list[Any]) -> dict[str, Any]:
    # A single empty value is an empty attribute, which has no Value (F.2.5).
    return {"vr": vr} if values == [None] else {"vr": vr, "Value": values}


def _codec(dataset: pydicom.Dataset) -> str | None:
    """Python codec of the data set's text, or None where pydicom must decode it."""
    if dataset.original_encoding != (False, True):
        return None
    raw = held(dataset, 0x00080005)
    if raw is None:
        return _CODECS[None]
    value = raw.value
    if isinstance(value, bytes):
        value = value.decode("latin-1").strip(" \0")
    elif not isinstance(value, str):
        return None
    return _CODECS.get(value)


def _from_raw(element: RawDataElement, codec: str) -> dict[str, Any] | None:
    vr = element.VR
    value = element.value
    if vr in (None, "SQ", "UN") or value is None or element.length == 0xFFFFFFFF:
        return None  # UN: pydicom may know the real VR
    if element.tag in _LUT_DESCRIPTORS:
        return None
    try:
        return _raw_json(vr, value, codec)
    except UnicodeDecodeError:
        return None  # pydicom decodes what it can and replaces the rest


def _raw_json(vr: str, value: bytes, codec: str) -> dict[str, Any] | None:
    if not value:
        return {"vr": vr}
    if vr in _ASCII_VRS:
        if not value.isascii():
            return None
        items = value.decode("ascii").rstrip(" \0").split("\\")
        if len(items) > 1 and any(_is_empty(item) for item in items):
            return None  # null, by _value_json
        if vr == "UI":
            items = [item.rstrip("\0 ") for item in items] if len(items) > 1 else items
        return {"vr": vr, "Value": items} if items != [""] else {"vr": vr}
    if (vr in _TEXT_VRS or vr in _SINGLE_TEXT_VRS) and b"\x1b" in value:
        return None  # ISO 2022 escape sequences: pydicom switches character sets at them
    if vr in _TEXT_VRS:
        items = [item.rstrip("\0 ") for item in value.decode(codec).split("\\")]
        if len(items) > 1 and "" in items:
            return None  # null, by _value_json
        return {"vr": vr, "Value": items} if items != [""] else {"vr": vr}
    if vr in _SINGLE_TEXT_VRS:
        text = value.decode(codec).rstrip("\0 ")
        return {"vr": vr, "Value": [text]} if text else {"vr": vr}
    if vr in ("IS", "DS"):
        if not value.isascii():
            return None
        items = [item.strip() for item in value.decode("ascii").rstrip(" \0").split("\\")]
        if "" in items:
            return None if len(items) > 1 else {"vr": vr}  # null, by _value_json
        try:
            numbers = (
                [int(item) for item in items] if vr == "IS" else [float(item) for item in items]
            )
        except ValueError:
            return None
        return {"vr": vr, "Value": numbers}
    fmt = _NUMBER_FORMATS.get(vr)
    if fmt is not None:
        size = struct.calcsize("<" + fmt)
        if len(value) % size:
            return None
        return {"vr": vr, "Value": list(struct.unpack(f"<{len(value) // size}{fmt}", value))}
    return None


def _from_value(element: DataElement) -> dict[str, Any] | None:
    """JSON of a decoded element holding plain strings (what de-identification writes)."""
    vr = element.VR
    if vr not in _ASCII_VRS and vr not in _TEXT_VRS and vr not in _SINGLE_TEXT_VRS:
        return None
    value = element.value
    if value is None or value == "":
        return {"vr": vr}
    if type(value) is str or type(value) is UID:
        return {"vr": vr, "Value": [str(value)]}
    if isinstance(value, MultiValue) and all(
        (type(v) is str or type(v) is UID) and not _is_empty(v) for v in value
    ):
        return {"vr": vr, "Value": [str(v) for v in value]}
    return None


def metadata_json(dataset: pydicom.Dataset, bulk_data_uri: Callable[[str], str]) -> dict[str, Any]:
    """WADO-RS metadata of an instance: binary values of more than 1 KB (VRs BULK_VRS), in
    sequences too, as BulkDataURI, `bulk_data_uri` of their bulk data path (module
    docstring); the rest inline, as are values more than BULK_DATA_MAX_DEPTH sequences deep.

    A value that cannot be decoded (an IS of "inf", an FD of 4 bytes) is returned empty, and
    a number that JSON cannot hold (NaN, infinite) as null, rather than failing the answer.

    Elements still as read are converted from their bytes where `index_attributes` would
    (`_from_raw`): pydicom's conversion of a CT slice's ~130 elements took 5-6 ms, which a
    viewer paid for every image of a series it opened."""
    return _data_set_metadata(dataset, bulk_data_uri, (), _codec(dataset))


def _data_set_metadata(
    dataset: pydicom.Dataset,
    bulk_data_uri: Callable[[str], str],
    path: tuple[int, ...],
    codec: str | None,
) -> dict[str, Any]:
    """The metadata of a data set at `path` (that of its sequence and item number; ()),
    whose text is in `codec` (None: decoded by pydicom)."""
    result: dict[str, Any] = {}
    for tag in sorted(dataset.keys(), key=int):
        if tag >> 16 == 0x0002:
            continue
        raw = held(dataset, tag, keep_deferred=True)
        if type(raw) is RawDataElement:
            if raw.value is None:
                fast = _deferred_metadata(raw, bulk_data_uri, (*path, tag))
            else:
                fast = _raw_metadata(dataset, raw, bulk_data_uri, (*path, tag), codec)
            if fast is not None:
                result[f"{tag:08X}"] = fast
                continue
        try:
            element = dataset[tag]
        except Exception:  # noqa: BLE001 - a malformed value: returned without it
            result[f"{tag:08X}"] = {"vr": getattr(raw, "VR", None) or "UN"}
            continue
        result[f"{tag:08X}"] = _element_metadata(element, bulk_data_uri, (*path, tag), codec)
    return result


def _deferred_metadata(
    element: RawDataElement, bulk_data_uri: Callable[[str], str], path: tuple[int, ...]
) -> dict[str, Any] | None:
    """The BulkDataURI of a large binary value left in the file (pydicom's deferred read),
    without reading it; None where pydicom must read it (UN, whose VR it may know)."""
    if (
        bulk_left_in_file(element)
        and element.length > _INLINE_LIMIT
        and len(path) <= 2 * BULK_DATA_MAX_DEPTH + 1
    ):
        return {"vr": element.VR, "BulkDataURI": bulk_data_uri(bulk_data_path(path))}
    return None


def bulk_left_in_file(element: RawDataElement) -> bool:
    """Whether the element is a binary value of defined length that pydicom's deferred
    read left in the file (its value None), of a VR pydicom will not revise (not UN)."""
    return (
        element.value is None
        and element.VR in BULK_VRS
        and element.VR != "UN"
        and element.length != 0xFFFFFFFF
    )


def _raw_metadata(
    dataset: pydicom.Dataset,
    element: RawDataElement,
    bulk_data_uri: Callable[[str], str],
    path: tuple[int, ...],
    codec: str | None,
) -> dict[str, Any] | None:
    """The metadata of an element of `dataset` from its bytes, None where pydicom must
    decode it."""
    vr = element.VR
    if vr == "SQ":
        if element.is_implicit_VR or not element.is_little_endian or element.length == 0xFFFFFFFF:
            return None
        items = read_items(element.value, dataset._character_set)
        if items is None:
            return None
        return {
            "vr": vr,
            "Value": [
                _data_set_metadata(
                    item, bulk_data_uri, (*path, number), None if 0x00080005 in item else codec
                )
                for number, item in enumerate(items, 1)
            ],
        }
    if vr in BULK_VRS:
        if vr == "UN" or element.length == 0xFFFFFFFF:
            return None  # pydicom may know the VR; encapsulated pixel data
        if len(element.value) > _INLINE_LIMIT and len(path) <= 2 * BULK_DATA_MAX_DEPTH + 1:
            return {"vr": vr, "BulkDataURI": bulk_data_uri(bulk_data_path(path))}
        return None
    if codec is None:
        return None
    fast = _from_raw(element, codec)
    if fast is None or vr not in _FLOAT_VRS:
        return fast
    return finite_json(fast)


def json_bytes(value: Any) -> bytes:
    """Compact JSON of `value` in UTF-8: by orjson (an instance's ~90 index attributes in 7
    µs instead of 130 with the json module), and by the json module for what orjson refuses
    (integers beyond 64 bits, keys that are not strings; other types raise TypeError).
    orjson writes non-ASCII text as UTF-8 (the json module's fallback escapes it, and text
    that is not valid Unicode), and a NaN or infinite float as null (the json module wrote
    NaN, which is not JSON and which PostgreSQL refuses)."""
    try:
        return orjson.dumps(value, default=_plain_number)
    except orjson.JSONEncodeError:
        return json.dumps(finite_json(value), separators=(",", ":")).encode()


def json_text(value: Any) -> str:
    """`json_bytes` as text (the index's JSON columns)."""
    return json_bytes(value).decode()


def _plain_number(value: Any) -> Any:
    # orjson writes subclasses of str and int as they are, but not of float (pydicom's DS).
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def finite_json(value: Any) -> Any:
    """`value` (DICOM JSON) with NaN and infinite numbers as null, which JSON can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def _element_metadata(
    element: DataElement,
    bulk_data_uri: Callable[[str], str],
    path: tuple[int, ...],
    codec: str | None,
) -> dict[str, Any]:
    vr = element.VR
    if vr == "SQ":
        items = [
            _data_set_metadata(
                item, bulk_data_uri, (*path, number), None if 0x00080005 in item else codec
            )
            for number, item in enumerate(element.value, 1)
        ]
        return {"vr": vr, "Value": items}
    if (
        vr in BULK_VRS
        and element.value is not None
        and _length(element) > _INLINE_LIMIT
        and len(path) <= 2 * BULK_DATA_MAX_DEPTH + 1
    ):
        return {"vr": vr, "BulkDataURI": bulk_data_uri(bulk_data_path(path))}
    try:
        return finite_json(_value_json(element))
    except Exception:  # noqa: BLE001 - a malformed value is returned empty rather than failing all
        return {"vr": vr}


def _length(element: DataElement) -> int:
    value = element.value
    if isinstance(value, bytes | bytearray):
        return len(value)
    return _INLINE_LIMIT + 1


class BulkDataPathError(ValueError):
    """A bulk data path that is malformed or names no bulk data; the message says which."""


def bulk_data_path(path: Iterable[int]) -> str:
    """The text of a bulk data path: tags as 8 hexadecimal digits, item numbers in decimal."""
    return "/".join(
        f"{part:08X}" if index % 2 == 0 else str(part) for index, part in enumerate(path)
    )


def parse_bulk_data_path(text: str) -> tuple[int, ...]:
    """The tags and item numbers of a bulk data path (module docstring), checked for form
    only: BulkDataPathError for too many sequences, a part that is not 8 hexadecimal digits
    where a tag belongs or not a number from 1 where an item number does, or no final tag."""
    parts = text.split("/")
    if len(parts) > 2 * BULK_DATA_MAX_DEPTH + 1:
        raise BulkDataPathError(
            f"bulk data path through {len(parts) // 2} sequences: at most "
            f"{BULK_DATA_MAX_DEPTH} are followed"
        )
    if len(parts) % 2 == 0:
        raise BulkDataPathError(
            f"bulk data path {text[:80]!r} must end with a tag: a tag, or sequence tags and "
            "item numbers leading to one (54000100/1/54001010)"
        )
    path = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            if len(part) != 8 or any(c not in "0123456789abcdefABCDEF" for c in part):
                raise BulkDataPathError(f"bulk data tag {part[:20]!r} must be 8 hexadecimal digits")
            path.append(int(part, 16))
        else:
            # ASCII digits only, as for frame numbers, and no more than an item count has.
            if not (part.isascii() and part.isdigit() and len(part) <= 9 and int(part) >= 1):
                raise BulkDataPathError(
                    f"item number {part[:20]!r} in a bulk data path must be a number from 1"
                )
            path.append(int(part))
    return tuple(path)


def bulk_data_element(dataset: pydicom.Dataset, path: tuple[int, ...]) -> DataElement:
    """The element with a binary value at `path` (from `parse_bulk_data_path`), or
    BulkDataPathError naming the part of the path the data set does not have."""
    current = dataset
    for index in range(0, len(path) - 1, 2):
        number = path[index + 1]
        sequence = _readable(current, path[index])
        where = bulk_data_path(path[: index + 1])
        if sequence is None or sequence.VR != "SQ":
            raise BulkDataPathError(f"{where} is not a sequence")
        if number > len(sequence.value):
            raise BulkDataPathError(
                f"sequence {where} has {len(sequence.value)} items, no item {number}"
            )
        current = sequence.value[number - 1]
    element = _readable(current, path[-1])
    if element is None or not isinstance(element.value, bytes | bytearray):
        raise BulkDataPathError(f"no bulk data element {bulk_data_path(path)}")
    return element


def _readable(dataset: pydicom.Dataset, tag: int) -> DataElement | None:
    """The element, None when absent or its value cannot be decoded."""
    try:
        return dataset.get(tag)
    except Exception:  # noqa: BLE001 - a malformed value (an IS of "inf") is no bulk data
        return None
