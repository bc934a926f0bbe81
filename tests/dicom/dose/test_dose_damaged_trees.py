"""extract() never raises, whatever is wrong in a content tree: items without codes or
values, bytes where numbers, UIDs or dates belong, missing sequences, a tree that contains
itself. Damage is done to synthetic reports and, where present, to the vendor files."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable

from dose_helpers import (
    DAMAGE,
    RDSR,
    content_items,
    ct_event,
    ct_report,
    damage,
    raw_element,
    vendor_file,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radbank.dicom.dose import DoseReport, extract, merge

_VENDOR = [
    "CT-RDSR-Siemens_Flash-TAP-SS.dcm",
    "RF-RDSR-Philips_Allura.dcm",
    "MG-RDSR-Hologic_2D.dcm",
    "NM-RRDSR-Siemens.dcm",
]


def _bases() -> list[Dataset]:
    bases = [
        ct_report(
            [
                ct_event("1.2.826.0.1.3680043.8.498.201", "10", "400"),
                ct_event("1.2.826.0.1.3680043.8.498.202", "4", "80"),
            ],
            "480",
            "1.2.826.0.1.3680043.8.498.203",
        )
    ]
    if RDSR.is_dir():
        bases.extend(vendor_file(name) for name in _VENDOR)
    return bases


BASES = _bases()


def _check(report: DoseReport | None) -> None:
    if report is None:
        return
    values = [v for event in report.events for v in event.dose_values().values()]
    values += [
        v
        for v in (report.ct_dlp_total_mgycm, report.dap_total_gym2, report.dose_rp_total_mgy)
        if v is not None
    ]
    for value in values:
        assert isinstance(value.value, float) and math.isfinite(value.value), value
    merge([report, report])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_extract_never_raises_on_damaged_content_trees(data: st.DataObject) -> None:
    dataset = copy.deepcopy(data.draw(st.sampled_from(BASES)))
    items = content_items(dataset)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(DAMAGE))
        item = items[data.draw(st.integers(0, len(items) - 1))]
        junk = data.draw(st.binary(max_size=24))
        damage(kind, item, dataset, junk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values we made
        _check(extract(dataset))


def test_a_report_whose_tree_contains_itself_is_read_to_a_bounded_depth() -> None:
    dataset = copy.deepcopy(BASES[0])
    dataset.ContentSequence[1].ContentSequence = Sequence([dataset])
    report = extract(dataset)
    assert report is not None
    assert report.findings_with("unreadable-item")


def test_extract_never_raises_on_a_data_set_that_is_not_dicom_at_all() -> None:
    broken: list[Callable[[], Dataset]] = [Dataset]

    def raw_sequence() -> Dataset:
        dataset = Dataset()
        raw_element(dataset, 0x0040A730, "SQ", b"\x01\x02\x03")
        raw_element(dataset, 0x0040A043, "SQ", b"\xff\xfe")
        return dataset

    broken.append(raw_sequence)
    for make in broken:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check(extract(make()))
