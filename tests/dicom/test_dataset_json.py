"""The fast DICOM JSON of index attributes equals pydicom's, element by element."""

from __future__ import annotations

import io
import struct
import warnings

import corpus
import pydicom
import pytest

from radbank.dicom.dataset_json import BULK_VRS, index_attributes
from radbank.dicom.deid import Profile, deidentify
from radbank.synthetic import demo_studies


def _expected(dataset: pydicom.Dataset) -> dict:
    expected = {}
    for tag in dataset.keys():
        if tag.group == 0x0002 or tag in (
            0x0040A730,
            0x54000100,
            0x7FE00010,
            0x7FE00008,
            0x7FE00009,
        ):
            continue
        try:
            element = dataset[tag]
            if element.VR in BULK_VRS:
                continue
            expected[f"{tag:08X}"] = element.to_json_dict(None, 1024)
        except Exception:  # noqa: BLE001, S112 - not indexed either
            continue
    return expected


def _datasets():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus.all_files():
            try:
                yield path.name, pydicom.dcmread(path, force=True)
            except Exception:  # noqa: BLE001, S112 - unreadable files are not indexed
                continue


@pytest.mark.parametrize("deidentified", [False, True])
def test_index_attributes_equal_pydicom_on_the_corpus(deidentified: bool) -> None:
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, dataset in _datasets():
            if deidentified:
                try:
                    dataset = deidentify(dataset, Profile.named("basic-dates"), b"k" * 32).dataset
                except Exception:  # noqa: BLE001, S112 - refused objects are not indexed
                    continue
                # As ingest sees it: changed elements decoded, the rest raw.
                assert index_attributes(dataset) == _expected(dataset), name
            raw = io.BytesIO()
            try:
                dataset.save_as(raw, enforce_file_format=True)
            except Exception:  # noqa: BLE001, S112
                continue
            fast = index_attributes(pydicom.dcmread(io.BytesIO(raw.getvalue()), force=True))
            slow = _expected(pydicom.dcmread(io.BytesIO(raw.getvalue()), force=True))
            assert fast == slow, name
            compared += 1
    assert compared > 150


def test_index_attributes_of_non_latin_text() -> None:
    dataset = next(demo_studies())
    raw = io.BytesIO()
    dataset.save_as(raw, enforce_file_format=True)
    again = pydicom.dcmread(io.BytesIO(raw.getvalue()))
    assert index_attributes(again) == _expected(pydicom.dcmread(io.BytesIO(raw.getvalue())))


def _read_back(dataset: pydicom.Dataset) -> bytes:
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    raw = io.BytesIO()
    dataset.save_as(raw, enforce_file_format=True)
    return raw.getvalue()


def test_index_attributes_of_sequence_items_pydicom_reads_its_own_way() -> None:
    """Items holding what pydicom converts specially: text that is not valid in the data
    set's character set (replaced), an empty UN element of a known tag (given its VR), a
    signed LUT descriptor (its first value corrected), an item with its own character set."""
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

    dataset = Dataset()
    dataset.SOPClassUID = pydicom.uid.CTImageStorage
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    dataset.SpecificCharacterSet = "ISO_IR 192"
    item = Dataset()
    item.add(DataElement(0x00081030, "LO", b"bad \xff\xfe utf-8"))
    item.add(DataElement(0x00080070, "UN", b""))
    lut = Dataset()
    descriptor = struct.pack("<3h", -32768, 0, 16)  # as written: pydicom writes US here
    lut[0x00283002] = RawDataElement(BaseTag(0x00283002), "SS", 6, descriptor, 0, False, True)
    lut.add(DataElement(0x00283006, "US", [0, 1, 2, 3]))
    item.ModalityLUTSequence = [lut]
    own = Dataset()
    own.SpecificCharacterSet = "ISO_IR 100"
    own.CodeMeaning = "Caf\xe9"
    dataset.ReferencedStudySequence = [item, own]
    data = _read_back(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = index_attributes(pydicom.dcmread(io.BytesIO(data)))
        slow = _expected(pydicom.dcmread(io.BytesIO(data)))
    assert fast == slow
    assert "00081110" in fast  # the sequence is indexed
