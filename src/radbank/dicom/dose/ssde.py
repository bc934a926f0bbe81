"""Size-specific dose estimate from an axial CT image: AAPM Reports 220 and 204.

Water-equivalent diameter (AAPM Report 220, "Use of Water Equivalent Diameter for
Calculating Patient Size and Size-Specific Dose Estimates (SSDE) in CT", 2014):

    Aw = sum over the patient's pixels of (CT number / 1000 + 1) x pixel area
    Dw = 2 x sqrt(Aw / pi)

Report 220 leaves the outline to the implementation. Here the patient is the largest
4-connected region above a threshold (-500 HU by default: air is near -1000 HU, fat near
-100), with the regions it encloses filled in, so the lungs and bowel gas count with
their low weights as Report 220 intends, while the table, unless it touches the patient,
and the air around are left out.

SSDE (AAPM Report 204, "Size-Specific Dose Estimates (SSDE) in Pediatric and Adult Body
CT Examinations", 2011): SSDE = f x CTDIvol, with the report's exponential fit of the
conversion factor to the effective diameter, f = a x exp(-b x D), and Report 220's
advice to use Dw for D:
- CTDIvol in the 32 cm phantom: a = 3.704369, b = 0.03671937
- CTDIvol in the 16 cm phantom: a = 1.874799, b = 0.03871313
The fit is given for diameters of 8 to 45 cm; outside that range there is no estimate.
"""

from __future__ import annotations

import math

import numpy as np
from pydicom.dataset import Dataset

from radbank.dicom.dose import codes as c
from radbank.dicom.dose.model import CodedValue

__all__ = [
    "TG204_FIT",
    "TG204_RANGE_CM",
    "ssde_conversion_factor",
    "ssde_mgy",
    "water_equivalent_diameter_cm",
    "water_equivalent_diameter_cm_of",
]

TG204_FIT: dict[str, tuple[float, float]] = {
    "32": (3.704369, 0.03671937),
    "16": (1.874799, 0.03871313),
}
TG204_RANGE_CM = (8.0, 45.0)


def water_equivalent_diameter_cm(
    pixel_array: np.ndarray,
    pixel_spacing_mm: tuple[float, float] | list[float],
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    threshold_hu: float = -500.0,
    allow_truncated: bool = False,
) -> float:
    """Dw in cm of one axial CT image (stored pixel values, rescaled to HU here).

    Raises ValueError when no pixel reaches the threshold, or when the patient touches
    the edge of the image: then part of the patient is outside the reconstructed field of
    view and Dw is too small (Report 220 section 4); `allow_truncated=True` returns that
    lower bound anyway.
    """
    pixels = np.asarray(pixel_array)
    if pixels.ndim != 2 or pixels.size == 0:
        raise ValueError(f"one 2D image is needed, not an array of shape {pixels.shape}")
    row_spacing, column_spacing = (float(value) for value in pixel_spacing_mm)
    if not (row_spacing > 0 and column_spacing > 0):
        raise ValueError(f"pixel spacing must be positive, not {pixel_spacing_mm}")
    hounsfield = pixels.astype(np.float64) * float(rescale_slope) + float(rescale_intercept)
    body = _largest_region(hounsfield > threshold_hu)
    if not body.any():
        raise ValueError(f"no pixel is above {threshold_hu} HU: there is no patient to measure")
    patient = _fill_enclosed(body)
    touches_edge = bool(
        patient[0, :].any() or patient[-1, :].any() or patient[:, 0].any() or patient[:, -1].any()
    )
    if touches_edge and not allow_truncated:
        raise ValueError(
            "the patient touches the edge of the image, so part of it is outside the field "
            "of view and Dw would be too small; use an image with the whole patient, or pass "
            "allow_truncated=True to accept the lower bound"
        )
    # Pixels below -1000 HU (noise in air pockets) would count negatively.
    weights = np.clip(hounsfield[patient] / 1000.0 + 1.0, 0.0, None)
    area_cm2 = float(weights.sum()) * row_spacing * column_spacing / 100.0
    return 2.0 * math.sqrt(area_cm2 / math.pi)


def water_equivalent_diameter_cm_of(
    dataset: Dataset, threshold_hu: float = -500.0, allow_truncated: bool = False
) -> float:
    """Dw in cm of a single-frame axial CT image data set (pixels decoded by pydicom)."""
    modality = str(dataset.get("Modality", "")).upper()
    if modality != "CT":
        raise ValueError(f"Dw needs a CT image; this object's Modality is {modality or 'absent'}")
    spacing = dataset.get("PixelSpacing")
    if not spacing or len(spacing) != 2:
        raise ValueError("the image has no Pixel Spacing (0028,0030); Dw cannot be measured")
    if int(dataset.get("NumberOfFrames", 1) or 1) != 1:
        raise ValueError("Dw is measured on one axial image; this object has several frames")
    return water_equivalent_diameter_cm(
        dataset.pixel_array,
        [float(value) for value in spacing],
        float(dataset.get("RescaleSlope", 1) or 1),
        float(dataset.get("RescaleIntercept", 0) or 0),
        threshold_hu=threshold_hu,
        allow_truncated=allow_truncated,
    )


def _phantom(phantom: str | int | CodedValue) -> str:
    if isinstance(phantom, CodedValue):
        if phantom.key == c.IEC_BODY_DOSIMETRY_PHANTOM:
            return "32"
        if phantom.key == c.IEC_HEAD_DOSIMETRY_PHANTOM:
            return "16"
        raise ValueError(
            f"CTDIw phantom {phantom.code_meaning or phantom.key} is neither the IEC body "
            "(32 cm) nor the IEC head (16 cm) phantom; Report 204 has no factor for it"
        )
    name = str(phantom).strip().removesuffix("cm").strip()
    if name not in TG204_FIT:
        raise ValueError(f"phantom must be '32' or '16' (cm), not {phantom!r}")
    return name


def ssde_conversion_factor(dw_cm: float, phantom: str | int | CodedValue = "32") -> float:
    """f = a x exp(-b x Dw) of AAPM Report 204 for the phantom of the CTDIvol."""
    low, high = TG204_RANGE_CM
    if not low <= dw_cm <= high:
        raise ValueError(
            f"Dw {dw_cm:.1f} cm is outside {low:g}-{high:g} cm, the range of the Report 204 "
            "fit; there is no size-specific estimate for it"
        )
    a, b = TG204_FIT[_phantom(phantom)]
    return a * math.exp(-b * dw_cm)


def ssde_mgy(ctdivol_mgy: float, dw_cm: float, phantom: str | int | CodedValue = "32") -> float:
    """SSDE in mGy: the CTDIvol (mGy, measured in `phantom`) times the Report 204 factor.

    `phantom` is "32" or "16" (cm), or the CTDIw Phantom Type code of the event.
    """
    if ctdivol_mgy < 0 or ctdivol_mgy != ctdivol_mgy:
        raise ValueError(f"CTDIvol must be a non-negative number of mGy, not {ctdivol_mgy}")
    return ctdivol_mgy * ssde_conversion_factor(dw_cm, phantom)


def _all_runs(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """Per row, the [start, end) column ranges of its True pixels, left to right (found for
    the whole mask at once: one numpy pass instead of one per row)."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    rows, columns = np.nonzero(np.diff(padded, axis=1))  # row-major: starts and ends alternate
    runs: list[list[tuple[int, int]]] = [[] for _ in range(mask.shape[0])]
    row_list, column_list = rows.tolist(), columns.tolist()
    for at in range(0, len(row_list), 2):
        runs[row_list[at]].append((column_list[at], column_list[at + 1]))
    return runs


def _label_runs(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The runs of the mask as (row, start, end, region), 4-connected regions found by
    union-find over overlapping runs of consecutive rows (numpy has no labelling)."""
    parent: list[int] = []

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    runs: list[tuple[int, int, int, int]] = []
    previous: list[tuple[int, int, int]] = []
    for row_index, row_runs in enumerate(_all_runs(mask)):
        current = []
        pointer = 0
        for start, end in row_runs:
            label = len(parent)
            parent.append(label)
            while pointer < len(previous) and previous[pointer][1] <= start:
                pointer += 1
            scan = pointer
            while scan < len(previous) and previous[scan][0] < end:
                a, b = root(previous[scan][2]), root(label)
                if a != b:
                    parent[b] = a
                scan += 1
            current.append((start, end, label))
        runs.extend((row_index, start, end, label) for start, end, label in current)
        previous = current
    return [(row, start, end, root(label)) for row, start, end, label in runs]


def _largest_region(mask: np.ndarray) -> np.ndarray:
    runs = _label_runs(mask)
    result = np.zeros_like(mask, dtype=bool)
    if not runs:
        return result
    sizes: dict[int, int] = {}
    for _, start, end, region in runs:
        sizes[region] = sizes.get(region, 0) + end - start
    largest = max(sizes, key=lambda region: sizes[region])
    for row, start, end, region in runs:
        if region == largest:
            result[row, start:end] = True
    return result


def _fill_enclosed(region: np.ndarray) -> np.ndarray:
    """The region with every background area it encloses (not reaching the edge) filled."""
    background = _label_runs(~region)
    last_row, width = region.shape[0] - 1, region.shape[1]
    outside = {
        label
        for row, start, end, label in background
        if row in (0, last_row) or start == 0 or end == width
    }
    filled = np.ones_like(region, dtype=bool)
    for row, start, end, label in background:
        if label in outside:
            filled[row, start:end] = False
    return filled
