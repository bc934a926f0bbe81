"""A project's de-identification settings as ingest applies them: overrides, pixel rules and
the OCR check, changed between batches, validated before they are stored."""

from __future__ import annotations

import io
import re

import numpy as np
import pydicom
import pytest
from node_helpers import identified, ingest, new_project, planted_files, stored
from PIL import Image, ImageDraw, ImageFont

from radbank.app import Services
from radbank.dicom.deid.ocr import tesseract_available
from radbank.ingest import Status
from radbank.projects import InvalidProject, SettingsChange, update_settings

TEXT = "DOE^JANE 1970-01-01"
BANNER = [0, 0, 128, 24]  # x, y, width, height over the drawn text


def change(node: Services, name: str, **values: object) -> None:
    project = node.index.get_project(name)
    update_settings(node.index, project, SettingsChange(**values), trail=node.trail, actor="t")


SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def with_burned_in_text(
    data: bytes, *, flagged: bool = True, sop_class_uid: str | None = None
) -> bytes:
    """The planted CT (128 x 128) with a name drawn into its pixels; unflagged means
    BurnedInAnnotation NO (the sender claims the pixels are clean)."""
    ds = identified(data)
    if sop_class_uid:
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class_uid
    pixels = ds.pixel_array.copy()
    canvas = Image.new("L", (ds.Columns, ds.Rows), 0)
    ImageDraw.Draw(canvas).text((4, 4), TEXT, fill=255, font=ImageFont.load_default(size=12))
    pixels[np.array(canvas) > 127] = (1 << (int(ds.BitsStored) - 1)) - 1
    ds.PixelData = pixels.astype("<i2").tobytes()
    ds.BurnedInAnnotation = "YES" if flagged else "NO"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def banner_rule(data: bytes) -> dict:
    ds = identified(data)
    return {
        "name": "CT dose banner",
        "manufacturer": str(ds.Manufacturer),
        "model": str(ds.ManufacturerModelName),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "rectangles": [BANNER],
    }


def test_overrides_apply_from_the_next_batch_on(node: Services) -> None:
    new_project(node, "p")
    first, second, third = planted_files()[:3]
    [before] = ingest(node, "p", [first])
    assert "PatientWeight" not in stored(node, before)
    change(node, "p", overrides={"PatientWeight": "keep", "PatientSize": "keep"})
    [after] = ingest(node, "p", [second])
    assert stored(node, after).PatientWeight == 78
    assert stored(node, after).PatientSize == 1.72
    assert node.index.get_project("p").settings_version == 2
    change(node, "p", overrides={})
    [cleared] = ingest(node, "p", [third])
    assert "PatientWeight" not in stored(node, cleared)
    # The same patient keeps the same pseudonym whatever the overrides.
    assert {stored(node, o).PatientID for o in (before, after, cleared)} == {
        stored(node, before).PatientID
    }


def test_invalid_settings_are_refused_naming_the_setting(node: Services) -> None:
    new_project(node, "p")
    with pytest.raises(InvalidProject, match="NoSuchKeyword"):
        change(node, "p", overrides={"NoSuchKeyword": "keep"})
    with pytest.raises(InvalidProject, match="PatientWeight"):
        change(node, "p", overrides={"PatientWeight": "shred"})
    with pytest.raises(InvalidProject, match="unknown de-identification profile 'nope'"):
        change(node, "p", profile="nope")
    rule = banner_rule(planted_files()[0])
    with pytest.raises(InvalidProject, match="pixel rule 0 .*rectangles"):
        change(node, "p", pixel_rules=[{**rule, "rectangles": [[0, 0, 500, 10]]}])
    project = node.index.get_project("p")
    assert project.settings_version == 1 and project.overrides == {}
    assert [r.action for r in node.trail.records()] == ["project.create"]


def test_pixel_rules_blank_the_banner_so_the_object_is_stored(node: Services) -> None:
    new_project(node, "p")
    burned = with_burned_in_text(planted_files()[0])
    [held] = ingest(node, "p", [burned])
    assert held.status == Status.QUARANTINED and "BurnedInAnnotation" in held.reason

    change(node, "p", pixel_rules=[banner_rule(burned)])
    [outcome] = ingest(node, "p", [with_burned_in_text(planted_files()[1])])
    assert outcome.status == Status.STORED
    ds = stored(node, outcome)
    assert ds.BurnedInAnnotation == "NO"
    x, y, width, height = BANNER
    assert (ds.pixel_array[y : y + height, x : x + width] == -32768).all()
    assert (ds.pixel_array[y + height :] != -32768).any()


needs_tesseract = pytest.mark.skipif(
    not tesseract_available(), reason="tesseract is not installed (Debian tesseract-ocr)"
)


@needs_tesseract
def test_the_ocr_check_quarantines_text_left_in_the_pixels(node: Services) -> None:
    new_project(node, "p")
    change(node, "p", ocr_check=True)
    # A secondary capture whose sender claims BurnedInAnnotation NO, with a name on it.
    claimed_clean = with_burned_in_text(
        planted_files()[0], flagged=False, sop_class_uid=SECONDARY_CAPTURE
    )
    [held] = ingest(node, "p", [claimed_clean])
    assert held.status == Status.QUARANTINED
    assert re.search(r"OCR found \d+ characters of text in the pixels", held.reason)
    # The reason is kept at rest: it must not repeat what was read.
    assert "DOE" not in held.reason.upper() and "JANE" not in held.reason.upper()
    [clean] = ingest(node, "p", [planted_files()[1]])
    assert clean.status == Status.STORED

    # With a rule for the device the banner is blanked, and OCR then finds nothing.
    change(node, "p", pixel_rules=[banner_rule(claimed_clean)])
    [blanked] = ingest(
        node,
        "p",
        [with_burned_in_text(planted_files()[2], flagged=False, sop_class_uid=SECONDARY_CAPTURE)],
    )
    assert blanked.status == Status.STORED, blanked.reason
    assert (
        pydicom.dcmread(io.BytesIO(node.store.get(_blob(node, blanked)))).BurnedInAnnotation == "NO"
    )


def _blob(node: Services, outcome) -> str:  # noqa: ANN001
    project = node.index.get_project("p")
    return node.index.get_instances(project.id, [outcome.sop_instance_uid])[
        outcome.sop_instance_uid
    ].blob_key
