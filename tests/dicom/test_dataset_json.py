"""The fast DICOM JSON of index attributes equals pydicom's, element by element, where
pydicom follows PS3.18 Annex F; the JSON of empty values and of person names follows the
standard; WADO-RS metadata gives bulk data at any depth a BulkDataURI that leads back to it.
"""

from __future__ import annotations

import io
import struct
import warnings

import corpus
import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from radbank.dicom.dataset_json import (
    BULK_DATA_MAX_DEPTH,
    BULK_VRS,
    BulkDataPathError,
    bulk_data_element,
    index_attributes,
    metadata_json,
    parse_bulk_data_path,
)
from radbank.dicom.decode import read_part10
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
            expected[f"{tag:08X}"] = _standard(element)
        except Exception:  # noqa: BLE001, S112 - not indexed either
            continue
    return expected


_MULTI_STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UC", "UI"}


def _standard(element: DataElement) -> dict:
    """pydicom's DICOM JSON of an element, but value by value where PS3.18 departs from it:
    an empty value (padding alone) among several is null (F.2.5), where pydicom gives "" or
    fails (IS, DS, PN); a person name has its non-empty component groups only (F.2.2)."""
    if element.VR == "SQ":
        items = [{f"{t:08X}": _standard(item[t]) for t in item.keys()} for item in element.value]
        return {"vr": "SQ", "Value": items}
    if element.VR not in _MULTI_STRING_VRS or element.VM == 0:
        return element.to_json_dict(None, 1024)
    values = []
    for value in element.value if element.VM > 1 else [element.value]:
        if element.VM > 1 and isinstance(value, str) and not value.strip(" \0"):
            values.append(None)
            continue
        single = DataElement(element.tag, element.VR, value).to_json_dict(None, 1024)
        value = single.get("Value", [None])[0]
        if isinstance(value, dict):
            value = {group: text for group, text in value.items() if text} or None
        values.append(value)
    return {"vr": element.VR} if values == [None] else {"vr": element.VR, "Value": values}


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


def _decoded(dataset: pydicom.Dataset) -> pydicom.Dataset:
    """`dataset` with every element pydicom can decode decoded, in the items of its
    sequences too (what WADO-RS metadata was made of before it read values from bytes)."""
    for tag in list(dataset.keys()):
        try:
            element = dataset[tag]
        except Exception:  # noqa: BLE001, S112 - left raw: metadata says so either way
            continue
        if element.VR == "SQ":
            for item in element.value:
                _decoded(item)
    return dataset


def test_metadata_from_the_bytes_equals_the_metadata_of_decoded_elements() -> None:
    """WADO-RS metadata reads values from the bytes where it can, for every corpus file
    read as WADO-RS reads a stored one (radbank's reader, else pydicom's)."""
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus.all_files():
            data = path.read_bytes()

            def read(data: bytes = data) -> pydicom.Dataset:
                return read_part10(data) or pydicom.dcmread(io.BytesIO(data), force=True)

            try:
                slow = metadata_json(_decoded(read()), _uri)
            except Exception:  # noqa: BLE001, S112 - unreadable files are not stored
                continue
            assert metadata_json(read(), _uri) == slow, path.name
            compared += 1
    assert compared > 200


def test_metadata_of_values_left_in_the_file_equals_the_metadata_of_all_values() -> None:
    """Large objects are read for WADO-RS metadata with pydicom's deferred read; here
    every value over 1 KB of every corpus file is left in the file."""
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus.all_files():
            try:
                whole = metadata_json(_decoded(pydicom.dcmread(path)), _uri)
                deferred = pydicom.dcmread(path, defer_size=1025)  # above the inline 1 KB
            except Exception:  # noqa: BLE001, S112 - unreadable files are not stored
                continue
            assert metadata_json(deferred, _uri) == whole, path.name
            compared += 1
    assert compared > 200


def test_index_attributes_of_non_latin_text() -> None:
    dataset = next(demo_studies())
    raw = io.BytesIO()
    dataset.save_as(raw, enforce_file_format=True)
    again = pydicom.dcmread(io.BytesIO(raw.getvalue()))
    assert index_attributes(again) == _expected(pydicom.dcmread(io.BytesIO(raw.getvalue())))


@pytest.mark.parametrize(
    ("character_set", "value"),
    [
        ("ISO_IR 100", b"\x1b-A\xe9t\xe9"),  # Latin-1 designated again: "été"
        ("ISO_IR 192", b"\x1b$B;3ED\x1b(B "),  # an ISO 2022 switch in UTF-8 text
        (None, b"\x1b$B;3ED\x1b(B "),  # and without a declared character set
    ],
)
def test_text_with_escape_sequences_is_decoded_as_pydicom_decodes_it(
    character_set: str | None, value: bytes
) -> None:
    """Escape sequences switch character sets (PS3.5 6.1.2.5); radbank's conversion from
    the bytes leaves such values to pydicom, in the index and in WADO-RS metadata."""
    dataset = Dataset()
    if character_set:
        dataset.SpecificCharacterSet = character_set
    dataset.SOPClassUID, dataset.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "1.2.3"
    # Appended as bytes: pydicom's writer would decode and re-encode them without escapes.
    value += b" " * (len(value) % 2)
    data = _read_back(dataset) + b"".join(
        struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value
        for tag, vr in (
            (0x00081030, b"LO"),
            (0x00204000, b"LT"),
        )  # Study Description, Image Comments
    )
    decoded = pydicom.dcmread(io.BytesIO(data))
    if character_set == "ISO_IR 100":
        assert decoded.StudyDescription == "\u00e9t\u00e9"
    for attributes in (
        index_attributes(pydicom.dcmread(io.BytesIO(data))),
        metadata_json(read_part10(data), _uri),
    ):
        assert attributes["00081030"] == {"vr": "LO", "Value": [decoded.StudyDescription]}
        assert attributes["00204000"] == {"vr": "LT", "Value": [decoded.ImageComments]}


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


def _raw(dataset: Dataset, tag: int, vr: str, value: bytes) -> None:
    """An element as read from a file: raw bytes that pydicom decodes on first access."""
    value += b" " * (len(value) % 2)
    dataset[tag] = RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)


def _with_empty_values() -> bytes:
    dataset = Dataset()
    dataset.SOPClassUID = pydicom.uid.CTImageStorage
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    _raw(dataset, 0x00080008, "CS", b"ORIGINAL\\\\PRIMARY")  # ImageType
    _raw(dataset, 0x00081090, "LO", b"A\\\\B")  # ManufacturerModelName
    _raw(dataset, 0x00180015, "CS", b"\\")  # BodyPartExamined: two empty values
    _raw(dataset, 0x00200037, "DS", b"1\\\\0\\0\\1\\0")  # ImageOrientationPatient
    _raw(dataset, 0x00201041, "DS", b"")  # SliceLocation: empty, no value at all
    _raw(dataset, 0x00280034, "IS", b"1\\ ")  # PixelAspectRatio
    _raw(dataset, 0x00081070, "PN", b"Doe^John\\\\=Yamada\\Roe^Jane==")  # OperatorsName
    return _read_back(dataset)


# What PS3.18 F.2.5 and F.2.2 give for the elements above. Orthanc 1.10 gives the same but
# for names: {} for the empty one and "Alphabetic": "" beside "Ideographic": "Yamada".
_EMPTY_VALUES_JSON = {
    "00080008": {"vr": "CS", "Value": ["ORIGINAL", None, "PRIMARY"]},
    "00081090": {"vr": "LO", "Value": ["A", None, "B"]},
    "00180015": {"vr": "CS", "Value": [None, None]},
    "00200037": {"vr": "DS", "Value": [1.0, None, 0.0, 0.0, 1.0, 0.0]},
    "00201041": {"vr": "DS"},
    "00280034": {"vr": "IS", "Value": [1, None]},
    "00081070": {
        "vr": "PN",
        "Value": [
            {"Alphabetic": "Doe^John"},
            None,
            {"Ideographic": "Yamada"},
            {"Alphabetic": "Roe^Jane"},
        ],
    },
}


@pytest.mark.parametrize("decoded", [False, True], ids=["as-read", "decoded"])
def test_empty_values_among_several_are_null(decoded: bool) -> None:
    """PS3.18 F.2.5: an empty value in a Value array is null. Before, index attributes (the
    QIDO-RS results) and metadata gave "" for text, and dropped IS, DS and PN values with an
    empty one (pydicom fails on them): a client saw no orientation at all."""
    dataset = pydicom.dcmread(io.BytesIO(_with_empty_values()))
    if decoded:  # as de-identification leaves the elements it touched
        for tag in _EMPTY_VALUES_JSON:
            dataset[int(tag, 16)]
    attributes = index_attributes(dataset)
    metadata = metadata_json(dataset, lambda path: path)
    for tag, expected in _EMPTY_VALUES_JSON.items():
        assert attributes[tag] == expected, tag
        assert metadata[tag] == expected, tag
    # What a DICOMweb client builds from it: the values, empty ones empty.
    again = Dataset.from_json(metadata)
    assert again.ImageType == ["ORIGINAL", "", "PRIMARY"]
    assert str(again.OperatorsName[2]) == "=Yamada"


def test_empty_values_in_sequence_items_are_null_too() -> None:
    item = Dataset()
    _raw(item, 0x00080008, "CS", b"A\\\\B")
    own = Dataset()  # an item with a character set of its own: decoded by pydicom
    own.SpecificCharacterSet = "ISO_IR 100"
    _raw(own, 0x00081090, "LO", b"Caf\xe9\\\\x")
    dataset = Dataset()
    dataset.SOPClassUID = pydicom.uid.CTImageStorage
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    dataset.ReferencedImageSequence = [item, own]
    read = pydicom.dcmread(io.BytesIO(_read_back(dataset)))
    for result in (index_attributes(read), metadata_json(read, lambda path: path)):
        first, second = result["00081140"]["Value"]
        assert first["00080008"] == {"vr": "CS", "Value": ["A", None, "B"]}
        assert second["00081090"] == {"vr": "LO", "Value": ["Caf\xe9", None, "x"]}


def _uri(path: str) -> str:
    return "https://node/bulkdata/" + path


def test_bulk_data_in_sequences_gets_a_bulk_data_uri_that_leads_back_to_it() -> None:
    """Waveform Data (5400,1010) in Waveform Sequence items, 240 KB in the first, was sent
    inline in base64; now it is a BulkDataURI naming the sequence, the item (from 1, as
    Orthanc numbers them) and the tag, and the path leads back to the very value."""
    dataset = pydicom.dcmread(corpus.path("waveform_ecg.dcm"))
    metadata = metadata_json(dataset, _uri)
    items = metadata["54000100"]["Value"]
    assert [item["54001010"] for item in items] == [
        {"vr": "OW", "BulkDataURI": _uri("54000100/1/54001010")},
        {"vr": "OW", "BulkDataURI": _uri("54000100/2/54001010")},
    ]
    for number, item in enumerate(dataset.WaveformSequence, 1):
        path = parse_bulk_data_path(f"54000100/{number}/54001010")
        assert bulk_data_element(dataset, path).value == item.WaveformData
    # Small binary values stay inline, as they did.
    assert "InlineBinary" in metadata["14551001"]


def test_bulk_data_two_sequences_deep_and_beyond_the_depth_followed() -> None:
    def nested(depth: int) -> Dataset:
        dataset = Dataset()
        dataset.add_new(0x00420011, "OB", bytes(range(256)) * 8)  # EncapsulatedDocument
        for _ in range(depth):
            dataset = Dataset({0x0040A730: DataElement(0x0040A730, "SQ", [Dataset(), dataset])})
        return dataset

    deep = metadata_json(nested(2), _uri)
    leaf = deep["0040A730"]["Value"][1]["0040A730"]["Value"][1]["00420011"]
    assert leaf == {"vr": "OB", "BulkDataURI": _uri("0040A730/2/0040A730/2/00420011")}
    path = parse_bulk_data_path("0040A730/2/0040A730/2/00420011")
    assert bulk_data_element(nested(2), path).value == bytes(range(256)) * 8

    def leaf_of(metadata: dict, depth: int) -> dict:
        for _ in range(depth):
            metadata = metadata["0040A730"]["Value"][1]
        return metadata["00420011"]

    deepest = BULK_DATA_MAX_DEPTH
    assert "BulkDataURI" in leaf_of(metadata_json(nested(deepest), _uri), deepest)
    # Deeper than a bulk data path may go: inline, so that every URI given can be followed.
    assert "InlineBinary" in leaf_of(metadata_json(nested(deepest + 1), _uri), deepest + 1)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("", "8 hexadecimal"),
        ("ZZZZ", "8 hexadecimal"),
        ("54000100/1/5400101", "8 hexadecimal"),
        ("54000100/1/54001010/", "must end with a tag"),
        ("54000100/1", "must end with a tag"),
        ("54000100/0/54001010", "number from 1"),
        ("54000100/-1/54001010", "number from 1"),
        ("54000100/+1/54001010", "number from 1"),
        ("54000100/\u0661/54001010", "number from 1"),  # ARABIC-INDIC DIGIT ONE
        ("54000100/" + "9" * 30 + "/54001010", "number from 1"),
        ("/".join(["54000100/1"] * (BULK_DATA_MAX_DEPTH + 1) + ["54001010"]), "at most 32"),
        ("/".join(["54000100/1"] * 5000 + ["54001010"]), "at most 32"),
    ],
)
def test_malformed_bulk_data_paths_are_refused_saying_why(path: str, words: str) -> None:
    with pytest.raises(BulkDataPathError, match=words) as refused:
        parse_bulk_data_path(path)
    assert len(str(refused.value)) < 300


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("54000100/3/54001010", "has 2 items, no item 3"),
        ("54000100/999999999/54001010", "has 2 items, no item 999999999"),
        ("00100010/1/54001010", "00100010 is not a sequence"),  # PatientName
        ("00081111/1/54001010", "00081111 is not a sequence"),  # not in the object
        ("54000100/1/003A0200/1/54001010/1/7FE00010", "54000100/1/003A0200/1/54001010 is not"),
        ("54000100/1/003A0005", "no bulk data element 54000100/1/003A0005"),  # a US
        ("54000100/1/003A0200", "no bulk data element"),  # a sequence
        ("7FE00010", "no bulk data element 7FE00010"),
    ],
)
def test_bulk_data_paths_to_nothing_say_where_the_object_ends(path: str, words: str) -> None:
    dataset = pydicom.dcmread(corpus.path("waveform_ecg.dcm"))
    with pytest.raises(BulkDataPathError, match=words):
        bulk_data_element(dataset, parse_bulk_data_path(path))
