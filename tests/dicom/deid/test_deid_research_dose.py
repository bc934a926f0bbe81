"""research-dose on real vendor dose reports: every dose value survives, no identity does.

The reports are read from ../shared/data/rdsr (GPL test data of the OpenREM project, never
copied into this repository); the tests skip, saying so, where that folder is absent.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pydicom
import pytest
from deid_helpers import PROJECT_KEY, write_bytes
from pydicom import Dataset

from radbank.dicom.deid import Profile, deidentify

RDSR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "rdsr"
RESEARCH_DOSE = Profile.named("research-dose")
_FILES = sorted(RDSR.glob("*.dcm")) if RDSR.is_dir() else []
_SR_FILES = [path for path in _FILES if "SR" in path.name.split("-")[1]]
pytestmark = pytest.mark.skipif(
    not _FILES, reason=f"{RDSR} is absent: the vendor dose reports are not available here"
)


def _code(item: Dataset, keyword: str) -> tuple[str, str, str] | None:
    sequence = item.get(keyword)
    if not sequence:
        return None
    code = sequence[0]
    return (code.get("CodeValue"), code.get("CodingSchemeDesignator"), code.get("CodeMeaning"))


def _tree(items: object, path: str = "") -> list[tuple[object, ...]]:
    """Every content item as (path, relationship, value type, concept, template, value):
    NUM values with their units, CODE values as codes; other values are not compared."""
    rows: list[tuple[object, ...]] = []
    for index, item in enumerate(items or ()):
        here = f"{path}/{index}"
        value: object = None
        if item.get("ValueType") == "NUM":
            measured = item.get("MeasuredValueSequence") or []
            value = [
                (
                    str(m.get("NumericValue")),
                    m.get("FloatingPointValue"),
                    _code(m, "MeasurementUnitsCodeSequence"),
                )
                for m in measured
            ]
        elif item.get("ValueType") == "CODE":
            value = _code(item, "ConceptCodeSequence")
        templates = [
            (t.get("MappingResource"), t.get("TemplateIdentifier"))
            for t in item.get("ContentTemplateSequence") or []
        ]
        rows.append(
            (
                here,
                item.get("RelationshipType"),
                item.get("ValueType"),
                _code(item, "ConceptNameCodeSequence"),
                templates,
                value,
            )
        )
        rows.extend(_tree(item.get("ContentSequence"), here))
    return rows


def _identifying_values(ds: Dataset) -> set[str]:
    """Person names, IDs and institution names of the input, as a reader would spot them;
    not the words of its code meanings (a patient named "Patient^DiscoVCT" shares "Patient"
    with the coded concepts, which are kept exactly)."""
    found: set[str] = set()
    coded: set[str] = set()

    def walk(dataset: Dataset) -> None:
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value:
                    walk(item)
            elif element.keyword == "CodeMeaning":
                coded.update(str(element.value).split())
            elif element.VR == "PN" and element.value:
                for group in str(element.value).split("="):
                    found.update(p for p in group.split("^") if len(p) > 3)
            elif (
                element.keyword in ("PatientID", "AccessionNumber", "InstitutionName")
                and len(str(element.value or "")) > 3
            ):
                found.add(str(element.value))

    walk(ds)
    return found - coded - {"ANONYMOUS", "REMOVED", "Unknown", "Nobody", "None"}


@pytest.mark.parametrize("path", _FILES, ids=[path.name for path in _FILES])
def test_dose_values_codes_and_structure_are_kept_exactly(path: Path) -> None:
    original = pydicom.dcmread(path)
    expected = _tree(original.get("ContentSequence"))
    out = deidentify(pydicom.dcmread(path), RESEARCH_DOSE, PROJECT_KEY).dataset
    reread = pydicom.dcmread(io.BytesIO(write_bytes(out)))
    assert _tree(reread.get("ContentSequence")) == expected
    if path in _SR_FILES:
        numbers = [row for row in expected if row[2] == "NUM"]
        assert numbers, f"{path.name}: a dose report without NUM items"
        assert reread.ContentTemplateSequence[0].TemplateIdentifier == (
            original.ContentTemplateSequence[0].TemplateIdentifier
        )


@pytest.mark.parametrize("path", _FILES, ids=[path.name for path in _FILES])
def test_no_name_or_identifier_of_the_input_survives(path: Path) -> None:
    original = pydicom.dcmread(path)
    identifying = _identifying_values(original)
    out = deidentify(pydicom.dcmread(path), RESEARCH_DOSE, PROJECT_KEY).dataset
    del out.DeidentificationMethodCodeSequence  # our record says "Retain Patient ..."
    written = write_bytes(out)
    text = written.decode("latin-1") + written.decode("utf-8", "replace")
    survivors = sorted(value for value in identifying if value in text)
    assert survivors == [], f"{path.name}: {survivors}"


def test_observer_context_is_cleaned_and_device_identity_kept() -> None:
    path = RDSR / "DX-RDSR-Carestream_DRXEvolution.dcm"
    out = deidentify(pydicom.dcmread(path), RESEARCH_DOSE, PROJECT_KEY).dataset
    texts: dict[str, list[str]] = {}
    names: list[str] = []

    def walk(items: object) -> None:
        for item in items or ():
            meaning = item.ConceptNameCodeSequence[0].CodeMeaning
            if item.ValueType == "TEXT":
                texts.setdefault(meaning, []).append(item.TextValue)
            if item.ValueType == "PNAME":
                names.append(str(item.PersonName))
            walk(item.get("ContentSequence"))

    walk(out.ContentSequence)
    assert names == ["ANONYMOUS"]  # the operator (Person Observer Name)
    assert set(texts["Person Observer's Organization Name"]) == {"[removed]"}
    assert set(texts["Device Observer Serial Number"]) == {"7664565786545"}  # device kept
    assert set(texts["Device Observer Name"]) == {"CAREDXEVO"}
    assert "Thigh Right" in texts["Acquisition Protocol"]


def test_datetimes_in_the_content_tree_shift_with_the_patient() -> None:
    path = RDSR / "RF-RDSR-Siemens-Zee.dcm"
    original = pydicom.dcmread(path)
    result = deidentify(pydicom.dcmread(path), RESEARCH_DOSE, PROJECT_KEY)

    def datetimes(items: object) -> list[str]:
        found: list[str] = []
        for item in items or ():
            if item.get("ValueType") == "DATETIME":
                found.append(item.DateTime)
            found.extend(datetimes(item.get("ContentSequence")))
        return found

    before, after = datetimes(original.ContentSequence), datetimes(result.dataset.ContentSequence)
    assert len(before) == len(after) > 0
    shift = datetime.timedelta(days=result.date_shift_days)
    for old, new in zip(before, after, strict=True):
        moved = datetime.datetime.strptime(old[:8], "%Y%m%d") + shift
        assert new == moved.strftime("%Y%m%d") + old[8:]
    assert result.dataset.LongitudinalTemporalInformationModified == "MODIFIED"


def test_research_dose_records_its_options() -> None:
    out = deidentify(pydicom.dcmread(_FILES[0]), RESEARCH_DOSE, PROJECT_KEY).dataset
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113104", "113105", "113107", "113108", "113109", "113111"]
    assert out.DeidentificationMethod == "radbank research-dose 1"
    assert out.PatientIdentityRemoved == "YES"
