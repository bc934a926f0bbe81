"""What a de-identified object records about its de-identification (PS3.15 E.1.1, CID 7050)
and the File Meta Information radbank writes for it."""

from __future__ import annotations

from pydicom import Dataset, config
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.tag import BaseTag

from radbank.dicom.deid.profile import Option, Profile

IMPLEMENTATION_CLASS_UID = "2.25.327520955884402618483545262843403082670"
IMPLEMENTATION_VERSION_NAME = "RADBANK_0_1"

BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES: dict[Option, tuple[str, str]] = {
    Option.CLEAN_GRAPHICS: ("113103", "Clean Graphics Option"),
    Option.CLEAN_STRUCTURED_CONTENT: ("113104", "Clean Structured Content Option"),
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_LONGITUDINAL_FULL_DATES: (
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
    ),
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    Option.RETAIN_PATIENT_CHARACTERISTICS: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_UIDS: ("113110", "Retain UIDs Option"),
    Option.RETAIN_SAFE_PRIVATE: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY: ("113112", "Retain Institution Identity Option"),
}


def _element(tag: int, vr: str, value: object) -> DataElement:
    # Constant, valid values: skip pydicom's per-assignment validation (hot path of ingest).
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


def _set(dataset: Dataset, tag: int, vr: str, value: object) -> None:
    dataset[tag] = _element(tag, vr, value)


def _elements(*elements: tuple[int, str, object]) -> dict[BaseTag, DataElement]:
    return {BaseTag(tag): _element(tag, vr, value) for tag, vr, value in elements}


def _code_item(code: tuple[str, str]) -> Dataset:
    return Dataset(
        _elements(
            (0x00080100, "SH", code[0]),  # CodeValue
            (0x00080102, "SH", "DCM"),  # CodingSchemeDesignator
            (0x00080104, "LO", code[1]),  # CodeMeaning
        )
    )


def record_deidentification(dataset: Dataset, profile: Profile, dates_shifted: bool) -> None:
    """Set Patient Identity Removed, the method (text and CID 7050 codes) and what happened
    to dates. Previous records of the object are replaced by this one."""
    codes = [BASIC_PROFILE_CODE] + sorted(
        OPTION_CODES[option] for option in profile.options if option in OPTION_CODES
    )
    _set(dataset, 0x00120062, "CS", "YES")  # PatientIdentityRemoved
    _set(dataset, 0x00120063, "LO", profile.method[:64])  # DeidentificationMethod
    # DeidentificationMethodCodeSequence
    _set(dataset, 0x00120064, "SQ", [_code_item(code) for code in codes])
    if dates_shifted:
        temporal = "MODIFIED"
    elif Option.RETAIN_LONGITUDINAL_FULL_DATES in profile.options:
        temporal = "UNMODIFIED"
    else:
        temporal = "REMOVED"
    _set(dataset, 0x00280303, "CS", temporal)  # LongitudinalTemporalInformationModified


def rewrite_file_meta(dataset: Dataset, sop_class_uid: str, sop_instance_uid: str) -> None:
    """Replace the File Meta Information: only the transfer syntax survives from the input;
    source/sending/receiving AE titles and private meta information are dropped."""
    old = getattr(dataset, "file_meta", None)
    transfer_syntax = old.get("TransferSyntaxUID") if old is not None else None
    elements = [
        (0x00020001, "OB", b"\x00\x01"),  # FileMetaInformationVersion
        (0x00020002, "UI", sop_class_uid),  # MediaStorageSOPClassUID
        (0x00020003, "UI", sop_instance_uid),  # MediaStorageSOPInstanceUID
        (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
        (0x00020013, "SH", IMPLEMENTATION_VERSION_NAME),
    ]
    if transfer_syntax:
        elements.append((0x00020010, "UI", transfer_syntax))
    dataset.file_meta = FileMetaDataset(_elements(*sorted(elements)))
    if getattr(dataset, "preamble", None) is not None:
        # A preamble can carry anything (TIFF headers of dual-format files, vendor text).
        dataset.preamble = b"\x00" * 128
