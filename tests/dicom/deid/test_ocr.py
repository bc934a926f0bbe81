"""The OCR check with the real tesseract binary: it reads a drawn name, and nothing once blanked."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from test_pixels import FAKE_IDENTITY, draw_text, rule_for

from radbank.dicom.deid.ocr import find_burned_in_text, tesseract_available
from radbank.dicom.deid.pixels import apply_pixel_rules

needs_tesseract = pytest.mark.skipif(
    not tesseract_available(),
    reason="tesseract is not installed (Debian package tesseract-ocr)",
)


def read(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"{name} missing from pydicom / pydicom-data"
    ds = pydicom.dcmread(path)
    ds.Manufacturer = ds.get("Manufacturer") or "ACME"
    ds.ManufacturerModelName = ds.get("ManufacturerModelName") or "Scanner"
    return ds


@needs_tesseract
def test_drawn_name_is_read_and_gone_after_the_pixel_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ds = read("693_UNCR.dcm")  # 512 x 512 CT, MONOCHROME2, signed
    assert find_burned_in_text(ds) == ""
    draw_text(ds, FAKE_IDENTITY, (10, 8))

    start = time.perf_counter()
    text = find_burned_in_text(ds)
    elapsed = time.perf_counter() - start

    assert "JANE" in text and "01-01" in text
    apply_pixel_rules(ds, [rule_for(ds, (0, 0, 512, 36))])
    assert find_burned_in_text(ds) == ""
    with capsys.disabled():
        print(f"\nfind_burned_in_text: {elapsed:.2f} s for a 512 x 512 CT image")


@needs_tesseract
def test_real_ultrasound_banner_is_read_and_only_the_blanked_text_goes() -> None:
    ds = read("US1_UNCR.dcm")  # "BAPTIST MED CTR" and codes, "LYMPH NODE" lower down
    draw_text(ds, FAKE_IDENTITY, (20, 392))
    before = find_burned_in_text(ds)
    assert "JANE" in before and "MED CTR" in before and "LYMPH" in before

    apply_pixel_rules(ds, [rule_for(ds, (0, 0, 640, 108), (0, 390, 330, 26))])

    after = find_burned_in_text(ds)
    assert "JANE" not in after and "MED CTR" not in after
    assert "LYMPH" in after  # not covered by the rule, still found


@needs_tesseract
@pytest.mark.parametrize(
    ("name", "xy", "size"),
    [
        ("RG1_UNCR.dcm", (40, 40), 48),  # MONOCHROME1 radiograph: white is the lowest value
        ("CT_small.dcm", (4, 4), 12),  # 128 x 128: enlarged before reading
        ("SC_rgb.dcm", (2, 40), 12),  # 100 x 100 RGB secondary capture
    ],
)
def test_text_is_found_in_other_kinds_of_image(name: str, xy: tuple[int, int], size: int) -> None:
    ds = read(name)
    assert find_burned_in_text(ds) == ""
    draw_text(ds, "DOE^JANE", xy, size=size)
    assert "JANE" in find_burned_in_text(ds)


@needs_tesseract
def test_text_in_one_frame_of_a_multi_frame_image_is_found() -> None:
    ds = read("emri_small.dcm")  # 10 frames of 64 x 64: frames 0, 3, 6 and 9 are read
    draw_text(ds, "JANE", (4, 4), size=12, frame=9)
    assert "JANE" in find_burned_in_text(ds)
    assert find_burned_in_text(ds, max_frames=1) == ""


@needs_tesseract
def test_fragments_shorter_than_min_chars_are_not_reported() -> None:
    ds = read("693_UNCR.dcm")
    draw_text(ds, "L 12", (10, 8), size=20)
    assert find_burned_in_text(ds) == ""
    assert "12" in find_burned_in_text(ds, min_chars=2)


@needs_tesseract
def test_compressed_ultrasound_is_read() -> None:
    ds = read("US1_J2KI.dcm")  # JPEG 2000, YBR_ICT
    assert "MED CTR" in find_burned_in_text(ds)


def test_missing_tesseract_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH on which no tesseract exists
    assert not tesseract_available()
    with pytest.raises(RuntimeError, match="install the Debian package tesseract-ocr"):
        find_burned_in_text(read("CT_small.dcm"))
