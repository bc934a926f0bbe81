"""The dose model: what `extract` returns and `merge` combines.

Frozen dataclasses. Every number is a `DoseValue`: the value in the unit its field name
says (UCUM), the concept it is (a DICOM code such as "DCM:113830" Mean CTDIvol, also for
values read from image headers), where it was read (a template row such as
"TID 10013 Mean CTDIvol" or an attribute such as "(0018,9345) CTDIvol") and the SOP
Instance UID of the object it came from. Coded values are kept as the vendor wrote them
(`CodedValue`); `CodedValue.key` gives the code with SNOMED-RT codes mapped to SNOMED CT,
for comparing codes across vendors and editions of the standard.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, fields
from typing import Literal

from radbank.dicom.dose import codes as c
from radbank.dicom.dose.codes import code_key

__all__ = [
    "CT",
    "PROJECTION",
    "AccumulatedXRayDose",
    "BreastDose",
    "CodedValue",
    "Device",
    "DoseReport",
    "DoseValue",
    "Finding",
    "IrradiationEvent",
    "OrganDose",
    "RadiopharmaceuticalAdministration",
    "Side",
    "XRayFilter",
    "breast_side",
]

CT: Literal["CT"] = "CT"
PROJECTION: Literal["projection"] = "projection"


@dataclass(frozen=True)
class DoseValue:
    value: float
    unit: str
    concept: str
    source: str
    sop_instance_uid: str


@dataclass(frozen=True)
class CodedValue:
    code_value: str
    coding_scheme_designator: str
    code_meaning: str

    @property
    def key(self) -> str:
        """ "SCHEME:VALUE", SNOMED-RT (SRT, SNM3) codes mapped to SNOMED CT where pydicom
        knows the mapping."""
        return code_key(self.coding_scheme_designator, self.code_value)


@dataclass(frozen=True)
class Finding:
    """A vendor variation handled, or something missing, in words a physicist can check.

    `code` is stable (documented in `radbank.dicom.dose.extract`); `message` names the
    item and what was done with it.
    """

    code: str
    message: str
    sop_instance_uid: str


@dataclass(frozen=True)
class Device:
    manufacturer: str | None = None
    model_name: str | None = None
    station_name: str | None = None
    serial_number: str | None = None
    device_observer_uid: str | None = None


@dataclass(frozen=True)
class XRayFilter:
    filter_type: str | None = None
    material: str | None = None
    material_code: CodedValue | None = None
    thickness_minimum_mm: DoseValue | None = None
    thickness_maximum_mm: DoseValue | None = None


@dataclass(frozen=True)
class IrradiationEvent:
    """One irradiation event: a CT acquisition (TID 10013) or a projection X-ray event
    (TID 10003), or the exposure an image header describes."""

    kind: Literal["CT", "projection"]
    sop_instance_uid: str
    irradiation_event_uid: str | None = None
    series_instance_uid: str | None = None
    datetime_started: datetime.datetime | None = None
    acquisition_type: CodedValue | None = None
    acquisition_protocol: str | None = None
    target_region: CodedValue | None = None
    laterality: CodedValue | None = None
    acquisition_plane: CodedValue | None = None
    # technique, CT and projection
    kvp: DoseValue | None = None
    tube_current_ma: DoseValue | None = None
    maximum_tube_current_ma: DoseValue | None = None
    exposure_time_s: DoseValue | None = None
    # CT (TID 10013, 10014, 10015)
    ctdivol_mgy: DoseValue | None = None
    ctdiw_phantom_type: CodedValue | None = None
    dlp_mgycm: DoseValue | None = None
    scanning_length_mm: DoseValue | None = None
    exposure_time_per_rotation_s: DoseValue | None = None
    nominal_single_collimation_width_mm: DoseValue | None = None
    nominal_total_collimation_width_mm: DoseValue | None = None
    pitch_factor: DoseValue | None = None
    ctdivol_alert_value_mgy: DoseValue | None = None
    dlp_alert_value_mgycm: DoseValue | None = None
    ctdivol_notification_value_mgy: DoseValue | None = None
    dlp_notification_value_mgycm: DoseValue | None = None
    # projection X-ray (TID 10003 and its source, detector and mechanical parts)
    dap_gym2: DoseValue | None = None
    dose_rp_mgy: DoseValue | None = None
    reference_point_definition: str | None = None
    exposure_mas: DoseValue | None = None
    irradiation_duration_s: DoseValue | None = None
    number_of_pulses: DoseValue | None = None
    fluoro_mode: CodedValue | None = None
    filters: tuple[XRayFilter, ...] = ()
    collimated_field_area_m2: DoseValue | None = None
    collimated_field_height_mm: DoseValue | None = None
    collimated_field_width_mm: DoseValue | None = None
    average_glandular_dose_mgy: DoseValue | None = None
    entrance_exposure_at_rp_mgy: DoseValue | None = None
    entrance_dose_mgy: DoseValue | None = None
    half_value_layer_mm: DoseValue | None = None
    compression_thickness_mm: DoseValue | None = None

    @property
    def is_fluoroscopy(self) -> bool:
        """A projection event of type Fluoroscopy (otherwise an acquisition)."""
        return self.acquisition_type is not None and self.acquisition_type.key == c.FLUOROSCOPY

    def dose_values(self) -> dict[str, DoseValue]:
        """The fields holding a value, by field name."""
        return {
            field.name: value
            for field in fields(self)
            if isinstance(value := getattr(self, field.name), DoseValue)
        }


Side = Literal["left", "right", "both", "unknown"]
_SIDES: dict[str, Side] = {
    c.LEFT_BREAST: "left",
    c.LEFT: "left",
    c.RIGHT_BREAST: "right",
    c.RIGHT: "right",
    c.BOTH_BREASTS: "both",
    c.RIGHT_AND_LEFT: "both",
}


def breast_side(laterality: CodedValue | None) -> Side:
    """The side a laterality code names (CID 6022 or 244), read from its meaning when the
    code is not one of those."""
    if laterality is None:
        return "unknown"
    side = _SIDES.get(laterality.key)
    if side is not None:
        return side
    meaning = laterality.code_meaning.lower()
    if ("left" in meaning and "right" in meaning) or "both" in meaning:
        return "both"
    if "left" in meaning:
        return "left"
    if "right" in meaning:
        return "right"
    return "unknown"


@dataclass(frozen=True)
class BreastDose:
    side: Side
    laterality: CodedValue | None
    average_glandular_dose_mgy: DoseValue


@dataclass(frozen=True)
class AccumulatedXRayDose:
    """Accumulated projection X-ray dose of one acquisition plane (TID 10002 with 10004,
    10005 and 10007)."""

    acquisition_plane: CodedValue | None = None
    dap_total_gym2: DoseValue | None = None
    dose_rp_total_mgy: DoseValue | None = None
    fluoro_dap_total_gym2: DoseValue | None = None
    fluoro_dose_rp_total_mgy: DoseValue | None = None
    total_fluoro_time_s: DoseValue | None = None
    acquisition_dap_total_gym2: DoseValue | None = None
    acquisition_dose_rp_total_mgy: DoseValue | None = None
    total_acquisition_time_s: DoseValue | None = None
    total_number_of_radiographic_frames: DoseValue | None = None
    reference_point_definition: str | None = None
    average_glandular_dose: tuple[BreastDose, ...] = ()


@dataclass(frozen=True)
class OrganDose:
    finding_site: CodedValue | None
    laterality: CodedValue | None
    dose_mgy: DoseValue
    reference_authority: str | None = None


@dataclass(frozen=True)
class RadiopharmaceuticalAdministration:
    """One administration (TID 10022), or the Radiopharmaceutical Information Sequence
    item of an NM or PET image."""

    sop_instance_uid: str
    administration_event_uid: str | None = None
    radionuclide: CodedValue | None = None
    radiopharmaceutical: CodedValue | None = None
    radiopharmaceutical_name: str | None = None
    administered_activity_mbq: DoseValue | None = None
    radionuclide_half_life_s: DoseValue | None = None
    route: CodedValue | None = None
    route_name: str | None = None
    start_datetime: datetime.datetime | None = None
    end_datetime: datetime.datetime | None = None
    organ_doses: tuple[OrganDose, ...] = ()
    effective_dose_msv: DoseValue | None = None


@dataclass(frozen=True)
class DoseReport:
    """The dose of one study as one object (or several merged) reports it.

    `template` says what was read: "TID 10011" (CT), "TID 10001" (projection X-ray),
    "TID 10021" (radiopharmaceutical) or "image header"; merged reports join theirs with
    " + ". Study totals follow the reports: for CT, `ct_dlp_total_mgycm` and
    `total_number_of_irradiation_events` (TID 10012); for projection X-ray, the totals of
    the single acquisition plane (per-plane values in `planes`; with several planes the
    DAP totals are summed, see the findings); for mammography, the accumulated average
    glandular dose per breast.
    """

    study_instance_uid: str | None
    template: str
    sop_instance_uids: tuple[str, ...]
    content_datetime: datetime.datetime | None = None
    procedure_reported: CodedValue | None = None
    device: Device = Device()
    source_of_dose_information: CodedValue | None = None
    start_of_xray_irradiation: datetime.datetime | None = None
    end_of_xray_irradiation: datetime.datetime | None = None
    ct_dlp_total_mgycm: DoseValue | None = None
    total_number_of_irradiation_events: DoseValue | None = None
    planes: tuple[AccumulatedXRayDose, ...] = ()
    dap_total_gym2: DoseValue | None = None
    fluoro_dap_total_gym2: DoseValue | None = None
    acquisition_dap_total_gym2: DoseValue | None = None
    dose_rp_total_mgy: DoseValue | None = None
    total_fluoro_time_s: DoseValue | None = None
    accumulated_average_glandular_dose: tuple[BreastDose, ...] = ()
    events: tuple[IrradiationEvent, ...] = ()
    radiopharmaceutical_administrations: tuple[RadiopharmaceuticalAdministration, ...] = ()
    findings: tuple[Finding, ...] = ()

    def agd_mgy(self, side: Side) -> DoseValue | None:
        """The accumulated average glandular dose of one breast, if reported."""
        for breast in self.accumulated_average_glandular_dose:
            if breast.side == side:
                return breast.average_glandular_dose_mgy
        return None

    def findings_with(self, code: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.code == code]
