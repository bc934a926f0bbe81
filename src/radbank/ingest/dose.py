"""The dose part of ingest: the dose table rows of a de-identified object, and the
water-equivalent diameter of an axial CT image for size-specific dose.

Both run on the de-identified object, so only pseudonymised values reach the index. A
dose value that cannot be read never stops an ingest: `extract` notes it as a finding,
and a CT image whose patient cannot be measured simply has no diameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import IS

from radbank.dicom.dose import extract, extract_bytes, water_equivalent_diameter_cm
from radbank.dicom.dose.table import Patient, event_rows
from radbank.dicom.elements import held, text

__all__ = ["DW_EVERY", "DW_SAMPLE_PIXELS", "DoseReader", "dose_rows", "water_equivalent_diameter"]

# Dw is measured on the image sampled down to at most this many pixels along a side
# (every 4th pixel of a 512 x 512 image): the area of a body sampled on a 1.5-3 mm grid
# differs by well under 1% from the full image's (tests/ingest check it), at a sixteenth
# of the cost, which keeps the measurement cheap enough to run on every CT image.
DW_SAMPLE_PIXELS = 128

# Dw is measured on every DW_EVERY-th image of a series by Instance Number (1, 17, 33, ...;
# an image without one is measured): the study's SSDE uses the mean Dw over the scan range
# (AAPM Report 220 section 3), which a sample every few centimetres gives as well as every
# slice does, at a sixteenth of the cost on ingest.
DW_EVERY = 16

_UNCOMPRESSED = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
}


# CT image headers repeat their acquisition's dose values on every slice, and the index
# keeps one event per series and Irradiation Event UID (or values). After the first slice,
# the rows of that event are copied instead of read again (with the slice's own SOP
# Instance UID); what the index keeps is the same.
_SERIES_EVENTS_KEPT = 10_000
# SeriesInstanceUID, IrradiationEventUID, CTDIvol, KVP, ProtocolName, and the character
# set the text is in
_CT_IMAGE_TAGS = (0x0020000E, 0x00083010, 0x00189345, 0x00180060, 0x00181030, 0x00080005)
_MODALITY = 0x00080060
_INSTANCE_NUMBER = 0x00200013
_CTDIVOL = 0x00189345
_EXPOSURE_DOSE_SEQUENCE = 0x0040030E
_PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE = 0x52009230
_PIXEL_DATA = 0x7FE00010


class DoseReader:
    """The dose rows of de-identified objects, remembering the CT series already read."""

    def __init__(self) -> None:
        self._series: dict[tuple[bytes | str | None, ...], tuple[dict[str, Any], ...]] = {}

    def rows(
        self, dataset: Dataset, blob: bytes | Callable[[], bytes] | None = None
    ) -> tuple[dict[str, Any], ...]:
        """The rows of the de-identified `dataset`, read from its Part 10 bytes `blob` when
        given (much faster than through pydicom). `blob` may be a function that gives them,
        called only where they are read: for the first image of a CT series and for reports."""
        key = _ct_series_key(dataset)
        known = self._series.get(key) if key else None
        if known is not None:
            uid = str(dataset.get("SOPInstanceUID", "") or "") or None
            return tuple({**row, "sop_instance_uid": uid} for row in known)
        rows = dose_rows(dataset, blob() if callable(blob) else blob)
        if key and rows:
            if len(self._series) >= _SERIES_EVENTS_KEPT:
                self._series.clear()
            self._series[key] = rows
        return rows


def _ct_series_key(dataset: Dataset) -> tuple[bytes | str | None, ...] | None:
    """For a CT image whose header holds a CTDIvol: the values that name its event."""
    try:
        # By tag, from the bytes read: these run on every image.
        if text(dataset, _MODALITY).upper() != "CT" or not _has(dataset, _CTDIVOL):
            return None
        if _has(dataset, _EXPOSURE_DOSE_SEQUENCE) or _has(
            dataset, _PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE
        ):
            return None
        key = tuple(_as_held(dataset, tag) for tag in _CT_IMAGE_TAGS)
    except Exception:  # noqa: BLE001 - read it the long way
        return None
    return None if None in key else key


def _has(dataset: Dataset, tag: int) -> bool:
    return held(dataset, tag, keep_deferred=True) is not None


def _as_held(dataset: Dataset, tag: int) -> bytes | str | None:
    """An element's value as the data set holds it: the bytes read, with their byte order
    (equal bytes mean an equal value, without converting them), or the value set since,
    as text; None for a value not read yet."""
    element = held(dataset, tag)
    if element is None:
        return ""
    if isinstance(element, RawDataElement):
        if element.value is None:
            return None
        return (b"<" if element.is_little_endian else b">") + element.value
    return str(element.value or "")


def dose_rows(dataset: Dataset, blob: bytes | None = None) -> tuple[dict[str, Any], ...]:
    """The object's rows of the dose table, none when it carries no dose value; read from
    `blob`, the object's Part 10 bytes, when given."""
    report = extract(dataset) if blob is None else extract_bytes(blob)
    if report is None:
        return ()
    modality = str(dataset.get("Modality", "") or "").upper() or None
    return tuple(event_rows(report, Patient.of(dataset), modality))


def water_equivalent_diameter(dataset: Dataset) -> float | None:
    """Dw in cm of a single-frame, uncompressed axial CT image, or None when the object is
    not one, is not among the sampled images (DW_EVERY), or the patient cannot be measured
    (truncated by the field of view, no body)."""
    try:
        # The sampling first, by tag from the bytes read: it turns away most images.
        if text(dataset, _MODALITY).upper() != "CT" or not _has(dataset, _PIXEL_DATA):
            return None
        number = text(dataset, _INSTANCE_NUMBER)
        if number and (int(IS(number)) - 1) % DW_EVERY:
            return None
        image_type = [str(value).upper() for value in dataset.get("ImageType", []) or []]
        if "AXIAL" not in image_type or "LOCALIZER" in image_type:
            return None
        if int(dataset.get("NumberOfFrames", 1) or 1) != 1:
            return None
        if str(dataset.file_meta.get("TransferSyntaxUID", "")) not in _UNCOMPRESSED:
            return None
        spacing = [float(value) for value in dataset.get("PixelSpacing", []) or []]
        if len(spacing) != 2:
            return None
        pixels = dataset.pixel_array
        step = max(1, -(-max(pixels.shape) // DW_SAMPLE_PIXELS))
        return water_equivalent_diameter_cm(
            pixels[::step, ::step],
            (spacing[0] * step, spacing[1] * step),
            float(dataset.get("RescaleSlope", 1) or 1),
            float(dataset.get("RescaleIntercept", 0) or 0),
        )
    except Exception:  # noqa: BLE001 - an image that cannot be measured has no Dw
        return None
