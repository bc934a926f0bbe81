"""pydicom's warnings as radbank passes them on: said about the object, without its values."""

from __future__ import annotations

import logging
import warnings

import pydicom
import pytest
from pydicom.valuerep import validate_value

from radbank.dicom.pydicom_warnings import (
    log_pydicom_warnings,
    naming_pydicom_warnings,
    object_in_hand,
    withheld,
)


@pytest.mark.parametrize(
    ("warning", "said"),
    [
        (
            "Invalid value for VR IS: '1A'. Please see <https://dicom.nema.org/medical/dicom/"
            "current/output/html/part05.html#table_6.2-1> for allowed values for each VR.",
            "Invalid value for VR IS: (value withheld). Please see <https://dicom.nema.org/"
            "medical/dicom/current/output/html/part05.html#table_6.2-1> for allowed values for "
            "each VR.",
        ),
        ("Invalid value for VR DA: '1970-3-5'.", "Invalid value for VR DA: (value withheld)."),
        # Values that look like codes are values all the same.
        ("Invalid value for VR IS: 'X471'.", "Invalid value for VR IS: (value withheld)."),
        ("Invalid value for VR CS: 'MRN0012345'", "Invalid value for VR CS: (value withheld)"),
        (
            "Invalid value for VR UI: b'1.2.826.0.1.3680 '",
            "Invalid value for VR UI: (value withheld)",
        ),
        (
            'Value "72kg" is not valid for elements with a VR of DS',
            "Value (value withheld) is not valid for elements with a VR of DS",
        ),
        # VRs, defined terms and attribute names are kept; an apostrophe inside a word, or in
        # an attribute's name, starts no quoted text.
        (
            "Unknown tag - can't look up its VR - setting VR to 'UN'",
            "Unknown tag - can't look up its VR - setting VR to 'UN'",
        ),
        (
            "The (0028,0004) 'Photometric Interpretation' value is 'YBR_FULL_422'",
            "The (0028,0004) 'Photometric Interpretation' value is 'YBR_FULL_422'",
        ),
        (
            "The (0010,0010) 'Patient's Name' value 'DOE^JOHN' is odd",
            "The (0010,0010) 'Patient's Name' value (value withheld) is odd",
        ),
        ("Escaped 'O\\'Brien^Pat' in a value", "Escaped (value withheld) in a value"),
    ],
)
def test_quoted_values_are_withheld_names_and_terms_kept(warning: str, said: str) -> None:
    assert withheld(warning) == said


def _bad_integer_string() -> None:
    # What pydicom does on reading an Integer String that is not one: warn, quoting it.
    validate_value("IS", "X471", pydicom.config.WARN)


def test_the_server_hook_logs_the_object_withheld_and_silences_pydicoms_logger(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # pydicom also logs each warning, value included, to its logger; with a handler on the
    # root logger (a deployment's logging configuration) it would be written as it is.
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(logging.getLogger("pydicom"), "propagate", True)
    log_pydicom_warnings(logging.getLogger("radbank.ingest"))
    token = object_in_hand.set("part 7")
    try:
        with caplog.at_level(logging.WARNING), warnings.catch_warnings():
            warnings.simplefilter("always")
            _bad_integer_string()
    finally:
        object_in_hand.reset(token)
    assert [r.getMessage() for r in caplog.records] == [
        "part 7: Invalid value for VR IS: (value withheld)."
    ]


def test_the_command_line_hook_reports_pydicoms_warnings_only() -> None:
    said: list[tuple[str, str]] = []
    token = object_in_hand.set("in/a.dcm")
    try:
        with naming_pydicom_warnings(lambda name, text: said.append((name, text))):
            _bad_integer_string()
            _bad_integer_string()  # each occurrence
            with pytest.warns(DeprecationWarning):  # not pydicom's: shown as usual
                warnings.warn("old", DeprecationWarning, stacklevel=1)
    finally:
        object_in_hand.reset(token)
    assert said == [("in/a.dcm", "Invalid value for VR IS: 'X471'.")] * 2
    assert logging.getLogger("pydicom").propagate is False
