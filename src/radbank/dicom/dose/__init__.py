"""Dose values from DICOM objects, pure logic: structured dose reports, image headers,
merging the reports of a study, effective dose estimates and size-specific dose.

    from radbank.dicom.dose import extract, extract_bytes, merge
    report = extract(dataset)            # DoseReport | None; never raises on odd input
    report = extract_bytes(file_bytes)   # the same, read from the file's bytes, faster
    report.ct_dlp_total_mgycm.value      # 724.52, with .unit "mGy.cm", .source, ...
    study = merge([report_1, report_2])  # several or cumulative reports of one study

    from radbank.dicom.dose import effective_dose_estimate, ssde_mgy
    effective_dose_estimate(study.ct_dlp_total_mgycm, "chest")  # mSv, an estimate
    ssde_mgy(event.ctdivol_mgy.value, dw_cm, event.ctdiw_phantom_type)

Modules: model (the dataclasses), extract (the entry points and the finding codes), sr
(TID 10001, 10011, 10021 by concept code), header (image header attributes), merge,
units (UCUM), codes (the concept codes, checked against PS3.16), effective_dose (the
k-factor table and its source), ssde (AAPM Reports 204 and 220). The readers see a data
set through the small protocol of `_view` (`DataSetView`), answered from a pydicom
Dataset (`PydicomView`) or straight from a file's bytes (`_part10`, its values decoded by
`_values` exactly as pydicom decodes them).
"""

from radbank.dicom.dose.effective_dose import K_FACTOR_SOURCE, K_FACTORS, effective_dose_estimate
from radbank.dicom.dose.extract import extract, extract_bytes
from radbank.dicom.dose.merge import merge
from radbank.dicom.dose.model import (
    CT,
    PROJECTION,
    AccumulatedXRayDose,
    BreastDose,
    CodedValue,
    Device,
    DoseReport,
    DoseValue,
    Finding,
    IrradiationEvent,
    OrganDose,
    RadiopharmaceuticalAdministration,
    XRayFilter,
)
from radbank.dicom.dose.ssde import (
    ssde_conversion_factor,
    ssde_mgy,
    water_equivalent_diameter_cm,
    water_equivalent_diameter_cm_of,
)

__all__ = [
    "CT",
    "K_FACTORS",
    "K_FACTOR_SOURCE",
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
    "XRayFilter",
    "effective_dose_estimate",
    "extract",
    "extract_bytes",
    "merge",
    "ssde_conversion_factor",
    "ssde_mgy",
    "water_equivalent_diameter_cm",
    "water_equivalent_diameter_cm_of",
]
