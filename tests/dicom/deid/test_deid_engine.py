"""deidentify(): what a researcher (and an attacker) sees in the written bytes."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pydicom
import pytest
from deid_helpers import OTHER_KEY, PROJECT_KEY, make_ct, write_bytes
from pydicom import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from radbank.dicom.deid import (
    DeidentificationError,
    Option,
    Profile,
    deidentify,
    patient_pseudonym,
    pseudonymise_uid,
)
from radbank.dicom.deid.records import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

BASIC = Profile.named("basic")
DATES = Profile.named("basic-dates")


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _date(text: str) -> datetime.date:
    return datetime.datetime.strptime(text, "%Y%m%d").date()


def test_patient_identity_becomes_the_pseudonym() -> None:
    result = deidentify(make_ct(), BASIC, PROJECT_KEY)
    expected = patient_pseudonym("HOSP-A", "PAT-0001", PROJECT_KEY)
    assert result.patient_pseudonym == expected
    assert result.dataset.PatientID == expected
    assert str(result.dataset.PatientName) == expected
    assert "IssuerOfPatientID" not in result.dataset
    assert result.dataset.PatientBirthDate == ""
    assert result.dataset.AccessionNumber == ""
    assert result.dataset.Manufacturer == "ACME"
    assert result.original_sop_instance_uid == "1.2.826.0.1.3680043.8.498.1001"


def test_uids_are_remapped_consistently_including_references_in_sequences() -> None:
    first = make_ct()
    second = make_ct(sop_instance_uid="1.2.826.0.1.3680043.8.498.1002")
    second.ReferencedImageSequence = [
        _item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=first.SOPInstanceUID)
    ]
    second.ReferencedSeriesSequence = [
        _item(
            SeriesInstanceUID=first.SeriesInstanceUID,
            ReferencedInstanceSequence=[
                _item(
                    ReferencedSOPClassUID=CTImageStorage,
                    ReferencedSOPInstanceUID=first.SOPInstanceUID,
                )
            ],
        )
    ]
    a = deidentify(first, BASIC, PROJECT_KEY).dataset
    b = deidentify(second, BASIC, PROJECT_KEY).dataset
    assert a.SOPInstanceUID == pseudonymise_uid("1.2.826.0.1.3680043.8.498.1001", PROJECT_KEY)
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.StudyInstanceUID == b.StudyInstanceUID != make_ct().StudyInstanceUID
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    series = b.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == a.SeriesInstanceUID
    assert series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID


def test_well_known_uids_are_untouched() -> None:
    ds = make_ct()
    ds.ReferencedImageSequence = [
        _item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID="1.2.3.4")
    ]
    ds.AnatomicRegionSequence = [
        _item(
            CodeValue="818981001",
            CodingSchemeDesignator="SCT",
            CodeMeaning="Abdomen",
            CodingSchemeUID="2.16.840.1.113883.6.96",
        )
    ]
    ds.UID = "1.2.840.10008.1.2.1"  # an instance-UID attribute holding a DICOM-defined UID
    out = deidentify(ds, BASIC, PROJECT_KEY).dataset
    assert out.SOPClassUID == CTImageStorage
    assert out.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
    assert out.AnatomicRegionSequence[0].CodingSchemeUID == "2.16.840.1.113883.6.96"
    assert out.UID == "1.2.840.10008.1.2.1"
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_dates_shift_by_one_amount_per_patient() -> None:
    first = deidentify(make_ct(study_date="20240305"), DATES, PROJECT_KEY)
    follow_up = deidentify(
        make_ct(study_date="20240611", sop_instance_uid="1.2.826.0.1.3680043.8.498.1009"),
        DATES,
        PROJECT_KEY,
    )
    other_patient = deidentify(make_ct(patient_id="PAT-0002"), DATES, PROJECT_KEY)
    assert first.date_shift_days == follow_up.date_shift_days < 0
    assert other_patient.date_shift_days != first.date_shift_days
    assert deidentify(make_ct(), DATES, OTHER_KEY).date_shift_days != first.date_shift_days
    shifted = _date(first.dataset.StudyDate)
    assert shifted == datetime.date(2024, 3, 5) + datetime.timedelta(first.date_shift_days)
    assert _date(follow_up.dataset.StudyDate) - shifted == datetime.timedelta(days=98)
    assert first.dataset.StudyTime == "101500"  # times are not shifted
    assert first.dataset.LongitudinalTemporalInformationModified == "MODIFIED"


def test_dates_in_sequences_and_datetimes_are_shifted() -> None:
    ds = make_ct()
    ds.AcquisitionDateTime = "20240305101500.123+0100"
    ds.CalibrationDate = "20240101"  # not in Table E.1-1, still a date
    ds.AnatomicRegionSequence = [_item(CodeValue="1", CodingSchemeDesignator="99X")]
    ds.AnatomicRegionSequence[0].add_new(0x00080012, "DA", "20240305")  # InstanceCreationDate
    result = deidentify(ds, DATES, PROJECT_KEY)
    shift = datetime.timedelta(result.date_shift_days)
    out = result.dataset
    assert out.AcquisitionDateTime == (
        (datetime.date(2024, 3, 5) + shift).strftime("%Y%m%d") + "101500.123+0100"
    )
    assert _date(out.CalibrationDate) == datetime.date(2024, 1, 1) + shift
    nested = out.AnatomicRegionSequence[0].InstanceCreationDate
    assert _date(nested) == datetime.date(2024, 3, 5) + shift


def test_basic_profile_removes_dates() -> None:
    result = deidentify(make_ct(), BASIC, PROJECT_KEY)
    assert result.date_shift_days == 0
    assert result.dataset.StudyDate == ""
    assert result.dataset.SeriesDate == "19000101"  # X/D: a dummy keeps Type 1 objects valid
    assert result.dataset.LongitudinalTemporalInformationModified == "REMOVED"


def test_patient_age_is_derived_before_the_birth_date_goes() -> None:
    profile = Profile("chars", "1", frozenset({Option.RETAIN_PATIENT_CHARACTERISTICS}))
    out = deidentify(make_ct(), profile, PROJECT_KEY).dataset
    assert out.PatientAge == "064Y"
    assert out.PatientBirthDate == ""
    assert "PatientAge" not in deidentify(make_ct(), BASIC, PROJECT_KEY).dataset


def test_private_attributes_and_their_creators_are_removed() -> None:
    ds = make_ct()
    block = ds.private_block(0x0009, "ACME CT PRIVATE", create=True)
    block.add_new(0x01, "LO", "Jane Doe, ward 7")
    out = write_bytes(deidentify(ds, DATES, PROJECT_KEY).dataset)
    assert b"ACME CT PRIVATE" not in out
    assert b"ward 7" not in out


def test_overrides_keep_and_pseudonymise() -> None:
    profile = Profile(
        "dosimetry", "1", overrides={"PatientSex": "keep", "AccessionNumber": "pseudonymise"}
    )
    out = deidentify(make_ct(), profile, PROJECT_KEY).dataset
    again = deidentify(make_ct(), profile, PROJECT_KEY).dataset
    assert out.PatientSex == "F"
    assert out.AccessionNumber.startswith("RB-")
    assert len(out.AccessionNumber) <= 16
    assert out.AccessionNumber == again.AccessionNumber


def test_output_bytes_are_deterministic() -> None:
    for profile in (BASIC, DATES):
        assert write_bytes(deidentify(make_ct(), profile, PROJECT_KEY).dataset) == write_bytes(
            deidentify(make_ct(), profile, PROJECT_KEY).dataset
        )
    assert write_bytes(deidentify(make_ct(), BASIC, PROJECT_KEY).dataset) != write_bytes(
        deidentify(make_ct(), BASIC, OTHER_KEY).dataset
    )


def test_deterministic_bytes_for_a_real_ct_file() -> None:
    path = pydicom.data.get_testdata_file("CT_small.dcm")
    outputs = {
        write_bytes(deidentify(pydicom.dcmread(path), DATES, PROJECT_KEY).dataset) for _ in range(2)
    }
    assert len(outputs) == 1


@pytest.mark.parametrize(
    ("profile", "codes", "temporal"),
    [
        (BASIC, ["113100"], "REMOVED"),
        (DATES, ["113100", "113107"], "MODIFIED"),
        (
            Profile(
                "full",
                "2",
                frozenset({Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_DEVICE_IDENTITY}),
            ),
            ["113100", "113106", "113109"],
            "UNMODIFIED",
        ),
    ],
)
def test_deidentification_is_recorded(profile: Profile, codes: list[str], temporal: str) -> None:
    out = deidentify(make_ct(), profile, PROJECT_KEY).dataset
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod == f"radbank {profile.name} {profile.version}"
    sequence = out.DeidentificationMethodCodeSequence
    assert [item.CodeValue for item in sequence] == codes
    assert {item.CodingSchemeDesignator for item in sequence} == {"DCM"}
    assert sequence[0].CodeMeaning == "Basic Application Confidentiality Profile"
    assert out.LongitudinalTemporalInformationModified == temporal


def test_file_meta_is_rewritten() -> None:
    ds = make_ct()
    ds.file_meta.SourceApplicationEntityTitle = "HOSP_PACS_01"
    ds.file_meta.SendingApplicationEntityTitle = "HOSP_SEND"
    ds.file_meta.ImplementationVersionName = "HOSPVENDOR_9"
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.4.5"
    ds.file_meta.PrivateInformation = b"secret"
    out = deidentify(ds, BASIC, PROJECT_KEY).dataset
    meta = out.file_meta
    assert sorted(element.keyword for element in meta) == sorted(
        [
            "FileMetaInformationVersion",
            "MediaStorageSOPClassUID",
            "MediaStorageSOPInstanceUID",
            "TransferSyntaxUID",
            "ImplementationClassUID",
            "ImplementationVersionName",
        ]
    )
    assert meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == CTImageStorage
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    written = write_bytes(out)
    assert b"HOSP_PACS_01" not in written and b"secret" not in written
    assert pydicom.dcmread(io.BytesIO(written)).SOPInstanceUID == out.SOPInstanceUID


def test_object_without_sop_instance_uid_is_refused_by_name(tmp_path: Path) -> None:
    ds = make_ct()
    del ds.SOPInstanceUID
    path = tmp_path / "no-uid.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    with pytest.raises(DeidentificationError, match="no-uid.dcm.*SOP Instance UID"):
        deidentify(pydicom.dcmread(path), BASIC, PROJECT_KEY)


def test_safe_private_option_keeps_only_listed_private_attributes() -> None:
    ds = make_ct()
    block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    block.add_new(0x23, "DS", "39.375")  # Table Speed: listed in PS3.15 Table E.3.10-1
    block.add_new(0x27, "LO", "Jane Doe")  # listed, but text where a number belongs
    block.add_new(0x02, "LO", "Jane Doe ward 7")  # same block, not listed
    ds.private_block(0x0021, "OTHER VENDOR", create=True).add_new(0x01, "LO", "ward 8")
    profile = Profile("safe", "1", frozenset({Option.RETAIN_SAFE_PRIVATE}))
    out = deidentify(ds, profile, PROJECT_KEY).dataset
    assert out.get_private_item(0x0019, 0x23, "GEMS_ACQU_01").value == "39.375"
    written = write_bytes(out)
    assert b"Jane Doe" not in written and b"ward 7" not in written and b"ward 8" not in written
    assert b"OTHER VENDOR" not in written
    assert "113111" in [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    without = deidentify(make_ct(), BASIC, PROJECT_KEY).dataset
    assert not any(tag.is_private for tag in without.keys())


def test_replace_and_path_overrides_in_the_output() -> None:
    ds = make_ct()
    request = _item(AccessionNumber="ACC-IN-REQUEST", RequestedProcedureID="RP1")
    ds.ReferencedRequestSequence = [request]
    profile = BASIC.with_overrides(
        {
            "InstitutionName": "replace:Site 07",
            "Rows": "replace:512",
            "ReferencedRequestSequence/AccessionNumber": "keep",
        }
    )
    ds.Rows = 256
    out = deidentify(ds, profile, PROJECT_KEY).dataset
    assert out.InstitutionName == "Site 07"
    assert out.Rows == 512
    assert out.AccessionNumber == ""  # the top-level one still follows the table
    assert out.ReferencedRequestSequence[0].AccessionNumber == "ACC-IN-REQUEST"
    # Type 2 in the Referenced Request Sequence: emptied there, not removed.
    assert out.ReferencedRequestSequence[0].RequestedProcedureID == ""


def test_an_overlay_without_its_data_is_removed_whole() -> None:
    ds = make_ct()
    ds.add_new(0x60000010, "US", 4)  # Overlay Rows
    ds.add_new(0x60000011, "US", 4)  # Overlay Columns
    ds.add_new(0x60000040, "CS", "G")  # Overlay Type
    ds.add_new(0x60000050, "SS", [1, 1])  # Overlay Origin
    ds.add_new(0x60000100, "US", 1)  # Overlay Bits Allocated
    ds.add_new(0x60000102, "US", 0)  # Overlay Bit Position
    ds.add_new(0x60001500, "LO", "Jane Doe")  # Overlay Label
    ds.add_new(0x60003000, "OW", b"\x01\x00")  # Overlay Data
    out = deidentify(ds, BASIC, PROJECT_KEY).dataset
    assert not [tag for tag in out.keys() if tag >> 16 == 0x6000]


def test_clean_graphics_cleans_annotation_text() -> None:
    ds = make_ct()
    text = _item(
        UnformattedTextValue="Jane Doe left lung nodule", AnchorPointAnnotationUnits="PIXEL"
    )
    ds.GraphicAnnotationSequence = [_item(GraphicLayer="LAYER1", TextObjectSequence=[text])]
    graphics = Profile("graphics", "1", frozenset({Option.CLEAN_GRAPHICS}))
    out = deidentify(ds, graphics, PROJECT_KEY).dataset
    cleaned = out.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue
    assert cleaned == "[removed] [removed] left lung nodule"
    basic = deidentify(make_ct(), BASIC, PROJECT_KEY).dataset
    assert "GraphicAnnotationSequence" not in basic
    ds = make_ct()
    ds.GraphicAnnotationSequence = [_item(GraphicLayer="LAYER1", TextObjectSequence=[text])]
    item = deidentify(ds, BASIC, PROJECT_KEY).dataset.GraphicAnnotationSequence[0]
    assert item.GraphicLayer == "LAYER1"  # a dummy keeps the item valid
    assert item.TextObjectSequence[0].UnformattedTextValue == "ANONYMOUS"


def test_unknown_person_name_attributes_get_a_dummy() -> None:
    ds = make_ct()
    ds.EvaluatorName = "Doe^John"  # PN, not in Table E.1-1
    ds.CalibrationImage = "YES"  # not in the table either: kept by default
    out = deidentify(ds, BASIC, PROJECT_KEY).dataset
    assert out.EvaluatorName == "ANONYMOUS"
    assert out.CalibrationImage == "YES"


def test_timezone_offset_is_kept_only_as_an_offset() -> None:
    for value, expected in (("+0100", "+0100"), ("-0530", "-0530"), ("Room 12", "")):
        ds = make_ct()
        ds.TimezoneOffsetFromUTC = value
        assert deidentify(ds, DATES, PROJECT_KEY).dataset.TimezoneOffsetFromUTC == expected
    ds = make_ct()
    ds.TimezoneOffsetFromUTC = "+0100"
    assert "TimezoneOffsetFromUTC" not in deidentify(ds, BASIC, PROJECT_KEY).dataset
