"""`DataSetView`: the few questions dose extraction asks of a data set, and the view that
answers them from a pydicom `Dataset`.

The readers (`_read`, `_tree`, `sr`, `header`) see data sets only through this protocol,
so the same code runs on a pydicom `Dataset` (`PydicomView`) and on the data sets
`_part10` reads straight from a file's bytes. Values are those pydicom gives: a `str`,
`float` or `int`, a list of them for a multi-valued element, the element's undecoded
text where pydicom cannot convert it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from functools import cache
from typing import Protocol

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = ["DataSetView", "PydicomView", "text_of"]


class DataSetView(Protocol):
    """One data set: the object itself or an item of one of its sequences."""

    @property
    def is_data_set(self) -> bool:
        """False for what a malformed sequence holds in place of a data set item."""
        ...

    def has(self, keyword: str) -> bool:
        """True when the element is present, even with an empty value."""
        ...

    def value(self, keyword: str) -> object:
        """The element's value, or its undecoded text when it cannot be converted; None
        when it is absent or empty."""
        ...

    def text(self, keyword: str) -> str | None:
        """The element's value as text: `text_of(self.value(keyword))`."""
        ...

    def items(self, keyword: str) -> Sequence[DataSetView]:
        """The items of a sequence element; empty when absent. May raise when the element
        cannot be read as a sequence: callers catch."""
        ...

    def number(self, keyword: str) -> float | None:
        """The element's value when it is one finite number; None otherwise, and then
        `value` tells what it is."""
        ...

    def sequences(self) -> Iterator[Sequence[DataSetView]]:
        """The items of each sequence element, in tag order (functional group macros)."""
        ...

    def fingerprint(self) -> Hashable | None:
        """Equal for two data sets that answer every question the same, in any object
        (their encoded bytes with their encoding); None when not known."""
        ...


def text_of(value: object) -> str | None:
    """A value as text, stripped; the first value of a multi-valued element; None if
    empty."""
    if type(value) is not str:  # the usual case first, for speed
        if isinstance(value, MultiValue | list | tuple):
            value = value[0] if len(value) else None
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("latin-1", "replace")
        value = str(value)
    return value.strip().strip("\x00").strip() or None


@cache
def _tag(keyword: str) -> int | None:
    return tag_for_keyword(keyword)


class PydicomView:
    """A pydicom `Dataset` (or whatever a damaged sequence holds in its place: every call
    goes to the wrapped object, so its failures are pydicom's own)."""

    __slots__ = ("_dataset",)

    def __init__(self, dataset: object) -> None:
        self._dataset = dataset

    @property
    def is_data_set(self) -> bool:
        return isinstance(self._dataset, Dataset)

    def has(self, keyword: str) -> bool:
        return keyword in self._dataset  # type: ignore[operator]

    def value(self, keyword: str) -> object:
        tag = _tag(keyword)
        if tag is None:
            return None
        dataset = self._dataset
        try:
            element = dataset.get_item(tag)  # type: ignore[attr-defined]
        except Exception:
            return None
        if element is None:
            return None
        if isinstance(element, RawDataElement):
            try:
                return dataset[tag].value  # type: ignore[index]
            except Exception:
                value = element.value
                return value.decode("latin-1", "replace") if isinstance(value, bytes) else value
        return element.value

    def text(self, keyword: str) -> str | None:
        return text_of(self.value(keyword))

    def number(self, keyword: str) -> float | None:
        value = self.value(keyword)
        if isinstance(value, float) and value == value and abs(value) != float("inf"):
            return float(value)
        return None

    def items(self, keyword: str) -> list[PydicomView]:
        sequence = self._dataset.get(keyword)  # type: ignore[attr-defined]
        return [PydicomView(item) for item in sequence] if sequence else []

    def sequences(self) -> Iterator[list[PydicomView]]:
        for element in self._dataset:  # type: ignore[attr-defined]
            try:
                if element.VR == "SQ":
                    yield [PydicomView(item) for item in element.value or []]
            except Exception:
                continue

    def fingerprint(self) -> None:
        return None
