"""Clean Structured Content on a synthetic SR: names, IDs, text and UIDs cleaned, numbers,
codes and the tree kept, every content item still valid."""

from __future__ import annotations

import datetime

from deid_helpers import PROJECT_KEY, make_ct, write_bytes
from pydicom import Dataset
from pydicom.uid import CTImageStorage

from radbank.dicom.deid import Option, Profile, deidentify, pseudonymise_uid
from radbank.dicom.deid.clean import PLACEHOLDER

RESEARCH_DOSE = Profile.named("research-dose")
IMAGE_UID = "1.2.826.0.1.3680043.8.498.777"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _item(value_type: str, concept: tuple[str, str, str], **values: object) -> Dataset:
    item = Dataset()
    item.RelationshipType = "HAS OBS CONTEXT" if value_type != "NUM" else "CONTAINS"
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [_code(*concept)]
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _sr() -> Dataset:
    ds = make_ct()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    ds.ContentSequence = [
        _item("PNAME", ("121008", "DCM", "Person Observer Name"), PersonName="Nurse^Ann"),
        _item("PNAME", ("121029", "DCM", "Subject Name"), PersonName="Doe^Jane"),
        _item("TEXT", ("121030", "DCM", "Subject ID"), TextValue="PAT-0001"),
        _item("DATE", ("121031", "DCM", "Subject Birth Date"), Date="19600214"),
        _item(
            "TEXT",
            ("121009", "DCM", "Person Observer's Organization Name"),
            TextValue="St Example Hospital",
        ),
        _item("TEXT", ("121016", "DCM", "Device Observer Serial Number"), TextValue="SN-42"),
        _item(
            "UIDREF", ("121012", "DCM", "Device Observer UID"), UID="1.2.826.0.1.3680043.8.498.99"
        ),
        _item(
            "TEXT",
            ("121106", "DCM", "Comment"),
            TextValue="Scan by Ann Nurse for Jane Doe on 05.03.2024, protocol Chest 1.25",
        ),
        _item(
            "DATETIME", ("113809", "DCM", "Start of X-Ray Irradiation"), DateTime="20240305101500"
        ),
        _item(
            "IMAGE",
            ("121112", "DCM", "Source of Measurement"),
            ReferencedSOPSequence=[_reference()],
        ),
        _item(
            "NUM",
            ("113830", "DCM", "Mean CTDIvol"),
            MeasuredValueSequence=[_measured("12.34", ("mGy", "UCUM", "mGy"))],
        ),
    ]
    return ds


def _reference() -> Dataset:
    reference = Dataset()
    reference.ReferencedSOPClassUID = CTImageStorage
    reference.ReferencedSOPInstanceUID = IMAGE_UID
    return reference


def _measured(value: str, unit: tuple[str, str, str]) -> Dataset:
    measured = Dataset()
    measured.NumericValue = value
    measured.MeasurementUnitsCodeSequence = [_code(*unit)]
    return measured


def test_content_values_are_cleaned_by_their_concept() -> None:
    result = deidentify(_sr(), RESEARCH_DOSE, PROJECT_KEY)
    items = result.dataset.ContentSequence
    assert str(items[0].PersonName) == "ANONYMOUS"  # an observer: a dummy
    assert str(items[1].PersonName) == result.patient_pseudonym  # the patient: the pseudonym
    assert items[2].TextValue == result.patient_pseudonym
    assert items[3].Date == "19000101"  # a birth date is never kept, not even shifted
    assert items[4].TextValue == PLACEHOLDER  # institution identity is not retained
    assert items[5].TextValue == "SN-42"  # device identity is
    device_uid = pseudonymise_uid("1.2.826.0.1.3680043.8.498.99", PROJECT_KEY)
    assert str(items[6].UID) == device_uid
    assert items[7].TextValue == (
        f"Scan by {PLACEHOLDER} {PLACEHOLDER} for {PLACEHOLDER} {PLACEHOLDER} "
        f"on {PLACEHOLDER}, protocol Chest 1.25"
    )
    shifted = datetime.date(2024, 3, 5) + datetime.timedelta(result.date_shift_days)
    assert items[8].DateTime == shifted.strftime("%Y%m%d") + "101500"
    reference = items[9].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPInstanceUID == pseudonymise_uid(IMAGE_UID, PROJECT_KEY)
    assert reference.ReferencedSOPClassUID == CTImageStorage
    measured = items[10].MeasuredValueSequence[0]
    assert measured.NumericValue == "12.34"
    assert measured.MeasurementUnitsCodeSequence[0].CodeValue == "mGy"
    written = write_bytes(result.dataset)
    for identity in (b"Nurse", b"Doe", b"PAT-0001", b"19600214", b"Example"):
        assert identity not in written, identity


def test_every_content_item_keeps_its_type_1_attributes() -> None:
    items = deidentify(_sr(), RESEARCH_DOSE, PROJECT_KEY).dataset.ContentSequence
    value_attribute = {
        "PNAME": "PersonName", "TEXT": "TextValue", "DATE": "Date", "UIDREF": "UID",
        "DATETIME": "DateTime", "IMAGE": "ReferencedSOPSequence", "NUM": "MeasuredValueSequence",
    }  # fmt: skip
    for item in items:
        assert item.RelationshipType and item.ConceptNameCodeSequence
        assert item.get(value_attribute[item.ValueType]), item.ValueType


def test_without_the_option_the_tree_becomes_one_dummy_item() -> None:
    for name in ("basic", "basic-dates"):
        out = deidentify(_sr(), Profile.named(name), PROJECT_KEY).dataset
        assert len(out.ContentSequence) == 1
        dummy = out.ContentSequence[0]
        assert (dummy.RelationshipType, dummy.ValueType, dummy.TextValue) == (
            "CONTAINS",
            "TEXT",
            "ANONYMOUS",
        )
        assert b"Nurse" not in write_bytes(out)


def test_institution_identity_retained_keeps_the_organisation() -> None:
    profile = Profile(
        "inst",
        "1",
        frozenset({Option.CLEAN_STRUCTURED_CONTENT, Option.RETAIN_INSTITUTION_IDENTITY}),
    )
    items = deidentify(_sr(), profile, PROJECT_KEY).dataset.ContentSequence
    assert items[4].TextValue == "St Example Hospital"
    assert items[5].TextValue == PLACEHOLDER  # device identity is not retained here
    assert items[3].Date == "19000101"


def test_dose_report_descriptors_keep_their_words_comments_keep_known_words() -> None:
    """Acquisition Protocol and device model are descriptors (per-protocol and per-device
    dose statistics): only the object's identifiers go. A comment is narrative: names that
    are nowhere in the object go too."""
    ds = _sr()
    ds.ContentSequence = [
        _item("TEXT", ("125203", "DCM", "Acquisition Protocol"), TextValue="Thorax Jane B70f"),
        _item("TEXT", ("125203", "DCM", "Acquisition Protocol"), TextValue="CAP W CONTRAST 5mm"),
        _item("TEXT", ("113879", "DCM", "Device Model Name"), TextValue="SOMATOM Force"),
        _item(
            "TEXT", ("121106", "DCM", "Comment"), TextValue="Patient moved, repeated by Kowalski"
        ),
    ]
    items = deidentify(ds, RESEARCH_DOSE, PROJECT_KEY).dataset.ContentSequence
    assert [item.TextValue for item in items] == [
        f"Thorax {PLACEHOLDER} B70f",
        "CAP W CONTRAST 5mm",
        "SOMATOM Force",
        f"Patient moved, repeated by {PLACEHOLDER}",
    ]
