"""The elements ingest walks are the very ones pydicom's get_item gives, for every file of
the corpus, raw and decoded, and for values pydicom reads from disk only when asked."""

from __future__ import annotations

import warnings

import corpus
import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement

from radbank.dicom.elements import held, held_items, text


def _read_all() -> list[tuple[str, pydicom.Dataset]]:
    readable, _ = corpus.classified()
    datasets = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for file in readable:
            datasets.append((file.name, pydicom.dcmread(file)))
    return datasets


def test_every_element_of_the_corpus_is_the_one_get_item_gives() -> None:
    datasets = _read_all()
    assert len(datasets) > 200
    for name, dataset in datasets:
        # One element at a time: looking a private element up decodes its creator in place.
        tags = list(dataset.keys())
        found = []
        for tag, element in held_items(dataset):
            assert element is dataset.get_item(tag), (name, tag)
            found.append(tag)
        assert found == tags, name
        for tag in tags:
            assert held(dataset, int(tag)) is dataset.get_item(tag), (name, tag)
        assert held(dataset, 0x7FFF0010) is None  # absent


def test_a_decoded_element_is_returned_as_decoded() -> None:
    dataset = pydicom.dcmread(corpus.path("CT_small.dcm"))
    assert isinstance(held(dataset, 0x00100010), RawDataElement)
    name = dataset.PatientName  # decodes the element in place
    element = held(dataset, 0x00100010)
    assert isinstance(element, DataElement) and element.value == name


@pytest.mark.parametrize("keep_deferred", [False, True])
def test_a_deferred_value_is_read_unless_asked_to_keep_it(keep_deferred: bool) -> None:
    path = corpus.path("CT_small.dcm")
    dataset = pydicom.dcmread(path, defer_size=256)
    raw = dataset._dict[0x7FE00010]
    assert isinstance(raw, RawDataElement) and raw.value is None  # not read yet
    element = held(dataset, 0x7FE00010, keep_deferred=keep_deferred)
    expected = pydicom.dcmread(path).PixelData
    if keep_deferred:
        assert element is raw
    else:
        assert element.value == expected
        assert dict(held_items(dataset))[0x7FE00010].value == expected


def test_text_is_the_value_without_padding_read_from_the_bytes_or_as_decoded() -> None:
    dataset = pydicom.dcmread(corpus.path("CT_small.dcm"))
    assert isinstance(held(dataset, 0x00080060), RawDataElement)
    assert text(dataset, 0x00080060) == "CT" == dataset.Modality  # raw "CT", as pydicom reads it
    assert text(dataset, 0x00200013) == str(dataset.InstanceNumber)  # decoded first
    dataset.StudyID = " 42 "
    assert text(dataset, 0x00200010) == "42"
    assert text(dataset, 0x00180015) == ""  # BodyPartExamined: absent
