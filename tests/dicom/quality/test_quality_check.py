"""Quality rules on real pydicom test files and on datasets built to break one rule each."""

import copy
import io
import time
import warnings
from pathlib import Path

import corpus
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

from radbank.dicom.quality import BURNED_IN_RISK_SOP_CLASSES, Finding, Severity, check
from radbank.dicom.quality.rules import _plain_value


def read(name: str, **kwargs: object) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"{name} missing from pydicom / pydicom-data"
    return pydicom.dcmread(path, **kwargs)


def codes(findings: list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


@pytest.fixture
def ct() -> Dataset:
    return read("CT_small.dcm")


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",  # CT, explicit VR little endian
        "693_UNCR.dcm",  # 512x512 CT
        "MR_small_bigendian.dcm",  # native, explicit VR big endian
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",  # encapsulated: length not checked
        "emri_small.dcm",  # multi-frame enhanced MR
        "liver.dcm",  # 1-bit multi-frame segmentation
        "rtdose.dcm",  # multi-frame RT Dose, implicit VR
        "test-SR.dcm",  # no pixel data
        "JPGLosslessP14SV1_1s_1f_8b.dcm",  # ultrasound with BurnedInAnnotation NO
    ],
)
def test_well_formed_files_pass(name: str) -> None:
    assert check(read(name)) == []


def test_dicomdir_is_rejected_alone() -> None:
    findings = check(read("DICOMDIR"))
    assert findings == [findings[0]]
    assert findings[0].severity is Severity.REJECT
    assert findings[0].code == "dicomdir"
    assert "import the files" in findings[0].message


@pytest.mark.parametrize(
    "name",
    [
        "US1_UNCR.dcm",  # Ultrasound Image Storage
        "examples_ybr_color.dcm",  # Ultrasound Multi-frame, JPEG baseline
        "SC_rgb.dcm",  # Secondary Capture
        "JPEG2000.dcm",  # Secondary Capture, compressed
    ],
)
def test_risky_sop_classes_without_burned_in_annotation_are_quarantined(name: str) -> None:
    ds = read(name)
    findings = check(ds)
    assert codes(findings) == ["burned-in-risk"]
    assert findings[0].severity is Severity.QUARANTINE
    assert ds.SOPInstanceUID in findings[0].message
    assert "BurnedInAnnotation" in findings[0].message
    assert BURNED_IN_RISK_SOP_CLASSES[ds.SOPClassUID] in findings[0].message


def test_burned_in_reason_gives_both_ways_out_and_what_a_pixel_rule_must_match() -> None:
    findings = check(read("US1_UNCR.dcm"))
    message = findings[0].message
    assert "add a pixel rule to the project" in message
    assert (
        "Manufacturer 'G.E. Medical Systems', ManufacturerModelName 'LOGIQ 700', Rows 480, "
        "Columns 640" in message
    )
    assert "have the sender set BurnedInAnnotation to NO" in message


def test_burned_in_reason_says_when_no_pixel_rule_can_match() -> None:
    ds = read("SC_rgb.dcm")  # no Manufacturer
    message = check(ds)[0].message
    assert "A pixel rule cannot match it (Manufacturer (missing)" in message
    assert "Rows 100, Columns 100" in message
    assert "set BurnedInAnnotation to NO" in message


def test_encapsulated_document_has_only_the_source_as_way_out() -> None:
    ds = constructed_ct(rows=1, columns=1, bits_allocated=8)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.Modality = "DOC"
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated"):
        del ds[keyword]
    findings = check(ds)
    assert codes(findings) == ["burned-in-risk"]
    assert "Encapsulated PDF Storage" in findings[0].message
    assert "no pixels that a pixel rule could clean" in findings[0].message
    assert "pixel rule to the project" not in findings[0].message


@pytest.mark.parametrize(
    "sop_class_uid",
    [
        "1.2.840.10008.5.1.4.1.1.6.3",  # Photoacoustic Image Storage
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte Secondary Capture
        "1.2.840.10008.5.1.4.1.1.77.1.1.1",  # Video Endoscopic Image Storage
        "1.2.840.10008.5.1.1.29",  # Hardcopy Grayscale Image Storage (retired): printed film
    ],
)
def test_screen_camera_and_film_classes_are_at_risk(ct: Dataset, sop_class_uid: str) -> None:
    ct.SOPClassUID = sop_class_uid
    assert codes(check(ct)) == ["burned-in-risk"]
    ct.BurnedInAnnotation = "NO"
    assert check(ct) == []


def test_risky_sop_class_declared_clean_passes() -> None:
    ds = read("SC_rgb.dcm")
    ds.BurnedInAnnotation = "NO"
    assert check(ds) == []


def test_burned_in_annotation_yes_quarantines_any_class(ct: Dataset) -> None:
    ct.BurnedInAnnotation = "YES"
    findings = check(ct)
    assert codes(findings) == ["burned-in-annotation"]
    assert findings[0].severity is Severity.QUARANTINE
    assert (
        "Manufacturer 'GE MEDICAL SYSTEMS', ManufacturerModelName 'RHAPSODE'" in findings[0].message
    )


def test_burned_in_risk_list_names_real_sop_classes() -> None:
    for uid, name in BURNED_IN_RISK_SOP_CLASSES.items():
        assert UID(uid).is_valid
        retired = name.endswith(" (Retired)")
        assert UID(uid).name == name.removesuffix(" (Retired)"), uid
        assert UID(uid).is_retired == retired, uid


@pytest.mark.parametrize(
    "keyword", ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"]
)
def test_missing_or_empty_uid_is_rejected(ct: Dataset, keyword: str) -> None:
    empty = copy.deepcopy(ct)
    setattr(empty, keyword, "")
    del ct[keyword]
    for ds in (ct, empty):
        findings = check(ds)
        assert codes(findings) == ["uid-missing"]
        assert findings[0].severity is Severity.REJECT
        assert keyword in findings[0].message


@pytest.mark.parametrize("bad", ["1.2.03.4", "1.2.3.", "abc", "1." + "2" * 70])
def test_invalid_uid_is_rejected(ct: Dataset, bad: str) -> None:
    with pytest.warns(UserWarning):  # pydicom itself warns about the invalid value
        ct.StudyInstanceUID = bad
    findings = check(ct)
    assert codes(findings) == ["uid-invalid"]
    assert "StudyInstanceUID" in findings[0].message
    assert ct.SOPInstanceUID in findings[0].message


def test_multi_valued_uid_is_rejected(ct: Dataset) -> None:
    ct.SeriesInstanceUID = ["1.2.3", "1.2.4"]
    assert codes(check(ct)) == ["uid-invalid"]


@pytest.mark.parametrize("parent", ["StudyInstanceUID", "SeriesInstanceUID"])
def test_instance_uid_reused_as_study_or_series_uid_is_rejected(ct: Dataset, parent: str) -> None:
    setattr(ct, parent, ct.SOPInstanceUID)
    findings = check(ct)
    assert codes(findings) == ["uid-reused"]
    assert parent in findings[0].message


def test_missing_modality_is_a_warning(ct: Dataset) -> None:
    del ct.Modality
    findings = check(ct)
    assert codes(findings) == ["modality-missing"]
    assert findings[0].severity is Severity.WARNING


@pytest.mark.parametrize("keyword", ["Rows", "Columns", "BitsAllocated"])
def test_pixel_data_without_its_attributes_is_a_warning(ct: Dataset, keyword: str) -> None:
    del ct[keyword]
    findings = check(ct)
    assert codes(findings) == ["pixel-attributes-missing"]
    assert keyword in findings[0].message


def test_an_image_without_pixel_data_is_held() -> None:
    """CT_small cut right before its Pixel Data element reads as a complete file; held for
    review, not refused: some sources send image headers alone on purpose (a vendor's CT
    dose screen in ../shared/data/rdsr comes so)."""
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    cut = data[: data.rindex(b"\xe0\x7f\x10\x00")]
    findings = check(pydicom.dcmread(io.BytesIO(cut)))
    assert codes(findings) == ["pixel-data-missing"]
    assert findings[0].severity is Severity.QUARANTINE
    assert "cut short" in findings[0].message and "1.3.6.1.4.1.5962" in findings[0].message


@pytest.mark.parametrize(
    "keyword",
    ["FloatPixelData", "DoubleFloatPixelData", "PixelDataProviderURL", "SpectroscopyData"],
)
def test_pixels_held_elsewhere_are_not_missing(ct: Dataset, keyword: str) -> None:
    """MR Spectroscopy (PS3.3 C.8.14.4) gives its Rows and Columns to Spectroscopy Data."""
    del ct.PixelData
    setattr(ct, keyword, "https://jpip.example/1" if keyword.endswith("URL") else b"\0" * 8)
    assert "pixel-data-missing" not in codes(check(ct))


def test_empty_rows_and_columns_describe_no_image(ct: Dataset) -> None:
    del ct.PixelData
    ct.Rows = ct.Columns = None
    assert "pixel-data-missing" not in codes(check(ct))


def test_truncated_pixel_data_is_a_warning(ct: Dataset) -> None:
    ct.PixelData = ct.PixelData[:-512]
    findings = check(ct)
    assert codes(findings) == ["pixel-data-length"]
    assert "32256 bytes" in findings[0].message and "32768 bytes" in findings[0].message


def test_wrong_frame_count_is_a_warning() -> None:
    ds = read("emri_small.dcm")
    ds.NumberOfFrames = 11
    assert codes(check(ds)) == ["pixel-data-length"]


def test_encapsulated_pixel_data_length_is_not_judged() -> None:
    ds = read("examples_ybr_color.dcm")  # JPEG baseline, multi-frame ultrasound
    ds.BurnedInAnnotation = "NO"
    ds.NumberOfFrames = 1
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert check(ds) == []


def test_native_ybr_full_422_uses_two_samples_per_pixel() -> None:
    ds = read("SC_ybr_full_422_uncompressed.dcm")
    ds.BurnedInAnnotation = "NO"
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert check(ds) == []


def test_odd_length_pads_to_even() -> None:
    ds = constructed_ct(rows=3, columns=3, bits_allocated=8)
    ds.PixelData = bytes(10)  # 9 bytes of pixels and one pad byte
    assert check(ds) == []
    ds.PixelData = bytes(12)
    assert codes(check(ds)) == ["pixel-data-length"]


def test_constructed_dataset_without_file_meta() -> None:
    ds = constructed_ct(rows=2, columns=2, bits_allocated=16)
    del ds.file_meta
    ds.PixelData = bytes(8)
    assert check(ds) == []


def test_deferred_pixel_data_is_measured_without_reading_it() -> None:
    ds = read("CT_small.dcm", defer_size=1024)
    assert check(ds) == []
    assert ds.get_item("PixelData", keep_deferred=True).value is None
    ds = read("CT_small.dcm", defer_size=1024)
    ds.Rows = 64
    assert codes(check(ds)) == ["pixel-data-length"]


def test_all_problems_are_reported_together() -> None:
    ds = Dataset()
    ds.PixelData = b"\0\0"
    assert codes(check(ds)) == [
        "uid-missing",
        "uid-missing",
        "uid-missing",
        "uid-missing",
        "modality-missing",
        "pixel-attributes-missing",
    ]
    assert "an object without SOPInstanceUID" in check(ds)[0].message


def test_check_cost(capsys: pytest.CaptureFixture[str]) -> None:
    ds = read("CT_small.dcm")
    check(ds)
    runs = 5000
    start = time.perf_counter()
    for _ in range(runs):
        check(ds)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nquality.check: {elapsed / runs * 1e6:.1f} us per CT instance")


def constructed_ct(*, rows: int, columns: int, bits_allocated: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.Modality = "CT"
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = bits_allocated
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_values_read_without_pydicom_conversion_equal_pydicom_on_the_corpus() -> None:
    """The checks read US numbers and CS/UI strings straight from the raw bytes; on every
    readable file of the corpus the value is what pydicom's conversion gives, type included."""
    compared = 0
    readable, _ = corpus.classified()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for file in readable:
            dataset = pydicom.dcmread(file, force=True)
            for tag in list(dataset.keys()):
                element = dataset.get_item(tag)
                if not isinstance(element, RawDataElement):
                    continue
                fast = _plain_value(element)
                if fast is None:
                    continue
                slow = convert_raw_data_element(element, encoding="iso8859", ds=dataset).value
                assert (fast, type(fast)) == (slow, type(slow)), (file.name, tag)
                compared += 1
    assert compared > 1000


@pytest.mark.parametrize(
    ("vr", "raw", "little_endian"),
    [
        ("UI", b"", True),
        ("UI", b"\0", True),
        ("UI", b" ", True),
        ("UI", b"1.2.3\0", True),
        ("UI", b"1.2\\1.3", True),
        ("CS", b"", True),
        ("CS", b" CT ", True),
        ("CS", b"ORIGINAL\\PRIMARY", True),
        ("CS", b"caf\xe9", True),
        ("US", b"", True),
        ("US", b"\x00\x02", True),
        ("US", b"\x00\x02", False),
        ("US", b"\x01\x00\x02\x00", True),
    ],
)
def test_values_read_without_pydicom_conversion_in_unusual_forms(
    vr: str, raw: bytes, little_endian: bool
) -> None:
    tag = {"UI": 0x00080018, "CS": 0x00080060, "US": 0x00280010}[vr]
    element = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, little_endian)
    fast = _plain_value(element)
    if fast is not None:
        slow = convert_raw_data_element(element, encoding="iso8859").value
        assert (fast, type(fast)) == (slow, type(slow))
