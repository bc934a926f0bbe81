"""DICOM JSON model (PS3.18 Annex F) of data sets, for the index and for WADO-RS metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.tag import BaseTag

BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Large SR content trees and waveform data belong to WADO-RS metadata, not to the index.
_NOT_INDEXED = frozenset({0x0040A730, 0x54000100, 0x7FE00010, 0x7FE00008, 0x7FE00009})
_INLINE_LIMIT = 1024


def index_attributes(dataset: pydicom.Dataset) -> dict[str, Any]:
    """The top-level attributes worth searching and returning from QIDO-RS, without bulk data."""
    attributes: dict[str, Any] = {}
    for element in dataset:
        tag = element.tag
        if tag.group == 0x0002 or tag in _NOT_INDEXED or element.VR in BULK_VRS:
            continue
        try:
            attributes[f"{tag:08X}"] = element.to_json_dict(None, _INLINE_LIMIT)
        except Exception:  # noqa: BLE001, S112 - an unparsable value is simply not indexed
            continue
    return attributes


def metadata_json(
    dataset: pydicom.Dataset, bulk_data_uri: Callable[[BaseTag], str]
) -> dict[str, Any]:
    """WADO-RS metadata of an instance: top-level bulk data as BulkDataURI, the rest inline."""
    result: dict[str, Any] = {}
    for element in dataset:
        tag = element.tag
        if tag.group == 0x0002:
            continue
        result[f"{tag:08X}"] = _element_json(element, bulk_data_uri)
    return result


def _element_json(element: DataElement, bulk_data_uri: Callable[[BaseTag], str]) -> dict[str, Any]:
    vr = element.VR
    if vr in BULK_VRS and element.value is not None and _length(element) > _INLINE_LIMIT:
        return {"vr": vr, "BulkDataURI": bulk_data_uri(element.tag)}
    try:
        return element.to_json_dict(None, 2**62)
    except Exception:  # noqa: BLE001 - a malformed value is returned empty rather than failing all
        return {"vr": vr}


def _length(element: DataElement) -> int:
    value = element.value
    if isinstance(value, bytes | bytearray):
        return len(value)
    return _INLINE_LIMIT + 1
