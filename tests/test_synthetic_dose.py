"""Synthetic dose reports: read back exactly by radbank's extractor, valid for dciodvfy,
deterministic, unique, carrying planted identity that de-identification removes while the
dose values stay, and with the dose structure of real practice (protocol medians,
phantoms, heavier patients and some rooms higher)."""

from __future__ import annotations

import io
import re
import shutil
import statistics
import struct
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from radbank.dicom.deid import Profile, deidentify
from radbank.dicom.dose import DoseReport, extract
from radbank.dicom.encode import part10_bytes
from radbank.dicom.quality import check
from radbank.synthetic import canary_attributes, canary_values, demo_patients, demo_studies
from radbank.synthetic_dose import (
    CT_PROTOCOLS,
    DEVICES,
    FLUORO_PROTOCOLS,
    XRAY_RADIATION_DOSE_SR,
    ct_rdsr,
    dose_reports,
    expected_values,
    fluoro_rdsr,
)

DCIODVFY = shutil.which("dciodvfy")
CT_DEVICES = [device for device in DEVICES if device.kind == "CT"]
FLUORO_DEVICES = [device for device in DEVICES if device.kind == "fluoroscopy"]


def to_bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def read(raw: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(raw))


def _extract(dataset: Dataset) -> DoseReport:
    report = extract(dataset)
    assert report is not None
    return report


def _pair(value: Any) -> tuple[float, str] | None:
    return None if value is None else (value.value, value.unit)


def _numbers(expected: dict[str, Any]) -> dict[str, tuple[float, str]]:
    return {name: value for name, value in expected.items() if isinstance(value, tuple)}


def assert_extracts_exactly(dataset: Dataset) -> DoseReport:
    """`extract` gives every value the generator wrote, in the same unit, and no other."""
    expected = expected_values(dataset)
    report = _extract(dataset)
    assert report.template == expected["template"]
    assert report.study_instance_uid == expected["study_instance_uid"]
    assert report.sop_instance_uids == (expected["sop_instance_uid"],)
    assert report.device.device_observer_uid == expected["device_observer_uid"]
    for name, value in expected["totals"].items():
        assert _pair(getattr(report, name)) == value, name
    assert len(report.planes) == len(expected["planes"])
    for plane, expected_plane in zip(report.planes, expected["planes"], strict=True):
        assert plane.acquisition_plane is not None
        assert plane.acquisition_plane.code_meaning == expected_plane["acquisition_plane"]
        for name, value in _numbers(expected_plane).items():
            assert _pair(getattr(plane, name)) == value, name
    assert [event.irradiation_event_uid for event in report.events] == [
        event["irradiation_event_uid"] for event in expected["events"]
    ]
    for event, expected_event in zip(report.events, expected["events"], strict=True):
        values = {name: _pair(value) for name, value in event.dose_values().items()}
        assert values == _numbers(expected_event), event.irradiation_event_uid
        assert event.acquisition_type is not None
        assert event.acquisition_type.code_meaning == expected_event["acquisition_type"]
        assert event.target_region is not None
        assert event.target_region.code_meaning == expected_event["target_region"]
        assert event.acquisition_protocol == expected_event["acquisition_protocol"]
        if event.kind == "CT":
            phantom = event.ctdiw_phantom_type
            assert (phantom and phantom.code_meaning) == expected_event["ctdiw_phantom_type"]
        else:
            assert event.acquisition_plane is not None
            assert event.acquisition_plane.code_meaning == expected_event["acquisition_plane"]
            mode = event.fluoro_mode
            assert (mode and mode.code_meaning) == expected_event["fluoro_mode"]
            filters = [
                {
                    "material": f.material,
                    "thickness_minimum_mm": _pair(f.thickness_minimum_mm),
                    "thickness_maximum_mm": _pair(f.thickness_maximum_mm),
                }
                for f in event.filters
            ]
            assert filters == expected_event["filters"]
    assert report.findings_with("missing-mandatory") == []
    return report


# --------------------------------------------------------------------------------------
# extract() reads exactly what was written
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [p.key for p in CT_PROTOCOLS])
@pytest.mark.parametrize("device", [d.station_name for d in CT_DEVICES])
def test_ct_reports_extract_exactly(protocol: str, device: str) -> None:
    dataset = ct_rdsr(7, protocol=protocol, device=device)
    report = assert_extracts_exactly(dataset)
    assert report.findings == ()
    assert report.total_number_of_irradiation_events is not None
    assert report.total_number_of_irradiation_events.value == len(report.events) >= 2


@pytest.mark.parametrize("protocol", [p.key for p in FLUORO_PROTOCOLS])
def test_fluoroscopy_reports_extract_exactly(protocol: str) -> None:
    room = next(p.room for p in FLUORO_PROTOCOLS if p.key == protocol)
    for device in (d for d in FLUORO_DEVICES if d.room == room):
        report = assert_extracts_exactly(fluoro_rdsr(3, protocol=protocol, device=device))
        codes = {finding.code for finding in report.findings}
        assert codes == ({"multiple-planes"} if device.planes == 2 else set())
        assert report.dap_total_gym2 is not None and report.dap_total_gym2.value > 0


def test_many_reports_extract_exactly() -> None:
    for raw in dose_reports(60, seed=11):
        report = assert_extracts_exactly(read(raw))
        assert {finding.code for finding in report.findings} <= {"multiple-planes"}


def test_expected_values_carry_the_model_units() -> None:
    ct = expected_values(ct_rdsr(1, protocol="chest", device="QV-CT-SCAN1"))
    assert ct["totals"]["ct_dlp_total_mgycm"][1] == "mGy.cm"
    assert ct["events"][-1]["ctdivol_mgy"][1] == "mGy"
    fluoro = expected_values(fluoro_rdsr(1, protocol="ercp"))
    # written in Gy, ms and uA.s; given in the model's mGy, s and mA.s
    assert fluoro["planes"][0]["dose_rp_total_mgy"][1] == "mGy"
    event = fluoro["events"][0]
    assert (event["exposure_time_s"][1], event["exposure_mas"][1]) == ("s", "mA.s")


# --------------------------------------------------------------------------------------
# Consistency: totals, physics, counts
# --------------------------------------------------------------------------------------


def _decimal(value: tuple[float, str]) -> Decimal:
    return Decimal(str(value[0]))


def test_ct_totals_are_the_sums_of_the_events_and_dlp_follows_ctdivol() -> None:
    for seed in range(40):
        expected = expected_values(ct_rdsr(seed))
        events = expected["events"]
        totals = expected["totals"]
        assert totals["total_number_of_irradiation_events"][0] == len(events)
        dlps = [_decimal(event["dlp_mgycm"]) for event in events if "dlp_mgycm" in event]
        assert _decimal(totals["ct_dlp_total_mgycm"]) == sum(dlps, Decimal(0))
        for event in events:
            if event["acquisition_type"] != "Spiral Acquisition":
                continue
            irradiated_cm = (
                event["scanning_length_mm"][0] + event["nominal_total_collimation_width_mm"][0]
            ) / 10
            assert event["dlp_mgycm"][0] == pytest.approx(
                event["ctdivol_mgy"][0] * irradiated_cm, abs=0.01
            )


def test_fluoroscopy_plane_totals_are_the_sums_of_their_events() -> None:
    for seed in range(12):
        expected = expected_values(fluoro_rdsr(seed))
        for plane in expected["planes"]:
            events = [
                e
                for e in expected["events"]
                if e["acquisition_plane"] == plane["acquisition_plane"]
            ]
            fluoro = [e for e in events if e["acquisition_type"] == "Fluoroscopy"]
            acquisitions = [e for e in events if e["acquisition_type"] != "Fluoroscopy"]

            def total(selected: list[dict[str, Any]], name: str) -> Decimal:
                return sum((_decimal(e[name]) for e in selected), Decimal(0))

            assert _decimal(plane["dap_total_gym2"]) == total(events, "dap_gym2")
            assert _decimal(plane["fluoro_dap_total_gym2"]) == total(fluoro, "dap_gym2")
            assert _decimal(plane["acquisition_dap_total_gym2"]) == total(acquisitions, "dap_gym2")
            assert _decimal(plane["dose_rp_total_mgy"]) == total(events, "dose_rp_mgy")
            assert _decimal(plane["total_fluoro_time_s"]) == total(fluoro, "irradiation_duration_s")
            assert plane["total_number_of_radiographic_frames"][0] == sum(
                e["number_of_pulses"][0] for e in acquisitions
            )


@pytest.mark.parametrize("n_events", [1, 2, 3, 5])
def test_n_events_is_the_number_of_irradiation_events(n_events: int) -> None:
    ct = _extract(ct_rdsr(2, n_events=n_events, protocol="ct-pulmonary-angiography"))
    assert len(ct.events) == n_events
    types = [event.acquisition_type.code_meaning for event in ct.events]  # type: ignore[union-attr]
    if n_events >= 2:
        assert types[0] == "Constant Angle Acquisition"
    if n_events >= 3:
        assert types[1] == "Stationary Acquisition"  # the protocol's bolus tracking
    biplane = _extract(fluoro_rdsr(2, n_events=n_events + 4, device="QV-NEURO"))
    assert len(biplane.events) == n_events + 4


def test_arguments_are_checked_with_a_message_that_says_what_exists() -> None:
    with pytest.raises(ValueError, match="known: head, chest"):
        ct_rdsr(protocol="knee")
    with pytest.raises(ValueError, match="is a fluoroscopy device"):
        ct_rdsr(device="QV-CATH1")
    with pytest.raises(ValueError, match="station name"):
        fluoro_rdsr(device="NO-SUCH-ROOM")
    with pytest.raises(ValueError, match="kinds"):
        next(dose_reports(1, kinds=("MR",)))  # type: ignore[arg-type]


def test_a_given_patient_and_study_are_used() -> None:
    patient = demo_patients(sites=2, patients_per_site=1, seed=4)[1]
    uid = "2.25.1234567890"
    dataset = ct_rdsr(3, patient=patient, study_instance_uid=uid)
    assert (dataset.PatientID, dataset.PatientName, dataset.StudyInstanceUID) == (
        patient.patient_id,
        patient.name,
        uid,
    )
    assert dataset.InstitutionName == patient.site  # a scanner of the patient's site
    assert _extract(dataset).study_instance_uid == uid
    # the same patient weighs the same in every study
    again = fluoro_rdsr(9, patient=patient)
    assert (again.PatientWeight, again.PatientSize) == (dataset.PatientWeight, dataset.PatientSize)


# --------------------------------------------------------------------------------------
# Valid objects
# --------------------------------------------------------------------------------------


def _samples() -> list[tuple[str, bytes]]:
    """Every protocol, every room, the demo's report for its images, and a few of many."""
    samples = [
        (f"ct-{p.key}", to_bytes(ct_rdsr(5, protocol=p, device=CT_DEVICES[i % len(CT_DEVICES)])))
        for i, p in enumerate(CT_PROTOCOLS)
    ]
    samples += [
        (f"ct-{d.station_name}", to_bytes(ct_rdsr(6, device=d, protocol="abdomen-pelvis")))
        for d in CT_DEVICES
    ]
    samples += [
        (f"fluoroscopy-{d.station_name}", to_bytes(fluoro_rdsr(5, device=d)))
        for d in FLUORO_DEVICES
    ]
    demo = demo_studies(sites=1, patients_per_site=1, studies_per_patient=1)
    samples.append(("demo", to_bytes(next(ds for ds in demo if ds.Modality == "SR"))))
    samples += [(f"dose_reports-{i}", raw) for i, raw in enumerate(dose_reports(4, seed=2))]
    return samples


@pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (Debian package dicom3tools): not checked"
)
def test_dciodvfy_finds_no_errors(tmp_path: Path) -> None:
    """Warnings are expected: the identity planted in attributes vendors write but the
    X-Ray Radiation Dose SR IOD does not list (Patient's Address and Telephone Numbers,
    Operators' and Performing Physician's Name, Operator Identification Sequence) and
    the private block."""
    for name, raw in _samples():
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(raw)
        result = subprocess.run(
            [DCIODVFY or "dciodvfy", str(path)], capture_output=True, text=True, timeout=60
        )
        report = result.stdout + result.stderr
        assert "XRayRadiationDoseSR" in report, name
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert errors == [], f"{name}:\n{report}"


def test_bytes_are_what_pydicom_writes_and_pass_the_quality_rules() -> None:
    for _, raw in _samples()[::3]:
        dataset = read(raw)
        assert to_bytes(dataset) == raw
        assert dataset.SOPClassUID == XRAY_RADIATION_DOSE_SR
        assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
        assert check(dataset) == []


# --------------------------------------------------------------------------------------
# Determinism and uniqueness
# --------------------------------------------------------------------------------------


def test_same_seed_same_bytes() -> None:
    assert to_bytes(ct_rdsr(42)) == to_bytes(ct_rdsr(42))
    assert to_bytes(fluoro_rdsr(42)) == to_bytes(fluoro_rdsr(42))
    assert list(dose_reports(30, seed=5)) == list(dose_reports(30, seed=5))
    assert to_bytes(ct_rdsr(42)) != to_bytes(ct_rdsr(43))
    assert next(dose_reports(1, seed=5)) != next(dose_reports(1, seed=6))


# An Irradiation Event UID item: its concept's meaning (padded to even length), then the UID.
_EVENT_UID = re.compile(rb"Irradiation Event UID ?\x40\x00\x24\xa1UI(..)")


def event_uids(raw: bytes) -> list[str]:
    """The Irradiation Event UIDs of a report, found in its bytes: parsing the content tree
    of 1,000 reports with pydicom would take about a minute."""
    uids = []
    for match in _EVENT_UID.finditer(raw):
        (length,) = struct.unpack("<H", match.group(1))
        uids.append(raw[match.end() : match.end() + length].rstrip(b"\0").decode())
    return uids


def test_uids_are_unique_over_a_thousand_reports() -> None:
    sop, study, series, events = set(), set(), set(), []
    for index, raw in enumerate(dose_reports(1000, seed=1)):
        dataset = read(raw)  # the header only is parsed
        sop.add(dataset.SOPInstanceUID)
        study.add(dataset.StudyInstanceUID)
        series.add(dataset.SeriesInstanceUID)
        events += event_uids(raw)
        if index < 20:
            expected = [e["irradiation_event_uid"] for e in expected_values(dataset)["events"]]
            assert event_uids(raw) == expected
    assert len(sop) == len(study) == len(series) == 1000
    assert len(events) == len(set(events)) > 5000
    single = [ct_rdsr(seed) for seed in range(100)] + [fluoro_rdsr(seed) for seed in range(50)]
    assert len({ds.SOPInstanceUID for ds in single} | sop) == 1150
    assert len({ds.StudyInstanceUID for ds in single} | study) == 1150


# --------------------------------------------------------------------------------------
# Planted identity, and de-identification removing it while the dose stays
# --------------------------------------------------------------------------------------

_IDENTIFYING_TEXT_ROWS = {"113871", "113873", "121009", "121017"}  # person ID, organisations


def _tree_identity(dataset: Dataset) -> set[str]:
    """Person names (PNAME items) and the identifying TEXT rows of the content tree."""
    found: set[str] = set()

    def walk(items: Any) -> None:
        for item in items:
            concept = item.ConceptNameCodeSequence[0].CodeValue
            if item.ValueType == "PNAME":
                found.add(str(item.PersonName))
            elif item.ValueType == "TEXT" and concept in _IDENTIFYING_TEXT_ROWS:
                found.add(str(item.TextValue))
            walk(item.get("ContentSequence") or [])

    walk(dataset.ContentSequence)
    return found


@pytest.mark.parametrize("make", [ct_rdsr, fluoro_rdsr])
def test_identity_is_planted_in_header_tree_and_private_block(make: Any) -> None:
    dataset = make(8)
    raw = to_bytes(dataset)
    canaries = canary_values(dataset)
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "InstitutionName",
        "StationName",
        "DeviceSerialNumber",
        "AccessionNumber",
    ):
        assert str(dataset[keyword].value) in canaries, keyword
    assert dataset.ReferencedRequestSequence[0].RequestedProcedureID in canaries
    assert any(value.startswith("Pt ") for value in canaries), "private LT note"
    for value in (dataset.PatientAge, dataset.PatientWeight, dataset.PatientSize):
        assert value
    assert dataset.PatientSex in ("F", "M")
    tree = _tree_identity(dataset)
    assert {str(dataset.OperatorsName), str(dataset.PerformingPhysicianName)} <= tree
    assert dataset.InstitutionName in tree
    family = str(dataset.PatientName).split("^")[0]
    comments = [str(dataset.PatientComments)] + [
        str(item.TextValue)
        for item in dataset.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "121106"
    ]
    assert family in comments[1] and dataset.PatientTelephoneNumbers in comments[0]
    for value in canaries + sorted(tree):
        assert value.encode() in raw, value


@pytest.mark.parametrize("make", [ct_rdsr, fluoro_rdsr])
def test_deidentification_removes_identity_and_keeps_the_dose(make: Any) -> None:
    """With research-dose (structured content cleaned, device identity kept on purpose),
    no planted identity is left in the bytes and every dose value is still read."""
    dataset = make(13)
    expected = expected_values(dataset)
    planted = canary_attributes(dataset)
    kept_on_purpose = {"StationName", "DeviceSerialNumber"}
    identity = {v for v, paths in planted.items() if not paths <= kept_on_purpose}
    identity |= {v for v in _tree_identity(dataset) if v not in planted or v in identity}
    result = deidentify(make(13), Profile.named("research-dose"), b"k" * 32)
    raw = part10_bytes(result.dataset)
    assert [value for value in identity if value.encode() in raw] == []
    report = _extract(read(raw))
    assert report.study_instance_uid != expected["study_instance_uid"]  # pseudonymised
    for name, value in expected["totals"].items():
        assert _pair(getattr(report, name)) == value, name
    assert len(report.events) == len(expected["events"])
    for event, expected_event in zip(report.events, expected["events"], strict=True):
        values = {name: _pair(value) for name, value in event.dose_values().items()}
        assert values == _numbers(expected_event)


# --------------------------------------------------------------------------------------
# The dose structure of real practice
# --------------------------------------------------------------------------------------


def _main_ct_events() -> list[tuple[Dataset, Any]]:
    """(report, event) for every spiral or sequenced CT acquisition of 400 reports."""
    pairs = []
    for raw in dose_reports(400, seed=3, kinds=("CT",)):
        dataset = read(raw)
        for event in _extract(dataset).events:
            kind = event.acquisition_type.code_meaning  # type: ignore[union-attr]
            if kind in ("Spiral Acquisition", "Sequenced Acquisition"):
                pairs.append((dataset, event))
    return pairs


def test_ct_medians_phantoms_size_and_rooms_look_like_a_national_survey() -> None:
    by_protocol: dict[str, list[float]] = defaultdict(list)
    by_room: dict[tuple[str, str], list[float]] = defaultdict(list)
    light, heavy = [], []
    for dataset, event in _main_ct_events():
        ctdivol = event.ctdivol_mgy.value
        by_protocol[event.acquisition_protocol].append(ctdivol)
        by_room[(event.acquisition_protocol, dataset.StationName)].append(ctdivol)
        phantom = event.ctdiw_phantom_type.code_meaning
        head = event.acquisition_protocol == "Routine Head"
        assert phantom == ("IEC Head Dosimetry Phantom" if head else "IEC Body Dosimetry Phantom")
        if event.acquisition_protocol == "Abdomen Pelvis PV":
            (light if float(dataset.PatientWeight) < 65 else heavy).append(ctdivol)
    medians = {name: statistics.median(values) for name, values in by_protocol.items()}
    assert 30 < medians["Routine Head"] < 60
    assert 5 < medians["Thorax CE"] < 11
    assert 6 < medians["Abdomen Pelvis PV"] < 13
    assert 0.8 < medians["LD Lung Screening"] < 3
    assert statistics.median(heavy) > 1.2 * statistics.median(light)
    rooms = [
        statistics.median(values)
        for (protocol, _), values in by_room.items()
        if protocol == "Abdomen Pelvis PV" and len(values) >= 5
    ]
    assert len(rooms) >= 5 and max(rooms) > 1.4 * min(rooms)


def test_fluoroscopy_dap_medians_follow_the_procedures() -> None:
    # a study's DAP does not depend on how many events share it: few events, fast reads
    medians = {}
    for protocol in FLUORO_PROTOCOLS:
        dap_gycm2 = []
        for seed in range(60):
            report = _extract(fluoro_rdsr(seed, protocol=protocol, n_events=3))
            assert report.dap_total_gym2 is not None
            dap_gycm2.append(report.dap_total_gym2.value * 1e4)
        medians[protocol.key] = statistics.median(dap_gycm2)
    assert 12 < medians["coronary-angiography"] < 40
    assert medians["pci"] > 1.5 * medians["coronary-angiography"]
    assert medians["ercp"] < medians["coronary-angiography"]
    assert 40 < medians["cerebral-angiography"] < 150
