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
    assert compile_profile(basic).resolve(0x60003000) == "O"  # overlay data: the overlay goes


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


def test_research_dose_is_shipped_with_its_options() -> None:
    profile = Profile.named("research-dose")
    assert "research-dose" in PROFILE_NAMES
    assert profile.options == {
        Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.RETAIN_DEVICE_IDENTITY,
        Option.CLEAN_DESCRIPTORS,
        Option.CLEAN_STRUCTURED_CONTENT,
        Option.RETAIN_SAFE_PRIVATE,
    }
    assert action(profile, "ProtocolName") == "C"  # cleaned, not removed
    assert action(profile, "PatientWeight") == "K"
    assert action(profile, "DeviceSerialNumber") == "K"
    assert action(profile, "RadionuclideTotalDose") == "K"
    assert action(profile, "RadiopharmaceuticalInformationSequence") == "R"
    assert action(profile, "RadiopharmaceuticalStartDateTime") == "C"  # shifted
    assert action(profile, "ContentSequence") == "C"


def test_modified_dates_shift_dates_that_device_identity_retains() -> None:
    profile = Profile(
        "p",
        "1",
        frozenset({Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}),
    )
    assert action(profile, "DateOfLastCalibration") == "C"
    assert action(profile, "StationName") == "K"
    assert action(Profile("d", "1", frozenset({Option.RETAIN_DEVICE_IDENTITY})),
                  "DateOfLastCalibration") == "K"  # fmt: skip


def test_full_and_modified_dates_exclude_each_other() -> None:
    both = {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}
    with pytest.raises(ValueError, match="exclude each other"):
        Profile("p", "1", frozenset(both))


def test_sequences_whose_empty_form_is_invalid() -> None:
    basic = Profile.named("basic")
    assert action(basic, "ReferencedStudySequence") == "D"  # items kept, UIDs remapped
    assert action(basic, "InstitutionCodeSequence") == "X"
    assert action(basic, "AcquisitionContextSequence") == "Z"


def test_unknown_person_names_are_never_kept() -> None:
    from pydicom.datadict import DicomDictionary

    compiled = compile_profile(Profile.named("basic"))
    assert compiled.resolve(tag_for_keyword("Manufacturer")) == "K"  # the default: kept
    untabled_pn = [
        tag for tag, entry in DicomDictionary.items()
        if entry[0] == "PN" and tag not in compiled.actions
    ]  # fmt: skip
    assert untabled_pn and {compiled.resolve(tag) for tag in untabled_pn} == {"D"}


def test_with_overrides_validates_and_records_the_rules() -> None:
    base = Profile.named("research-dose")
    project = base.with_overrides(
        {"InstitutionName": "replace:Site 07", "StudyDate": "remove", "(0018,0015)": "keep"}
    )
    assert action(project, "InstitutionName") == "V"
    assert action(project, "StudyDate") == "X"
    assert project.options == base.options
    assert project.method.startswith("radbank research-dose 1 overrides ")
    assert len(project.method) <= 64
    assert base.with_overrides({}).method == "radbank research-dose 1"
    with pytest.raises(ValueError, match="'PatientWeight'.*not a valid DS"):
        base.with_overrides({"PatientWeight": "replace:heavy"})
    with pytest.raises(ValueError, match="'Rows'.*not a valid US"):
        base.with_overrides({"Rows": "replace:-1"})
    with pytest.raises(ValueError, match="'ContentSequence'.*VR SQ cannot be replaced"):
        base.with_overrides({"ContentSequence": "replace:x"})
    with pytest.raises(ValueError, match="'PatientID'.*pseudonym"):
        base.with_overrides({"PatientID": "keep"})
    with pytest.raises(ValueError, match="'StudyDate' in 'StudyDate/Manufacturer'.*not a seq"):
        base.with_overrides({"StudyDate/Manufacturer": "keep"})
    with pytest.raises(ValueError, match="NoSuchKeyword"):
        base.with_overrides({"ReferencedStudySequence/NoSuchKeyword": "keep"})


def test_path_overrides_apply_only_at_their_path() -> None:
    profile = Profile.named("basic").with_overrides(
        {"ReferencedRequestSequence/AccessionNumber": "keep", "Manufacturer": "remove"}
    )
    root = compile_profile(profile)
    assert root.resolve(tag_for_keyword("AccessionNumber")) == "Z"
    inside = root.inside(tag_for_keyword("ReferencedRequestSequence"))
    assert inside.resolve(tag_for_keyword("AccessionNumber")) == "K"
    assert inside.resolve(tag_for_keyword("Manufacturer")) == "X"  # plain keys: every depth
    elsewhere = root.inside(tag_for_keyword("ReferencedImageSequence"))
    assert elsewhere.resolve(tag_for_keyword("AccessionNumber")) == "Z"
    deeper = elsewhere.inside(tag_for_keyword("ReferencedRequestSequence"))
    assert deeper.resolve(tag_for_keyword("AccessionNumber")) == "Z"  # not the same path


def test_the_reference_documents_every_profile_and_safe_private_attribute() -> None:
    from pathlib import Path

    from radbank.dicom.deid.private import SAFE_PRIVATE_ATTRIBUTES

    doc = (Path(__file__).resolve().parents[3] / "docs" / "deidentification.md").read_text()
    for name in PROFILE_NAMES:
        assert f"| `{name}` | {Profile.named(name).version} |" in doc, name
    for (group, creator, element), entry in SAFE_PRIVATE_ATTRIBUTES.items():
        row = f"| ({group:04X},xx{element:02X}) | {creator} | {entry.vr} | {entry.meaning} |"
        assert row in doc, row
