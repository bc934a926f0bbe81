"""Pixel rules on pydicom's real test images: the rectangle goes black, nothing else changes.

Fake identity ('DOE^JANE 1970-01-01') is drawn into the pixels with Pillow, which is a test
dependency only; radbank itself never imports it.
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRLittleEndian

from radbank.dicom.deid.pixels import (
    PixelRule,
    apply_pixel_rules,
    matching_rule,
    parse_pixel_rules,
)
from radbank.dicom.quality import check

DOCS = Path(__file__).resolve().parents[3] / "docs" / "burned-in.md"
FAKE_IDENTITY = "DOE^JANE 1970-01-01"


def read(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"{name} missing from pydicom / pydicom-data"
    return pydicom.dcmread(path)


def draw_text(
    ds: Dataset, text: str, xy: tuple[int, int], *, size: int = 16, frame: int | None = None
) -> None:
    """Burn `text` into native little-endian pixels at full display brightness.

    Every frame, or only `frame`; white is the highest value of the pixel range (the lowest
    for MONOCHROME1, where low values are bright).
    """
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    pixels = ds.pixel_array.copy()
    canvas = Image.new("L", (ds.Columns, ds.Rows), 0)
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(canvas).text(xy, text, fill=255, font=font)
    glyphs = np.array(canvas) > 127
    bits = int(ds.BitsStored)
    if ds.PixelRepresentation == 1:
        lowest, highest = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lowest, highest = 0, (1 << bits) - 1
    white = lowest if ds.PhotometricInterpretation == "MONOCHROME1" else highest
    frames = pixels[np.newaxis] if int(ds.get("NumberOfFrames") or 1) == 1 else pixels
    for index, image in enumerate(frames):
        if frame is None or index == frame:
            image[glyphs] = white
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()


def rule_for(ds: Dataset, *rectangles: tuple[int, int, int, int], **changes: object) -> PixelRule:
    fields: dict[str, object] = {
        "manufacturer": str(ds.Manufacturer),
        "model": str(ds.ManufacturerModelName),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "rectangles": rectangles,
        "name": "test banner",
    }
    fields.update(changes)
    return PixelRule(**fields)  # type: ignore[arg-type]


def inside(
    shape: tuple[int, ...], frames: int, *rectangles: tuple[int, int, int, int]
) -> np.ndarray:
    """Boolean mask over pixel_array's shape: True inside the rectangles, in every frame."""
    mask = np.zeros(shape, bool)
    for x, y, width, height in rectangles:
        window = (slice(y, y + height), slice(x, x + width))
        mask[(slice(None), *window) if frames > 1 else window] = True
    return mask


def written_and_read(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def test_rule_blanks_the_banner_of_a_real_ultrasound_image() -> None:
    ds = read("US1_UNCR.dcm")  # GE LOGIQ 700: "BAPTIST MED CTR" and codes in its top banner
    draw_text(ds, FAKE_IDENTITY, (20, 392))
    before = ds.pixel_array.copy()
    rectangles = ((0, 0, 640, 108), (0, 390, 330, 26))
    rule = rule_for(ds, *rectangles, manufacturer="g.e. medical systems ", model="logiq 700")
    findings = check(ds)
    assert [f.code for f in findings] == ["burned-in-risk"]

    assert apply_pixel_rules(ds, [rule]) is rule

    after = ds.pixel_array
    mask = inside(after.shape, 1, *rectangles)
    assert (after[mask] == 0).all()
    assert np.array_equal(after[~mask], before[~mask])
    assert (before[mask] != 0).any()
    assert ds.BurnedInAnnotation == "NO"
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert check(ds) == []
    assert np.array_equal(written_and_read(ds).pixel_array, after)


@pytest.mark.parametrize(
    ("name", "black"),
    [
        ("693_UNCR.dcm", -8192),  # CT, MONOCHROME2, signed, 14 of 16 bits stored
        ("RG1_UNCR.dcm", 32767),  # CR, MONOCHROME1: white is low, black the highest value
        ("MR_small_bigendian.dcm", -32768),  # Explicit VR Big Endian, 16 bits signed
        ("emri_small.dcm", 0),  # enhanced MR, 10 frames
        ("liver.dcm", 0),  # 1-bit segmentation, 3 frames packed across frame boundaries
        ("SC_rgb_2frame.dcm", 0),  # RGB, 2 frames
        ("SC_rgb_16bit.dcm", 0),
        ("color-pl.dcm", 0),  # RGB, PlanarConfiguration 1 (colour by plane)
        ("ExplVR_BigEnd.dcm", 0),  # ultrasound RGB, big endian, PlanarConfiguration 1
        ("examples_palette.dcm", 0),  # Philips ultrasound, PALETTE COLOR: darkest entry
    ],
)
def test_native_layouts_blank_exactly_the_rectangle_in_every_frame(name: str, black: int) -> None:
    ds = read(name)
    ds.Manufacturer = ds.get("Manufacturer") or "ACME"
    ds.ManufacturerModelName = ds.get("ManufacturerModelName") or "Scanner"
    syntax = ds.file_meta.TransferSyntaxUID
    before = ds.pixel_array.copy()
    frames = int(ds.get("NumberOfFrames") or 1)
    third_x, third_y = ds.Columns // 3, ds.Rows // 3
    rectangles = ((third_x + 1, third_y, third_x, third_y), (ds.Columns - 5, ds.Rows - 3, 5, 3))

    assert apply_pixel_rules(ds, [rule_for(ds, *rectangles)]) is not None

    after = ds.pixel_array
    mask = inside(after.shape, frames, *rectangles)
    assert (before[mask] != black).any(), "the rectangle must hold something to blank"
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        assert (apply_color_lut(after[mask], ds) == 0).all()
    assert (after[mask] == black).all()
    assert np.array_equal(after[~mask], before[~mask])
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.BurnedInAnnotation == "NO"
    assert np.array_equal(written_and_read(ds).pixel_array, after)


def test_native_ybr_full_422_blanks_whole_pixel_pairs() -> None:
    # Native YBR_FULL_422 shares Cb and Cr between two pixels: a rectangle starting or ending
    # on an odd column is widened to the whole pair, never narrowed.
    ds = read("SC_ybr_full_422_uncompressed.dcm")
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "Capture"
    before = ds.pixel_array.copy()
    apply_pixel_rules(ds, [rule_for(ds, (11, 4, 20, 10))])
    after = ds.pixel_array  # pydicom converts YBR to RGB
    widened = inside(after.shape, 1, (10, 4, 22, 10))
    assert (after[widened] == 0).all()
    assert np.array_equal(after[~widened], before[~widened])


@pytest.mark.parametrize(
    ("name", "lossy"),
    [
        ("JPEG2000.dcm", "01"),  # secondary capture of a GE MG, JPEG 2000 lossy, signed 16 bit
        ("US1_J2KR.dcm", None),  # ultrasound, JPEG 2000 reversible: stays not lossy
        ("SC_rgb_jpeg_dcmtk.dcm", "01"),  # JPEG baseline, YBR_FULL
        ("examples_ybr_color.dcm", "01"),  # ultrasound, JPEG baseline YBR_FULL_422, 30 frames
        ("SC_rgb_rle_2frame.dcm", None),  # RLE, decodable without any plugin
        # Through imagecodecs (radbank.dicom.codestreams):
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", None),  # JPEG Lossless SV1
        ("SC_rgb_jpeg_gdcm.dcm", None),  # JPEG Lossless SV1, RGB
        ("MR_small_jpeg_ls_lossless.dcm", None),  # JPEG-LS, signed
        ("JPGExtended.dcm", "01"),  # 12-bit JPEG Extended
    ],
)
def test_compressed_pixels_are_decoded_blanked_and_stored_native(
    name: str, lossy: str | None
) -> None:
    ds = read(name)
    ds.Manufacturer = ds.get("Manufacturer") or "ACME"
    ds.ManufacturerModelName = ds.get("ManufacturerModelName") or "Scanner"
    sop_instance_uid = ds.SOPInstanceUID
    lossy_before = ds.get("LossyImageCompression")
    decoded = ds.pixel_array.copy()  # RGB for YBR sources, as stored afterwards
    frames = int(ds.get("NumberOfFrames") or 1)
    rectangle = (3, 5, ds.Columns // 2, ds.Rows // 5)

    apply_pixel_rules(ds, [rule_for(ds, rectangle)])

    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPInstanceUID == sop_instance_uid
    stored = written_and_read(ds)
    after = stored.pixel_array
    mask = inside(after.shape, frames, rectangle)
    black = -32768 if stored.PixelRepresentation == 1 else 0
    assert (decoded[mask] != black).any(), "the rectangle must hold something to blank"
    assert (after[mask] == black).all()
    assert np.array_equal(after[~mask], decoded[~mask])
    assert stored.PhotometricInterpretation in ("MONOCHROME2", "RGB")
    assert stored.BurnedInAnnotation == "NO"
    if lossy == "01":
        assert stored.LossyImageCompression == "01"
    else:
        assert stored.get("LossyImageCompression") == lossy_before
    assert check(stored) == []


def test_lossy_source_without_its_flag_is_marked_lossy_once_native() -> None:
    # Once native, the transfer syntax no longer says the pixels went through JPEG.
    ds = read("SC_rgb_jpeg_dcmtk.dcm")
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "Capture"
    del ds.LossyImageCompression
    del ds.LossyImageCompressionMethod
    apply_pixel_rules(ds, [rule_for(ds, (0, 0, 10, 10))])
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_10918_1"


def _as_mpeg2(ds: Dataset) -> None:
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"


def _rows_halved(ds: Dataset) -> None:
    ds.Rows //= 2


# Video has no decoder here; a JPEG-LS image whose header says half the rows its codestream
# holds is refused by the decoder (GDCM aborted the process on such a mismatch).
@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", _as_mpeg2, "no decoder"),
        ("MR_small_jpeg_ls_lossless.dcm", _rows_halved, "codestream holds 64 x 64 pixels"),
    ],
)
def test_undecodable_pixels_raise_naming_the_transfer_syntax_and_change_nothing(
    name: str, change: Callable[[Dataset], None], reason: str
) -> None:
    ds = read(name)
    change(ds)
    syntax = ds.file_meta.TransferSyntaxUID
    ds.Manufacturer = ds.get("Manufacturer") or "ACME"
    ds.ManufacturerModelName = ds.get("ManufacturerModelName") or "Scanner"
    ds.BurnedInAnnotation = "YES"
    pixel_data = ds.PixelData
    with pytest.raises(ValueError) as error:
        apply_pixel_rules(ds, [rule_for(ds, (0, 0, 8, 8))])
    message = str(error.value)
    assert str(syntax) in message and syntax.name in message and reason in message
    assert ds.SOPInstanceUID in message and "test banner" in message
    assert ds.PixelData == pixel_data
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.BurnedInAnnotation == "YES"


@pytest.mark.parametrize(
    "change",
    [
        {"model": "LOGIQ 9"},
        {"manufacturer": "Philips Medical Systems"},
        {"rows": 600, "rectangles": ((0, 0, 640, 108),)},
        {"columns": 800},
        {"sop_class_uids": ("1.2.840.10008.5.1.4.1.1.7",)},  # secondary capture only
    ],
)
def test_rule_for_another_device_size_or_class_changes_nothing(change: dict[str, object]) -> None:
    ds = read("US1_UNCR.dcm")
    untouched = copy.deepcopy(ds)
    rule = rule_for(ds, (0, 0, 640, 108), **change)
    assert matching_rule(ds, [rule]) is None
    assert apply_pixel_rules(ds, [rule]) is None
    assert ds == untouched
    assert "BurnedInAnnotation" not in ds
    assert [f.code for f in check(ds)] == ["burned-in-risk"]


def test_any_model_rule_and_the_first_match_wins() -> None:
    ds = read("US1_UNCR.dcm")
    specific = rule_for(ds, (0, 0, 640, 108), name="LOGIQ 700 banner")
    any_model = rule_for(ds, (0, 0, 640, 50), model=None, name="GE banner")
    assert matching_rule(ds, [specific, any_model]) is specific
    ds.ManufacturerModelName = "LOGIQ 9"
    assert matching_rule(ds, [specific, any_model]) is any_model
    del ds.ManufacturerModelName
    assert matching_rule(ds, [specific, any_model]) is any_model


def test_burned_in_annotation_yes_passes_quality_after_the_rule() -> None:
    ds = read("693_UNCR.dcm")
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "CT 1"
    ds.BurnedInAnnotation = "YES"
    assert [f.code for f in check(ds)] == ["burned-in-annotation"]
    apply_pixel_rules(ds, [rule_for(ds, (0, 0, 512, 40))])
    assert check(ds) == []


def test_documented_example_parses() -> None:
    example = re.search(r"```json\n(.*?)```", DOCS.read_text(), re.S)
    assert example is not None, "docs/burned-in.md has no ```json example"
    rules = parse_pixel_rules(json.loads(example.group(1)))
    ds = read("US1_UNCR.dcm")
    rule = apply_pixel_rules(ds, rules)
    assert rule is not None and rule.name == rules[0].name
    assert check(ds) == []


VALID = {
    "name": "LOGIQ 700 banner",
    "manufacturer": "G.E. Medical Systems",
    "model": "LOGIQ 700",
    "rows": 480,
    "columns": 640,
    "rectangles": [[0, 0, 640, 108]],
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"rows": None}, "field 'rows' must be an integer"),
        ({"rows": "480"}, "field 'rows' must be an integer"),
        ({"columns": True}, "field 'columns' must be an integer"),
        ({"columns": 0}, "field 'columns' must be an integer from 1 to 65535"),
        ({"manufacturer": " "}, "field 'manufacturer' must be a non-empty string"),
        ({"model": ""}, "field 'model' must be a non-empty string, or null"),
        ({"name": 7}, "field 'name' must be a non-empty string"),
        ({"rectangles": []}, "field 'rectangles' is empty"),
        ({"rectangles": [0, 0, 640, 108]}, "field 'rectangles'[0] must be four integers"),
        ({"rectangles": [[0, 0, 640]]}, "field 'rectangles'[0] must be four integers"),
        ({"rectangles": [[0, 0, 640, 1.5]]}, "field 'rectangles'[0] must be four integers"),
        ({"rectangles": [[0, 0, 10, 10], [-1, 0, 10, 10]]}, "field 'rectangles'[1]"),
        ({"rectangles": [[0, 0, 0, 10]]}, "width and height more than 0"),
        ({"rectangles": [[600, 0, 41, 10]]}, "reaches column 641"),
        ({"rectangles": [[0, 470, 10, 11]]}, "outside the 640 x 480 image"),
        ({"sop_class_uids": "1.2.3"}, "field 'sop_class_uids' must be a list"),
        ({"sop_class_uids": ["1.2.03"]}, "field 'sop_class_uids' holds '1.2.03', not a valid UID"),
        ({"colums": 640}, "unknown field 'colums'"),
    ],
)
def test_invalid_rule_names_the_rule_and_the_field(
    change: dict[str, object], expected: str
) -> None:
    rule = {**VALID, **change}
    with pytest.raises(ValueError) as error:
        parse_pixel_rules([{**VALID, "name": "first", "model": "other"}, rule])
    message = str(error.value)
    assert message.startswith("pixel rule 1")
    assert expected in message


def test_missing_field_and_wrong_shapes_are_named() -> None:
    without_rows = {key: value for key, value in VALID.items() if key != "rows"}
    with pytest.raises(
        ValueError, match=r"pixel rule 0 \('LOGIQ 700 banner'\): missing field 'rows'"
    ):
        parse_pixel_rules([without_rows])
    with pytest.raises(ValueError, match="pixel rule 0 must be an object"):
        parse_pixel_rules([["G.E.", 480, 640]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="must be a list of rule objects"):
        parse_pixel_rules(VALID)  # type: ignore[arg-type]


def test_rule_that_never_applies_is_refused() -> None:
    generic = {**VALID, "name": "any GE", "model": None}
    with pytest.raises(ValueError) as error:
        parse_pixel_rules([generic, VALID])
    assert "pixel rule 1 ('LOGIQ 700 banner') never applies" in str(error.value)
    assert "pixel rule 0 ('any GE')" in str(error.value)
    assert len(parse_pixel_rules([VALID, generic])) == 2


def test_parsed_rule_is_immutable_and_hashable() -> None:
    (rule,) = parse_pixel_rules([VALID])
    assert rule.rectangles == ((0, 0, 640, 108),)
    assert rule.model == "LOGIQ 700" and rule.sop_class_uids == ()
    assert {rule: 1}[rule] == 1
