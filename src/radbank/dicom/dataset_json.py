"""DICOM JSON model (PS3.18 Annex F) of data sets, for the index and for WADO-RS metadata.

The index needs the JSON of every top-level attribute of every instance at ingest.
pydicom's conversion (raw bytes -> Python value -> JSON) costs ~10 µs per element; most
elements after de-identification are still the raw bytes read from the sender, so common
value representations are decoded straight from those bytes here. The result equals
`DataElement.to_json_dict` (tested element by element on the whole corpus); anything
unusual (other character sets, empty multi-value components, ambiguous VRs) goes to pydicom.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue
from pydicom.tag import _LUT_DESCRIPTOR_TAGS, BaseTag
from pydicom.uid import UID

from radbank.dicom.elements import held, held_items

BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Large SR content trees and waveform data belong to WADO-RS metadata, not to the index.
_NOT_INDEXED = frozenset({0x0040A730, 0x54000100, 0x7FE00010, 0x7FE00008, 0x7FE00009})
_INLINE_LIMIT = 1024
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
    """The DICOM JSON of one top-level element, from its raw bytes where possible."""
    if isinstance(element, RawDataElement):
        if codec is not None:
            fast = _from_raw(element, codec)
            if fast is not None:
                return fast
        element = dataset[tag]
    fast = _from_value(element)
    if fast is not None:
        return fast
    if element.VR == "SQ" and codec is not None:
        fast = _sequence_json(element, codec)
        if fast is not None:
            return fast
    return element.to_json_dict(None, _INLINE_LIMIT)


def _sequence_json(element: DataElement, codec: str) -> dict[str, Any] | None:
    """A sequence's JSON with its items' elements done as the top level's are (pydicom
    converts every element of every item first); None for items in another character set."""
    items = []
    for item in element.value:
        if 0x00080005 in item:
            return None
        items.append(
            {
                f"{tag:08X}": element_json(item, tag, element, codec)
                for tag, element in held_items(item)
            }
        )
    return {"vr": "SQ", "Value": items}


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
        if len(items) > 1 and "" in items:
            return None
        if vr == "UI":
            items = [item.rstrip("\0 ") for item in items] if len(items) > 1 else items
        return {"vr": vr, "Value": items} if items != [""] else {"vr": vr}
    if vr in _TEXT_VRS:
        items = [item.rstrip("\0 ") for item in value.decode(codec).split("\\")]
        if len(items) > 1 and "" in items:
            return None
        return {"vr": vr, "Value": items} if items != [""] else {"vr": vr}
    if vr in _SINGLE_TEXT_VRS:
        text = value.decode(codec).rstrip("\0 ")
        return {"vr": vr, "Value": [text]} if text else {"vr": vr}
    if vr in ("IS", "DS"):
        if not value.isascii():
            return None
        items = [item.strip() for item in value.decode("ascii").rstrip(" \0").split("\\")]
        if "" in items:
            return None if len(items) > 1 else {"vr": vr}
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
        (type(v) is str or type(v) is UID) and v for v in value
    ):
        return {"vr": vr, "Value": [str(v) for v in value]}
    return None


def metadata_json(
    dataset: pydicom.Dataset, bulk_data_uri: Callable[[BaseTag], str]
) -> dict[str, Any]:
    """WADO-RS metadata of an instance: top-level bulk data as BulkDataURI, the rest inline.

    A value that cannot be decoded (an IS of "inf", an FD of 4 bytes) is returned empty, and
    a number that JSON cannot hold (NaN, infinite) as null, rather than failing the answer."""
    result: dict[str, Any] = {}
    for tag in sorted(dataset.keys(), key=int):
        if tag >> 16 == 0x0002:
            continue
        try:
            element = dataset[tag]
        except Exception:  # noqa: BLE001 - a malformed value: returned without it
            raw = held(dataset, tag, keep_deferred=True)
            result[f"{tag:08X}"] = {"vr": getattr(raw, "VR", None) or "UN"}
            continue
        result[f"{tag:08X}"] = _element_json(element, bulk_data_uri)
    return result


def finite_json(value: Any) -> Any:
    """`value` (DICOM JSON) with NaN and infinite numbers as null, which JSON can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def _element_json(element: DataElement, bulk_data_uri: Callable[[BaseTag], str]) -> dict[str, Any]:
    vr = element.VR
    if vr in BULK_VRS and element.value is not None and _length(element) > _INLINE_LIMIT:
        return {"vr": vr, "BulkDataURI": bulk_data_uri(element.tag)}
    try:
        return finite_json(element.to_json_dict(None, 2**62))
    except Exception:  # noqa: BLE001 - a malformed value is returned empty rather than failing all
        return {"vr": vr}


def _length(element: DataElement) -> int:
    value = element.value
    if isinstance(value, bytes | bytearray):
        return len(value)
    return _INLINE_LIMIT + 1
