"""DICOM JSON (PS3.18 F.2) attribute sets of the index: which attributes belong to the
study and series levels, the matching-column values taken from them, and QIDO-RS results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

Attributes = dict[str, Any]


def _tag_list(keywords: str) -> list[str]:
    return [f"{tag_for_keyword(keyword):08X}" for keyword in keywords.split()]


def _tags(keywords: str) -> frozenset[str]:
    return frozenset(_tag_list(keywords))


def tag_of(keyword: str) -> str:
    return f"{tag_for_keyword(keyword):08X}"


# Patient, Clinical Trial Subject, General/Patient/Clinical Trial Study modules (PS3.3 C.7.1,
# C.7.2), plus the character set and time zone that qualify them.
STUDY_LEVEL = _tags(
    """SpecificCharacterSet TimezoneOffsetFromUTC PatientName PatientID IssuerOfPatientID
    IssuerOfPatientIDQualifiersSequence TypeOfPatientID PatientBirthDate PatientBirthTime
    PatientSex OtherPatientIDsSequence OtherPatientNames PatientComments
    PatientSpeciesDescription PatientBreedDescription ResponsiblePerson ResponsibleOrganization
    PatientIdentityRemoved DeidentificationMethod DeidentificationMethodCodeSequence EthnicGroup
    QualityControlSubject ClinicalTrialSponsorName ClinicalTrialProtocolID
    ClinicalTrialProtocolName ClinicalTrialSiteID ClinicalTrialSiteName ClinicalTrialSubjectID
    ClinicalTrialSubjectReadingID ClinicalTrialTimePointID ClinicalTrialTimePointDescription
    ClinicalTrialCoordinatingCenterName LongitudinalTemporalInformationModified
    StudyInstanceUID StudyDate StudyTime AccessionNumber IssuerOfAccessionNumberSequence
    ReferringPhysicianName ReferringPhysicianIdentificationSequence StudyID StudyDescription
    ProcedureCodeSequence PhysiciansOfRecord NameOfPhysiciansReadingStudy
    ReasonForPerformedProcedureCodeSequence AdmittingDiagnosesDescription
    AdmittingDiagnosesCodeSequence PatientAge PatientSize PatientWeight PatientBodyMassIndex
    Occupation AdditionalPatientHistory PatientSexNeutered SmokingStatus PregnancyStatus
    LastMenstrualDate MedicalAlerts Allergies"""
)
# General Series, Clinical Trial Series, Frame of Reference and General Equipment modules.
SERIES_LEVEL = _tags(
    """SpecificCharacterSet TimezoneOffsetFromUTC Modality SeriesInstanceUID SeriesNumber
    SeriesDescription SeriesDescriptionCodeSequence SeriesDate SeriesTime Laterality
    BodyPartExamined ProtocolName OperatorsName PerformingPhysicianName PatientPosition
    AnatomicalOrientationType PerformedProcedureStepID PerformedProcedureStepStartDate
    PerformedProcedureStepStartTime PerformedProcedureStepEndDate PerformedProcedureStepEndTime
    PerformedProcedureStepDescription PerformedProtocolCodeSequence RequestAttributesSequence
    RelatedSeriesSequence ClinicalTrialSeriesID ClinicalTrialSeriesDescription
    FrameOfReferenceUID PositionReferenceIndicator Manufacturer InstitutionName
    InstitutionAddress StationName InstitutionalDepartmentName ManufacturerModelName
    DeviceSerialNumber SoftwareVersions SmallestPixelValueInSeries LargestPixelValueInSeries"""
)

# Return attributes of PS3.18 Tables 10.6.1-5, -6 and -7; the optional ones only when known.
STUDY_RETURN = _tag_list(
    """StudyDate StudyTime AccessionNumber ReferringPhysicianName PatientName PatientID
    PatientBirthDate PatientSex StudyInstanceUID StudyID ModalitiesInStudy
    NumberOfStudyRelatedSeries NumberOfStudyRelatedInstances InstanceAvailability"""
)
SERIES_RETURN = _tag_list(
    """Modality SeriesDescription SeriesInstanceUID SeriesNumber
    NumberOfSeriesRelatedInstances PerformedProcedureStepStartDate
    PerformedProcedureStepStartTime StudyInstanceUID"""
)
INSTANCE_RETURN = _tag_list(
    """SOPClassUID SOPInstanceUID InstanceAvailability InstanceNumber Rows Columns
    BitsAllocated NumberOfFrames StudyInstanceUID SeriesInstanceUID"""
)
RETURN_IF_KNOWN = [tag_of(k) for k in ("SpecificCharacterSet", "TimezoneOffsetFromUTC")]
SERIES_RETURN_IF_KNOWN = [tag_of("RequestAttributesSequence")]


def level_subset(attributes: Mapping[str, Any], level: frozenset[str]) -> Attributes:
    return {tag: element for tag, element in attributes.items() if tag in level}


def merge_missing(base: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> Attributes:
    """base with the attributes it lacks taken from others (the first one that has each)."""
    merged = dict(base)
    for other in others:
        for tag, element in other.items():
            merged.setdefault(tag, element)
    return merged


# What a text column holds of a value: PostgreSQL refuses NUL characters in text and index
# entries of more than ~2.7 KB (512 characters are at most 2 KB of UTF-8). No valid DICOM
# value comes near; the attributes (JSON) keep the value as it was sent.
COLUMN_TEXT_MAX = 512
# The integer columns hold what an IS can (PS3.5 Table 6.2-1): -2**31 .. 2**31 - 1.
INTEGER_RANGE = range(-(2**31), 2**31)


def column_text(value: str) -> str:
    """`value` as a text column holds it: without NUL characters, at most COLUMN_TEXT_MAX
    characters."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:COLUMN_TEXT_MAX]


def text(attributes: Mapping[str, Any], keyword: str) -> str | None:
    """The first value of an attribute as text (a PN's alphabetic group), None when empty;
    as a column holds it (`column_text`)."""
    values = attributes.get(tag_of(keyword), {}).get("Value")
    if not values:
        return None
    value = values[0]
    if isinstance(value, dict):
        value = value.get("Alphabetic")
    if value is None:
        return None
    value = column_text(str(value)).strip()
    return value or None


def integer(attributes: Mapping[str, Any], keyword: str) -> int | None:
    """The attribute as the integer of its column; None when it is none (or outside what an
    IS can hold: such a value stays in the attributes, but matches no integer query)."""
    value = text(attributes, keyword)
    if value is None:
        return None
    try:
        number = int(float(value))
    except (ValueError, OverflowError):
        return None
    return number if number in INTEGER_RANGE else None


def folded(value: str | None) -> str | None:
    """A person name as names are matched, the same for stored and query values: in lower
    case (one character stays one, so `?` matches a "ß" as it matches an "s"), without the
    empty components a name may leave out at its end ("Doe^John^^^" is "Doe^John", PS3.5
    6.2)."""
    return value.lower().rstrip("^") if value is not None else None


def comparable_datetime(value: str | None) -> str | None:
    """A DT value as date-times are compared, the same for stored and query values. One
    with a UTC offset is the UTC moment it names, at the precision it was given
    ("20200101120000+0200" is "20200101100000"; PS3.4 C.2.2.2.5: the offset is taken into
    account); one given to the day or less keeps its date. One without an offset is taken
    as written: in the time zone of whoever made it, which the node cannot know."""
    if not value or len(value) <= 5 or value[-5] not in "+-":
        return value
    moment, offset = value[:-5], value[-5:]
    digits, dot, fraction = moment.partition(".")
    if len(digits) not in (10, 12, 14) or not (digits + offset[1:]).isdigit():
        return moment
    try:
        when = datetime(
            int(digits[:4]), int(digits[4:6]), int(digits[6:8]), int(digits[8:10]),
            int(digits[10:12] or 0), int(digits[12:14] or 0),
        )  # fmt: skip
    except ValueError:
        return moment  # no such moment (a leap second, a 25th hour): compared as written
    minutes = int(offset[1:3]) * 60 + int(offset[3:])
    utc = when - timedelta(minutes=minutes if offset[0] == "+" else -minutes)
    text = (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}"
    )
    return text[: len(digits)] + dot + fraction


def study_columns(attributes: Mapping[str, Any]) -> dict[str, Any]:
    patient_name = text(attributes, "PatientName")
    referring = text(attributes, "ReferringPhysicianName")
    return {
        "patient_id": text(attributes, "PatientID"),
        "patient_name": patient_name,
        "patient_name_ci": folded(patient_name),
        "patient_birth_date": text(attributes, "PatientBirthDate"),
        "patient_sex": text(attributes, "PatientSex"),
        "study_date": text(attributes, "StudyDate") or "",
        "study_time": text(attributes, "StudyTime") or "",
        "accession_number": text(attributes, "AccessionNumber"),
        "study_id": text(attributes, "StudyID"),
        "referring_physician_name": referring,
        "referring_physician_name_ci": folded(referring),
        "study_description": text(attributes, "StudyDescription"),
    }


def series_columns(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "modality": text(attributes, "Modality"),
        "series_number": integer(attributes, "SeriesNumber"),
        "series_description": text(attributes, "SeriesDescription"),
        "series_date": text(attributes, "SeriesDate"),
        "series_time": text(attributes, "SeriesTime"),
        "performed_procedure_step_start_date": text(attributes, "PerformedProcedureStepStartDate"),
        "performed_procedure_step_start_time": text(attributes, "PerformedProcedureStepStartTime"),
    }


def instance_columns(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "instance_number": integer(attributes, "InstanceNumber"),
        "rows": integer(attributes, "Rows"),
        "columns": integer(attributes, "Columns"),
        "bits_allocated": integer(attributes, "BitsAllocated"),
        "number_of_frames": integer(attributes, "NumberOfFrames"),
        "acquisition_date_time": comparable_datetime(text(attributes, "AcquisitionDateTime")),
    }


def empty_element(tag: str) -> dict[str, str] | None:
    """{"vr": ...} for an attribute without value; None for a tag the dictionary lacks."""
    vr = _vr(tag)
    return {"vr": vr} if vr else None


@cache
def _vr(tag: str) -> str | None:
    try:
        return dictionary_VR(int(tag, 16)).split(" or ")[0]
    except KeyError:
        return None


def result(
    sources: list[Mapping[str, Any]],
    required: Iterable[str],
    if_known: Iterable[str],
    include_all: bool,
) -> Attributes:
    """One QIDO-RS result: required tags (empty when unknown), if_known tags when present,
    and with include_all every tag of every source; the first source holding a tag wins."""
    chosen: Attributes = {}
    for tag in if_known:
        for source in sources:
            if tag in source:
                chosen[tag] = source[tag]
                break
    for tag in required:
        if tag in chosen:
            continue
        for source in sources:
            if tag in source:
                chosen[tag] = source[tag]
                break
        else:
            element = empty_element(tag)
            if element is not None:
                chosen[tag] = element
    if include_all:
        for source in sources:
            for tag, element in source.items():
                chosen.setdefault(tag, element)
    return dict(sorted(chosen.items()))
