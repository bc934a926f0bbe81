"""One UID validity rule for the URL, QIDO-RS parameters and quality checks."""

import pytest

from radbank.dicom.uids import is_valid_uid


@pytest.mark.parametrize("value", ["1.2.840.10008.1.2", "2.25.0", "0", "1." + "9" * 62])
def test_valid(value: str) -> None:
    assert is_valid_uid(value)


@pytest.mark.parametrize(
    "value", ["", "1..2", "01.2", "1.2.", "1.2\n", "1.a", "1.2 ", "1." + "9" * 63, "..", "1,2"]
)
def test_invalid(value: str) -> None:
    assert not is_valid_uid(value)
