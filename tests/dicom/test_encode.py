"""The fast Part 10 encoder writes exactly the bytes pydicom writes, on the whole corpus."""

from __future__ import annotations

import io
import warnings

import corpus
import pydicom
import pytest

from radbank.dicom.deid import Profile, deidentify
from radbank.dicom.encode import part10_bytes
from radbank.synthetic import demo_studies, planted_ct_instances


def _pydicom(dataset: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    pydicom.dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()


def _read(path) -> pydicom.Dataset:  # noqa: ANN001
    return pydicom.dcmread(path, force=True)


@pytest.mark.parametrize("deidentified", [False, True])
def test_equal_to_pydicom_on_the_corpus(deidentified: bool) -> None:
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus.all_files():
            try:
                dataset = _read(path)
                if deidentified:
                    dataset = deidentify(dataset, Profile.named("basic-dates"), b"k" * 32).dataset
                expected = _pydicom(dataset)
            except Exception:  # noqa: BLE001, S112 - what pydicom cannot write is not compared
                continue
            dataset = _read(path)
            if deidentified:
                dataset = deidentify(dataset, Profile.named("basic-dates"), b"k" * 32).dataset
            assert part10_bytes(dataset) == expected, path.name
            compared += 1
    assert compared > 200


def test_equal_to_pydicom_on_synthetic_data() -> None:
    for data in planted_ct_instances(5, 1):
        dataset = deidentify(
            pydicom.dcmread(io.BytesIO(data)), Profile.named("basic"), b"k" * 32
        ).dataset
        again = deidentify(
            pydicom.dcmread(io.BytesIO(data)), Profile.named("basic"), b"k" * 32
        ).dataset
        assert part10_bytes(dataset) == _pydicom(again)
    for dataset in list(demo_studies())[:5]:
        raw = _pydicom(dataset)
        first = deidentify(
            pydicom.dcmread(io.BytesIO(raw)), Profile.named("basic-dates"), b"k" * 32
        )
        second = deidentify(
            pydicom.dcmread(io.BytesIO(raw)), Profile.named("basic-dates"), b"k" * 32
        )
        assert part10_bytes(first.dataset) == _pydicom(second.dataset)
