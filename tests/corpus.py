"""pydicom's real test corpus (pydicom + pydicom-data), listed from disk.

pydicom.data.get_testdata_files() tries to download missing files first, which takes long
without a network; the installed files are all we use.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import pydicom
import pydicom.data


def _roots() -> list[Path]:
    roots = [Path(pydicom.data.__file__).parent / "test_files"]
    try:
        import data_store  # installed by pydicom-data

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return roots


@cache
def all_files() -> tuple[Path, ...]:
    return tuple(sorted(p for root in _roots() for p in root.rglob("*") if p.is_file()))


def path(name: str) -> Path:
    for file in all_files():
        if file.name == name:
            return file
    raise FileNotFoundError(f"{name} is not in pydicom's test corpus")


@cache
def classified() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """(readable, unreadable): readable means pydicom reads every element without error."""
    readable, unreadable = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for file in all_files():
            try:
                dataset = pydicom.dcmread(file)
                for _ in dataset.iterall():
                    pass
                readable.append(file)
            except Exception:  # noqa: BLE001 - classifying hostile input
                unreadable.append(file)
    return tuple(readable), tuple(unreadable)
