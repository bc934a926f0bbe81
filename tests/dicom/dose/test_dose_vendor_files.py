"""Every vendor file of ../shared/data/rdsr gives the report a physicist expects.

The numbers asserted were read from the files' content trees and headers (printed with
pydicom, item by item), not from this code's output.
"""

from __future__ import annotations

import datetime
import random

import pytest
from dose_helpers import RDSR, vendor_file
from pytest import approx

from radbank.dicom.dose import CT, PROJECTION, DoseReport, extract, merge

BODY = "DCM:113691"
HEAD = "DCM:113690"
SPIRAL = "SCT:116152004"
FLUOROSCOPY = "SCT:44491008"
STATIONARY_ACQUISITION = "DCM:113611"


def _report(name: str) -> DoseReport:
    report = extract(vendor_file(name))
    assert report is not None, f"{name} gave no dose report"
    return report


def _codes(report: DoseReport) -> set[str]:
    return {finding.code for finding in report.findings}


def _ctdivols(report: DoseReport) -> list[float | None]:
    return [e.ctdivol_mgy.value if e.ctdivol_mgy else None for e in report.events]


def _dlps(report: DoseReport) -> list[float]:
    return [e.dlp_mgycm.value for e in report.events if e.dlp_mgycm is not None]


def test_every_vendor_file_gives_a_report_with_provenance() -> None:
    files = sorted(RDSR.glob("*.dcm")) if RDSR.is_dir() else []
    if not files:
        pytest.skip(f"{RDSR} is absent: the vendor dose reports are not available here")
    assert len(files) == 16
    for path in files:
        report = _report(path.name)
        sop_instance_uid = report.sop_instance_uids[0]
        values = [value for event in report.events for value in event.dose_values().values()]
        for value in values:
            assert value.sop_instance_uid == sop_instance_uid
            assert value.unit and value.source and value.concept, (path.name, value)
        assert "unreadable-object" not in _codes(report), path.name


# --- CT -------------------------------------------------------------------------------


def test_siemens_flash_ct_totals_events_and_phantom() -> None:
    report = _report("CT-RDSR-Siemens_Flash-TAP-SS.dcm")
    assert report.template == "TID 10011"
    assert report.device.manufacturer == "SIEMENS"
    assert report.device.model_name == "SOMATOM Definition Flash"
    assert report.ct_dlp_total_mgycm.value == 724.52
    assert report.ct_dlp_total_mgycm.unit == "mGy.cm"
    assert report.ct_dlp_total_mgycm.source == "TID 10012 CT Dose Length Product Total"
    assert report.total_number_of_irradiation_events.value == 4
    assert [event.kind for event in report.events] == [CT] * 4
    assert _ctdivols(report) == [0.14, 1.2, 3.61, 9.91]
    assert {event.ctdiw_phantom_type.key for event in report.events} == {BODY}
    assert sum(_dlps(report)) == approx(724.52, abs=0.01)
    spiral = report.events[3]
    assert spiral.acquisition_protocol == "TAP"
    assert spiral.acquisition_type.key == SPIRAL
    assert spiral.target_region.code_meaning == "Abdomen"
    assert spiral.irradiation_event_uid.endswith(".1471541535737.7.0")
    assert spiral.dlp_mgycm.value == 708.2
    assert spiral.pitch_factor.value == 0.6
    assert spiral.scanning_length_mm.value == 737
    assert spiral.kvp.value == 120 and spiral.kvp.unit == "kV"
    assert spiral.tube_current_ma.value == 176
    assert spiral.maximum_tube_current_ma.value == 560
    assert spiral.exposure_time_s.value == 16.01
    assert spiral.nominal_total_collimation_width_mm.value == 38.4
    assert report.start_of_xray_irradiation == datetime.datetime(
        1997, 1, 1, 0, 6, 31, 737000, datetime.UTC
    )
    # DLPs are coded "mGycm": not UCUM, read as mGy.cm and said so
    assert "unit-not-ucum" in _codes(report)
    assert any("'mGycm'" in finding.message for finding in report.findings)


def test_ge_pixelmed_ct_head_phantom_and_missing_target_region() -> None:
    report = _report("CT-RDSR-GEPixelMed.dcm")
    assert report.ct_dlp_total_mgycm.value == 586.34
    assert report.total_number_of_irradiation_events.value == 2
    assert _ctdivols(report) == [60.41, 222.59]
    assert {event.ctdiw_phantom_type.key for event in report.events} == {HEAD}
    assert _dlps(report) == [475.04, 111.3]
    assert sum(_dlps(report)) == approx(586.34, abs=0.01)
    assert report.events[1].acquisition_protocol == "10.13 RADIOTHERAPY QA"
    assert report.source_of_dose_information.code_meaning == "Derived From Human-Readable Reports"
    # Target Region is present without a value in both acquisitions
    missing = report.findings_with("missing-mandatory")
    assert len(missing) == 2
    assert all("Target Region" in finding.message for finding in missing)
    assert all(event.target_region is None for event in report.events)


def test_philips_big_bore_dose_check_values() -> None:
    report = _report("CT-RDSR-Philips_BigBore4DCT.dcm")
    assert report.ct_dlp_total_mgycm.value == 541.1
    assert report.total_number_of_irradiation_events.value == 1
    (event,) = report.events
    assert event.ctdivol_mgy.value == 23.7
    assert event.ctdiw_phantom_type.key == BODY
    assert event.dlp_mgycm.value == 541.1
    assert event.pitch_factor.value == 0.042
    assert event.ctdivol_alert_value_mgy.value == 1000
    assert event.ctdivol_notification_value_mgy.value == 60
    assert event.dlp_alert_value_mgycm is None
    assert event.dlp_notification_value_mgycm is None
    assert event.acquisition_protocol == "4DCT /PHYSICS"


def test_ge_vct_enhanced_sr_is_read_and_said() -> None:
    report = _report("CT-ESR-GE_VCT.dcm")
    assert report.template == "TID 10011"
    assert "sr-class" in _codes(report)
    assert "Enhanced SR" in report.findings_with("sr-class")[0].message
    assert report.ct_dlp_total_mgycm.value == 2002.39
    assert report.total_number_of_irradiation_events.value == 27
    assert len(report.events) == 27
    assert sum(_dlps(report)) == approx(2002.39, abs=0.01)
    # 16 constant angle acquisitions (scouts) report no CT Dose, which the template allows
    with_dose = [event for event in report.events if event.ctdivol_mgy is not None]
    assert len(with_dose) == 11
    assert "missing-mandatory" not in _codes(report)
    head = [e.ctdivol_mgy.value for e in with_dose if e.ctdiw_phantom_type.key == HEAD]
    assert head == [6.23, 22.26]
    assert max(e.ctdivol_mgy.value for e in with_dose) == 176.12
    assert "total-mismatch" not in _codes(report)


def test_siemens_pet_ct_rdsr() -> None:
    report = _report("NM-CT-RDSR-Siemens.dcm")
    assert report.ct_dlp_total_mgycm.value == 667.72
    assert report.total_number_of_irradiation_events.value == 2
    assert _ctdivols(report) == [0.04, 4.59]
    assert _dlps(report) == [6.58, 661.14]
    assert [event.acquisition_protocol for event in report.events] == ["Topogram", "AC_CT_Body"]


def test_siemens_cumulative_reports_each_and_merged() -> None:
    names = [f"CT-RDSR-Siemens-Multi-{index}.dcm" for index in (1, 2, 3)]
    reports = [_report(name) for name in names]
    assert [r.ct_dlp_total_mgycm.value for r in reports] == [7.46, 77.27, 236.09]
    assert [len(r.events) for r in reports] == [1, 2, 3]
    shuffled = reports[:]
    random.Random(5).shuffle(shuffled)
    merged = merge(shuffled)
    assert len(merged.events) == 3
    assert len({event.irradiation_event_uid for event in merged.events}) == 3
    assert _ctdivols(merged) == [0.15, 8.13, 7.02]
    assert merged.ct_dlp_total_mgycm.value == 236.09
    assert merged.total_number_of_irradiation_events.value == 3
    assert sum(_dlps(merged)) == approx(236.09, abs=0.01)
    assert set(merged.sop_instance_uids) == {r.sop_instance_uids[0] for r in reports}
    # the report that covers every event (Multi-3, the newest) gave the totals and events
    newest = reports[2].sop_instance_uids[0]
    assert merged.ct_dlp_total_mgycm.sop_instance_uid == newest
    assert {event.sop_instance_uid for event in merged.events} == {newest}
    (duplicates,) = merged.findings_with("merge-duplicate-event")
    assert duplicates.message.startswith("2 irradiation event(s) were repeated identically")


def test_pet_ct_and_its_radiopharmaceutical_report_merge_into_one_study() -> None:
    merged = merge([_report("NM-CT-RDSR-Siemens.dcm"), _report("NM-RRDSR-Siemens.dcm")])
    assert merged.study_instance_uid == "1.2.840.113619.6.95.31.0.3.4.1.4400.13.8620675"
    assert merged.template == "TID 10011 + TID 10021"
    assert merged.ct_dlp_total_mgycm.value == 667.72
    (administration,) = merged.radiopharmaceutical_administrations
    assert administration.administered_activity_mbq.value == 394


def test_philips_dose_info_secondary_capture_has_no_structured_dose() -> None:
    report = _report("CT-SC-Philips_Brilliance16P.dcm")
    assert report.template == "image header"
    assert "no-structured-dose" in _codes(report)
    # the DLPs are only in the free text of Comments on Radiation Dose: not invented
    assert "free-text-dose" in _codes(report)
    assert report.ct_dlp_total_mgycm is None
    assert _dlps(report) == []
    # what the header does hold: one Exposure Dose Sequence item per series
    assert report.total_number_of_irradiation_events.value == 4
    assert [e.acquisition_protocol for e in report.events][1:] == [
        "PRE KIDNEYS",
        "30S KIDNEYS",
        "100S C/A/P",
    ]
    assert _ctdivols(report) == approx(
        [0.0, 7.200978719152135, 11.32941264247715, 9.315682513246966]
    )
    assert all(event.ctdivol_mgy.source == "(0018,9345) CTDIvol" for event in report.events)
    pre_kidneys = report.events[1]
    # X-Ray Tube Current in uA 165044.374 -> mA; Exposure Time 6986 ms -> s
    assert pre_kidneys.tube_current_ma.value == approx(165.044374)
    assert pre_kidneys.exposure_time_s.value == 6.986
    assert pre_kidneys.acquisition_type.key == SPIRAL
    assert pre_kidneys.irradiation_event_uid is None


# --- projection X-ray -------------------------------------------------------------------


def test_siemens_artis_zee_fluoroscopy() -> None:
    report = _report("RF-RDSR-Siemens-Zee.dcm")
    assert report.template == "TID 10001"
    assert report.dap_total_gym2.value == 1.6e-05
    assert report.dap_total_gym2.unit == "Gy.m2"
    assert report.fluoro_dap_total_gym2.value == 1.6e-05
    assert report.acquisition_dap_total_gym2.value == 0
    assert report.dose_rp_total_mgy.value == approx(2.52)  # 0.00252 Gy
    assert report.dose_rp_total_mgy.unit == "mGy"
    assert report.total_fluoro_time_s.value == 28
    assert len(report.events) == 8
    assert all(event.kind == PROJECTION and event.is_fluoroscopy for event in report.events)
    assert sum(e.dap_gym2.value for e in report.events) == approx(1.6e-05)
    first = report.events[0]
    assert first.dap_gym2.value == 1e-06
    assert first.dose_rp_mgy.value == approx(0.14)
    assert first.kvp.value == 77
    assert first.exposure_mas.value == 9.586  # 9586 uAs
    assert first.exposure_time_s.value == 0.1008  # 100.8 ms
    assert first.number_of_pulses.value == 24
    assert first.fluoro_mode.code_meaning == "Pulsed"
    (copper,) = first.filters
    assert copper.material == "Copper or Copper compound"
    assert copper.thickness_minimum_mm.value == 0.6
    assert first.reference_point_definition == "15cm from Isocenter toward Source"
    # DAP in "Gym2", exposure in "uAs", exposure time under the retired code 113735
    assert {"unit-not-ucum", "retired-code"} <= _codes(report)
    assert any("'Gym2'" in f.message for f in report.findings_with("unit-not-ucum"))


def test_philips_allura_fluoroscopy_and_acquisitions() -> None:
    report = _report("RF-RDSR-Philips_Allura.dcm")
    assert report.dap_total_gym2.value == 0.00015356864017
    assert report.fluoro_dap_total_gym2.value == 1.0558274005e-05
    assert report.acquisition_dap_total_gym2.value == 0.00014301036616
    assert report.dose_rp_total_mgy.value == approx(4.27128035068)
    assert report.total_fluoro_time_s.value == 13
    assert [event.is_fluoroscopy for event in report.events] == [True, False, False]
    assert report.events[1].acquisition_type.key == STATIONARY_ACQUISITION
    assert report.events[1].acquisition_protocol == "Abdomen 2fps 25%"
    # two filters on the fluoroscopy event; a Reference Point Definition given as TEXT
    fluoro = report.events[0]
    assert [(f.material, f.thickness_maximum_mm.value) for f in fluoro.filters] == [
        ("Copper or Copper compound", 0.4),
        ("Aluminum or Aluminum compound", 1.0),
    ]
    assert fluoro.reference_point_definition == "15cm below BeamIsocenter"
    assert fluoro.irradiation_duration_s.value == 13.066
    # Philips accumulates per Performed Procedure Step: the study comes from the header
    assert report.study_instance_uid.endswith(".1484156582494.5.0")


def test_carestream_dx_rdsr_dap() -> None:
    report = _report("DX-RDSR-Carestream_DRXEvolution.dcm")
    assert report.dap_total_gym2.value == approx(5.81e-06)
    assert report.dose_rp_total_mgy.value == approx(0.29927175492)
    assert len(report.events) == 5
    assert sum(e.dap_gym2.value for e in report.events) == approx(5.81e-06)
    first = report.events[0]
    assert first.dap_gym2.value == approx(8.2e-07)
    assert first.acquisition_protocol == "Thigh Right"
    assert first.kvp.value == 48
    assert first.exposure_mas.value == 4.5  # 4500 uA.s
    assert first.exposure_time_s.value == 0.018  # 18 ms
    assert first.target_region.code_meaning == "Hip joint"
    assert not first.is_fluoroscopy


def test_hologic_mammography_agd_per_breast() -> None:
    report = _report("MG-RDSR-Hologic_2D.dcm")
    assert report.procedure_reported.code_meaning == "Mammography"
    assert report.agd_mgy("left").value == 1.30
    assert report.agd_mgy("right").value == 1.28
    assert report.agd_mgy("left").source == "TID 10005 Accumulated Average Glandular Dose"
    left, right = report.events
    assert left.average_glandular_dose_mgy.value == 1.30
    assert left.laterality.code_meaning == "Left"
    assert left.entrance_exposure_at_rp_mgy.value == 3.65
    assert left.compression_thickness_mm.value == 43
    assert left.kvp.value == 28
    assert left.exposure_mas.value == 90.2
    assert right.average_glandular_dose_mgy.value == 1.28
    assert right.laterality.code_meaning == "Right"
    # mammography events need no DAP
    assert "missing-mandatory" not in _codes(report)
    # the device is named only in the header
    assert report.device.manufacturer == "HOLOGIC, Inc."


# --- radiopharmaceutical ------------------------------------------------------------------


def test_siemens_radiopharmaceutical_report() -> None:
    report = _report("NM-RRDSR-Siemens.dcm")
    assert report.template == "TID 10021"
    assert report.events == ()
    (administration,) = report.radiopharmaceutical_administrations
    assert administration.administered_activity_mbq.value == 394
    assert administration.administered_activity_mbq.unit == "MBq"
    assert administration.radionuclide.code_meaning == "^18^Fluorine"
    assert administration.radionuclide.key == "SCT:77004003"
    assert administration.radiopharmaceutical.code_meaning == "Fluorodeoxyglucose F^18^"
    assert administration.route.code_meaning == "Intravenous route"
    assert administration.radionuclide_half_life_s.value == 6586.2
    assert administration.start_datetime == datetime.datetime(2022, 2, 24, 10, 40, 30)
    assert len(administration.organ_doses) == 22
    bladder = [o for o in administration.organ_doses if o.finding_site.code_meaning == "Bladder"]
    assert bladder[0].dose_mgy.value == 51.22
    assert bladder[0].reference_authority == "ICRP Publication 128"
    # the effective dose sits in a Siemens private container: read, and said
    assert administration.effective_dose_msv.value == 7.486
    assert "private-container" in _codes(report)


# --- image headers ------------------------------------------------------------------------


def test_carestream_dx_image_header() -> None:
    report = _report("DX-Im-Carestream_DR7500-1.dcm")
    assert report.template == "image header"
    (event,) = report.events
    # Image and Fluoroscopy Area Dose Product 11.013 dGy.cm2 = 1.1013e-4 Gy.m2
    assert event.dap_gym2.value == 1.1013e-04
    assert event.dap_gym2.source == "(0018,115E) ImageAndFluoroscopyAreaDoseProduct"
    assert report.dap_total_gym2.value == 1.1013e-04
    assert event.kvp.value == 80
    assert event.exposure_mas.value == 10
    assert event.exposure_time_s.value == 0.019
    assert event.tube_current_ma.value == 500
    (aluminium,) = event.filters
    assert aluminium.material == "ALUMINUM"
    # the header says minimum 1.06 mm, maximum 0.94 mm: kept, and said
    assert (aluminium.thickness_minimum_mm.value, aluminium.thickness_maximum_mm.value) == (
        1.06,
        0.94,
    )
    assert "filter-values" in _codes(report)


def test_ge_senographe_image_header() -> None:
    report = _report("MG-Im-GE_Seno_1_ForPresentation.dcm")
    (event,) = report.events
    # Organ Dose 0.00547 dGy is the average glandular dose, 0.547 mGy
    assert event.average_glandular_dose_mgy.value == 0.547
    assert event.average_glandular_dose_mgy.source == "(0040,0316) OrganDose"
    assert event.entrance_dose_mgy.value == 1.694
    assert event.kvp.value == 26
    assert event.exposure_mas.value == 20.8  # Exposure in uAs 20800, not the rounded 21 mAs
    assert event.laterality.code_meaning == "Left"
    assert report.agd_mgy("left").value == 0.547
    assert report.agd_mgy("right") is None
