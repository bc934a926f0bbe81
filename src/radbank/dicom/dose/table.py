"""The dose table: one row per irradiation event (or per radiopharmaceutical
administration, or one row for an object with only study-level values), with columns
whose names carry the quantity and its unit.

The same columns are the index's dose event table, the REST answers, the CSV and Parquet
exports and the output of `radbank dose FILES`, so a physicist meets one vocabulary.
`COLUMNS` documents them (docs/dose.md is generated from it and checked by a test).

    rows = event_rows(report, patient=Patient.of(dataset))
    rows[0]["ctdivol_mGy"], rows[0]["dlp_total_mGycm"]

A CT row gets an effective dose estimate (`effective_dose_mSv`, k x DLP, AAPM Report 96)
when its target region is one the k-factor table has; `effective_dose_source` then says
which factor, so the estimate is never mistaken for a measured value.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from radbank.dicom.dose.effective_dose import effective_dose_estimate
from radbank.dicom.dose.model import (
    CT,
    CodedValue,
    DoseReport,
    DoseValue,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
)

__all__ = ["COLUMNS", "Column", "Patient", "age_band", "column_names", "event_rows"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "real", "integer", "datetime"
    description: str

    @property
    def key(self) -> str:
        """The column's name in the index (SQL identifiers are compared case-blind)."""
        return self.name.lower()


def _c(name: str, kind: str, description: str) -> Column:
    return Column(name, kind, description)


COLUMNS: tuple[Column, ...] = (
    _c("study_instance_uid", "text", "Study Instance UID (de-identified)"),
    _c("sop_instance_uid", "text", "SOP Instance UID of the object the values came from"),
    _c("series_instance_uid", "text", "Series Instance UID the event names, if any"),
    _c(
        "irradiation_event_uid",
        "text",
        "Irradiation Event UID (events of cumulative reports are kept once per study)",
    ),
    _c("source", "text", "`report` (a dose structured report) or `header` (image header)"),
    _c("template", "text", "what was read: TID 10011, TID 10001, TID 10021 or image header"),
    _c("kind", "text", "`CT`, `projection` (radiography, fluoroscopy, mammography) or `NM`"),
    _c("modality", "text", "CT, XA (report with fluoroscopy), DX, MG, NM/PT, or the image's"),
    _c("event_datetime", "datetime", "start of the event (or the report's content time)"),
    _c("manufacturer", "text", "device manufacturer"),
    _c("model_name", "text", "device model"),
    _c("station_name", "text", "station (room) name, as the profile kept it"),
    _c("device_observer_uid", "text", "Device Observer UID of the report"),
    _c("procedure", "text", "procedure reported (code meaning)"),
    _c("protocol", "text", "acquisition protocol"),
    _c("acquisition_type", "text", "CT acquisition type or projection event type"),
    _c("target_region", "text", "anatomical target region (code meaning)"),
    _c("target_region_code", "text", "target region code, SCHEME:VALUE"),
    _c("phantom", "text", "CTDIw phantom: 16 (head) or 32 (body) cm, or its meaning"),
    _c("ctdivol_mGy", "real", "mean CTDIvol (DCM 113830), mGy"),
    _c("dlp_mGycm", "real", "dose length product of the event (DCM 113838), mGy.cm"),
    _c("scan_length_mm", "real", "scanning length, mm"),
    _c("kvp", "real", "tube voltage, kV"),
    _c("tube_current_mA", "real", "tube current (mean), mA"),
    _c("max_tube_current_mA", "real", "maximum tube current, mA"),
    _c("exposure_time_s", "real", "exposure time, s"),
    _c("rotation_time_s", "real", "exposure time per rotation, s"),
    _c("single_collimation_mm", "real", "nominal single collimation width, mm"),
    _c("total_collimation_mm", "real", "nominal total collimation width, mm"),
    _c("pitch", "real", "pitch factor"),
    _c("ctdivol_alert_mGy", "real", "dose check CTDIvol alert value, mGy"),
    _c("dlp_alert_mGycm", "real", "dose check DLP alert value, mGy.cm"),
    _c("ctdivol_notification_mGy", "real", "dose check CTDIvol notification value, mGy"),
    _c("dlp_notification_mGycm", "real", "dose check DLP notification value, mGy.cm"),
    _c("dap_Gym2", "real", "dose area product of the event, Gy.m2"),
    _c("dose_rp_Gy", "real", "dose at the reference point of the event, Gy"),
    _c("exposure_mAs", "real", "exposure, mAs"),
    _c("irradiation_duration_s", "real", "irradiation duration of the event, s"),
    _c("pulses", "real", "number of pulses"),
    _c("fluoro_mode", "text", "fluoro mode (pulsed, continuous)"),
    _c("field_area_m2", "real", "collimated field area, m2"),
    _c("agd_mGy", "real", "average glandular dose, mGy"),
    _c("entrance_dose_mGy", "real", "entrance dose, mGy"),
    _c("entrance_exposure_rp_mGy", "real", "entrance exposure at the reference point, mGy"),
    _c("hvl_mm", "real", "half value layer, mm Al"),
    _c("compression_thickness_mm", "real", "compression thickness, mm"),
    _c("dlp_total_mGycm", "real", "CT dose length product total of the report, mGy.cm"),
    _c("events_total", "integer", "total number of irradiation events the report states"),
    _c("dap_total_Gym2", "real", "dose area product total, Gy.m2"),
    _c("fluoro_dap_total_Gym2", "real", "fluoroscopy dose area product total, Gy.m2"),
    _c("acquisition_dap_total_Gym2", "real", "acquisition dose area product total, Gy.m2"),
    _c("dose_rp_total_Gy", "real", "dose at the reference point, total, Gy"),
    _c("fluoro_time_total_s", "real", "total fluoroscopy time, s"),
    _c("radionuclide", "text", "radionuclide (code meaning)"),
    _c("radiopharmaceutical", "text", "radiopharmaceutical"),
    _c("administered_activity_MBq", "real", "administered activity, MBq"),
    _c("route", "text", "route of administration"),
    _c("administration_datetime", "datetime", "start of the administration"),
    _c("organ_doses", "text", "organ doses of the report, `organ=value mGy; ...`"),
    _c(
        "effective_dose_mSv",
        "real",
        "effective dose: the report's value, or an ESTIMATE "
        "k x DLP for CT (see effective_dose_source)",
    ),
    _c("effective_dose_source", "text", "where effective_dose_mSv came from"),
    _c("patient_age_years", "real", "patient age at the study, years"),
    _c("patient_sex", "text", "patient sex (M, F, O)"),
    _c("patient_weight_kg", "real", "patient weight, kg"),
    _c("findings", "text", "codes of vendor variations and gaps found reading the object"),
    _c(
        "value_sources",
        "text",
        "where each value of the row was read: JSON object of column "
        "-> template row (`TID 10013 Mean CTDIvol`) or attribute (`(0018,9345) CTDIvol`)",
    ),
)


def column_names() -> list[str]:
    return [column.name for column in COLUMNS]


@dataclass(frozen=True)
class Patient:
    """The patient characteristics of the object's header (kept by profiles that retain
    them, such as research-dose; absent otherwise)."""

    age_years: float | None = None
    sex: str | None = None
    weight_kg: float | None = None

    @classmethod
    def of(cls, dataset: Any) -> Patient:
        return cls(
            _age_years(_text(dataset, "PatientAge")),
            (_text(dataset, "PatientSex") or "").upper()[:1] or None,
            _positive(_text(dataset, "PatientWeight")),
        )


_AGE = re.compile(r"^(\d{3})([DWMY])$")
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _age_years(value: str | None) -> float | None:
    match = _AGE.match((value or "").strip().upper())
    if match is None:
        return None
    return round(int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2)], 3)


def _positive(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 0 < number < 1000 else None


def _text(dataset: Any, keyword: str) -> str | None:
    try:
        value = dataset.get(keyword)
    except Exception:
        return None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def age_band(age_years: float | None) -> str:
    """The AAPM Report 96 age band for the k-factors; adult when the age is unknown."""
    if age_years is None or age_years >= 15:
        return "adult"
    if age_years < 0.5:
        return "newborn"
    if age_years < 3:
        return "1y"
    if age_years < 7.5:
        return "5y"
    return "10y"


# Columns in another unit than the model's field: the model keeps dose (RP) in mGy.
_SCALE = {"dose_rp_Gy": 1e-3, "dose_rp_total_Gy": 1e-3}


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    """DoseValues to numbers in the column's unit; where each came from in value_sources."""
    sources = {}
    for name, value in row.items():
        if isinstance(value, DoseValue):
            sources[name] = value.source
            row[name] = value.value * _SCALE.get(name, 1.0)
    row["value_sources"] = json.dumps(sources, sort_keys=True) if sources else None
    return row


def _meaning(code: CodedValue | None) -> str | None:
    if code is None:
        return None
    return code.code_meaning or code.code_value


def _phantom(code: CodedValue | None) -> str | None:
    if code is None:
        return None
    meaning = (code.code_meaning or "").lower()
    if "body" in meaning or "32" in meaning:
        return "32"
    if "head" in meaning or "16" in meaning:
        return "16"
    return code.code_meaning or code.key


def _modality(report: DoseReport, header_modality: str | None) -> str:
    if report.template == "image header" and header_modality:
        return header_modality
    if report.template == "TID 10021" or (
        report.radiopharmaceutical_administrations and not report.events
    ):
        return "NM"
    if report.template == "TID 10011":
        return "CT"
    if any(event.kind == CT for event in report.events) or report.ct_dlp_total_mgycm:
        return "CT"
    if report.accumulated_average_glandular_dose or any(
        event.average_glandular_dose_mgy for event in report.events
    ):
        return "MG"
    if (
        report.fluoro_dap_total_gym2
        or report.total_fluoro_time_s
        or any(event.is_fluoroscopy for event in report.events)
    ):
        return "XA"
    return header_modality if header_modality and header_modality != "SR" else "DX"


def _report_values(report: DoseReport, patient: Patient, modality: str) -> dict[str, Any]:
    device = report.device
    total_events = report.total_number_of_irradiation_events
    return {
        "study_instance_uid": report.study_instance_uid,
        "sop_instance_uid": report.sop_instance_uids[0] if report.sop_instance_uids else None,
        "source": "header" if report.template == "image header" else "report",
        "template": report.template,
        "modality": modality,
        "event_datetime": report.start_of_xray_irradiation or report.content_datetime,
        "manufacturer": device.manufacturer,
        "model_name": device.model_name,
        "station_name": device.station_name,
        "device_observer_uid": device.device_observer_uid,
        "procedure": _meaning(report.procedure_reported),
        "dlp_total_mGycm": report.ct_dlp_total_mgycm,
        "events_total": _whole(total_events.value) if total_events else None,
        "dap_total_Gym2": report.dap_total_gym2,
        "fluoro_dap_total_Gym2": report.fluoro_dap_total_gym2,
        "acquisition_dap_total_Gym2": report.acquisition_dap_total_gym2,
        "dose_rp_total_Gy": report.dose_rp_total_mgy,
        "fluoro_time_total_s": report.total_fluoro_time_s,
        "patient_age_years": patient.age_years,
        "patient_sex": patient.sex,
        "patient_weight_kg": patient.weight_kg,
        "findings": " ".join(sorted({finding.code for finding in report.findings})) or None,
    }


def _event_values(event: IrradiationEvent, patient: Patient) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": event.kind,
        "sop_instance_uid": event.sop_instance_uid or None,
        "series_instance_uid": event.series_instance_uid,
        "irradiation_event_uid": event.irradiation_event_uid,
        "protocol": event.acquisition_protocol,
        "acquisition_type": _meaning(event.acquisition_type),
        "target_region": _meaning(event.target_region),
        "target_region_code": event.target_region.key if event.target_region else None,
        "phantom": _phantom(event.ctdiw_phantom_type),
        "ctdivol_mGy": event.ctdivol_mgy,
        "dlp_mGycm": event.dlp_mgycm,
        "scan_length_mm": event.scanning_length_mm,
        "kvp": event.kvp,
        "tube_current_mA": event.tube_current_ma,
        "max_tube_current_mA": event.maximum_tube_current_ma,
        "exposure_time_s": event.exposure_time_s,
        "rotation_time_s": event.exposure_time_per_rotation_s,
        "single_collimation_mm": event.nominal_single_collimation_width_mm,
        "total_collimation_mm": event.nominal_total_collimation_width_mm,
        "pitch": event.pitch_factor,
        "ctdivol_alert_mGy": event.ctdivol_alert_value_mgy,
        "dlp_alert_mGycm": event.dlp_alert_value_mgycm,
        "ctdivol_notification_mGy": event.ctdivol_notification_value_mgy,
        "dlp_notification_mGycm": event.dlp_notification_value_mgycm,
        "dap_Gym2": event.dap_gym2,
        "dose_rp_Gy": event.dose_rp_mgy,
        "exposure_mAs": event.exposure_mas,
        "irradiation_duration_s": event.irradiation_duration_s,
        "pulses": event.number_of_pulses,
        "fluoro_mode": _meaning(event.fluoro_mode),
        "field_area_m2": event.collimated_field_area_m2,
        "agd_mGy": event.average_glandular_dose_mgy,
        "entrance_dose_mGy": event.entrance_dose_mgy,
        "entrance_exposure_rp_mGy": event.entrance_exposure_at_rp_mgy,
        "hvl_mm": event.half_value_layer_mm,
        "compression_thickness_mm": event.compression_thickness_mm,
    }
    if event.datetime_started is not None:
        values["event_datetime"] = event.datetime_started
    if event.kind == CT and event.dlp_mgycm is not None and event.target_region is not None:
        try:
            estimate = effective_dose_estimate(
                event.dlp_mgycm, event.target_region.code_meaning, age_band(patient.age_years)
            )
        except ValueError:
            estimate = None
        if estimate is not None:
            values["effective_dose_mSv"] = estimate
            values["effective_dose_source"] = estimate.source
    return values


def _administration_values(item: RadiopharmaceuticalAdministration) -> dict[str, Any]:
    organs = "; ".join(
        f"{_meaning(organ.finding_site) or 'organ'}={organ.dose_mgy.value:g} mGy"
        for organ in item.organ_doses
    )
    values: dict[str, Any] = {
        "kind": "NM",
        "sop_instance_uid": item.sop_instance_uid or None,
        "irradiation_event_uid": item.administration_event_uid,
        "radionuclide": _meaning(item.radionuclide),
        "radiopharmaceutical": _meaning(item.radiopharmaceutical) or item.radiopharmaceutical_name,
        "administered_activity_MBq": item.administered_activity_mbq,
        "route": _meaning(item.route) or item.route_name,
        "administration_datetime": item.start_datetime,
        "organ_doses": organs or None,
    }
    if item.effective_dose_msv is not None:
        values["effective_dose_mSv"] = item.effective_dose_msv
        values["effective_dose_source"] = item.effective_dose_msv.source
    return values


_TEMPLATE_KINDS = {"TID 10011": CT, "TID 10001": "projection", "TID 10021": "NM"}


def _kind_of(modality: str) -> str:
    return "NM" if modality in ("NM", "PT") else CT if modality == "CT" else "projection"


def event_rows(
    report: DoseReport, patient: Patient = Patient(), header_modality: str | None = None
) -> list[dict[str, Any]]:
    """The rows of one report: one per irradiation event and per administration, or one
    row with the report's values when it has neither. Every column of `COLUMNS` is a key."""
    base = dict.fromkeys(column_names())
    modality = _modality(report, header_modality)
    base.update(_report_values(report, patient, modality))
    rows = [{**base, **_event_values(event, patient)} for event in report.events]
    rows += [
        {**base, **_administration_values(item)}
        for item in report.radiopharmaceutical_administrations
    ]
    if not rows:
        rows = [{**base, "kind": _TEMPLATE_KINDS.get(report.template) or _kind_of(modality)}]
    return [_finish(row) for row in rows]


def iter_text(rows: list[dict[str, Any]]) -> Iterator[list[str]]:
    """The rows as text cells in column order (empty for a missing value), for CSV."""
    names = column_names()
    for row in rows:
        yield [cell_text(row.get(name)) for name in names]


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def _whole(value: float) -> int | None:
    """A count a report states, None where it is not a finite number."""
    return int(value) if math.isfinite(value) else None
