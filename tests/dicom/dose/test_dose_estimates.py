"""Effective dose from DLP and size-specific dose from CTDIvol and Dw, against values
computed by hand from the cited tables and formulae.

Effective dose: k of AAPM Report 96 Table 4 (Shrimpton 2006): adult chest 0.014, adult
head 0.0021, 10-year-old trunk 0.014 mSv/(mGy.cm).
SSDE: AAPM Report 204 fit f = a exp(-b Dw), 32 cm: a = 3.704369, b = 0.03671937;
16 cm: a = 1.874799, b = 0.03871313. Evaluated apart from the code (a calculator):
  f32(24 cm) = 3.704369 x exp(-0.88126488) = 1.53457
  f32(8 cm)  = 3.704369 x exp(-0.29375496) = 2.76146
  f16(15 cm) = 1.874799 x exp(-0.58069695) = 1.04897
Dw (AAPM Report 220): a water disc of radius 10 cm has Aw = pi 100 cm2, Dw = 20 cm; with
two -800 HU "lungs" of radius 3 cm inside, Aw = pi (100 - 2 x 9 x 0.8) = pi 85.6 cm2 and
Dw = 2 sqrt(85.6) = 18.504 cm.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pytest import approx

from radbank.dicom.dose import (
    CodedValue,
    DoseValue,
    effective_dose_estimate,
    ssde_conversion_factor,
    ssde_mgy,
    water_equivalent_diameter_cm,
    water_equivalent_diameter_cm_of,
)
from radbank.dicom.dose.ssde import _largest_region


def test_effective_dose_of_an_adult_chest_ct() -> None:
    dlp = DoseValue(
        500.0, "mGy.cm", "DCM:113813", "TID 10012 CT Dose Length Product Total", "1.2.3"
    )
    estimate = effective_dose_estimate(dlp, "chest")
    assert estimate.value == approx(7.0)
    assert estimate.unit == "mSv"
    assert estimate.concept == "DCM:113839"
    assert estimate.sop_instance_uid == "1.2.3"
    assert estimate.source.startswith("estimate: k = 0.014 mSv/(mGy.cm) for chest, adult")
    assert "AAPM Report 96" in estimate.source and "Shrimpton" in estimate.source


@pytest.mark.parametrize(
    ("dlp", "region", "age_band", "expected_msv"),
    [
        (1000.0, "head", "adult", 2.1),
        (1000.0, "Head & Neck", "adult", 3.1),
        (300.0, "neck", "adult", 1.77),
        (600.0, "abdomen", "adult", 9.0),
        (300.0, "chest-abdomen-pelvis", "10y", 4.2),
        (100.0, "head", "newborn", 1.1),
        (200.0, "chest", "5y", 3.6),
        (250.0, "abdomen and pelvis", "1y", 7.5),
    ],
)
def test_effective_dose_table(dlp: float, region: str, age_band: str, expected_msv: float) -> None:
    assert effective_dose_estimate(dlp, region, age_band).value == approx(expected_msv)


def test_effective_dose_refuses_what_the_table_does_not_have() -> None:
    with pytest.raises(ValueError, match="no k-factor for region 'knee'; use one of: head"):
        effective_dose_estimate(100.0, "knee")
    with pytest.raises(ValueError, match="no checked k-factor for neck at age band 5y"):
        effective_dose_estimate(100.0, "neck", "5y")
    with pytest.raises(ValueError, match="unknown age band 'teen'"):
        effective_dose_estimate(100.0, "chest", "teen")
    with pytest.raises(ValueError, match="give it in mGy.cm"):
        effective_dose_estimate(DoseValue(1.0, "Gy.m2", "DCM:122130", "x", ""), "chest")


def test_ssde_conversion_factors_from_the_report_204_fit() -> None:
    assert ssde_conversion_factor(24.0, "32") == approx(1.53457, abs=1e-5)
    assert ssde_conversion_factor(8.0, 32) == approx(2.76146, abs=1e-5)
    assert ssde_conversion_factor(15.0, "16") == approx(1.04897, abs=1e-5)
    # a 10 mGy body-phantom CTDIvol on a 24 cm patient
    assert ssde_mgy(10.0, 24.0) == approx(15.3457, abs=1e-4)
    body = CodedValue("113691", "DCM", "IEC Body Dosimetry Phantom")
    head = CodedValue("113690", "DCM", "IEC Head Dosimetry Phantom")
    assert ssde_mgy(10.0, 24.0, body) == ssde_mgy(10.0, 24.0, "32")
    assert ssde_mgy(10.0, 15.0, head) == approx(10.4897, abs=1e-4)


def test_ssde_outside_the_fit_or_with_an_unknown_phantom_is_refused() -> None:
    with pytest.raises(ValueError, match="outside 8-45 cm"):
        ssde_mgy(10.0, 50.0)
    with pytest.raises(ValueError, match="'32' or '16'"):
        ssde_mgy(10.0, 20.0, "20")


def _disc(radius_mm: float, size: int = 320) -> np.ndarray:
    """A water disc (0 HU) in air (-1000 HU), 1 mm pixels, as HU."""
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    image = np.full((size, size), -1000.0)
    image[x**2 + y**2 <= radius_mm**2] = 0.0
    return image


def test_water_disc_has_its_diameter() -> None:
    assert water_equivalent_diameter_cm(_disc(100.0), (1.0, 1.0)) == approx(20.0, rel=5e-3)


def test_lungs_count_with_their_low_weight_and_the_table_not_at_all() -> None:
    image = _disc(100.0)
    y, x = np.mgrid[0:320, 0:320] - 159.5
    for centre in (-45, 45):
        image[(x - centre) ** 2 + y**2 <= 30.0**2] = -800.0
    image[280:290, 20:300] = 200.0  # the table, below the patient, not touching
    assert water_equivalent_diameter_cm(image, (1.0, 1.0)) == approx(18.504, rel=5e-3)


def _largest_region_by_flood_fill(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of True pixels (the first found among equals), by a
    plain breadth-first flood fill: the reference for the run-based labelling."""
    seen = np.zeros_like(mask, dtype=bool)
    best: list[tuple[int, int]] = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        region, queue = [], [start]
        while queue:
            y, x = queue.pop()
            region.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                if inside and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        if len(region) > len(best):
            best = region
    result = np.zeros_like(mask, dtype=bool)
    for pixel in best:
        result[pixel] = True
    return result


def test_the_outline_is_the_largest_4_connected_region() -> None:
    rng = np.random.default_rng(20261129)
    for _ in range(400):
        mask = rng.random(tuple(rng.integers(1, 30, 2))) < rng.random()
        found = _largest_region(mask)
        assert found.sum() == _largest_region_by_flood_fill(mask).sum()
        # Regions of equal size may tie: what is found must be one connected piece of mask.
        assert (_largest_region_by_flood_fill(found) == found).all()
        assert not (found & ~mask).any()


def test_stored_values_are_rescaled_and_spacing_scales() -> None:
    stored = (_disc(50.0, 160) + 1024).astype(np.uint16)  # 0.5 mm pixels: 5 cm radius
    assert water_equivalent_diameter_cm(stored, [0.5, 0.5], 1.0, -1024.0) == approx(5.0, rel=1e-2)


def test_a_truncated_patient_is_refused_unless_accepted() -> None:
    image = np.full((100, 100), 0.0)  # the patient fills the field of view
    with pytest.raises(ValueError, match="touches the edge of the image"):
        water_equivalent_diameter_cm(image, (1.0, 1.0))
    lower_bound = water_equivalent_diameter_cm(image, (1.0, 1.0), allow_truncated=True)
    assert lower_bound == approx(2 * np.sqrt(100.0 / np.pi))
    with pytest.raises(ValueError, match="no pixel is above"):
        water_equivalent_diameter_cm(np.full((10, 10), -1000.0), (1.0, 1.0))


def test_dw_of_a_ct_image_data_set() -> None:
    image = Dataset()
    image.file_meta = FileMetaDataset()
    image.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    image.Modality = "CT"
    image.Rows, image.Columns = 320, 320
    image.BitsAllocated, image.BitsStored, image.HighBit = 16, 16, 15
    image.PixelRepresentation = 1
    image.SamplesPerPixel = 1
    image.PhotometricInterpretation = "MONOCHROME2"
    image.PixelSpacing = [1.0, 1.0]
    image.RescaleSlope, image.RescaleIntercept = 1, -1024
    image.PixelData = (_disc(100.0) + 1024).astype(np.int16).tobytes()
    assert water_equivalent_diameter_cm_of(image) == approx(20.0, rel=5e-3)
    image.Modality = "MR"
    with pytest.raises(ValueError, match="needs a CT image"):
        water_equivalent_diameter_cm_of(image)
