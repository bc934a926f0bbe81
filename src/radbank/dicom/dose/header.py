"""Dose values from image headers, for studies that have no dose report.

Read, with the units PS3.3 gives them:
- CT: CTDIvol (0018,9345) in mGy with its phantom (0018,9346), at the top level, in the
  shared or per-frame functional groups of enhanced images (the per-frame mean), or in
  each item of the Exposure Dose Sequence (0040,030E); the technique (kVp, tube current,
  exposure time, pitch, collimation, acquisition type).
- Projection X-ray (CR, DX, MG, XA, RF, IO, PX): Image and Fluoroscopy Area Dose Product
  (0018,115E) in dGy*cm*cm, converted to Gy.m2; exposure (mAs or uAs), exposure time,
  kVp, tube current, filters; for mammography Organ Dose (0040,0316) in dGy, converted to
  mGy, as the average glandular dose, and Entrance Dose in mGy (0040,8302).
- NM and PET: each item of the Radiopharmaceutical Information Sequence (0054,0016).
  Radionuclide Total Dose (0018,1074) is in MBq in the NM Isotope Module but in Bq in the
  PET Isotope Module (PS3.3 C.8.4.10.1.7 and C.8.9.2); a value off by 10^6 from what its
  module says (below 0.1 MBq or above 100 GBq as read) is taken in the other unit, noted.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Sized
from typing import Literal

from radbank.dicom.dose import codes as c
from radbank.dicom.dose import units
from radbank.dicom.dose._read import (
    Findings,
    code,
    date_and_time,
    number,
    numbers,
    parse_datetime,
)
from radbank.dicom.dose._view import DataSetView
from radbank.dicom.dose.model import (
    CT,
    PROJECTION,
    BreastDose,
    CodedValue,
    Device,
    DoseReport,
    DoseValue,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Side,
    XRayFilter,
    breast_side,
)

__all__ = ["PROJECTION_MODALITIES", "has_header_dose", "report_from_header"]

PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "XA", "RF", "IO", "PX", "RG"})
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# Acquisition Type (0018,9302) defined terms and the CID 10013 codes of the same meaning.
_ACQUISITION_TYPES = {
    "SEQUENCED": CodedValue("113804", "DCM", "Sequenced Acquisition"),
    "SPIRAL": CodedValue("116152004", "SCT", "Spiral Acquisition"),
    "CONSTANT_ANGLE": CodedValue("113805", "DCM", "Constant Angle Acquisition"),
    "STATIONARY": CodedValue("113806", "DCM", "Stationary Acquisition"),
    "FREE": CodedValue("113807", "DCM", "Free Acquisition"),
}
_LATERALITY = {
    "L": CodedValue("7771000", "SCT", "Left"),
    "R": CodedValue("24028007", "SCT", "Right"),
    "B": CodedValue("51440002", "SCT", "Right and left"),
}


def has_header_dose(dataset: DataSetView) -> bool:
    """True when the header holds dose or exposure values worth a report."""
    modality = (dataset.text("Modality") or "").upper()
    if _present(dataset, "RadiopharmaceuticalInformationSequence"):
        return True
    if _present(dataset, "ExposureDoseSequence") or _present(dataset, "CTDIvol"):
        return True
    if _is_dose_screen(dataset, modality):
        return True
    if modality == "CT":
        return _functional_group_values(dataset, "CTDIvol") != []
    if modality in PROJECTION_MODALITIES:
        return any(
            _present(dataset, keyword)
            for keyword in (
                "ImageAndFluoroscopyAreaDoseProduct",
                "OrganDose",
                "EntranceDoseInmGy",
                "EntranceDose",
                "KVP",
                "Exposure",
                "ExposureInuAs",
            )
        )
    return False


def _present(dataset: DataSetView, keyword: str) -> bool:
    value = dataset.value(keyword)
    if value is None:
        return False
    return len(value) > 0 if isinstance(value, Sized) else True


class _Reader:
    """Reads one attribute as a `DoseValue` in the field's unit."""

    def __init__(self, sop_instance_uid: str, findings: Findings) -> None:
        self.sop_instance_uid = sop_instance_uid
        self.findings = findings

    def value(
        self,
        dataset: DataSetView,
        keyword: str,
        tag: str,
        unit: str,
        field_unit: str,
        concept: str,
    ) -> DoseValue | None:
        label = f"{tag} {keyword}"
        number_read = number(dataset, keyword, self.findings, label)
        if number_read is None:
            return None
        return DoseValue(
            units.convert(number_read, unit, field_unit),
            field_unit,
            concept,
            label,
            self.sop_instance_uid,
        )

    def first(self, *readers: Callable[[], DoseValue | None]) -> DoseValue | None:
        """The first attribute present, in the order given (the most precise first)."""
        for reader in readers:
            value = reader()
            if value is not None:
                return value
        return None


def report_from_header(
    dataset: DataSetView, sop_instance_uid: str, findings: Findings
) -> DoseReport:
    modality = (dataset.text("Modality") or "").upper()
    reader = _Reader(sop_instance_uid, findings)
    events: list[IrradiationEvent] = []
    administrations: tuple[RadiopharmaceuticalAdministration, ...] = ()
    total_events = None

    if _present(dataset, "RadiopharmaceuticalInformationSequence"):
        administrations = _administrations(dataset, modality, reader)
    exposure_items = _items(dataset, "ExposureDoseSequence")
    if _is_dose_screen(dataset, modality):
        read = (
            "only the attributes of its Exposure Dose Sequence were read"
            if exposure_items
            else "no dose value was read"
        )
        findings.add(
            "no-structured-dose",
            "this is a secondary capture of a dose screen: the dose report is in its "
            f"pixels, there is no structured dose report in this object; {read}",
        )
    comments = dataset.text("CommentsOnRadiationDose")
    if comments:
        shown = comments if len(comments) <= 80 else comments[:77] + "..."
        findings.add(
            "free-text-dose",
            f"Comments on Radiation Dose (0040,0310) holds dose values as free text, not "
            f"extracted: {shown!r}",
        )
    kind = CT if modality == "CT" else PROJECTION
    if exposure_items:
        events = [
            _event(item, dataset, kind, reader, from_sequence=True) for item in exposure_items
        ]
        total_events = reader.value(
            dataset,
            "TotalNumberOfExposures",
            "(0040,0301)",
            "{events}",
            "{events}",
            c.TOTAL_NUMBER_OF_IRRADIATION_EVENTS,
        )
    elif modality == "CT" or _present(dataset, "CTDIvol"):
        if _present(dataset, "CTDIvol") or _functional_group_values(dataset, "CTDIvol"):
            events = [_event(dataset, dataset, CT, reader, from_sequence=False)]
    elif modality in PROJECTION_MODALITIES:
        events = [_event(dataset, dataset, PROJECTION, reader, from_sequence=False)]

    dap_total = _sum([event.dap_gym2 for event in events], "(0018,115E)")
    breasts = _breasts(events)
    fluoro_time = reader.value(
        dataset,
        "TotalTimeOfFluoroscopy",
        "(0040,0300)",
        "s",
        "s",
        c.TOTAL_FLUORO_TIME,
    )
    return DoseReport(
        study_instance_uid=dataset.text("StudyInstanceUID"),
        template="image header",
        sop_instance_uids=(sop_instance_uid,),
        content_datetime=date_and_time(dataset, "ContentDate", "ContentTime"),
        device=Device(
            manufacturer=dataset.text("Manufacturer"),
            model_name=dataset.text("ManufacturerModelName"),
            station_name=dataset.text("StationName"),
            serial_number=dataset.text("DeviceSerialNumber"),
        ),
        total_number_of_irradiation_events=total_events,
        dap_total_gym2=dap_total,
        total_fluoro_time_s=fluoro_time,
        accumulated_average_glandular_dose=breasts,
        events=tuple(events),
        radiopharmaceutical_administrations=administrations,
        findings=findings.all(),
    )


def _items(dataset: DataSetView, keyword: str) -> list[DataSetView]:
    try:
        return [item for item in dataset.items(keyword) if item.is_data_set]
    except Exception:
        return []


def _is_dose_screen(dataset: DataSetView, modality: str) -> bool:
    image_type = dataset.value("ImageType")
    if isinstance(image_type, str):
        values = image_type.upper().split("\\")
    elif isinstance(image_type, Iterable):
        values = [str(value).upper() for value in image_type]
    else:
        values = []
    sop_class = dataset.text("SOPClassUID")
    return "DOSE_INFO" in values or (sop_class == SECONDARY_CAPTURE and modality == "CT")


def _functional_group_values(dataset: DataSetView, keyword: str) -> list[DataSetView]:
    """The functional group macros holding `keyword`: the shared one, else every frame's."""
    found = []
    for sequence_keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in _items(dataset, sequence_keyword):
            for macros in group.sequences():
                found.extend(macro for macro in macros if _present(macro, keyword))
        if found:
            return found
    return []


def _enhanced_ct(dataset: DataSetView, reader: _Reader) -> dict[str, DoseValue | None]:
    """CTDIvol and technique of an enhanced CT image from its functional groups."""
    values: dict[str, DoseValue | None] = {}
    specs = {
        "ctdivol_mgy": ("CTDIvol", "(0018,9345)", "mGy", "mGy", c.MEAN_CTDIVOL),
        "kvp": ("KVP", "(0018,0060)", "kV", "kV", c.KVP),
        "tube_current_ma": ("XRayTubeCurrentInmA", "(0018,9330)", "mA", "mA", c.XRAY_TUBE_CURRENT),
        "exposure_time_s": ("ExposureTimeInms", "(0018,9328)", "ms", "s", c.EXPOSURE_TIME),
        "pitch_factor": ("SpiralPitchFactor", "(0018,9311)", "{ratio}", "{ratio}", c.PITCH_FACTOR),
        "nominal_single_collimation_width_mm": (
            "SingleCollimationWidth",
            "(0018,9306)",
            "mm",
            "mm",
            c.NOMINAL_SINGLE_COLLIMATION_WIDTH,
        ),
        "nominal_total_collimation_width_mm": (
            "TotalCollimationWidth",
            "(0018,9307)",
            "mm",
            "mm",
            c.NOMINAL_TOTAL_COLLIMATION_WIDTH,
        ),
    }
    for field, (keyword, tag, unit, field_unit, concept) in specs.items():
        macros = _functional_group_values(dataset, keyword)
        read = [reader.value(macro, keyword, tag, unit, field_unit, concept) for macro in macros]
        present = [value for value in read if value is not None]
        if not present:
            continue
        if len(present) == 1:
            values[field] = present[0]
            continue
        mean = sum(value.value for value in present) / len(present)
        reader.findings.add(
            "per-frame-mean",
            f"{tag} {keyword} is given per frame; the mean over {len(present)} frames was kept",
        )
        values[field] = DoseValue(
            float(f"{mean:.12g}"),
            field_unit,
            concept,
            f"mean over {len(present)} frames of {tag} {keyword}",
            reader.sop_instance_uid,
        )
    return values


def _event(
    item: DataSetView,
    image: DataSetView,
    kind: Literal["CT", "projection"],
    reader: _Reader,
    from_sequence: bool,
) -> IrradiationEvent:
    """One event from the image (or from one Exposure Dose Sequence item of it)."""
    read = reader.value
    enhanced = _enhanced_ct(item, reader) if kind == CT and not from_sequence else {}
    tube_current = reader.first(
        lambda: read(item, "XRayTubeCurrentInmA", "(0018,9330)", "mA", "mA", c.XRAY_TUBE_CURRENT),
        lambda: read(item, "XRayTubeCurrent", "(0018,1151)", "mA", "mA", c.XRAY_TUBE_CURRENT),
        lambda: read(item, "XRayTubeCurrentInuA", "(0018,8151)", "uA", "mA", c.XRAY_TUBE_CURRENT),
        lambda: enhanced.get("tube_current_ma"),
    )
    exposure_time = reader.first(
        lambda: read(item, "ExposureTimeInms", "(0018,9328)", "ms", "s", c.EXPOSURE_TIME),
        lambda: read(item, "ExposureTimeInuS", "(0018,8150)", "us", "s", c.EXPOSURE_TIME),
        lambda: read(item, "ExposureTime", "(0018,1150)", "ms", "s", c.EXPOSURE_TIME),
        lambda: enhanced.get("exposure_time_s"),
    )
    exposure = reader.first(
        lambda: read(item, "ExposureInmAs", "(0018,9332)", "mA.s", "mA.s", c.EXPOSURE),
        lambda: read(item, "ExposureInuAs", "(0018,1153)", "uA.s", "mA.s", c.EXPOSURE),
        lambda: read(item, "Exposure", "(0018,1152)", "mA.s", "mA.s", c.EXPOSURE),
    )
    entrance_dose = reader.first(
        lambda: read(item, "EntranceDoseInmGy", "(0040,8302)", "mGy", "mGy", "(0040,8302)"),
        lambda: read(item, "EntranceDose", "(0040,0302)", "dGy", "mGy", "(0040,0302)"),
    )
    modality = (image.text("Modality") or "").upper()
    average_glandular_dose = None
    organ_dose = read(item, "OrganDose", "(0040,0316)", "dGy", "mGy", c.AVERAGE_GLANDULAR_DOSE)
    if organ_dose is not None:
        organ = (item.text("OrganExposed") or "").upper()
        if modality == "MG" or organ == "BREAST":
            average_glandular_dose = organ_dose
        else:
            reader.findings.add(
                "header-value-not-kept",
                f"(0040,0316) Organ Dose {organ_dose.value:g} mGy of organ "
                f"{organ or '(not named)'} has no field outside mammography; not kept",
            )
    if from_sequence:
        protocol = item.text("SeriesDescription") or image.text("ProtocolName")
        started = parse_datetime(item.text("AcquisitionDateTime"))
    else:
        protocol = image.text("ProtocolName")
        started = parse_datetime(image.text("AcquisitionDateTime")) or date_and_time(
            image, "AcquisitionDate", "AcquisitionTime"
        )
    laterality = image.text("ImageLaterality") or image.text("Laterality") or ""
    return IrradiationEvent(
        kind=kind,
        sop_instance_uid=reader.sop_instance_uid,
        irradiation_event_uid=item.text("IrradiationEventUID"),
        series_instance_uid=None if from_sequence else image.text("SeriesInstanceUID"),
        datetime_started=started,
        acquisition_type=_ACQUISITION_TYPES.get((item.text("AcquisitionType") or "").upper()),
        acquisition_protocol=protocol,
        target_region=None if from_sequence else code(image, "AnatomicRegionSequence"),
        laterality=None if from_sequence else _LATERALITY.get(laterality.upper()),
        kvp=read(item, "KVP", "(0018,0060)", "kV", "kV", c.KVP) or enhanced.get("kvp"),
        tube_current_ma=tube_current,
        exposure_time_s=exposure_time,
        exposure_mas=exposure,
        ctdivol_mgy=read(item, "CTDIvol", "(0018,9345)", "mGy", "mGy", c.MEAN_CTDIVOL)
        or enhanced.get("ctdivol_mgy"),
        ctdiw_phantom_type=code(item, "CTDIPhantomTypeCodeSequence"),
        pitch_factor=read(
            item, "SpiralPitchFactor", "(0018,9311)", "{ratio}", "{ratio}", c.PITCH_FACTOR
        )
        or enhanced.get("pitch_factor"),
        nominal_single_collimation_width_mm=read(
            item,
            "SingleCollimationWidth",
            "(0018,9306)",
            "mm",
            "mm",
            c.NOMINAL_SINGLE_COLLIMATION_WIDTH,
        )
        or enhanced.get("nominal_single_collimation_width_mm"),
        nominal_total_collimation_width_mm=read(
            item,
            "TotalCollimationWidth",
            "(0018,9307)",
            "mm",
            "mm",
            c.NOMINAL_TOTAL_COLLIMATION_WIDTH,
        )
        or enhanced.get("nominal_total_collimation_width_mm"),
        dap_gym2=read(
            item,
            "ImageAndFluoroscopyAreaDoseProduct",
            "(0018,115E)",
            "dGy.cm2",
            "Gy.m2",
            c.DOSE_AREA_PRODUCT,
        ),
        average_glandular_dose_mgy=average_glandular_dose,
        entrance_dose_mgy=entrance_dose,
        filters=_filters(item, reader),
    )


def _filters(dataset: DataSetView, reader: _Reader) -> tuple[XRayFilter, ...]:
    materials_raw = dataset.value("FilterMaterial")
    if isinstance(materials_raw, str):
        materials = [part.strip() for part in materials_raw.split("\\") if part.strip()]
    elif materials_raw is None:
        materials = []
    else:
        materials = [str(part).strip() for part in materials_raw if str(part).strip()]
    minimums = numbers(
        dataset.value("FilterThicknessMinimum"),
        "(0018,7052) Filter Thickness Minimum",
        reader.findings,
    )
    maximums = numbers(
        dataset.value("FilterThicknessMaximum"),
        "(0018,7054) Filter Thickness Maximum",
        reader.findings,
    )
    count = max(len(materials), len(minimums), len(maximums))
    if count == 0:
        return ()
    if len({len(values) for values in (materials, minimums, maximums) if values}) > 1:
        reader.findings.add(
            "filter-values",
            f"Filter Material has {len(materials)} values, Filter Thickness Minimum "
            f"{len(minimums)} and Maximum {len(maximums)}; they were paired in order",
        )
    filter_type = dataset.text("FilterType")
    filters = []
    for index in range(count):
        minimum = minimums[index] if index < len(minimums) else None
        maximum = maximums[index] if index < len(maximums) else None
        if minimum is not None and maximum is not None and minimum > maximum:
            reader.findings.add(
                "filter-values",
                f"Filter Thickness Minimum {minimum:g} mm is larger than the Maximum "
                f"{maximum:g} mm; both kept as written",
            )
        filters.append(
            XRayFilter(
                filter_type=filter_type,
                material=materials[index] if index < len(materials) else None,
                thickness_minimum_mm=_mm(
                    minimum,
                    c.XRAY_FILTER_THICKNESS_MINIMUM,
                    "(0018,7052) Filter Thickness Minimum",
                    reader,
                ),
                thickness_maximum_mm=_mm(
                    maximum,
                    c.XRAY_FILTER_THICKNESS_MAXIMUM,
                    "(0018,7054) Filter Thickness Maximum",
                    reader,
                ),
            )
        )
    return tuple(filters)


def _mm(value: float | None, concept: str, source: str, reader: _Reader) -> DoseValue | None:
    if value is None:
        return None
    return DoseValue(value, "mm", concept, source, reader.sop_instance_uid)


def _sum(values: list[DoseValue | None], tag: str) -> DoseValue | None:
    present = [value for value in values if value is not None]
    if not present:
        return None
    return DoseValue(
        float(f"{math.fsum(value.value for value in present):.12g}"),
        present[0].unit,
        present[0].concept,
        f"sum of {tag} over {len(present)} exposure(s)",
        present[0].sop_instance_uid,
    )


def _breasts(events: list[IrradiationEvent]) -> tuple[BreastDose, ...]:
    """The accumulated average glandular dose per breast: the sum over the views."""
    by_side: dict[Side, list[IrradiationEvent]] = {}
    for event in events:
        if event.average_glandular_dose_mgy is not None:
            by_side.setdefault(breast_side(event.laterality), []).append(event)
    breasts = []
    for side, side_events in by_side.items():
        total = _sum([event.average_glandular_dose_mgy for event in side_events], "(0040,0316)")
        if total is not None:
            breasts.append(BreastDose(side, side_events[0].laterality, total))
    return tuple(breasts)


def _administrations(
    dataset: DataSetView, modality: str, reader: _Reader
) -> tuple[RadiopharmaceuticalAdministration, ...]:
    administrations = []
    for item in _items(dataset, "RadiopharmaceuticalInformationSequence"):
        administrations.append(
            RadiopharmaceuticalAdministration(
                sop_instance_uid=reader.sop_instance_uid,
                radionuclide=code(item, "RadionuclideCodeSequence"),
                radiopharmaceutical=code(item, "RadiopharmaceuticalCodeSequence"),
                radiopharmaceutical_name=item.text("Radiopharmaceutical"),
                administered_activity_mbq=_activity(item, modality, reader),
                radionuclide_half_life_s=reader.value(
                    item,
                    "RadionuclideHalfLife",
                    "(0018,1075)",
                    "s",
                    "s",
                    c.RADIONUCLIDE_HALF_LIFE,
                ),
                route=code(item, "AdministrationRouteCodeSequence"),
                route_name=item.text("RadiopharmaceuticalRoute"),
                start_datetime=_administration_time(
                    item,
                    dataset,
                    "RadiopharmaceuticalStartDateTime",
                    "RadiopharmaceuticalStartTime",
                    reader,
                ),
                end_datetime=_administration_time(
                    item,
                    dataset,
                    "RadiopharmaceuticalStopDateTime",
                    "RadiopharmaceuticalStopTime",
                    reader,
                ),
            )
        )
    return tuple(administrations)


def _activity(item: DataSetView, modality: str, reader: _Reader) -> DoseValue | None:
    label = "(0018,1074) Radionuclide Total Dose"
    value = number(item, "RadionuclideTotalDose", reader.findings, label)
    if value is None:
        return None
    unit = "Bq" if modality == "PT" else "MBq"
    megabecquerel = units.convert(value, unit, "MBq")
    if unit == "Bq" and megabecquerel < 0.1:
        reader.findings.add(
            "unit-assumed",
            f"{label} {value:g} would be {megabecquerel:g} MBq in Bq, as the PET Isotope "
            "Module specifies; read in MBq, the NM unit",
        )
        megabecquerel = value
    elif unit == "MBq" and value > 1e5:
        reader.findings.add(
            "unit-assumed",
            f"{label} {value:g} would be over 100 GBq in MBq, as the NM Isotope Module "
            "specifies; read in Bq, the PET unit",
        )
        megabecquerel = units.convert(value, "Bq", "MBq")
    return DoseValue(megabecquerel, "MBq", c.ADMINISTERED_ACTIVITY, label, reader.sop_instance_uid)


def _administration_time(
    item: DataSetView, image: DataSetView, datetime_keyword: str, time_keyword: str, reader: _Reader
) -> datetime.datetime | None:
    value = parse_datetime(item.text(datetime_keyword))
    if value is not None:
        return value
    time = item.text(time_keyword)
    if not time:
        return None
    for date_keyword in ("SeriesDate", "AcquisitionDate", "StudyDate"):
        date = image.text(date_keyword)
        if date:
            combined = parse_datetime(date + time.replace(":", ""))
            if combined is not None:
                reader.findings.add(
                    "time-without-date",
                    f"{time_keyword} has no date; combined with {date_keyword} {date}",
                )
                return combined
    return None
