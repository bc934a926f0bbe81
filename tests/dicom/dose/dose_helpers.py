"""Building dose reports with pydicom for the tests, damaging them, and finding the vendor
files.

The vendor files are read from ../shared/data/rdsr (GPL test data of the OpenREM project,
never copied into this repository); tests that need them skip, saying so, when the folder
is absent.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

RDSR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "rdsr"
XRAY_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
RADIOPHARMACEUTICAL_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.68"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1001"


@cache
def _read(name: str) -> Dataset:
    return pydicom.dcmread(RDSR / name)


def vendor_file(name: str) -> Dataset:
    """A fresh copy of one vendor file (the cached one is never handed out)."""
    if not (RDSR / name).is_file():
        pytest.skip(f"{RDSR / name} is absent: the vendor dose reports are not available here")
    return _read(name).copy()


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _item(value_type: str, concept: tuple[str, str, str], relationship: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [code(*concept)]
    return item


def container(
    concept: tuple[str, str, str], *children: Dataset, relationship: str = "CONTAINS"
) -> Dataset:
    item = _item("CONTAINER", concept, relationship)
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = Sequence(list(children))
    return item


def num(
    concept: tuple[str, str, str],
    value: str | None,
    unit: str | None,
    raw: bytes | None = None,
) -> Dataset:
    """A NUM item; `raw` writes the Numeric Value bytes as given (invalid ones too)."""
    item = _item("NUM", concept, "CONTAINS")
    measured = Dataset()
    if raw is not None:
        tag = Tag(0x0040A30A)
        measured[tag] = RawDataElement(tag, "DS", len(raw), raw, 0, False, True)
    elif value is not None:
        measured.NumericValue = value
    if unit is not None:
        measured.MeasurementUnitsCodeSequence = [code(unit, "UCUM", unit)]
    item.MeasuredValueSequence = [measured]
    return item


def coded(
    concept: tuple[str, str, str], value: tuple[str, str, str], relationship: str = "CONTAINS"
) -> Dataset:
    item = _item("CODE", concept, relationship)
    item.ConceptCodeSequence = [code(*value)]
    return item


def uidref(concept: tuple[str, str, str], uid: str) -> Dataset:
    item = _item("UIDREF", concept, "CONTAINS")
    item.UID = uid
    return item


def text_item(concept: tuple[str, str, str], value: str) -> Dataset:
    item = _item("TEXT", concept, "CONTAINS")
    item.TextValue = value
    return item


def report(
    *children: Dataset,
    sop_class: str = XRAY_DOSE_SR,
    root: tuple[str, str, str] = ("113701", "DCM", "X-Ray Radiation Dose Report"),
    sop_instance_uid: str = "1.2.826.0.1.3680043.8.498.2001",
    study_instance_uid: str = STUDY_UID,
    content_time: str = "120000",
) -> Dataset:
    dataset = Dataset()
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.StudyInstanceUID = study_instance_uid
    dataset.Modality = "SR"
    dataset.ContentDate = "20240102"
    dataset.ContentTime = content_time
    dataset.ValueType = "CONTAINER"
    dataset.ContinuityOfContent = "SEPARATE"
    dataset.ConceptNameCodeSequence = [code(*root)]
    dataset.ContentSequence = Sequence(list(children))
    return dataset


# Concepts used by the synthetic reports (DCM codes as in PS3.16).
PROCEDURE_REPORTED = ("121058", "DCM", "Procedure reported")
CT_XRAY = ("77477000", "SCT", "Computed Tomography X-Ray")
PROJECTION_XRAY = ("113704", "DCM", "Projection X-Ray")
CT_ACCUMULATED = ("113811", "DCM", "CT Accumulated Dose Data")
TOTAL_EVENTS = ("113812", "DCM", "Total Number of Irradiation Events")
DLP_TOTAL = ("113813", "DCM", "CT Dose Length Product Total")
CT_ACQUISITION = ("113819", "DCM", "CT Acquisition")
ACQUISITION_PROTOCOL = ("125203", "DCM", "Acquisition Protocol")
TARGET_REGION = ("123014", "DCM", "Target Region")
CHEST = ("51185008", "SCT", "Chest")
CT_ACQUISITION_TYPE = ("113820", "DCM", "CT Acquisition Type")
SPIRAL = ("116152004", "SCT", "Spiral Acquisition")
EVENT_UID = ("113769", "DCM", "Irradiation Event UID")
CT_DOSE = ("113829", "DCM", "CT Dose")
MEAN_CTDIVOL = ("113830", "DCM", "Mean CTDIvol")
PHANTOM = ("113835", "DCM", "CTDIw Phantom Type")
BODY_PHANTOM = ("113691", "DCM", "IEC Body Dosimetry Phantom")
DLP = ("113838", "DCM", "DLP")
ACCUMULATED_XRAY = ("113702", "DCM", "Accumulated X-Ray Dose Data")
ACQUISITION_PLANE = ("113764", "DCM", "Acquisition Plane")
DAP_TOTAL = ("113722", "DCM", "Dose Area Product Total")
DOSE_RP_TOTAL = ("113725", "DCM", "Dose (RP) Total")
FLUORO_DAP_TOTAL = ("113726", "DCM", "Fluoro Dose Area Product Total")
TOTAL_FLUORO_TIME = ("113730", "DCM", "Total Fluoro Time")
EVENT_XRAY = ("113706", "DCM", "Irradiation Event X-Ray Data")
EVENT_TYPE = ("113721", "DCM", "Irradiation Event Type")
FLUOROSCOPY = ("44491008", "SCT", "Fluoroscopy")
DAP = ("122130", "DCM", "Dose Area Product")
DOSE_RP = ("113738", "DCM", "Dose (RP)")
KVP = ("113733", "DCM", "KVP")


def ct_event(uid: str, ctdivol: str, dlp: str, protocol: str = "Chest") -> Dataset:
    return container(
        CT_ACQUISITION,
        text_item(ACQUISITION_PROTOCOL, protocol),
        coded(TARGET_REGION, CHEST),
        coded(CT_ACQUISITION_TYPE, SPIRAL),
        uidref(EVENT_UID, uid),
        container(
            CT_DOSE,
            num(MEAN_CTDIVOL, ctdivol, "mGy"),
            coded(PHANTOM, BODY_PHANTOM),
            num(DLP, dlp, "mGy.cm"),
        ),
    )


def ct_report(
    events: list[Dataset], dlp_total: str, sop_instance_uid: str, content_time: str = "120000"
) -> Dataset:
    return report(
        coded(PROCEDURE_REPORTED, CT_XRAY, relationship="HAS CONCEPT MOD"),
        container(
            CT_ACCUMULATED,
            num(TOTAL_EVENTS, str(len(events)), "{events}"),
            num(DLP_TOTAL, dlp_total, "mGy.cm"),
        ),
        *events,
        sop_instance_uid=sop_instance_uid,
        content_time=content_time,
    )


# Damage done to content trees (test_dose_damaged_trees, test_dose_bytes).


def content_items(dataset: Dataset) -> list[Dataset]:
    """Every content item of a report, depth first."""
    found = []
    for item in dataset.get("ContentSequence") or []:
        found.append(item)
        found.extend(content_items(item))
    return found


def raw_element(item: Dataset, tag: int, vr: str, value: bytes) -> None:
    """Set an element to bytes as given, as if read from a file (invalid ones too)."""
    item[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def _first(item: Dataset, keyword: str) -> Dataset | None:
    sequence = item.get(keyword)
    return sequence[0] if sequence else None


def damage(kind: str, item: Dataset, root: Dataset, junk: bytes) -> None:
    """Damage `item` of the report `root` in one of the DAMAGE ways, with `junk` bytes."""
    if kind == "drop-content":
        item.pop(Tag(0x0040A730), None)
    elif kind == "empty-concept":
        item.ConceptNameCodeSequence = Sequence()
    elif kind == "junk-code":
        concept = _first(item, "ConceptNameCodeSequence")
        if concept is not None:
            raw_element(concept, 0x00080100, "SH", junk)
    elif kind == "junk-value-type":
        raw_element(item, 0x0040A040, "CS", junk)
    elif kind == "drop-measured-value":
        item.pop(Tag(0x0040A300), None)
    elif kind == "junk-number":
        measured = _first(item, "MeasuredValueSequence")
        if measured is not None:
            raw_element(measured, 0x0040A30A, "DS", junk)
    elif kind == "not-a-number":
        measured = _first(item, "MeasuredValueSequence")
        if measured is not None:
            measured.FloatingPointValue = math.nan
    elif kind == "drop-unit":
        measured = _first(item, "MeasuredValueSequence")
        if measured is not None:
            measured.pop(Tag(0x004008EA), None)
    elif kind == "junk-unit":
        measured = _first(item, "MeasuredValueSequence")
        unit = _first(measured, "MeasurementUnitsCodeSequence") if measured else None
        if unit is not None:
            raw_element(unit, 0x00080100, "SH", junk)
    elif kind == "junk-uid":
        raw_element(item, 0x0040A124, "UI", junk)
    elif kind == "junk-datetime":
        raw_element(item, 0x0040A120, "DT", junk)
    elif kind == "junk-text":
        raw_element(item, 0x0040A160, "UT", junk)
    elif kind == "cycle":
        item.ContentSequence = Sequence([root])
    elif kind == "junk-header":
        raw_element(root, 0x00080018, "UI", junk)
        raw_element(root, 0x0020000D, "UI", junk)


DAMAGE = [
    "drop-content",
    "empty-concept",
    "junk-code",
    "junk-value-type",
    "drop-measured-value",
    "junk-number",
    "not-a-number",
    "drop-unit",
    "junk-unit",
    "junk-uid",
    "junk-datetime",
    "junk-text",
    "cycle",
    "junk-header",
]
