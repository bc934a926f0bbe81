"""Every readable file of pydicom's test data de-identifies, or is refused with its name.

The corpus holds odd and malformed objects on purpose (ACR-NEMA files, deflated, big
endian, encapsulated, SR, RT, overlays, private-heavy vendor headers).
"""

from __future__ import annotations

import io
import warnings
from functools import cache
from pathlib import Path

import pydicom
import pytest
from deid_helpers import PROJECT_KEY
from pydicom.data import get_testdata_files

from radbank.dicom.deid import DeidentificationError, Profile, deidentify


@cache
def _test_files() -> list[str]:
    # Slow (pydicom tries to download the files missing from the local store): list once.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing optional downloads are not our concern
        return sorted(get_testdata_files("*"))


def _read(path: str) -> pydicom.Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path)
    except Exception:
        return None


def _writes(dataset: pydicom.Dataset) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydicom.dcmwrite(io.BytesIO(), dataset)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("profile_name", ["basic", "basic-dates", "research-dose"])
def test_all_pydicom_test_files(profile_name: str) -> None:
    profile = Profile.named(profile_name)
    files = _test_files()
    assert len(files) > 50
    unexpected: list[str] = []
    deidentified = refused = 0
    for path in files:
        dataset = _read(path)
        if dataset is None:
            continue
        original_writes = _writes(_read(path))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = deidentify(dataset, profile, PROJECT_KEY)
        except DeidentificationError as error:
            refused += 1
            if Path(path).name not in str(error):
                unexpected.append(f"{path}: message does not name the file: {error}")
            continue
        except Exception as error:  # the point of this test: no other exception type
            unexpected.append(f"{path}: {type(error).__name__}: {error}")
            continue
        deidentified += 1
        if original_writes and not _writes(result.dataset):
            unexpected.append(f"{path}: the de-identified object can no longer be written")
        if "StudyInstanceUID" in result.dataset:
            assert result.dataset.PatientID == result.patient_pseudonym, path
    assert unexpected == []
    assert deidentified > 50
    assert refused < deidentified
