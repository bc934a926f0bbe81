"""A data set's elements as pydicom holds them (a RawDataElement until its value is
decoded), looked up without `Dataset.get_item`'s per-call work.

Ingest walks every element of every instance several times (de-identification, quality
rules, encoding, index attributes). `get_item` converts its key with `Tag()` and checks
for a slice and for a deferred read on every call: ~1 µs, 0.3 ms per CT slice over those
walks (~280 calls). These return the very elements `get_item` returns, for the same data sets:
a deferred read (a raw element without its value) still goes through `get_item`, which
reads it. `raw_text` and `text` give a text value from the bytes read, where pydicom would
decode it to the same text, without decoding it.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom import Dataset, config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.tag import BaseTag

Element = DataElement | RawDataElement


def held(dataset: Dataset, tag: int, *, keep_deferred: bool = False) -> Element | None:
    """`dataset.get_item(tag, keep_deferred=...)` for an int tag."""
    element = dataset._dict.get(tag)
    if type(element) is RawDataElement and element.value is None and not keep_deferred:
        return dataset.get_item(tag)
    return element


def held_items(dataset: Dataset) -> Iterator[tuple[BaseTag, Element]]:
    """(tag, `dataset.get_item(tag)`) for each element, in the data set's order."""
    for tag, element in dataset._dict.items():
        if type(element) is RawDataElement and element.value is None:
            element = dataset.get_item(tag)
        yield tag, element


# VRs whose single value pydicom decodes to the text of its bytes without trailing spaces
# and NULs (convert_text, convert_single_string, convert_PN, multi_string), whatever the
# character set when the bytes are plain ASCII without escape sequences.
_PLAIN_TEXT_VRS = frozenset({"AS", "CS", "SH", "LO", "PN", "UC", "LT", "ST", "UT"})
_DATE_VRS = frozenset({"DA", "DT", "TM"})


def raw_text(dataset: Dataset, tag: int) -> str | None:
    """The value of a single-valued ASCII text element, read from its raw bytes exactly as
    pydicom would decode it; None when only pydicom can tell (already decoded, deferred,
    several values, non-ASCII or escape sequences, implicit or unknown VR).

    pydicom's decoding costs ~40 µs an element (hooks, validation, a DataElement); an object
    reads a dozen values to collect identifiers and clean descriptors. An element read here
    stays raw, so a kept one is written back byte for byte.
    """
    element = held(dataset, tag, keep_deferred=True)
    if type(element) is not RawDataElement:
        return None
    value = element.value
    vr = element.VR
    if type(value) is not bytes or not (
        vr in _PLAIN_TEXT_VRS or (vr in _DATE_VRS and not config.datetime_conversion)
    ):
        return None
    if not value.isascii() or b"\\" in value or b"\x1b" in value:
        return None
    return value.decode("ascii").rstrip(" \x00")


def text(dataset: Dataset, tag: int) -> str:
    """An element's value as text without its padding, "" when absent or empty: from the
    bytes read where `raw_text` can tell, else as pydicom decodes it (which may raise, for
    a malformed value)."""
    value = raw_text(dataset, tag)
    if value is not None:
        return value
    if held(dataset, tag, keep_deferred=True) is None:
        return ""
    decoded = dataset[tag].value
    return "" if decoded is None else str(decoded).strip(" \x00")
