"""Synthetic identified CT: deterministic, valid, and carrying the identity it claims to."""

import io
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, CTImageStorage

from radbank.dicom.dose import extract
from radbank.dicom.quality import check
from radbank.synthetic import (
    canary_values,
    demo_patients,
    demo_studies,
    planted_ct_instances,
    write_files,
)

SMALL = {
    "sites": 2,
    "patients_per_site": 2,
    "studies_per_patient": 2,
    "series_per_study": 2,
    "instances_per_series": 2,
}

# Type 1 attributes of the modules of the CT Image IOD (PS3.3 A.3) that apply here.
CT_TYPE1 = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "FrameOfReferenceUID",
    "ImageType",
    "PixelSpacing",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RescaleIntercept",
    "RescaleSlope",
    "PixelData",
    "SpecificCharacterSet",
)
# Type 2: present, may be empty.
CT_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "PatientPosition",
    "PositionReferenceIndicator",
    "Manufacturer",
    "InstanceNumber",
    "SliceThickness",
    "KVP",
    "AcquisitionNumber",
)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_demo_counts_match_the_requested_shape() -> None:
    datasets = list(demo_studies())
    images = [ds for ds in datasets if ds.Modality == "CT"]
    reports = [ds for ds in datasets if ds.Modality == "SR"]
    assert len(images) == 3 * 4 * 2 * 2 * 3
    assert len(reports) == 3 * 4 * 2  # one dose report per study
    assert len(datasets) == len(images) + len(reports)
    assert len({ds.PatientID for ds in datasets}) == 12
    assert len({ds.StudyInstanceUID for ds in datasets}) == 24
    assert len({ds.SeriesInstanceUID for ds in images}) == 48
    assert len({ds.SeriesInstanceUID for ds in reports}) == 24
    assert len({ds.SOPInstanceUID for ds in datasets}) == 144 + 24
    assert len({ds.InstitutionName for ds in datasets}) == 3


def test_without_dose_reports_the_demo_is_images_only() -> None:
    datasets = list(demo_studies(**SMALL, dose_reports=False))
    assert len(datasets) == 2 * 2 * 2 * 2 * 2
    assert {ds.SOPClassUID for ds in datasets} == {CTImageStorage}
    with_reports = [ds for ds in demo_studies(**SMALL) if ds.Modality == "CT"]
    assert [to_bytes(ds) for ds in with_reports] == [to_bytes(ds) for ds in datasets]


def test_each_study_ends_with_its_dose_report() -> None:
    datasets = list(demo_studies(**SMALL))
    for position, report in enumerate(datasets):
        if report.Modality != "SR":
            continue
        images = [
            ds
            for ds in datasets
            if ds.Modality == "CT" and ds.StudyInstanceUID == report.StudyInstanceUID
        ]
        assert datasets[position - 1] is images[-1]
        for keyword in ("PatientID", "PatientName", "AccessionNumber", "StationName"):
            assert report[keyword].value == images[0][keyword].value, keyword
        result = extract(report)
        assert result is not None and result.findings == ()
        by_event = {event.irradiation_event_uid: event for event in result.events}
        for image in images:
            event = by_event[image.IrradiationEventUID]
            assert event.ctdivol_mgy is not None
            assert event.ctdivol_mgy.value == pytest.approx(float(image.CTDIvol))
            assert event.kvp is not None and event.kvp.value == float(image.KVP)
        assert len(result.events) == SMALL["series_per_study"] + 1  # and a localizer


def test_demo_is_deterministic_given_the_seed() -> None:
    first = [to_bytes(ds) for ds in demo_studies(**SMALL, seed=7)]
    second = [to_bytes(ds) for ds in demo_studies(**SMALL, seed=7)]
    other = [to_bytes(ds) for ds in demo_studies(**SMALL, seed=8)]
    assert first == second
    assert first[0] != other[0]


def test_patients_are_distinct_and_share_their_site_issuer() -> None:
    patients = demo_patients(sites=3, patients_per_site=5, seed=3)
    assert len({p.patient_id for p in patients}) == 15
    assert len({p.name for p in patients}) == 15
    by_site: dict[str, set[str]] = {}
    for patient in patients:
        by_site.setdefault(patient.site, set()).add(patient.issuer)
    assert len(by_site) == 3
    assert all(len(issuers) == 1 for issuers in by_site.values())
    assert len(set.union(*by_site.values())) == 3


def test_each_site_has_its_own_equipment_and_issuer() -> None:
    sites = {}
    for ds in demo_studies(**SMALL):
        sites.setdefault(ds.InstitutionName, set()).add(
            (ds.IssuerOfPatientID, ds.StationName, ds.Manufacturer, ds.ManufacturerModelName)
        )
    assert len(sites) == 2
    assert all(len(equipment) == 1 for equipment in sites.values())
    first, second = (next(iter(v)) for v in sites.values())
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_demo_instances_are_ct_images_with_dose_attributes() -> None:
    for ds in demo_studies(**SMALL, dose_reports=False):
        assert ds.SOPClassUID == CTImageStorage
        for keyword in CT_TYPE1:
            assert ds.get(keyword) not in (None, ""), keyword
        for keyword in CT_TYPE2:
            assert keyword in ds, keyword
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID):
            assert UID(uid).is_valid
        assert ds.CTDIvol > 0
        assert float(ds.KVP) > 0
        assert int(ds.XRayTubeCurrent) > 0
        assert int(ds.ExposureTime) > 0


def test_slices_move_along_the_series() -> None:
    series = [ds for ds in demo_studies(**SMALL) if ds.SeriesNumber == 1][:2]
    assert series[1].InstanceNumber == series[0].InstanceNumber + 1
    assert series[1].ImagePositionPatient[2] > series[0].ImagePositionPatient[2]


def test_planted_identity_is_in_the_bytes_including_nested_and_private() -> None:
    ds = next(demo_studies(**SMALL))
    raw = to_bytes(ds)
    canaries = canary_values(ds)
    for value in (
        ds.PatientName,
        ds.PatientID,
        ds.IssuerOfPatientID,
        ds.PatientBirthDate,
        ds.PatientAddress,
        ds.InstitutionName,
        ds.AccessionNumber,
        ds.OtherPatientIDsSequence[0].PatientID,
        ds.RequestAttributesSequence[0].RequestedProcedureID,
        ds.OperatorIdentificationSequence[0].PersonIdentificationCodeSequence[0].CodeValue,
    ):
        assert str(value) in canaries
    assert any(value.startswith("Pt ") for value in canaries), "private LT note"
    assert "CT" not in canaries and "113691" not in canaries
    for value in canaries:
        assert value.encode() in raw, value


def test_canaries_differ_between_patients() -> None:
    datasets = list(demo_studies(**SMALL))
    first = next(ds for ds in datasets if ds.PatientID == datasets[0].PatientID)
    other = next(ds for ds in datasets if ds.PatientID != datasets[0].PatientID)
    assert first.PatientName not in canary_values(other)


def test_write_files_writes_part10_files_that_read_back(tmp_path: Path) -> None:
    datasets = list(demo_studies(**SMALL))
    paths = write_files(datasets, tmp_path)
    assert len(paths) == len(datasets) == len(set(paths))
    assert paths[0].relative_to(tmp_path).parts[-1] == "0001.dcm"
    assert len(paths[0].relative_to(tmp_path).parts) == 5
    for path, original in zip(paths[:3], datasets[:3], strict=True):
        ds = pydicom.dcmread(path)
        assert path.read_bytes()[128:132] == b"DICM"
        assert ds.SOPInstanceUID == original.SOPInstanceUID
        assert ds.PatientName == original.PatientName
        assert ds.pixel_array.shape == (128, 128)


def test_write_files_refuses_to_overwrite(tmp_path: Path) -> None:
    ds = next(demo_studies(**SMALL))
    with pytest.raises(ValueError, match="distinct Instance Numbers"):
        write_files([ds, ds], tmp_path)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_dciodvfy_finds_no_errors(tmp_path: Path) -> None:
    path = write_files([next(demo_studies(**SMALL))], tmp_path)[0]
    planted = tmp_path / "planted.dcm"
    planted.write_bytes(next(planted_ct_instances(1, 1)))
    for file in (path, planted):
        result = subprocess.run(["dciodvfy", str(file)], capture_output=True, text=True)
        report = result.stdout + result.stderr
        assert "CTImage" in report
        assert "Error" not in report, report


def test_planted_instances_spread_over_studies() -> None:
    datasets = [pydicom.dcmread(io.BytesIO(raw)) for raw in planted_ct_instances(10, 3, seed=2)]
    per_study = Counter(ds.StudyInstanceUID for ds in datasets)
    assert sorted(per_study.values()) == [3, 3, 4]
    assert len({ds.SOPInstanceUID for ds in datasets}) == 10
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in datasets)
    assert datasets[0].Rows == datasets[0].Columns == 512
    assert datasets[0].pixel_array.shape == (512, 512)


def test_planted_instances_have_several_patients() -> None:
    patients = {
        pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).PatientID
        for raw in planted_ct_instances(40, 40)
    }
    assert len(patients) == 10


def test_planted_bytes_are_what_pydicom_writes() -> None:
    for raw in planted_ct_instances(3, 2, seed=5):
        ds = pydicom.dcmread(io.BytesIO(raw))
        assert to_bytes(ds) == raw
        for value in canary_values(ds):
            assert value.encode() in raw, value


def test_planted_is_deterministic_and_distinct_from_demo() -> None:
    assert list(planted_ct_instances(4, 2, seed=9)) == list(planted_ct_instances(4, 2, seed=9))
    assert next(planted_ct_instances(1, 1, seed=9)) != next(planted_ct_instances(1, 1, seed=10))
    planted_uids = {
        pydicom.dcmread(io.BytesIO(raw)).StudyInstanceUID for raw in planted_ct_instances(4, 4)
    }
    assert not planted_uids & {ds.StudyInstanceUID for ds in demo_studies()}


def test_synthetic_data_passes_the_quality_rules() -> None:
    for ds in demo_studies(**SMALL):
        assert check(ds) == []
    for raw in planted_ct_instances(2, 2):
        assert check(pydicom.dcmread(io.BytesIO(raw))) == []


def test_planted_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    total_bytes = sum(len(raw) for raw in planted_ct_instances(500, 10))
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\nplanted_ct_instances: {500 / elapsed:.0f} instances/s, "
            f"{total_bytes / elapsed / 1e6:.0f} MB/s"
        )
