"""`read_part10(bytes)` is the data set `pydicom.dcmread` makes of the same bytes, or None.

On every file of pydicom's test corpus (31 of them deliberately malformed), on the planted
CT corpus the de-identification tool reads, on files cut short, with bytes changed and with
a command set; and with pydicom's reading options changed it leaves the file to pydicom.
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

from radbank.dicom.decode import read_part10
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
    assert list(read.keys()) == list(expected.keys())
    for tag in expected.keys():
        element, expected_element = read.get_item(tag), expected.get_item(tag)
        assert type(element) is type(expected_element)
        assert element == expected_element, tag
    # compared as read (raw), not converted: a damaged VR in it must not fail the compare
    assert list(read.file_meta.items()) == list(expected.file_meta.items())
    for name in _ATTRIBUTES:
        assert getattr(read, name) == getattr(expected, name), name
    return read


def test_every_file_of_pydicoms_corpus_reads_as_pydicom_reads_it() -> None:
    read_fast = sum(
        _assert_as_pydicom_reads(path.read_bytes()) is not None for path in corpus.all_files()
    )
    assert read_fast > 100  # the plain files: the others go to pydicom


def test_the_planted_ct_corpus_is_read_without_pydicoms_reader() -> None:
    for data in planted_ct_instances(20, 2):
        assert _assert_as_pydicom_reads(data) is not None


def test_compressed_images_are_read_without_pydicoms_reader() -> None:
    """Encapsulated pixel data (undefined length, up to its delimiter) as pydicom reads it:
    a compressed image is not read twice."""
    for name in ("SC_rgb_jpeg_dcmtk.dcm", "emri_small_jpeg_2k_lossless.dcm"):
        read = _assert_as_pydicom_reads(corpus.path(name).read_bytes())
        assert read is not None, name
        assert read.get_item(0x7FE00010).length == 0xFFFFFFFF


@cache
def _planted() -> bytes:
    return next(planted_ct_instances(1, 1))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_file_cut_short_reads_as_pydicom_reads_it(data: st.DataObject) -> None:
    whole = _planted()
    cut = whole[: data.draw(st.integers(0, len(whole) - 1))]
    _assert_as_pydicom_reads(cut)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_file_with_bytes_changed_reads_as_pydicom_reads_it(data: st.DataObject) -> None:
    changed = bytearray(_planted())
    header_end = 4096  # the elements before the pixel data, where a change matters
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
