"""Quality rules run on every instance after de-identification, before it is stored.

`check(dataset)` returns a list of `Finding`s, empty when the object is fine. Each finding
has a severity, a stable code and a message naming the attribute, the object (its SOP
Instance UID when known) and what to do. The ingest pipeline decides what a severity means
for storage; this module only judges the object.

REJECT: the object cannot be archived.
- `dicomdir`: the object is a DICOMDIR (Media Storage Directory Storage, or it has a
  Directory Record Sequence). It indexes files on a medium; it is not an instance. Only
  this finding is returned for it, since the other rules do not apply to a directory.
- `uid-missing`: SOPClassUID, SOPInstanceUID, StudyInstanceUID or SeriesInstanceUID is
  absent or empty. Without them the object has no place in the study/series hierarchy.
- `uid-invalid`: one of those four is not a valid UID (digits and dots, no leading zeros
  in a component, at most 64 characters, a single value).
- `uid-reused`: SOPInstanceUID equals the StudyInstanceUID or the SeriesInstanceUID;
  the object would collide with its own study or series.
QUARANTINE: the object may show identity in its pixels, or may be damaged; it waits for a
human.
- `pixel-data-missing`: Rows and Columns (positive numbers) describe an image at the top
  level, but the object has no pixel data: none of Pixel Data (7FE0,0010), Float Pixel
  Data (7FE0,0008), Double Float Pixel Data (7FE0,0009), a Pixel Data Provider URL
  (0028,7FE0), or the Spectroscopy Data (5600,0020) that MR Spectroscopy objects give
  their Rows and Columns to. A file cut short between two elements reads as complete, and
  the pixel data is an image's last element; but some sources send image headers alone
  on purpose (dose research exports, whose dose values are the point). Held, the object
  is neither lost nor served as an image that shows nothing until a steward looks.
- `burned-in-annotation`: BurnedInAnnotation (0028,0301) is YES.
- `burned-in-risk`: the SOP class is one that often carries identity burned into the
  pixels or embedded in a document (`BURNED_IN_RISK_SOP_CLASSES`: ultrasound and
  photoacoustic, secondary capture (screen captures, dose screens), visible light video
  and photography, ophthalmic and dermoscopic photography, whole slide microscopy with its
  label images, printed film (hardcopy), encapsulated PDF and CDA) and BurnedInAnnotation
  is not NO (absent, empty or any other value).
Both messages give the two ways out: a project pixel rule for the device (they quote the
Manufacturer, ManufacturerModelName, Rows and Columns that the rule must name), which
blanks the text and sets BurnedInAnnotation NO (`radbank.dicom.deid.pixels`), or the
source confirming BurnedInAnnotation NO. A document (no Pixel Data) has only the second.

WARNING: archived, but something a user will notice is wrong.
- `modality-missing`: Modality (0008,0060) is absent or empty.
- `pixel-attributes-missing`: PixelData is present but Rows, Columns or BitsAllocated is
  absent or unusable (not a positive integer; BitsAllocated not 1 or a multiple of 8).
- `pixel-data-length`: for a native (uncompressed) transfer syntax, the PixelData length
  differs from Rows x Columns x SamplesPerPixel x BitsAllocated/8 x NumberOfFrames
  (rounded up to whole bytes for 1-bit data, two samples per pixel for YBR_FULL_422,
  one trailing pad byte allowed when that number is odd). Encapsulated pixel data is not
  checked: its fragments have no fixed length.

The rules read a handful of elements and never decode pixels, so a check costs
microseconds. They never raise on malformed values: a value that cannot be read is
reported like an invalid one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import UID, MediaStorageDirectoryStorage

from radbank.dicom.elements import held
from radbank.dicom.uids import is_valid_uid

__all__ = ["BURNED_IN_RISK_SOP_CLASSES", "Finding", "Severity", "check"]


class Severity(StrEnum):
    REJECT = "reject"
    QUARANTINE = "quarantine"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    message: str


# SOP classes whose pixels (or embedded document) commonly show patient identity, with
# their names in PS3.4 / PS3.6: images captured from a screen or a camera rather than
# reconstructed from an acquisition, and documents. Checked against the PS3.6 registry
# (2024 edition) for the ultrasound, secondary capture, visible light, hardcopy and
# encapsulated document families; 3D model documents (STL, OBJ, MTL) carry no text.
BURNED_IN_RISK_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.6": "Ultrasound Image Storage (Retired)",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.2": "Enhanced US Volume Storage",
    # Acquired and annotated on ultrasound consoles.
    "1.2.840.10008.5.1.4.1.1.6.3": "Photoacoustic Image Storage",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame Image Storage (Retired)",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
    # Printed film sheets: the film annotation names the patient.
    "1.2.840.10008.5.1.1.29": "Hardcopy Grayscale Image Storage SOP Class (Retired)",
    "1.2.840.10008.5.1.1.30": "Hardcopy Color Image Storage SOP Class (Retired)",
    "1.2.840.10008.5.1.4.1.1.77.1": "VL Image Storage - Trial (Retired)",
    "1.2.840.10008.5.1.4.1.1.77.2": "VL Multi-frame Image Storage - Trial (Retired)",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "VL Endoscopic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "Video Endoscopic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.2": "VL Microscopic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.2.1": "Video Microscopic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.3": "VL Slide-Coordinates Microscopic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": "Video Photographic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.5.1": "Ophthalmic Photography 8 Bit Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.5.2": "Ophthalmic Photography 16 Bit Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.5.5": "Wide Field Ophthalmic Photography "
    "Stereographic Projection Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.5.6": "Wide Field Ophthalmic Photography "
    "3D Coordinates Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.6": "VL Whole Slide Microscopy Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.7": "Dermoscopic Photography Image Storage",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF Storage",
    "1.2.840.10008.5.1.4.1.1.104.2": "Encapsulated CDA Storage",
}

_MEDIA_STORAGE_SOP_CLASS_UID = Tag(0x0002, 0x0002)
_TRANSFER_SYNTAX_UID = Tag(0x0002, 0x0010)
_SOP_CLASS_UID = Tag(0x0008, 0x0016)
_SOP_INSTANCE_UID = Tag(0x0008, 0x0018)
_MODALITY = Tag(0x0008, 0x0060)
_STUDY_INSTANCE_UID = Tag(0x0020, 0x000D)
_SERIES_INSTANCE_UID = Tag(0x0020, 0x000E)
_DIRECTORY_RECORD_SEQUENCE = Tag(0x0004, 0x1220)
_SAMPLES_PER_PIXEL = Tag(0x0028, 0x0002)
_PHOTOMETRIC_INTERPRETATION = Tag(0x0028, 0x0004)
_NUMBER_OF_FRAMES = Tag(0x0028, 0x0008)
_ROWS = Tag(0x0028, 0x0010)
_COLUMNS = Tag(0x0028, 0x0011)
_MANUFACTURER = Tag(0x0008, 0x0070)
_MANUFACTURER_MODEL_NAME = Tag(0x0008, 0x1090)
_BITS_ALLOCATED = Tag(0x0028, 0x0100)
_BURNED_IN_ANNOTATION = Tag(0x0028, 0x0301)
_PIXEL_DATA = Tag(0x7FE0, 0x0010)
# Where else the data that Rows and Columns describe may be: Float and Double Float Pixel
# Data, a JPIP provider URL, MR Spectroscopy Data.
_OTHER_PIXELS = (
    Tag(0x7FE0, 0x0008),
    Tag(0x7FE0, 0x0009),
    Tag(0x0028, 0x7FE0),
    Tag(0x5600, 0x0020),
)

_REQUIRED_UIDS = (
    ("SOPClassUID", "(0008,0016)", _SOP_CLASS_UID),
    ("SOPInstanceUID", "(0008,0018)", _SOP_INSTANCE_UID),
    ("StudyInstanceUID", "(0020,000D)", _STUDY_INSTANCE_UID),
    ("SeriesInstanceUID", "(0020,000E)", _SERIES_INSTANCE_UID),
)
_UNDEFINED_LENGTH = 0xFFFFFFFF
# The first item tag of encapsulated pixel data, (FFFE,E000) little endian.
_ITEM_TAG = b"\xfe\xff\x00\xe0"
_UNREADABLE = object()


def _value(ds: Dataset, tag: Tag) -> object:
    """The element's value; None when absent; _UNREADABLE when pydicom cannot convert it.

    An element still in its raw form is converted aside, not in the data set: `ds[tag]`
    would replace it by a converted element, which the Part 10 encoder then has to encode
    again instead of copying its bytes (a measurable share of ingest time).
    """
    element = held(ds, tag)
    if element is None:
        return None
    try:
        if isinstance(element, RawDataElement):
            plain = _plain_value(element)
            if plain is not None:
                return plain
            if element.VR is None or " or " in element.VR or element.value is None:
                # Implicit VR, ambiguous VR or deferred value: pydicom's own path resolves it.
                return ds[tag].value
            encoding = getattr(ds, "original_character_set", None) or "iso8859"
            return convert_raw_data_element(element, encoding=encoding, ds=ds).value
        return element.value
    except Exception:  # a malformed value is a finding, not a crash
        return _UNREADABLE


def _plain_value(element: RawDataElement) -> object:
    """The value pydicom would convert a raw element to, for the commonest forms read
    here (one US number; one CS or UI string in ASCII), without its conversion
    machinery; None for anything else."""
    raw = element.value
    if raw is None or not element.is_little_endian:
        return None
    if element.VR == "US":
        return int.from_bytes(raw, "little") if len(raw) == 2 else None
    if element.VR in ("CS", "UI") and raw.isascii() and b"\\" not in raw:
        text = raw.decode("ascii").rstrip("\0 ")
        return UID(text) if element.VR == "UI" and raw else text
    return None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _positive_int(value: object) -> int | None:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def check(dataset: Dataset) -> list[Finding]:
    """Judge one de-identified instance; an empty list means it may be stored as is."""
    sop_instance_uid = _text(_value(dataset, _SOP_INSTANCE_UID))
    where = (
        f"SOP Instance {sop_instance_uid}"
        if sop_instance_uid
        else "an object without SOPInstanceUID"
    )

    sop_class_uid = _value(dataset, _SOP_CLASS_UID)
    file_meta = getattr(dataset, "file_meta", None) or Dataset()
    if _is_dicomdir(dataset, sop_class_uid, file_meta):
        return [
            Finding(
                Severity.REJECT,
                "dicomdir",
                "The object is a DICOMDIR (Media Storage Directory), an index of the files on a "
                "medium, not an instance to archive: import the files it lists instead "
                "(for example the whole folder).",
            )
        ]

    findings = _check_uids(dataset, sop_class_uid, where)
    findings.extend(_check_burned_in(dataset, _text(sop_class_uid), where))
    if not _text(_value(dataset, _MODALITY)):
        findings.append(
            Finding(
                Severity.WARNING,
                "modality-missing",
                f"Modality (0008,0060) is missing or empty in {where}: the object will not be "
                "found by modality searches. Correct the sending system's configuration.",
            )
        )
    pixel_data = dataset.get_item(_PIXEL_DATA, keep_deferred=True)
    if pixel_data is not None:
        transfer_syntax = _text(_value(file_meta, _TRANSFER_SYNTAX_UID))
        findings.extend(_check_pixel_data(dataset, pixel_data, transfer_syntax, where))
    elif (
        _positive_int(_value(dataset, _ROWS)) is not None
        and _positive_int(_value(dataset, _COLUMNS)) is not None
        and not any(tag in dataset for tag in _OTHER_PIXELS)
    ):
        findings.append(
            Finding(
                Severity.QUARANTINE,
                "pixel-data-missing",
                f"{where} describes an image (Rows and Columns) but holds no Pixel Data "
                "(7FE0,0010): the file may have been cut short before its pixel data. "
                "Release it if the source sends image headers alone; otherwise the source "
                "should check the file it sent.",
            )
        )
    return findings


def _is_dicomdir(ds: Dataset, sop_class_uid: object, file_meta: Dataset) -> bool:
    return (
        sop_class_uid == MediaStorageDirectoryStorage
        or _value(file_meta, _MEDIA_STORAGE_SOP_CLASS_UID) == MediaStorageDirectoryStorage
        or _DIRECTORY_RECORD_SEQUENCE in ds
    )


def _check_uids(ds: Dataset, sop_class_uid: object, where: str) -> list[Finding]:
    findings = []
    valid: dict[str, str] = {}
    for keyword, tag_text, tag in _REQUIRED_UIDS:
        value = sop_class_uid if tag == _SOP_CLASS_UID else _value(ds, tag)
        if value is None or value == "":
            findings.append(
                Finding(
                    Severity.REJECT,
                    "uid-missing",
                    f"{keyword} {tag_text} is missing or empty in {where}: the object cannot be "
                    "placed in a study and series. Re-export it from the source system with all "
                    "its UIDs.",
                )
            )
        elif not isinstance(value, str) or not is_valid_uid(value):
            shown = "an unreadable value" if value is _UNREADABLE else repr(value)
            findings.append(
                Finding(
                    Severity.REJECT,
                    "uid-invalid",
                    f"{keyword} {tag_text} is {shown} in {where}, not a valid UID (one value of "
                    "digits and dots, no leading zeros, at most 64 characters). Fix the source "
                    "system, or re-export the object.",
                )
            )
        else:
            valid[keyword] = value
    instance = valid.get("SOPInstanceUID")
    for parent in ("StudyInstanceUID", "SeriesInstanceUID"):
        if instance is not None and valid.get(parent) == instance:
            findings.append(
                Finding(
                    Severity.REJECT,
                    "uid-reused",
                    f"SOPInstanceUID equals {parent} ({instance}) in {where}: every object, "
                    "series and study needs its own UID. Fix the source system's UID generation "
                    "and re-export the object.",
                )
            )
    return findings


def _check_burned_in(ds: Dataset, sop_class_uid: str, where: str) -> list[Finding]:
    value = _value(ds, _BURNED_IN_ANNOTATION)
    burned_in = _text(value).upper()
    if burned_in == "YES":
        return [
            Finding(
                Severity.QUARANTINE,
                "burned-in-annotation",
                f"BurnedInAnnotation (0028,0301) is YES in {where}: its pixels contain text that "
                f"may identify the patient. It is held in quarantine. {_ways_out(ds)}",
            )
        ]
    sop_class_name = BURNED_IN_RISK_SOP_CLASSES.get(sop_class_uid)
    if sop_class_name is not None and burned_in != "NO":
        if value is None:
            state = "missing"
        elif value is _UNREADABLE:
            state = "unreadable"
        else:
            state = f"{value!r}, not NO"
        return [
            Finding(
                Severity.QUARANTINE,
                "burned-in-risk",
                f"{where} is of SOP class {sop_class_name}, which often shows patient identity "
                f"in its pixels or document, and BurnedInAnnotation (0028,0301) is {state}. It "
                f"is held in quarantine. {_ways_out(ds)}",
            )
        ]
    return []


def _ways_out(ds: Dataset) -> str:
    """How a steward gets such an object archived, with what a pixel rule must match."""
    confirm = (
        "confirm at the source that these objects carry no identity and have the sender "
        "set BurnedInAnnotation to NO"
    )
    if _PIXEL_DATA not in ds:
        return f"It has no pixels that a pixel rule could clean: {confirm}."
    manufacturer = _text(_value(ds, _MANUFACTURER))
    model = _text(_value(ds, _MANUFACTURER_MODEL_NAME))
    rows = _positive_int(_value(ds, _ROWS))
    columns = _positive_int(_value(ds, _COLUMNS))
    shown = [repr(v) if v else "(missing)" for v in (manufacturer, model)]
    shown += [str(v) if v else "(missing)" for v in (rows, columns)]
    device = (
        f"Manufacturer {shown[0]}, ManufacturerModelName {shown[1]}, Rows {shown[2]}, "
        f"Columns {shown[3]}"
    )
    if not manufacturer or rows is None or columns is None:
        return (
            f"A pixel rule cannot match it ({device}): a rule needs Manufacturer, Rows and "
            f"Columns. Either {confirm}, or fix the sender so these attributes are present "
            "and add a pixel rule."
        )
    return (
        "Either add a pixel rule to the project for this device and image size "
        f"({device}) with the rectangles where identity is burned in, so radbank blanks "
        f"them and sets BurnedInAnnotation to NO; or {confirm}."
    )


def _check_pixel_data(
    ds: Dataset, pixel_data: DataElement | RawDataElement, transfer_syntax: str, where: str
) -> list[Finding]:
    rows = _positive_int(_value(ds, _ROWS))
    columns = _positive_int(_value(ds, _COLUMNS))
    bits_allocated = _positive_int(_value(ds, _BITS_ALLOCATED))
    if bits_allocated is not None and bits_allocated != 1 and bits_allocated % 8:
        bits_allocated = None
    if rows is None or columns is None or bits_allocated is None:
        attributes = (("Rows", rows), ("Columns", columns), ("BitsAllocated", bits_allocated))
        unusable = [name for name, number in attributes if number is None]
        return [
            Finding(
                Severity.WARNING,
                "pixel-attributes-missing",
                f"PixelData is present but {', '.join(unusable)} missing or unusable in {where}: "
                "the image cannot be displayed. Re-export it from the source system.",
            )
        ]

    length = _native_pixel_data_length(pixel_data, transfer_syntax)
    if length is None:
        return []
    frames = _positive_int(_value(ds, _NUMBER_OF_FRAMES)) or 1
    samples = _positive_int(_value(ds, _SAMPLES_PER_PIXEL)) or 1
    pixels = rows * columns * frames
    if bits_allocated == 1:
        expected = (pixels * samples + 7) // 8
    elif _text(_value(ds, _PHOTOMETRIC_INTERPRETATION)) == "YBR_FULL_422":
        # Native YBR_FULL_422 stores two samples per pixel (Cb and Cr are shared by pairs).
        expected = pixels * 2 * (bits_allocated // 8)
    else:
        expected = pixels * samples * (bits_allocated // 8)
    if length == expected or (expected % 2 and length == expected + 1):
        return []
    return [
        Finding(
            Severity.WARNING,
            "pixel-data-length",
            f"PixelData (7FE0,0010) of {where} is {length} bytes, but Rows x Columns x "
            f"SamplesPerPixel x BitsAllocated/8 x NumberOfFrames ({rows} x {columns} x {samples} "
            f"x {bits_allocated}/8 x {frames}) is {expected} bytes: the file is truncated or its "
            "image attributes are wrong. Re-export it from the source system.",
        )
    ]


@cache
def _is_compressed(transfer_syntax: str) -> bool:
    return UID(transfer_syntax).is_compressed


def _native_pixel_data_length(
    elem: DataElement | RawDataElement, transfer_syntax: str
) -> int | None:
    """PixelData's length in bytes, or None when it is encapsulated (compressed).

    `elem` comes from get_item(keep_deferred=True): a deferred value is not read from disk
    just to measure it.
    """
    if transfer_syntax and _is_compressed(transfer_syntax):
        return None
    if isinstance(elem, RawDataElement):
        if elem.length == _UNDEFINED_LENGTH:
            return None
        value = elem.value
        if value is None:
            return elem.length
    elif isinstance(elem, DataElement):
        value = elem.value
    else:
        return None
    if not isinstance(value, bytes | bytearray):
        return None
    if not transfer_syntax and value[:4] == _ITEM_TAG:
        return None
    return len(value)
