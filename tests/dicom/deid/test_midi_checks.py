"""Checks in the manner of the MIDI-B challenge's validator, on a small real corpus.

The corpus is built from real files of pydicom's test data: patient 77654033 (a CR study
of three series, a CT study of four images) and patient 98890234 (a CT study of two series,
MR studies), both with an issuer of patient ID added; a CT image referencing other images
(Referenced Image Sequence); an SR (pydicom's reportsi.dcm) made part of 98890234's CT study
whose IMAGE items, evidence sequence and a UIDREF item reference that study's images; an NM
image (pydicom's JPEG-LL.dcm) of a third patient carrying radiopharmaceutical information;
the same patient ID sent by a second hospital with the same issuer, and with another issuer.
Where the 1995-2004 scanners did not record an attribute dosimetry needs (CTDIvol, device
serial number, patient size) a plausible value is filled in; the checks are about the
value surviving, not about its truth.

Checks: uid_changed, uid_consistent (references included, and across calls), patid_consistent
(same patient same pseudonym, issuers, keys), date_shifted (one shift per patient, intervals
kept; dates gone under basic), pixels_retained, tag_retained.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

import corpus
import pytest
from deid_helpers import OTHER_KEY, PROJECT_KEY
from phi_corpus import (
    ALL_PROFILES,
    WELL_KNOWN_UID_PREFIX,
    read_dicom,
    shipped_profile,
    steps_text,
    walk,
)
from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue

from radbank.dicom.deid import PROFILE_NAMES, DeidResult, Option, Profile, deidentify
from radbank.dicom.encode import part10_bytes

# Profiles with the Modified Dates option: the required ones, and any other one shipped.
SHIFTING_PROFILES = tuple(
    name
    for name in ALL_PROFILES
    if name in ("basic-dates", "research-dose")
    or (
        name in PROFILE_NAMES
        and Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in Profile.named(name).options
    )
)
BIRTH_DATES = {"77654033": "19480704", "98890234": "19550312", "8NM1": "19620921"}


@dataclass(frozen=True)
class CorpusFile:
    name: str
    patient: str  # the person: files of one person must share pseudonym and date shift
    data: bytes


def _dicomdir_files(patient_folder: str) -> list[tuple[str, Dataset]]:
    files = [
        path
        for path in corpus.all_files()
        if "dicomdirtests" in path.parts and path.parent.parent.name == patient_folder
    ]
    return [(f"{path.parent.name}/{path.name}", read_dicom(path)) for path in sorted(files)]


def _age(birth: str, on: str) -> str:
    born = datetime.datetime.strptime(birth, "%Y%m%d").date()
    day = datetime.datetime.strptime(on, "%Y%m%d").date()
    return f"{day.year - born.year - ((day.month, day.day) < (born.month, born.day)):03d}Y"


def _complete(dataset: Dataset, serial: int) -> None:
    """The attributes dosimetry and linkage need, where the old scanner left them out."""
    patient_id = str(dataset.PatientID)
    dataset.IssuerOfPatientID = "HOSP-A"
    dataset.PatientBirthDate = BIRTH_DATES[patient_id]
    dataset.PatientAge = _age(BIRTH_DATES[patient_id], str(dataset.StudyDate))
    dataset.PatientSex = dataset.get("PatientSex") or "M"
    dataset.PatientSize = "1.78"
    dataset.PatientWeight = dataset.get("PatientWeight") or "81.6"
    dataset.DeviceSerialNumber = f"SN-{dataset.Modality}-{4170 + serial % 3}"
    dataset.StationName = f"{dataset.Modality}SCANNER1"
    if not dataset.get("ManufacturerModelName"):
        dataset.ManufacturerModelName = "LightSpeed QX/i"
    if dataset.Modality == "CT":
        dataset.CTDIvol = 12.5 + serial % 5


def _reference(dataset: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = dataset.SOPClassUID
    item.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    return item


def _report_on(images: list[Dataset]) -> Dataset:
    """pydicom's Basic Text SR, made a report of `images` (one study) with references."""
    report = read_dicom(corpus.path("reportsi.dcm"))
    first = images[0]
    for keyword in (
        "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
        "PatientAge", "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
        "StudyID", "ReferringPhysicianName",
    ):  # fmt: skip
        if keyword in first:
            setattr(report, keyword, first[keyword].value)
    report.SeriesInstanceUID = first.StudyInstanceUID + ".99"
    report.SOPInstanceUID = first.StudyInstanceUID + ".99.1"
    report.file_meta.MediaStorageSOPInstanceUID = report.SOPInstanceUID
    report.ContentDate = first.StudyDate
    report.ContentTime = "101500"
    image_items = [
        item
        for _, element in walk(report)
        if element.keyword == "ContentSequence"
        for item in element.value
        if item.get("ValueType") == "IMAGE"
    ]
    for item, image in zip(image_items, images, strict=False):
        item.ReferencedSOPSequence = [_reference(image)]
    uid_item = Dataset()
    uid_item.RelationshipType = "HAS OBS CONTEXT"
    uid_item.ValueType = "UIDREF"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator = "110180", "DCM"
    concept.CodeMeaning = "Study Instance UID"
    uid_item.ConceptNameCodeSequence = [concept]
    uid_item.UID = first.StudyInstanceUID
    report.ContentSequence.insert(0, uid_item)
    series: dict[str, list[Dataset]] = defaultdict(list)
    for image in images:
        series[image.SeriesInstanceUID].append(image)
    evidence = Dataset()
    evidence.StudyInstanceUID = first.StudyInstanceUID
    evidence.ReferencedSeriesSequence = []
    for series_uid, members in series.items():
        entry = Dataset()
        entry.SeriesInstanceUID = series_uid
        entry.ReferencedSOPSequence = [_reference(image) for image in members]
        evidence.ReferencedSeriesSequence.append(entry)
    report.CurrentRequestedProcedureEvidenceSequence = [evidence]
    return report


def _nuclear_medicine() -> Dataset:
    """pydicom's NM image with the radiopharmaceutical and camera attributes of an FDG scan."""
    image = read_dicom(corpus.path("JPEG-LL.dcm"))
    image.PatientName = "Nuclear^Nora"
    image.AcquisitionDate = image.StudyDate
    image.AcquisitionTime = "094500"
    drug = Dataset()
    drug.Radiopharmaceutical = "Fluorodeoxyglucose"
    drug.RadiopharmaceuticalVolume = "8.5"
    drug.RadiopharmaceuticalStartTime = "083000"
    drug.RadiopharmaceuticalStartDateTime = f"{image.StudyDate}083000"
    drug.RadionuclideTotalDose = "370000000"
    drug.RadionuclideHalfLife = "6586.2"
    drug.RadionuclidePositronFraction = "0.9673"
    nuclide = Dataset()
    nuclide.CodeValue, nuclide.CodingSchemeDesignator = "C-111A1", "SRT"
    nuclide.CodeMeaning = "^18^Fluorine"
    drug.RadionuclideCodeSequence = [nuclide]
    tracer = Dataset()
    tracer.CodeValue, tracer.CodingSchemeDesignator = "C-B1031", "SRT"
    tracer.CodeMeaning = "Fluorodeoxyglucose F^18^"
    drug.RadiopharmaceuticalCodeSequence = [tracer]
    image.RadiopharmaceuticalInformationSequence = [drug]
    window = Dataset()
    limits = Dataset()
    limits.EnergyWindowLowerLimit = "435"
    limits.EnergyWindowUpperLimit = "650"
    window.EnergyWindowRangeSequence = [limits]
    window.EnergyWindowName = "PEAK"
    image.EnergyWindowInformationSequence = [window]
    image.ActualFrameDuration = "180000"
    return image


@cache
def midi_corpus() -> tuple[CorpusFile, ...]:
    files: list[tuple[str, str, Dataset]] = []
    for folder in ("77654033", "98892001", "98892003"):
        for name, dataset in _dicomdir_files(folder):
            files.append((name, str(dataset.PatientID), dataset))
    files.append(("NM/JPEG-LL.dcm", "8NM1", _nuclear_medicine()))
    for serial, (_, _, dataset) in enumerate(files):
        _complete(dataset, serial)
    ct = {name: dataset for name, _, dataset in files if name.startswith(("CT2N/", "CT5N/"))}
    # Images that reference others of their study, within and across series.
    ct["CT2N/6924"].ReferencedImageSequence = [_reference(ct["CT2N/6293"])]
    ct["CT5N/3353"].ReferencedImageSequence = [
        _reference(ct["CT5N/2062"]),
        _reference(ct["CT2N/6293"]),
    ]
    report = _report_on([ct["CT2N/6293"], ct["CT5N/2062"]])
    files.append(("SR/report", "98890234", report))
    # The same person's CT study sent by a second hospital under the same issuer: another
    # study (its own UIDs and accession number), the same patient.
    for name, _, dataset in list(files):
        if name.startswith("CT2/"):
            again = read_dicom(part10_bytes(dataset))
            again.InstitutionName = "Second Hospital"
            again.AccessionNumber = "B-" + str(dataset.AccessionNumber)
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                setattr(again, keyword, dataset[keyword].value + ".2")
            again.file_meta.MediaStorageSOPInstanceUID = again.SOPInstanceUID
            files.append((f"hospital2/{name}", "77654033", again))
    # Another issuer's patient who happens to have the same local ID: another person.
    for name, _, dataset in list(files):
        if name.startswith("CR1/"):
            other = read_dicom(part10_bytes(dataset))
            other.IssuerOfPatientID = "HOSP-B"
            other.PatientName = "Other^Person"
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                setattr(other, keyword, dataset[keyword].value + ".3")
            other.file_meta.MediaStorageSOPInstanceUID = other.SOPInstanceUID
            files.append((f"issuerB/{name}", "HOSP-B:77654033", other))
    return tuple(
        CorpusFile(name, patient, part10_bytes(dataset)) for name, patient, dataset in files
    )


@dataclass(frozen=True)
class Outcome:
    file: CorpusFile
    source: Dataset
    output: Dataset
    written: bytes
    result: DeidResult


@cache
def outcomes(profile_name: str, key: bytes = PROJECT_KEY) -> tuple[Outcome, ...]:
    profile = shipped_profile(profile_name)
    done = []
    for file in midi_corpus():
        result = deidentify(read_dicom(file.data), profile, key)
        written = part10_bytes(result.dataset)
        done.append(Outcome(file, read_dicom(file.data), read_dicom(written), written, result))
    return tuple(done)


def _values(element: DataElement) -> list[str]:
    value = element.value
    if value is None or value == "":
        return []
    parts = value if isinstance(value, MultiValue | list | tuple) else [value]
    return [str(part).strip("\x00 ") for part in parts]


def aligned(
    source: Dataset, output: Dataset, path: str = ""
) -> list[tuple[str, DataElement, DataElement]]:
    """(path, input element, output element) for every element present at the same path in
    both; sequences are followed only where both have the same number of items."""
    pairs = []
    for element in source:
        if element.tag not in output:
            continue
        other = output[element.tag]
        where = f"{path}{element.keyword or element.tag}"
        if element.VR == "SQ":
            if other.VR == "SQ" and len(other.value) == len(element.value):
                for index, (item, other_item) in enumerate(
                    zip(element.value, other.value, strict=True)
                ):
                    pairs += aligned(item, other_item, f"{where}[{index}] > ")
        else:
            pairs.append((where, element, other))
    return pairs


def _uid_found(uid: str, data: bytes) -> bool:
    return re.search(rb"(?<![0-9.])" + re.escape(uid.encode()) + rb"(?![0-9.])", data) is not None


def _names_a_class(keyword: str) -> bool:
    """UI attributes naming a kind of thing (an SOP class, a transfer syntax, a coding
    scheme), not an instance: their values identify software or standards, not people."""
    return keyword.endswith(("ClassUID", "SyntaxUID", "ClassesInStudy")) or keyword in (
        "CodingSchemeUID",
        "ImplementationClassUID",
    )


def _input_uids(dataset: Dataset) -> set[str]:
    """The instance UIDs of an input object (file meta included), DICOM's own excluded."""
    uids = set()
    elements = [element for _, element in walk(dataset)] + list(dataset.file_meta)
    for element in elements:
        if element.VR == "UI" and not _names_a_class(element.keyword):
            uids.update(_values(element))
    return {uid for uid in uids if uid and not uid.startswith(WELL_KNOWN_UID_PREFIX)}


# --- uid_changed ------------------------------------------------------------------------


@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_uid_changed(profile_name: str) -> None:
    """Every instance UID differs; no instance UID of the input is left anywhere in the
    bytes (only DICOM's own 1.2.840.10008.* UIDs and UIDs naming a class, a transfer syntax
    or a coding scheme may stay)."""
    unchanged, leaked = [], []
    for outcome in outcomes(profile_name):
        for keyword in (
            "SOPInstanceUID",
            "SeriesInstanceUID",
            "StudyInstanceUID",
            "FrameOfReferenceUID",
        ):
            if (
                keyword in outcome.source
                and outcome.output.get(keyword) == outcome.source[keyword].value
            ):
                unchanged.append(f"{outcome.file.name}: {keyword}")
        for uid in sorted(_input_uids(outcome.source)):
            if _uid_found(uid, outcome.written):
                where = _uid_paths(outcome.output, uid)
                leaked.append(f"{outcome.file.name}: {uid} at {', '.join(where) or '(bytes)'}")
    assert (unchanged, leaked) == ([], [])


def _uid_paths(dataset: Dataset, uid: str) -> list[str]:
    found = []
    for steps, element in walk(dataset):
        if element.VR == "UI" and uid in _values(element):
            found.append(steps_text(steps, element.tag))
    for element in dataset.file_meta:
        if element.VR == "UI" and uid in _values(element):
            found.append(f"file meta {element.keyword}")
    return found


# --- uid_consistent -----------------------------------------------------------------------


def _uid_map(profile_name: str, key: bytes = PROJECT_KEY) -> dict[str, set[str]]:
    """Input instance UID -> the output UIDs found at the same paths."""
    mapping: dict[str, set[str]] = defaultdict(set)
    for outcome in outcomes(profile_name, key):
        for _, before, after in aligned(outcome.source, outcome.output):
            if before.VR != "UI" or after.VR != "UI" or _names_a_class(before.keyword):
                continue
            for old, new in zip(_values(before), _values(after), strict=False):
                if not old.startswith(WELL_KNOWN_UID_PREFIX):
                    mapping[old].add(new)
    return mapping


@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_uid_consistent(profile_name: str) -> None:
    """One input UID maps to one output UID everywhere (references included), different
    UIDs stay different, and every reference to an image of the corpus still resolves."""
    mapping = _uid_map(profile_name)
    split = {old: sorted(new) for old, new in mapping.items() if len(new) > 1}
    targets: dict[str, list[str]] = defaultdict(list)
    for old, new in mapping.items():
        for uid in new:
            if uid:
                targets[uid].append(old)
    merged = {new: olds for new, olds in targets.items() if len(olds) > 1}
    instances = {o.source.SOPInstanceUID: o.output.SOPInstanceUID for o in outcomes(profile_name)}
    dangling, references = [], 0
    for outcome in outcomes(profile_name):
        for path, before, after in aligned(outcome.source, outcome.output):
            if before.keyword != "ReferencedSOPInstanceUID" or str(before.value) not in instances:
                continue
            references += 1
            if str(after.value) != instances[str(before.value)]:
                dangling.append(f"{outcome.file.name}: {path} = {after.value}")
    assert (split, merged, dangling) == ({}, {}, [])
    assert references >= 3  # the CT images' references survive under every profile


def test_uid_consistent_in_the_structured_report_under_research_dose() -> None:
    """research-dose keeps the SR content: its IMAGE items, evidence and UIDREF still point
    at the de-identified images and study."""
    done = outcomes("research-dose")
    instances = {o.source.SOPInstanceUID: o.output.SOPInstanceUID for o in done}
    studies = {o.source.StudyInstanceUID: o.output.StudyInstanceUID for o in done}
    report = next(o for o in done if o.file.name == "SR/report")
    referenced = [
        str(element.value)
        for _, element in walk(report.output)
        if element.keyword == "ReferencedSOPInstanceUID"
    ]
    uidrefs = [
        str(item.UID)
        for _, element in walk(report.output)
        if element.keyword == "ContentSequence"
        for item in element.value
        if item.get("ValueType") == "UIDREF"
    ]
    assert referenced and set(referenced) <= set(instances.values())
    assert len(referenced) >= 4  # two IMAGE items and two evidence entries
    assert uidrefs == [studies[report.source.StudyInstanceUID]]


@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_uid_consistent_across_calls(profile_name: str) -> None:
    """De-identifying the same object again (a re-send) gives byte-identical output."""
    profile = shipped_profile(profile_name)
    differing = []
    for outcome in outcomes(profile_name):
        again = deidentify(read_dicom(outcome.file.data), profile, PROJECT_KEY)
        if part10_bytes(again.dataset) != outcome.written:
            differing.append(outcome.file.name)
    assert differing == []


# --- patid_consistent ---------------------------------------------------------------------


@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_patid_consistent(profile_name: str) -> None:
    by_person: dict[str, set[str]] = defaultdict(set)
    for outcome in outcomes(profile_name):
        by_person[outcome.file.patient].add(str(outcome.output.get("PatientID", "")))
        assert outcome.output.PatientID == outcome.result.patient_pseudonym, outcome.file.name
        original = {str(outcome.source.PatientID), str(outcome.source.PatientName)}
        assert not original & {str(outcome.output.PatientID), str(outcome.output.PatientName)}
    assert {person: len(ids) for person, ids in by_person.items()} == dict.fromkeys(by_person, 1)
    pseudonyms = [next(iter(ids)) for ids in by_person.values()]
    # Different people (another issuer's patient with the same local ID included) differ;
    # the second hospital's study of 77654033 was counted as the same person above.
    assert len(set(pseudonyms)) == len(pseudonyms) == 4


def test_patid_unlinkable_across_project_keys() -> None:
    """Two projects' outputs share no pseudonym and no UID."""
    ours = {str(o.output.PatientID) for o in outcomes("basic")}
    theirs = {str(o.output.PatientID) for o in outcomes("basic", OTHER_KEY)}
    assert ours and theirs and not ours & theirs
    our_uids = {uid for news in _uid_map("basic").values() for uid in news}
    their_uids = {uid for news in _uid_map("basic", OTHER_KEY).values() for uid in news}
    assert our_uids and not our_uids & their_uids


# --- date_shifted -------------------------------------------------------------------------


def _day(value: str) -> datetime.date | None:
    try:
        return datetime.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None


@pytest.mark.parametrize("profile_name", SHIFTING_PROFILES)
def test_date_shifted_by_one_offset_per_patient(profile_name: str) -> None:
    shifts: dict[str, set[int]] = defaultdict(set)
    problems = []
    for outcome in outcomes(profile_name):
        if not outcome.output.get("StudyDate"):
            problems.append(f"{outcome.file.name}: StudyDate {outcome.output.get('StudyDate')!r}")
        for path, before, after in aligned(outcome.source, outcome.output):
            if before.VR not in ("DA", "DT"):
                continue
            for old, new in zip(_values(before), _values(after), strict=False):
                old_day, new_day = _day(old), _day(new)
                if old_day is None:
                    continue
                if new_day is None:
                    continue  # removed or emptied: allowed, no identity left
                shifts[outcome.file.patient].add((new_day - old_day).days)
                if before.VR == "DT" and new[8:] != old[8:]:
                    problems.append(f"{outcome.file.name}: {path} time changed {old} -> {new}")
                if new_day == old_day:
                    problems.append(f"{outcome.file.name}: {path} not shifted ({old})")
    per_patient = {person: sorted(days) for person, days in shifts.items()}
    assert problems == []
    assert all(len(days) == 1 for days in per_patient.values()), per_patient
    # Different patients typically get different shifts (deterministic under the test key).
    assert len({days[0] for days in per_patient.values()}) == len(per_patient), per_patient


@pytest.mark.parametrize("profile_name", SHIFTING_PROFILES)
def test_date_shifted_keeps_intervals_between_a_patients_studies(profile_name: str) -> None:
    studies: dict[str, dict[tuple[str, str], tuple[datetime.date, datetime.date]]] = defaultdict(
        dict
    )
    for outcome in outcomes(profile_name):
        before, after = _day(str(outcome.source.StudyDate)), _day(str(outcome.output.StudyDate))
        if before and after:
            key = (str(outcome.source.StudyInstanceUID), str(outcome.output.StudyInstanceUID))
            studies[outcome.file.patient][key] = (before, after)
    changed = []
    for person, dates in studies.items():
        pairs = sorted(dates.values())
        for (first_in, first_out), (other_in, other_out) in zip(pairs, pairs[1:], strict=False):
            if (other_in - first_in) != (other_out - first_out):
                changed.append(f"{person}: {first_in}..{other_in} became {first_out}..{other_out}")
    assert sum(len(dates) >= 2 for dates in studies.values()) >= 2  # two multi-study patients
    assert changed == []


@pytest.mark.parametrize("profile_name", [n for n in ALL_PROFILES if n not in SHIFTING_PROFILES])
def test_date_removed_without_modified_dates(profile_name: str) -> None:
    """Without the modified-dates option no input date is left anywhere in the output."""
    profile = shipped_profile(profile_name)
    if Option.RETAIN_LONGITUDINAL_FULL_DATES in profile.options:
        pytest.skip(f"{profile_name} retains full dates by design")
    left = []
    for outcome in outcomes(profile_name):
        for path, before, after in aligned(outcome.source, outcome.output):
            if before.VR in ("DA", "DT"):
                for old, new in zip(_values(before), _values(after), strict=False):
                    if _day(old) is not None and new[:8] == old[:8]:
                        left.append(f"{outcome.file.name}: {path} = {new}")
    assert left == []


# --- pixels_retained and tag_retained -------------------------------------------------------


@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_pixels_retained(profile_name: str) -> None:
    checked, changed = 0, []
    for outcome in outcomes(profile_name):
        if "PixelData" not in outcome.source:
            continue
        checked += 1
        if outcome.output.get("PixelData") is None or (
            outcome.output.PixelData != outcome.source.PixelData
        ):
            changed.append(outcome.file.name)
    assert checked >= 30
    assert changed == []


ACQUISITION = (
    "KVP", "XRayTubeCurrent", "ExposureTime", "Exposure", "CTDIvol", "SliceThickness",
    "ConvolutionKernel", "Manufacturer", "ManufacturerModelName", "PixelSpacing",
    "ImagerPixelSpacing", "RescaleSlope", "RescaleIntercept", "ActualFrameDuration",
)  # fmt: skip
RESEARCH_DOSE_RETAINED = (
    *ACQUISITION, "DeviceSerialNumber", "StationName",
    "PatientSex", "PatientAge", "PatientWeight", "PatientSize",
)  # fmt: skip
RADIOPHARMACEUTICAL = (
    "Radiopharmaceutical", "RadiopharmaceuticalVolume", "RadionuclideTotalDose",
    "RadionuclideHalfLife", "RadionuclidePositronFraction",
)  # fmt: skip


def _lost(outcomes_: tuple[Outcome, ...], keywords: tuple[str, ...]) -> tuple[int, list[str]]:
    checked, lost = 0, []
    for outcome in outcomes_:
        for keyword in keywords:
            if keyword not in outcome.source:
                continue
            checked += 1
            before = outcome.source[keyword].value
            after = outcome.output[keyword].value if keyword in outcome.output else None
            if after != before:
                lost.append(f"{outcome.file.name}: {keyword} {before!r} -> {after!r}")
    return checked, lost


@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_tag_retained_acquisition_parameters(profile_name: str) -> None:
    """The acquisition parameters no profile may touch keep their exact values."""
    checked, lost = _lost(outcomes(profile_name), ACQUISITION)
    assert checked >= 100
    assert lost == []


def test_tag_retained_research_dose() -> None:
    """research-dose keeps device identity and patient characteristics exactly."""
    checked, lost = _lost(outcomes("research-dose"), RESEARCH_DOSE_RETAINED)
    assert checked >= 300
    assert lost == []


def test_tag_retained_radiopharmaceutical_under_research_dose() -> None:
    """NM/PET dosimetry: radiopharmaceutical, activity, half-life, codes and energy windows
    exactly, and the injection-to-acquisition interval to the second."""
    outcome = next(o for o in outcomes("research-dose") if o.file.name == "NM/JPEG-LL.dcm")
    source = outcome.source.RadiopharmaceuticalInformationSequence[0]
    output_sequence = outcome.output.get("RadiopharmaceuticalInformationSequence")
    assert output_sequence, "RadiopharmaceuticalInformationSequence removed"
    output = output_sequence[0]
    lost = [
        f"{keyword} {source[keyword].value!r} -> {output.get(keyword)!r}"
        for keyword in RADIOPHARMACEUTICAL
        if output.get(keyword) is None or output[keyword].value != source[keyword].value
    ]
    for keyword in ("RadionuclideCodeSequence", "RadiopharmaceuticalCodeSequence"):
        before, after = source[keyword][0], (output.get(keyword) or [Dataset()])[0]
        if (before.CodeValue, before.CodingSchemeDesignator) != (
            after.get("CodeValue"),
            after.get("CodingSchemeDesignator"),
        ):
            lost.append(f"{keyword} {before.CodeValue} -> {after.get('CodeValue')}")
    window_before = outcome.source.EnergyWindowInformationSequence[0].EnergyWindowRangeSequence[0]
    windows = outcome.output.get("EnergyWindowInformationSequence") or [Dataset()]
    window_after = (windows[0].get("EnergyWindowRangeSequence") or [Dataset()])[0]
    for keyword in ("EnergyWindowLowerLimit", "EnergyWindowUpperLimit"):
        if window_after.get(keyword) != window_before[keyword].value:
            lost.append(f"{keyword} {window_before[keyword].value} -> {window_after.get(keyword)}")

    def interval(dataset: Dataset, drug: Dataset) -> datetime.timedelta | None:
        try:
            injected = datetime.datetime.strptime(
                str(drug.RadiopharmaceuticalStartDateTime)[:14], "%Y%m%d%H%M%S"
            )
            acquired = datetime.datetime.strptime(
                f"{dataset.AcquisitionDate}{dataset.AcquisitionTime}"[:14], "%Y%m%d%H%M%S"
            )
        except (AttributeError, ValueError):
            return None
        return acquired - injected

    before_interval = interval(outcome.source, source)
    after_interval = interval(outcome.output, output)
    if after_interval != before_interval:
        lost.append(f"injection to acquisition {before_interval} -> {after_interval}")
    assert lost == []
