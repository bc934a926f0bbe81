"""`extract_bytes(file bytes)` gives the report `extract(pydicom.dcmread(file))` gives.

On the vendor files as written and re-encoded (Implicit VR Little Endian, Explicit VR Big
Endian, undefined lengths), read without pydicom; on every file of pydicom's test corpus
(31 of them deliberately malformed); on reports cut short, with bytes flipped, with junk
values; in character sets the fast reader leaves to pydicom; with pydicom configured away
from its defaults. Where pydicom cannot read a file at all, both give a report with one
`unreadable-object` finding.
"""

from __future__ import annotations

import copy
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest
from dose_helpers import (
    DAMAGE,
    RDSR,
    STUDY_UID,
    content_items,
    ct_event,
    ct_report,
    damage,
    vendor_file,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import config
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_16, EXPLICIT_VR_LENGTH_32

from radbank.dicom.dose import DoseReport, _part10, extract, extract_bytes
from radbank.dicom.dose.extract import extract_from
from radbank.synthetic import planted_ct_instances

ENCODINGS = ["as written", "implicit VR", "big endian", "undefined lengths"]


def _vendor_paths() -> list[Path]:
    paths = sorted(RDSR.glob("*.dcm")) if RDSR.is_dir() else []
    if not paths:
        pytest.skip(f"{RDSR} is absent: the vendor dose reports are not available here")
    return paths


def _encode(dataset: Dataset, encoding: str) -> bytes:
    """The data set as Part 10 bytes in one of ENCODINGS (pydicom writes them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the junk values of some tests
        return _write(copy.deepcopy(dataset), encoding)


def _write(dataset: Dataset, encoding: str) -> bytes:
    dataset.walk(lambda _, element: element.value)  # convert raw values before re-encoding
    if encoding == "undefined lengths":

        def undefined(_: Dataset, element: pydicom.DataElement) -> None:
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True

        dataset.walk(undefined)
    syntax = {
        "implicit VR": ImplicitVRLittleEndian,
        "big endian": ExplicitVRBigEndian,
    }.get(encoding, ExplicitVRLittleEndian)
    if not hasattr(dataset, "file_meta"):
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    dcmwrite(
        buffer,
        dataset,
        implicit_vr=syntax == ImplicitVRLittleEndian,
        little_endian=syntax != ExplicitVRBigEndian,
        force_encoding=True,
    )
    return buffer.getvalue()


def _assert_same_as_pydicom(data: bytes) -> DoseReport | None:
    """extract_bytes gives what extract gives on the file as pydicom reads it, or, when
    pydicom cannot read it, a report with one unreadable-object finding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the files it repairs
        report = extract_bytes(data)
        try:
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
        except Exception:
            assert report is not None and report.template == "unreadable"
            assert [finding.code for finding in report.findings] == ["unreadable-object"]
            return report
        assert report == extract(dataset)
    return report


def _read_without_pydicom(data: bytes) -> DoseReport | None:
    """The report as the fast reader makes it, failing the test if it declines the file."""
    try:
        return extract_from(_part10.read(data))
    except _part10.Declined:
        pytest.fail("the fast reader declined a file it should read")


@contextmanager
def _pydicom_setting(name: str, value: object) -> Iterator[None]:
    holder = config.settings if name == "reading_validation_mode" else config
    before = getattr(holder, name)
    setattr(holder, name, value)
    try:
        yield
    finally:
        setattr(holder, name, before)


# --- the vendor files ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_vendor_file_gives_the_report_pydicom_gives_read_without_pydicom(
    encoding: str,
) -> None:
    for path in _vendor_paths():
        expected = extract(vendor_file(path.name))
        data = path.read_bytes() if encoding == "as written" else _encode(
            vendor_file(path.name), encoding
        )  # fmt: skip
        assert _read_without_pydicom(data) == expected, (path.name, encoding)
        assert extract_bytes(data) == expected, (path.name, encoding)


@pytest.mark.parametrize("kind", ["CT", "fluoroscopy"])
def test_synthetic_reports_give_the_report_pydicom_gives_read_without_pydicom(kind: str) -> None:
    synthetic_dose = pytest.importorskip("radbank.synthetic_dose")
    for data in synthetic_dose.dose_reports(3, 11, kinds=(kind,)):
        expected = extract(pydicom.dcmread(io.BytesIO(data)))
        assert expected is not None and expected.events
        assert _read_without_pydicom(data) == expected
        assert _read_without_pydicom(_encode(pydicom.dcmread(io.BytesIO(data)), "implicit VR")) == (
            expected
        )


def test_a_memoryview_reads_as_its_bytes() -> None:
    for path in _vendor_paths()[:4]:
        data = path.read_bytes()
        expected = extract_bytes(data)
        assert extract_bytes(memoryview(data)) == expected
        assert extract_bytes(memoryview(bytearray(data))) == expected


# --- pydicom's test corpus --------------------------------------------------------------


def test_every_file_of_pydicoms_test_corpus_gives_the_pydicom_result() -> None:
    paths = [Path(name) for name in get_testdata_files() if Path(name).is_file()]
    assert len(paths) > 100, "pydicom's test files are missing"
    read_without_pydicom = 0
    for path in paths:
        data = path.read_bytes()
        _assert_same_as_pydicom(data)
        try:
            _part10.read(data)
            read_without_pydicom += 1
        except _part10.Declined:
            pass
    # the fast reader does the work for most of them, not the fallback
    assert read_without_pydicom > len(paths) * 3 // 4


def test_images_without_dose_give_none_and_header_dose_the_pydicom_report() -> None:
    for name in ("MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"):
        data = Path(get_testdata_file(name)).read_bytes()
        assert _read_without_pydicom(data) is None
        assert extract_bytes(data) is None
    ct = next(planted_ct_instances(1, 1))  # 512x512, with CTDIvol in its header
    report = _read_without_pydicom(ct)
    assert report == extract(pydicom.dcmread(io.BytesIO(ct)))
    assert report is not None and report.events[0].ctdivol_mgy is not None


# --- damaged files ----------------------------------------------------------------------


def _bases() -> list[bytes]:
    report = ct_report(
        [
            ct_event("1.2.826.0.1.3680043.8.498.211", "10", "400"),
            ct_event("1.2.826.0.1.3680043.8.498.212", "4", "80"),
        ],
        "480",
        "1.2.826.0.1.3680043.8.498.213",
    )
    bases = [_encode(report, "as written"), _encode(report, "undefined lengths")]
    if RDSR.is_dir():
        for name in ("CT-RDSR-Siemens_Flash-TAP-SS.dcm", "NM-CT-RDSR-Siemens.dcm"):
            bases.append((RDSR / name).read_bytes())
        bases.append(_encode(vendor_file("MG-RDSR-Hologic_2D.dcm"), "implicit VR"))
    return bases


BASES = _bases()
_DAMAGE_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_DAMAGE_SETTINGS
@given(st.data())
def test_a_file_cut_short_gives_the_pydicom_result(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES))
    _assert_same_as_pydicom(base[: data.draw(st.integers(0, len(base)))])


@_DAMAGE_SETTINGS
@given(st.data())
def test_a_file_with_bytes_changed_gives_the_pydicom_result(data: st.DataObject) -> None:
    damaged = bytearray(data.draw(st.sampled_from(BASES)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        width = data.draw(st.integers(1, 4))
        damaged[position : position + width] = data.draw(st.binary(min_size=0, max_size=6))
    _assert_same_as_pydicom(bytes(damaged))


# Where an element's VR might be (two upper-case letters), and what to write there
_VR_SPOTS = re.compile(rb"(?=[A-Z]{2})")
_VRS = [vr.encode() for vr in sorted(EXPLICIT_VR_LENGTH_16 | EXPLICIT_VR_LENGTH_32)]


@_DAMAGE_SETTINGS
@given(st.data())
def test_a_file_with_an_element_read_as_another_vr_gives_the_pydicom_result(
    data: st.DataObject,
) -> None:
    damaged = bytearray(data.draw(st.sampled_from(BASES)))
    spots = [match.start() for match in _VR_SPOTS.finditer(damaged)]
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.sampled_from(spots))
        damaged[position : position + 2] = data.draw(st.sampled_from(_VRS))
    _assert_same_as_pydicom(bytes(damaged))


@_DAMAGE_SETTINGS
@given(st.data())
def test_a_report_with_damaged_content_items_gives_the_pydicom_result(
    data: st.DataObject,
) -> None:
    dataset = copy.deepcopy(
        data.draw(st.sampled_from([_report_with_protocol("Thorax", "ISO_IR 100")]))
    )
    items = content_items(dataset)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from([kind for kind in DAMAGE if kind != "cycle"]))
        item = items[data.draw(st.integers(0, len(items) - 1))]
        damage(kind, item, dataset, data.draw(st.binary(max_size=24)))
    encoding = data.draw(st.sampled_from(ENCODINGS[:2]))
    _assert_same_as_pydicom(_encode(dataset, encoding))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_bytes_that_are_not_dicom_never_raise(data: bytes) -> None:
    _assert_same_as_pydicom(data)


# --- character sets and pydicom's configuration -----------------------------------------


def _report_with_protocol(protocol: str, character_set: str | list[str]) -> Dataset:
    event = ct_event("1.2.826.0.1.3680043.8.498.221", "10", "400", protocol=protocol)
    report = ct_report([event], "400", "1.2.826.0.1.3680043.8.498.222")
    report.SpecificCharacterSet = character_set
    report.Manufacturer = protocol
    return report


@pytest.mark.parametrize(
    ("character_set", "protocol", "read_without_pydicom"),
    [
        ("ISO_IR 100", "Thorax Kontrastmittel für Erwachsene", True),
        ("ISO_IR 192", "Thorax – Kontrastmittel, 胸部", True),
        ("ISO_IR 144", "Грудная клетка", False),
        ("ISO_IR 144", "Chest, plain ASCII in any character set", True),
        (["", "ISO 2022 IR 87"], "胸部 CT", False),
    ],
)
def test_text_reads_as_pydicom_decodes_it(
    character_set: str | list[str], protocol: str, read_without_pydicom: bool
) -> None:
    data = _encode(_report_with_protocol(protocol, character_set), "as written")
    report = _assert_same_as_pydicom(data)
    assert report is not None
    assert report.events[0].acquisition_protocol == protocol
    assert report.device.manufacturer == protocol
    try:
        _part10.read(data).text("Manufacturer")
        declined = False
    except _part10.Declined:
        declined = True
    assert declined != read_without_pydicom


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("datetime_conversion", True),
        ("use_DS_decimal", True),
        ("reading_validation_mode", config.RAISE),
    ],
)
def test_with_pydicom_configured_otherwise_the_result_is_still_pydicoms(
    name: str, value: object
) -> None:
    data = _encode(_report_with_protocol("Thorax", "ISO_IR 100"), "as written")
    with _pydicom_setting(name, value):
        report = _assert_same_as_pydicom(data)
    assert report is not None and report.study_instance_uid == STUDY_UID


def test_concept_names_read_alike_only_in_the_same_encoding() -> None:
    """Concept name keys are remembered across files by the item's fingerprint: equal for
    the same bytes in the same encoding, different when the bytes would decode otherwise."""

    def concept_name(data: bytes) -> _part10.BytesView:
        first_item = _part10.read(data).items("ContentSequence")[0]
        return first_item.items("ConceptNameCodeSequence")[0]

    latin1 = _encode(_report_with_protocol("Thorax", "ISO_IR 100"), "as written")
    utf8 = _encode(_report_with_protocol("Thorax", "ISO_IR 192"), "as written")
    big_endian = _encode(_report_with_protocol("Thorax", "ISO_IR 100"), "big endian")
    fingerprint = concept_name(latin1).fingerprint()
    assert fingerprint is not None
    assert concept_name(latin1).fingerprint() == fingerprint
    assert concept_name(utf8).fingerprint() != fingerprint
    assert concept_name(big_endian).fingerprint() != fingerprint
    for data in (latin1, utf8, big_endian):
        _assert_same_as_pydicom(data)


def test_coded_values_shared_across_reports_decode_in_each_files_character_set() -> None:
    """Code sequences are read once per process and reused by later reports: only by
    reports in the same encoding. The same bytes of a code meaning read as UTF-8 in one
    file and as Latin-1 in the next, each as pydicom decodes them."""
    meaning = "Thorax – 胸部"
    same_bytes_as_latin1 = meaning.encode("utf-8").decode("latin-1")
    reports = []
    for character_set, code_meaning in (
        ("ISO_IR 192", meaning),
        ("ISO_IR 100", same_bytes_as_latin1),
        ("ISO_IR 192", meaning),
    ):
        dataset = _report_with_protocol("Thorax", character_set)
        region = dataset.ContentSequence[2].ContentSequence[1]  # the event's Target Region
        region.ConceptCodeSequence[0].CodeMeaning = code_meaning
        data = _encode(dataset, "as written")
        assert _read_without_pydicom(data) == _assert_same_as_pydicom(data)
        reports.append(_read_without_pydicom(data))
    regions = [report.events[0].target_region for report in reports if report is not None]
    assert [region.code_meaning for region in regions if region is not None] == [
        meaning,
        same_bytes_as_latin1,
        meaning,
    ]
