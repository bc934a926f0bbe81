"""The fast DICOM JSON of index attributes equals pydicom's, element by element."""

from __future__ import annotations

import io
import warnings

import corpus
import pydicom
import pytest

from radbank.dicom.dataset_json import BULK_VRS, index_attributes
from radbank.dicom.deid import Profile, deidentify
from radbank.synthetic import demo_studies


def _expected(dataset: pydicom.Dataset) -> dict:
    expected = {}
    for tag in dataset.keys():
        if tag.group == 0x0002 or tag in (
            0x0040A730,
            0x54000100,
            0x7FE00010,
            0x7FE00008,
            0x7FE00009,
        ):
            continue
        try:
            element = dataset[tag]
            if element.VR in BULK_VRS:
                continue
            expected[f"{tag:08X}"] = element.to_json_dict(None, 1024)
        except Exception:  # noqa: BLE001, S112 - not indexed either
            continue
    return expected


def _datasets():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus.all_files():
            try:
                yield path.name, pydicom.dcmread(path, force=True)
            except Exception:  # noqa: BLE001, S112 - unreadable files are not indexed
                continue


@pytest.mark.parametrize("deidentified", [False, True])
def test_index_attributes_equal_pydicom_on_the_corpus(deidentified: bool) -> None:
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, dataset in _datasets():
            if deidentified:
                try:
                    dataset = deidentify(dataset, Profile.named("basic-dates"), b"k" * 32).dataset
                except Exception:  # noqa: BLE001, S112 - refused objects are not indexed
                    continue
                # As ingest sees it: changed elements decoded, the rest raw.
                assert index_attributes(dataset) == _expected(dataset), name
            raw = io.BytesIO()
            try:
                dataset.save_as(raw, enforce_file_format=True)
            except Exception:  # noqa: BLE001, S112
                continue
            fast = index_attributes(pydicom.dcmread(io.BytesIO(raw.getvalue()), force=True))
            slow = _expected(pydicom.dcmread(io.BytesIO(raw.getvalue()), force=True))
            assert fast == slow, name
            compared += 1
    assert compared > 150


def test_index_attributes_of_non_latin_text() -> None:
    dataset = next(demo_studies())
    raw = io.BytesIO()
    dataset.save_as(raw, enforce_file_format=True)
    again = pydicom.dcmread(io.BytesIO(raw.getvalue()))
    assert index_attributes(again) == _expected(pydicom.dcmread(io.BytesIO(raw.getvalue())))
