"""Profiles: shipped names, option columns, combined actions, overrides."""

from __future__ import annotations

import pytest
from pydicom.datadict import tag_for_keyword

from radbank.dicom.deid import PROFILE_NAMES, Option, Profile
from radbank.dicom.deid.profile import compile_profile, resolve_combined


def action(profile: Profile, keyword: str) -> str:
    return compile_profile(profile).resolve(tag_for_keyword(keyword))


def test_shipped_profiles() -> None:
    assert {"basic", "basic-dates"} <= set(PROFILE_NAMES)
    assert Profile.named("basic").options == frozenset()
    assert Profile.named("basic-dates").options == {Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}
    with pytest.raises(ValueError, match="basic-dates"):
        Profile.named("no-such-profile")


def test_every_table_column_is_an_option() -> None:
    from radbank.dicom.deid import load_table

    columns = set(load_table().columns) - {"basicProfile"}
    assert {option.value for option in Option} == columns


def test_combined_actions_keep_objects_valid() -> None:
    assert resolve_combined("X/Z", "AcquisitionDate") == "Z"
    assert resolve_combined("X/D", "SeriesDate") == "D"
    assert resolve_combined("X/Z/D", "StationName") == "Z"
    assert resolve_combined("Z/D", "ContrastBolusAgent") == "Z"
    assert resolve_combined("X/Z/U*", "ReferencedImageSequence") == "U"
    # Type 1 in SR documents / enhanced images / dose SRs: a dummy, not an empty value.
    assert resolve_combined("Z/D", "ContentDate") == "D"
    assert resolve_combined("X/Z/D", "DeviceSerialNumber") == "D"


def test_basic_profile_actions_from_the_table() -> None:
    basic = Profile.named("basic")
    assert action(basic, "AccessionNumber") == "Z"
    assert action(basic, "PatientAge") == "X"
    assert action(basic, "StudyInstanceUID") == "U"
    assert action(basic, "StudyDate") == "Z"
    assert action(basic, "PatientID") == "P"
    assert action(basic, "PatientName") == "P"
    assert action(basic, "Manufacturer") == "K"  # not in the table: kept
    assert action(basic, "SOPClassUID") == "K"  # a class, not an instance
    assert action(basic, "ReferencedImageSequence") == "U"
    assert compile_profile(basic).resolve(0x00091001) == "X"  # private
    assert compile_profile(basic).resolve(0x60003000) == "X"  # overlay data


def test_an_option_replaces_the_basic_action() -> None:
    dates = Profile.named("basic-dates")
    assert action(dates, "StudyDate") == "C"
    assert action(dates, "AccessionNumber") == "Z"
    characteristics = Profile("chars", "1", frozenset({Option.RETAIN_PATIENT_CHARACTERISTICS}))
    assert action(characteristics, "PatientAge") == "K"
    assert action(characteristics, "PatientWeight") == "K"
    uids = Profile("uids", "1", frozenset({Option.RETAIN_UIDS}))
    assert action(uids, "StudyInstanceUID") == "K"
    assert action(uids, "SourceImageSequence") == "R"  # kept, items still de-identified


def test_overrides_win_over_table_and_options() -> None:
    profile = Profile(
        "dosimetry",
        "1",
        frozenset({Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}),
        overrides={"PatientWeight": "keep", "(0018,1000)": "keep", "StudyDate": "remove"},
    )
    assert action(profile, "PatientWeight") == "K"
    assert action(profile, "DeviceSerialNumber") == "K"
    assert action(profile, "StudyDate") == "X"


def test_invalid_overrides_are_rejected_with_the_profile_name() -> None:
    with pytest.raises(ValueError, match="'p1'.*shred"):
        Profile("p1", "1", overrides={"PatientWeight": "shred"})
    with pytest.raises(ValueError, match="NoSuchKeyword"):
        Profile("p2", "1", overrides={"NoSuchKeyword": "keep"})


def test_compilation_is_cached() -> None:
    assert compile_profile(Profile.named("basic")) is compile_profile(Profile("basic", "1"))
