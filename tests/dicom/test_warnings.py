"""pydicom's warnings as radbank passes them on: without the values they quote."""

from __future__ import annotations

import pytest

from radbank.dicom.instance import withheld


@pytest.mark.parametrize(
    ("warning", "said"),
    [
        (
            "Invalid value for VR IS: '1A'. Please see <https://dicom.nema.org/medical/dicom/"
            "current/output/html/part05.html#table_6.2-1> for allowed values for each VR.",
            "Invalid value for VR IS: (value withheld).",
        ),
        ("Invalid value for VR DA: '1970-3-5'.", "Invalid value for VR DA: (value withheld)."),
        (
            "Invalid value for VR UI: b'1.2.826.0.1.3680 '",
            "Invalid value for VR UI: (value withheld)",
        ),
        (
            'Value "72kg" is not valid for elements with a VR of DS',
            "Value (value withheld) is not valid for elements with a VR of DS",
        ),
        # Codes and attribute names are kept; an apostrophe inside a word starts nothing.
        (
            "Unknown tag - can't look up its VR - setting VR to 'UN'",
            "Unknown tag - can't look up its VR - setting VR to 'UN'",
        ),
        (
            "The (0028,0004) 'Photometric Interpretation' value is 'YBR_FULL_422'",
            "The (0028,0004) 'Photometric Interpretation' value is 'YBR_FULL_422'",
        ),
        ("Escaped 'O\\'Brien^Pat' in a value", "Escaped (value withheld) in a value"),
    ],
)
def test_quoted_values_are_withheld_codes_and_names_kept(warning: str, said: str) -> None:
    assert withheld(warning) == said
