"""`read_part10(bytes)` is the data set `pydicom.dcmread` makes of the same bytes, or None.

On every file of pydicom's test corpus (31 of them deliberately malformed), on the planted
CT corpus the de-identification tool reads, on compressed images and sequences of undefined
length, on files cut short and with bytes changed; with pydicom's reading options changed
it leaves the file to pydicom. What radbank stores is the same whichever reader read.
"""

from __future__ import annotations

import io
import warnings
from functools import cache

import corpus
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import config
from pydicom.dataelem import RawDataElement

from radbank.dicom.decode import read_part10
from radbank.dicom.deid import Profile, deidentify
from radbank.dicom.encode import part10_bytes
from radbank.dicom.instance import Unreadable, read_instance
from radbank.synthetic import planted_ct_instances

_ATTRIBUTES = (
    "preamble",
    "original_encoding",
    "original_character_set",
    "_character_set",
    "is_little_endian",
    "is_implicit_VR",
    "filename",
    "timestamp",
    "fileobj_type",
)


def _dcmread(data: bytes) -> pydicom.FileDataset | None:
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - what pydicom cannot read, read_part10 must not read
        return None


def _assert_as_pydicom_reads(data: bytes) -> pydicom.FileDataset | None:
    """read_part10 gives None or exactly dcmread's data set: the same elements, raw and in
    the same order, the same file meta information, preamble and encoding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = read_part10(data)
        if read is None:
            return None
        expected = _dcmread(data)
    assert expected is not None, "read a file pydicom cannot read"
    _assert_same_elements(read, expected)
    # compared as read (raw), not converted: a damaged VR in it must not fail the compare
    assert list(read.file_meta.items()) == list(expected.file_meta.items())
    for name in _ATTRIBUTES:
        assert getattr(read, name) == getattr(expected, name), name
    return read


def _assert_same_elements(read: pydicom.Dataset, expected: pydicom.Dataset) -> None:
    """The same elements as read (raw values compared raw, sequences item by item): no
    value is decoded, so a damaged one cannot fail the comparison itself."""
    assert list(read.keys()) == list(expected.keys())
    assert getattr(read, "is_undefined_length_sequence_item", None) == getattr(
        expected, "is_undefined_length_sequence_item", None
    )
    for tag in expected.keys():
        element, expected_element = read.get_item(tag), expected.get_item(tag)
        assert type(element) is type(expected_element), tag
        if isinstance(element, RawDataElement) or element.VR != "SQ":
            assert element == expected_element, tag
            continue
        assert (element.VR, element.is_undefined_length, element.file_tell) == (
            expected_element.VR,
            expected_element.is_undefined_length,
            expected_element.file_tell,
        ), tag
        assert len(element.value) == len(expected_element.value), tag
        for item, expected_item in zip(element.value, expected_element.value, strict=True):
            _assert_same_elements(item, expected_item)


def test_every_file_of_pydicoms_corpus_reads_as_pydicom_reads_it() -> None:
    read_fast = sum(
        _assert_as_pydicom_reads(path.read_bytes()) is not None for path in corpus.all_files()
    )
    assert read_fast > 100  # the plain files: the others go to pydicom


def test_the_planted_ct_corpus_is_read_without_pydicoms_reader() -> None:
    for data in planted_ct_instances(20, 2):
        assert _assert_as_pydicom_reads(data) is not None


def test_compressed_images_and_undefined_length_sequences_are_read_here() -> None:
    """Encapsulated pixel data and sequences of undefined length as pydicom reads them:
    no file is read twice, by this reader and then by pydicom."""
    for name in ("SC_rgb_jpeg_dcmtk.dcm", "emri_small_jpeg_2k_lossless.dcm"):
        read = _assert_as_pydicom_reads(corpus.path(name).read_bytes())
        assert read is not None, name
        assert read.get_item(0x7FE00010).length == 0xFFFFFFFF
    read = _assert_as_pydicom_reads(corpus.path("693_UNCI.dcm").read_bytes())
    assert read is not None
    assert any(
        element.VR == "SQ" and element.is_undefined_length
        for element in map(read.get_item, read.keys())
    )


@cache
def _planted() -> bytes:
    return next(planted_ct_instances(1, 1))


@cache
def _bases() -> tuple[bytes, ...]:
    """A planted CT slice, and a file with sequences of undefined length."""
    return _planted(), corpus.path("693_UNCI.dcm").read_bytes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_file_cut_short_reads_as_pydicom_reads_it(data: st.DataObject) -> None:
    whole = data.draw(st.sampled_from(_bases()))
    cut = whole[: data.draw(st.integers(0, len(whole) - 1))]
    _assert_as_pydicom_reads(cut)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_file_with_bytes_changed_reads_as_pydicom_reads_it(data: st.DataObject) -> None:
    changed = bytearray(data.draw(st.sampled_from(_bases())))
    header_end = min(4096, len(changed) - 1)  # the elements, where a change matters
    for _ in range(data.draw(st.integers(1, 4))):
        changed[data.draw(st.integers(132, header_end))] = data.draw(st.integers(0, 255))
    _assert_as_pydicom_reads(bytes(changed))


def test_a_truncated_file_is_still_refused() -> None:
    whole = _planted()
    with pytest.raises(Unreadable, match="truncated"):
        read_instance("cut.dcm", whole[:-1000])


def test_with_pydicoms_reading_options_changed_the_file_goes_to_pydicom() -> None:
    data = _planted()
    assert read_part10(data) is not None
    before = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        assert read_part10(data) is None
    finally:
        config.settings.reading_validation_mode = before
    config.assume_implicit_vr_switch = False
    try:
        assert read_part10(data) is None
    finally:
        config.assume_implicit_vr_switch = True


def test_de_identified_output_is_the_same_whichever_reader_read_the_file() -> None:
    """What radbank stores for a file read here is byte for byte what it stores for the
    file read by dcmread (sequence items, their lengths and encodings included)."""
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus.all_files():
            data = path.read_bytes()
            if read_part10(data) is None:
                continue
            outputs = []
            for read in (read_part10, _dcmread):
                try:
                    dataset = deidentify(read(data), Profile.named("basic"), b"k" * 32).dataset
                    outputs.append(part10_bytes(dataset, data))
                except Exception as exc:  # noqa: BLE001 - the same failure both ways
                    outputs.append(type(exc).__name__)
            assert outputs[0] == outputs[1], path.name
            compared += 1
    assert compared > 150
