"""Header values no valid object has, which the index's columns cannot hold as they are
(NUL characters, which PostgreSQL refuses in text; values too long for an index entry;
integers beyond an IS), are stored with the columns bounded, on both backends; an object
whose value still cannot be indexed is refused on its own, the rest of its batch stored.
Found by fuzzing the pipeline on PostgreSQL, where each of these was a server error."""

from __future__ import annotations

import io
import random
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import corpus
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from radbank.app import Services, build_services
from radbank.config import Settings
from radbank.dicom.query import parse_qido
from radbank.governance.policy import ADMIN
from radbank.index import _attributes
from radbank.ingest import Item, Status
from radbank.projects import create_project
from radbank.synthetic_dose import ct_rdsr

_RANDOM_DIGITS = "".join(random.Random(7).choice("0123456789") for _ in range(3000))


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    made, _ = build_services(
        Settings(
            data_dir=Path(tempfile.mkdtemp()) / "d", admin_token="t", database_url=database_url
        )
    )
    for profile in ("basic", "research-dose"):
        create_project(made.index, profile, keys=made.keys, trail=made.trail, actor="test",
                       profile=profile)  # fmt: skip
    yield made
    made.close()


def _set(dataset: pydicom.Dataset, tag: int, vr: str, value: bytes) -> None:
    if len(value) % 2:
        value += b"\0" if vr == "UI" else b" "
    dataset[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def _ct(series: str, **raw: tuple[str, bytes]) -> bytes:
    dataset = pydicom.dcmread(corpus.path("CT_small.dcm"))
    dataset.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.{series}"
    dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{series}.1"
    for keyword, (vr, value) in raw.items():
        _set(dataset, pydicom.datadict.tag_for_keyword(keyword), vr, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _ingest(services: Services, project: str, *data: bytes) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings about the invalid values
        return services.pipeline.ingest(
            [Item(f"object{n}.dcm", one) for n, one in enumerate(data)],
            services.index.get_project(project),
            source="test",
            principal=ADMIN,
        )


@pytest.mark.parametrize(
    "raw",
    [
        {"Modality": ("CS", b"C\x00T")},
        {"Modality": ("CS", _RANDOM_DIGITS.encode())},
        {"StudyTime": ("TM", b"12\x0000")},
        {"Manufacturer": ("LO", b"GE\x00X"), "CTDIvol": ("FD", b"\x00\x00\x00\x00\x00\x00)@")},
        {
            "ManufacturerModelName": ("LO", _RANDOM_DIGITS.encode()),
            "CTDIvol": ("FD", b"\0" * 7 + b"@"),
        },
    ],
    ids=["nul-modality", "long-modality", "nul-time", "nul-manufacturer", "long-model"],
)
def test_values_no_column_can_hold_are_stored(services: Services, raw: dict) -> None:
    [outcome] = _ingest(services, "basic", _ct("1", **raw))
    assert outcome.status == Status.STORED, outcome.reason
    project = services.index.get_project("basic")
    [series] = services.index.search(project.id, parse_qido("series", []))
    if "Modality" in raw:  # the attribute as sent, the column without NUL and bounded
        assert series["00080060"]["Value"][0] == raw["Modality"][1].decode()
        kept = _attributes.column_text(raw["Modality"][1].decode())
        found = services.index.search(project.id, parse_qido("series", [("Modality", kept)]))
        assert len(found) == 1


def test_a_dose_report_stating_an_impossible_event_count_is_stored(services: Services) -> None:
    report = ct_rdsr(1, n_events=2)
    report.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"

    def total(items: pydicom.Sequence) -> pydicom.Dataset | None:
        for item in items:
            name = item.ConceptNameCodeSequence[0].CodeMeaning
            if name == "Total Number of Irradiation Events":
                return item
            found = total(item.get("ContentSequence", []))
            if found is not None:
                return found
        return None

    _set(total(report.ContentSequence).MeasuredValueSequence[0], 0x0040A30A, "DS", b"1e30")
    out = io.BytesIO()
    report.save_as(out, enforce_file_format=False)
    [outcome] = _ingest(services, "research-dose", out.getvalue())
    assert outcome.status == Status.STORED, outcome.reason


def test_an_object_the_index_cannot_hold_is_refused_alone(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulates a column left unbounded (the bounds switched off): the object with the
    value is refused (cannot understand) with a reason naming it, its batch's other object stored."""
    monkeypatch.setattr(_attributes, "column_text", lambda value: value)
    monkeypatch.setattr(_attributes, "INTEGER_RANGE", range(-(2**100), 2**100))
    good = _ct("2")
    bad = _ct("3", InstanceNumber=("IS", b"99999999999999999999999"))
    outcomes = _ingest(services, "basic", good, bad)
    assert [o.status for o in outcomes] == [Status.STORED, Status.REJECTED]
    assert outcomes[1].failure_reason == 0xC000  # cannot understand: 400 when alone
    assert outcomes[1].reason.startswith("object1.dcm: an attribute value cannot be stored")
    project = services.index.get_project("basic")
    assert len(services.index.search(project.id, parse_qido("instance", []))) == 1
