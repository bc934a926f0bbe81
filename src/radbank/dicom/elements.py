"""A data set's elements as pydicom holds them (a RawDataElement until its value is
decoded), looked up without `Dataset.get_item`'s per-call work.

Ingest walks every element of every instance several times (de-identification, quality
rules, encoding, index attributes). `get_item` converts its key with `Tag()` and checks
for a slice and for a deferred read on every call: ~1 µs, 0.3 ms per CT slice over those
walks (~280 calls). These return the very elements `get_item` returns, for the same data sets:
a deferred read (a raw element without its value) still goes through `get_item`, which
reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom import Dataset
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


def text(dataset: Dataset, tag: int) -> str:
    """An ASCII element's value as text without its padding, "" when absent or empty;
    from the bytes read while undecoded (several values keep their backslashes)."""
    element = held(dataset, tag)
    if element is None:
        return ""
    value = element.value
    if type(element) is RawDataElement and isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    return "" if value is None else str(value).strip(" \x00")
