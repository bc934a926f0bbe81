"""Synthetic reports made with pydicom: the vendor variations the extraction handles, each
one visible to a physicist as a converted value and a finding in words."""

from __future__ import annotations

import pytest
from dose_helpers import (
    ACCUMULATED_XRAY,
    ACQUISITION_PLANE,
    COMPREHENSIVE_SR,
    CT_ACCUMULATED,
    CT_ACQUISITION,
    CT_ACQUISITION_TYPE,
    CT_DOSE,
    DAP,
    DAP_TOTAL,
    DLP,
    DLP_TOTAL,
    DOSE_RP,
    DOSE_RP_TOTAL,
    EVENT_TYPE,
    EVENT_UID,
    EVENT_XRAY,
    FLUORO_DAP_TOTAL,
    FLUOROSCOPY,
    KVP,
    MEAN_CTDIVOL,
    PROCEDURE_REPORTED,
    PROJECTION_XRAY,
    SPIRAL,
    STUDY_UID,
    TOTAL_EVENTS,
    TOTAL_FLUORO_TIME,
    code,
    coded,
    container,
    ct_event,
    ct_report,
    num,
    report,
    uidref,
)
from pydicom.dataset import Dataset
from pytest import approx

from radbank.dicom.dose import DoseReport, extract, merge


def _extract(dataset: Dataset) -> DoseReport:
    result = extract(dataset)
    assert result is not None
    return result


def _messages(result: DoseReport, finding_code: str) -> list[str]:
    return [finding.message for finding in result.findings_with(finding_code)]


def _fluoro_report(*event_items: Dataset, dap_total_unit: str = "Gy.m2") -> Dataset:
    return report(
        coded(PROCEDURE_REPORTED, PROJECTION_XRAY, relationship="HAS CONCEPT MOD"),
        container(
            ACCUMULATED_XRAY,
            num(DAP_TOTAL, "250", dap_total_unit),
            num(DOSE_RP_TOTAL, "0.5", "Gy"),
            num(TOTAL_FLUORO_TIME, "2", "min"),
        ),
        container(
            EVENT_XRAY,
            uidref(EVENT_UID, "1.2.826.0.1.3680043.8.498.31"),
            coded(EVENT_TYPE, FLUOROSCOPY),
            *event_items,
        ),
    )


def test_dap_in_dgy_cm2_is_converted_to_gy_m2_and_said() -> None:
    result = _extract(
        _fluoro_report(
            num(DAP, "12", "cGy.cm2"), num(DOSE_RP, "30", "mGy"), dap_total_unit="dGy.cm2"
        )
    )
    # 250 dGy.cm2 = 250 x 0.1 Gy x 1e-4 m2
    assert result.dap_total_gym2.value == approx(2.5e-3)
    assert result.dap_total_gym2.unit == "Gy.m2"
    (event,) = result.events
    assert event.dap_gym2.value == approx(1.2e-5)  # 12 cGy.cm2
    assert event.dose_rp_mgy.value == 30
    assert result.dose_rp_total_mgy.value == 500  # 0.5 Gy, the template's unit
    assert result.total_fluoro_time_s.value == 120  # 2 min
    converted = _messages(result, "unit-converted")
    assert "TID 10007 Dose Area Product Total: given in dGy.cm2, not Gy.m2; converted to Gy.m2" in (
        converted
    )
    assert any("TID 10003 Dose Area Product: given in cGy.cm2" in m for m in converted)
    assert any("Dose (RP): given in mGy, not Gy" in m for m in converted)
    assert any("Total Fluoro Time: given in min, not s" in m for m in converted)


def test_missing_mandatory_items_are_named_with_their_event() -> None:
    no_uid = container(
        CT_ACQUISITION,
        coded(CT_ACQUISITION_TYPE, SPIRAL),
        container(CT_DOSE, num(DLP, "100", "mGy.cm")),
    )
    result = _extract(
        report(
            coded(PROCEDURE_REPORTED, ("77477000", "SCT", "CT"), relationship="HAS CONCEPT MOD"),
            container(CT_ACCUMULATED, num(TOTAL_EVENTS, "1", "{events}")),
            no_uid,
        )
    )
    (event,) = result.events
    assert event.irradiation_event_uid is None
    assert event.dlp_mgycm.value == 100
    assert event.ctdivol_mgy is None
    missing = _messages(result, "missing-mandatory")
    assert "Irradiation Event UID is missing in CT Acquisition (item 3)" in missing
    assert "Mean CTDIvol is missing in CT Acquisition (item 3)" in missing
    assert "Target Region (a coded value) is missing in CT Acquisition (item 3)" in missing
    assert "CT Dose Length Product Total is missing in CT Accumulated Dose Data" in missing
    assert result.ct_dlp_total_mgycm is None


def test_odd_numbers_decimal_comma_separators_and_units_in_the_value() -> None:
    event = container(
        CT_ACQUISITION,
        coded(CT_ACQUISITION_TYPE, SPIRAL),
        uidref(EVENT_UID, "1.2.826.0.1.3680043.8.498.41"),
        container(
            CT_DOSE,
            num(MEAN_CTDIVOL, None, "mGy", raw=b"12,5"),
            num(DLP, None, None, raw=b"250.5 mGy.cm"),
        ),
        num(KVP, None, "kV", raw=b"120;140 "),
    )
    result = _extract(
        report(
            container(
                CT_ACCUMULATED, num(DLP_TOTAL, "250.5", None), num(TOTAL_EVENTS, "1", "{events}")
            ),
            event,
        )
    )
    (read,) = result.events
    assert read.ctdivol_mgy.value == 12.5
    assert read.dlp_mgycm.value == 250.5
    assert read.kvp.value == 120
    assert result.ct_dlp_total_mgycm.value == 250.5
    assert _messages(result, "decimal-comma")[0].endswith(
        "'12,5' written with a decimal comma; read as 12.5"
    )
    assert "carries its unit in the number" in _messages(result, "unit-misplaced")[0]
    assert _messages(result, "multi-value-separator")
    assert "the first, 120, was used" in _messages(result, "multi-value")[0]
    assert _messages(result, "unit-missing") == [
        "TID 10012 CT Dose Length Product Total (item 1.1): no unit given; read in mGy.cm, "
        "the unit the template specifies"
    ]


def test_unit_that_cannot_be_converted_drops_the_value_and_says_so() -> None:
    result = _extract(_fluoro_report(num(DAP, "3", "mGy"), num(DOSE_RP, "2", "mGy")))
    (event,) = result.events
    assert event.dap_gym2 is None
    assert _messages(result, "unit-unknown") == [
        "TID 10003 Dose Area Product (item 3.3): unit 'mGy' cannot be read as Gy.m2; the "
        "value 3 was not kept"
    ]


def test_dose_template_in_a_comprehensive_sr_is_read() -> None:
    dataset = ct_report(
        [ct_event("1.2.826.0.1.3680043.8.498.51", "10", "400")],
        "400",
        "1.2.826.0.1.3680043.8.498.52",
    )
    dataset.SOPClassUID = COMPREHENSIVE_SR
    result = _extract(dataset)
    assert result.ct_dlp_total_mgycm.value == 400
    assert (
        "stored as Comprehensive SR, not X-Ray Radiation Dose SR"
        in _messages(result, "sr-class")[0]
    )


def test_comprehensive_sr_with_dose_containers_under_another_title() -> None:
    dataset = report(
        container(
            CT_ACCUMULATED, num(DLP_TOTAL, "55", "mGy.cm"), num(TOTAL_EVENTS, "1", "{events}")
        ),
        ct_event("1.2.826.0.1.3680043.8.498.53", "5", "55"),
        sop_class=COMPREHENSIVE_SR,
        root=("18748-4", "LN", "Diagnostic imaging report"),
    )
    result = _extract(dataset)
    assert result.template == "TID 10011"
    assert result.ct_dlp_total_mgycm.value == 55
    assert any(
        "the document title is Diagnostic imaging report" in m
        for m in _messages(result, "sr-class")
    )


def test_objects_without_dose_give_none() -> None:
    text_report = report(
        root=("18748-4", "LN", "Diagnostic imaging report"), sop_class=COMPREHENSIVE_SR
    )
    assert extract(text_report) is None
    mr = Dataset()
    mr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    mr.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.61"
    mr.Modality = "MR"
    assert extract(mr) is None
    ct_without_ctdivol = Dataset()
    ct_without_ctdivol.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.62"
    ct_without_ctdivol.Modality = "CT"
    ct_without_ctdivol.KVP = "120"
    assert extract(ct_without_ctdivol) is None


def test_empty_dose_sr_is_a_report_of_what_is_missing() -> None:
    empty = report()
    del empty.ContentSequence
    result = _extract(empty)
    assert result.events == ()
    assert _messages(result, "missing-mandatory") == [
        "every accumulated dose container and irradiation event is missing in the dose "
        "report (no value could be extracted)"
    ]


def test_two_acquisition_planes_sum_dap_and_keep_the_rest_per_plane() -> None:
    def plane(name: str, dap: str, rp: str) -> Dataset:
        return container(
            ACCUMULATED_XRAY,
            coded(ACQUISITION_PLANE, (name, "DCM", name), relationship="HAS CONCEPT MOD"),
            num(DAP_TOTAL, dap, "Gy.m2"),
            num(FLUORO_DAP_TOTAL, dap, "Gy.m2"),
            num(DOSE_RP_TOTAL, rp, "Gy"),
            num(TOTAL_FLUORO_TIME, "60", "s"),
        )

    result = _extract(report(plane("113620", "0.001", "0.2"), plane("113621", "0.0005", "0.1")))
    assert len(result.planes) == 2
    assert result.dap_total_gym2.value == approx(0.0015)
    assert result.fluoro_dap_total_gym2.value == approx(0.0015)
    assert result.dose_rp_total_mgy is None
    assert result.total_fluoro_time_s is None
    assert [p.dose_rp_total_mgy.value for p in result.planes] == [200, 100]
    assert "2 acquisition planes" in _messages(result, "multiple-planes")[0]


def test_event_dlps_that_do_not_add_up_to_the_total_are_said() -> None:
    dataset = ct_report(
        [
            ct_event("1.2.826.0.1.3680043.8.498.71", "10", "400"),
            ct_event("1.2.826.0.1.3680043.8.498.72", "5", "100"),
        ],
        "600",
        "1.2.826.0.1.3680043.8.498.73",
    )
    result = _extract(dataset)
    assert result.ct_dlp_total_mgycm.value == 600
    assert _messages(result, "total-mismatch") == [
        "CT Dose Length Product Total is 600 mGy.cm but the 2 event DLPs add up to 500.00 mGy.cm"
    ]


# --- headers ------------------------------------------------------------------------------


def _nuclear_image(modality: str, total_dose: str) -> Dataset:
    image = Dataset()
    image.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    image.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.81"
    image.StudyInstanceUID = STUDY_UID
    image.Modality = modality
    image.SeriesDate = "20240102"
    item = Dataset()
    item.Radiopharmaceutical = "FDG -- fluorodeoxyglucose"
    item.RadiopharmaceuticalStartTime = "093000"
    item.RadionuclideTotalDose = total_dose
    item.RadionuclideHalfLife = "6586.2"
    item.RadionuclideCodeSequence = [code("C-111A1", "SRT", "^18^Fluorine")]
    item.RadiopharmaceuticalRoute = "Intravenous"
    image.RadiopharmaceuticalInformationSequence = [item]
    return image


def test_pet_header_activity_in_becquerel_is_converted() -> None:
    result = _extract(_nuclear_image("PT", "370000000"))
    (administration,) = result.radiopharmaceutical_administrations
    assert administration.administered_activity_mbq.value == 370
    assert administration.radionuclide.key == "SCT:77004003"
    assert administration.radiopharmaceutical_name == "FDG -- fluorodeoxyglucose"
    assert administration.route_name == "Intravenous"
    assert administration.start_datetime.isoformat() == "2024-01-02T09:30:00"
    assert _messages(result, "time-without-date") == [
        "RadiopharmaceuticalStartTime has no date; combined with SeriesDate 20240102"
    ]


def test_nm_header_in_mbq_and_a_pet_header_written_in_mbq() -> None:
    nm = _extract(_nuclear_image("NM", "740"))
    assert nm.radiopharmaceutical_administrations[0].administered_activity_mbq.value == 740
    pet_in_mbq = _extract(_nuclear_image("PT", "370"))
    assert pet_in_mbq.radiopharmaceutical_administrations[0].administered_activity_mbq.value == 370
    assert "read in MBq, the NM unit" in _messages(pet_in_mbq, "unit-assumed")[0]


def test_enhanced_ct_ctdivol_from_functional_groups() -> None:
    image = Dataset()
    image.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.91"
    image.Modality = "CT"
    image.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.92"

    def frame(ctdivol: float) -> Dataset:
        exposure = Dataset()
        exposure.CTDIvol = ctdivol
        group = Dataset()
        group.CTExposureSequence = [exposure]
        return group

    image.PerFrameFunctionalGroupsSequence = [frame(10.0), frame(20.0)]
    result = _extract(image)
    (event,) = result.events
    assert event.ctdivol_mgy.value == 15
    assert event.ctdivol_mgy.source == "mean over 2 frames of (0018,9345) CTDIvol"
    assert "the mean over 2 frames was kept" in _messages(result, "per-frame-mean")[0]


# --- merge --------------------------------------------------------------------------------


def test_merge_keeps_the_most_complete_version_and_names_its_report() -> None:
    uid = "1.2.826.0.1.3680043.8.498.101"
    sparse = container(
        CT_ACQUISITION,
        coded(CT_ACQUISITION_TYPE, SPIRAL),
        uidref(EVENT_UID, uid),
        container(CT_DOSE, num(DLP, "300", "mGy.cm")),
    )
    early = _extract(
        ct_report([ct_event(uid, "10", "300")], "300", "1.2.826.0.1.3680043.8.498.102", "100000")
    )
    late = _extract(ct_report([sparse], "300", "1.2.826.0.1.3680043.8.498.103", "110000"))
    merged = merge([late, early])
    (event,) = merged.events
    assert event.ctdivol_mgy.value == 10
    assert event.sop_instance_uid == "1.2.826.0.1.3680043.8.498.102"
    (finding,) = merged.findings_with("merge-duplicate-event")
    assert finding.message.startswith(
        f"irradiation event {uid} is in 2 reports with different values"
    )
    assert "kept the version of 1.2.826.0.1.3680043.8.498.102" in finding.message


def test_merge_of_per_exposure_reports_recomputes_the_total() -> None:
    first = _extract(
        ct_report(
            [ct_event("1.2.826.0.1.3680043.8.498.111", "8", "200")],
            "200",
            "1.2.826.0.1.3680043.8.498.112",
        )
    )
    second = _extract(
        ct_report(
            [ct_event("1.2.826.0.1.3680043.8.498.113", "6", "150")],
            "150",
            "1.2.826.0.1.3680043.8.498.114",
        )
    )
    merged = merge([first, second])
    assert len(merged.events) == 2
    assert merged.ct_dlp_total_mgycm.value == 350
    assert merged.ct_dlp_total_mgycm.source == "sum of 2 event DLPs after merge"
    assert merged.total_number_of_irradiation_events.value == 2
    assert merged.findings_with("merge-recomputed-total")


def test_merge_refuses_reports_of_different_studies() -> None:
    one = _extract(
        ct_report(
            [ct_event("1.2.826.0.1.3680043.8.498.121", "8", "200")],
            "200",
            "1.2.826.0.1.3680043.8.498.122",
        )
    )
    other_dataset = ct_report(
        [ct_event("1.2.826.0.1.3680043.8.498.123", "8", "200")],
        "200",
        "1.2.826.0.1.3680043.8.498.124",
    )
    other_dataset.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.999"
    other = _extract(other_dataset)
    with pytest.raises(ValueError, match="different studies"):
        merge([one, other])
    with pytest.raises(ValueError, match="at least one"):
        merge([])


def test_merge_of_projection_reports_sums_events_when_no_report_covers_all() -> None:
    def single(uid: str, dap: str, sop: str) -> DoseReport:
        dataset = report(
            coded(PROCEDURE_REPORTED, PROJECTION_XRAY, relationship="HAS CONCEPT MOD"),
            container(
                ACCUMULATED_XRAY, num(DAP_TOTAL, dap, "Gy.m2"), num(TOTAL_FLUORO_TIME, "5", "s")
            ),
            container(
                EVENT_XRAY,
                uidref(EVENT_UID, uid),
                coded(EVENT_TYPE, FLUOROSCOPY),
                num(DAP, dap, "Gy.m2"),
            ),
            sop_instance_uid=sop,
        )
        return _extract(dataset)

    merged = merge(
        [
            single("1.2.826.0.1.3680043.8.498.131", "0.0002", "1.2.826.0.1.3680043.8.498.132"),
            single("1.2.826.0.1.3680043.8.498.133", "0.0003", "1.2.826.0.1.3680043.8.498.134"),
        ]
    )
    assert merged.dap_total_gym2.value == approx(0.0005)
    assert merged.fluoro_dap_total_gym2.value == approx(0.0005)
    assert merged.total_fluoro_time_s is None
    assert (
        "the fluoro time is not known" in merged.findings_with("merge-recomputed-total")[0].message
    )


def test_merging_the_images_of_a_series_counts_each_exposure_once() -> None:
    def pet_image(index: int) -> DoseReport:
        image = _nuclear_image("PT", "370000000")
        image.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.14{index}"
        return _extract(image)

    def ct_image(index: int) -> DoseReport:
        image = Dataset()
        image.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.15{index}"
        image.StudyInstanceUID = STUDY_UID
        image.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.160"
        image.Modality = "CT"
        image.CTDIvol = 7.5
        image.KVP = "120"
        return _extract(image)

    merged = merge([pet_image(index) for index in range(5)] + [ct_image(i) for i in range(5)])
    assert len(merged.radiopharmaceutical_administrations) == 1
    assert len(merged.events) == 1
    assert merged.events[0].ctdivol_mgy.value == 7.5
    assert merged.findings_with("merge-duplicate-administration")[0].message.startswith("4 ")
    assert merged.findings_with("merge-header-events")[0].message.startswith("4 CT image")


def test_a_dose_screen_without_attributes_still_says_what_it_is() -> None:
    screen = Dataset()
    screen.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    screen.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.171"
    screen.Modality = "CT"
    result = _extract(screen)
    assert result.events == ()
    assert _messages(result, "no-structured-dose")[0].endswith("no dose value was read")


def test_a_dose_info_image_of_another_class_is_recognised_by_its_image_type() -> None:
    screen = Dataset()
    screen.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    screen.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.172"
    screen.Modality = "CT"
    screen.ImageType = ["DERIVED", "SECONDARY", "DOSE_INFO"]
    assert _extract(screen).findings_with("no-structured-dose")
