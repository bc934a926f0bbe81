"""Rendering of stored objects whose display attributes are malformed: a RenderError that
names the instance (the API's 406), never another exception (a 500)."""

from __future__ import annotations

from collections.abc import Callable

import corpus
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radbank.dicom.rendering import RenderError, RenderOptions, render


def _two_slopes(ds: Dataset) -> None:
    group = Dataset()
    transformation = Dataset()
    transformation.RescaleSlope = [1, 2]
    transformation.RescaleIntercept = 0
    group.PixelValueTransformationSequence = Sequence([transformation])
    ds.SharedFunctionalGroupsSequence = Sequence([group])


def _groups_not_a_sequence(ds: Dataset) -> None:
    ds.add_new(0x52009229, "OB", b"\x01\x02")  # SharedFunctionalGroupsSequence as bytes


def _voi_lut_without_descriptor(ds: Dataset) -> None:
    del ds.WindowCenter, ds.WindowWidth
    item = Dataset()
    item.LUTData = [0, 1, 2]
    ds.VOILUTSequence = Sequence([item])


def _modality_lut_without_data(ds: Dataset) -> None:
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.ModalityLUTType = "HU"
    ds.ModalityLUTSequence = Sequence([item])


def _palette_without_tables(ds: Dataset) -> None:
    for keyword in list(ds.dir("PaletteColorLookupTable")):
        delattr(ds, keyword)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("MR_small.dcm", _two_slopes),
        ("MR_small.dcm", _groups_not_a_sequence),
        ("MR_small.dcm", _voi_lut_without_descriptor),
        ("MR_small.dcm", _modality_lut_without_data),
        ("OBXXXX1A.dcm", _palette_without_tables),
    ],
)
def test_malformed_display_attributes_are_a_render_error(
    name: str, change: Callable[[Dataset], None]
) -> None:
    dataset = pydicom.dcmread(corpus.path(name))
    change(dataset)
    with pytest.raises(RenderError) as refused:
        render(dataset, 0, "image/png", RenderOptions())
    assert dataset.SOPInstanceUID in str(refused.value)
