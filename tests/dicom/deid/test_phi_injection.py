"""No planted identity survives de-identification, and research-dose keeps the dose science.

For every shipped profile (at least basic, basic-dates and research-dose) and every object
of the PHI-injection corpus (phi_corpus.py: pydicom's CT, MR, US and SR test files and the
vendor dose reports of ../shared/data/rdsr, with canaries at the top level, in nested
sequences, private blocks, SR content, file meta and preamble), the object is de-identified
and written as Part 10 bytes, and every byte is searched for every canary the profile must
make disappear. A failure lists each survivor with its attribute path and the rule that
requires it gone. Canaries the profile removes, empties, replaces or pseudonymises are one
test; free text it keeps but must clean (the C action) is another, so that a DPO sees both;
what the profile retains on purpose must keep its exact value (a third test).

For research-dose, on the unmodified vendor dose reports: every NUM content item (value and
units) and the template structure are identical before and after, and Patient's Age is
computed when the birth date goes. No profile's "keep" override may name an identifier.
"""

from __future__ import annotations

import datetime
from functools import cache

import pytest
from deid_helpers import PROJECT_KEY
from phi_corpus import (
    ALL_PROFILES,
    CONTENT_SEQUENCE,
    PlantedSource,
    Rules,
    all_overrides,
    is_sr_document,
    lost,
    missing_from_input,
    override_tag,
    planted,
    rdsr_files,
    read_dicom,
    require_rdsr,
    shipped_profile,
    source_ids,
    survivors,
)
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag

from radbank.dicom.deid import Option, deidentify, load_table
from radbank.dicom.encode import part10_bytes

SOURCES = source_ids()


@cache
def _planted(source: str) -> PlantedSource:
    return planted(source, PROJECT_KEY)


@cache
def _outcome(profile_name: str, source: str) -> tuple[list[str], list[str], list[str]]:
    """(removed canaries still present, cleaned canaries still present, kept canaries
    changed or gone), computed once per profile and object."""
    profile = shipped_profile(profile_name)
    corpus_object = _planted(source)
    result = deidentify(read_dicom(corpus_object.data), profile, PROJECT_KEY)
    written = part10_bytes(result.dataset)
    rules = Rules(profile)
    shift = result.date_shift_days
    return (
        survivors(written, corpus_object, rules, shift, cleaning=False),
        survivors(written, corpus_object, rules, shift, cleaning=True),
        lost(written, corpus_object, rules),
    )


def _report(profile_name: str, source: str, lines: list[str], what: str) -> str:
    return f"{len(lines)} canaries {what} by {profile_name} survive in {source}:\n" + "\n".join(
        lines
    )


@pytest.mark.parametrize("source", SOURCES)
def test_every_canary_is_planted_and_findable(source: str) -> None:
    corpus_object = _planted(source)
    assert missing_from_input(corpus_object) == []
    paths = {canary.path for canary in corpus_object.canaries}
    top_level_rows = sum(1 for canary in corpus_object.canaries if not canary.steps)
    assert top_level_rows > 550  # nearly every row of Table E.1-1, at the top level
    assert "preamble" in paths
    assert any(canary.area == "file meta" for canary in corpus_object.canaries)
    assert any(canary.private for canary in corpus_object.canaries)
    if not source.startswith("rdsr/"):
        assert max(len(canary.steps) for canary in corpus_object.canaries) >= 3
    if is_sr_document(read_dicom(corpus_object.data)):
        content = [canary for canary in corpus_object.canaries if canary.in_content]
        assert {canary.vr for canary in content} >= {"PN", "UT", "DT", "DA", "TM", "UI"}
        assert max(len(canary.steps) for canary in content) == 3  # root, container, container


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_no_removed_canary_survives(profile_name: str, source: str) -> None:
    removed, _, _ = _outcome(profile_name, source)
    assert not removed, _report(profile_name, source, removed, "removed or replaced")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_no_cleaned_canary_survives(profile_name: str, source: str) -> None:
    _, cleaned, _ = _outcome(profile_name, source)
    assert not cleaned, _report(profile_name, source, cleaned, "cleaned (C)")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_kept_canaries_keep_their_value(profile_name: str, source: str) -> None:
    """What the profile retains on purpose (an option's K such as device identity or
    patient characteristics, a "keep" override, a number in a safe private element) is
    still at its place with its exact value: the science is not cleaned away."""
    _, _, changed = _outcome(profile_name, source)
    assert not changed, (
        f"{len(changed)} retained values changed by {profile_name} in {source}:\n"
        + "\n".join(changed)
    )


# --- research-dose keeps the science ------------------------------------------------------


def _dose_reports() -> list[str]:
    names = []
    for path in rdsr_files():
        if is_sr_document(read_dicom(path)):
            names.append(path.name)
    return names or ["(absent)"]


def _content_rows(dataset: Dataset) -> list[tuple[object, ...]]:
    """The content tree as rows: depth, relationship, value type, concept, and for NUM and
    CODE items their measured value, units or code (text, names, dates, UIDs left out)."""
    rows: list[tuple[object, ...]] = []

    def code(item: Dataset, keyword: str) -> tuple[str, str] | None:
        sequence = item.get(keyword)
        if not sequence:
            return None
        return (
            str(sequence[0].get("CodeValue", "")),
            str(sequence[0].get("CodingSchemeDesignator", "")),
        )

    def visit(items: list[Dataset], depth: int, concepts: tuple[object, ...]) -> None:
        for item in items:
            concept = code(item, "ConceptNameCodeSequence")
            row: tuple[object, ...] = (
                depth,
                item.get("RelationshipType"),
                item.get("ValueType"),
                concepts + (concept,),
            )
            if item.get("ValueType") == "NUM":
                measured = item.get("MeasuredValueSequence") or [Dataset()]
                row += (
                    str(measured[0].get("NumericValue", "")),
                    measured[0].get("FloatingPointValue"),
                    code(measured[0], "MeasurementUnitsCodeSequence"),
                )
            elif item.get("ValueType") == "CODE":
                row += (code(item, "ConceptCodeSequence"),)
            rows.append(row)
            if CONTENT_SEQUENCE in item:
                visit(item.ContentSequence, depth + 1, concepts + (concept,))

    visit(dataset.get("ContentSequence", []), 1, ())
    return rows


def _research_dose(source: Dataset) -> Dataset:
    result = deidentify(source, shipped_profile("research-dose"), PROJECT_KEY)
    return read_dicom(part10_bytes(result.dataset))


@pytest.mark.parametrize("name", _dose_reports())
def test_research_dose_keeps_every_dose_value(name: str) -> None:
    path = require_rdsr()[0].parent / name
    before = [row for row in _content_rows(read_dicom(path)) if row[2] == "NUM"]
    after = [row for row in _content_rows(_research_dose(read_dicom(path))) if row[2] == "NUM"]
    assert before, f"{name} has no NUM content item"
    changed = [f"{b} -> {a}" for b, a in zip(before, after, strict=False) if a != b]
    assert (len(after), changed) == (len(before), [])


@pytest.mark.parametrize("name", _dose_reports())
def test_research_dose_keeps_the_template_structure(name: str) -> None:
    path = require_rdsr()[0].parent / name
    before = _content_rows(read_dicom(path))
    after = _content_rows(_research_dose(read_dicom(path)))
    lost = [row for row in before if row not in after]
    added = [row for row in after if row not in before]
    assert (lost, added) == ([], [])
    assert after == before  # same items in the same order


def _age_in_years(birth: str, study: str) -> str | None:
    try:
        born = datetime.datetime.strptime(birth.strip(), "%Y%m%d").date()
        seen = datetime.datetime.strptime(study.strip(), "%Y%m%d").date()
    except ValueError:
        return None
    years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    return f"{years:03d}Y" if 1 <= years <= 130 else None


def test_research_dose_keeps_patient_age_computed_from_birth_and_study_date() -> None:
    """The birth date goes, the age survives: the input has no Patient's Age here."""
    checked, wrong = 0, []
    for path in require_rdsr():
        source = read_dicom(path)
        expected = _age_in_years(
            str(source.get("PatientBirthDate", "")), str(source.get("StudyDate", ""))
        )
        if expected is None:
            continue  # no usable birth date (e.g. "0", "99990101") in this vendor object
        source.pop("PatientAge", None)
        output = _research_dose(source)
        checked += 1
        birth_date = output.get("PatientBirthDate")
        if output.get("PatientAge") != expected or birth_date:
            wrong.append(
                f"{path.name}: PatientAge {output.get('PatientAge')!r}, expected {expected!r}; "
                f"PatientBirthDate {output.get('PatientBirthDate')!r}"
            )
    assert checked >= 5
    assert wrong == []


# --- overrides never keep an identifier ---------------------------------------------------


def _identifying_keywords() -> dict[int, str]:
    """Table rows no override may keep: names, dates, instance UIDs and the patient's and
    visit's identifiers (group 0010 apart from the patient characteristics, accession,
    institution)."""
    characteristics = {
        row.value
        for row in load_table().rows
        if row.actions.get(Option.RETAIN_PATIENT_CHARACTERISTICS.value) in ("K", "C")
    }
    forbidden: dict[int, str] = {}
    for row in load_table().rows:
        if not row.is_exact:
            continue
        try:
            vr = dictionary_VR(row.value)
        except KeyError:
            continue
        group = row.value >> 16
        if (
            vr in ("PN", "DA", "DT", "UI")
            or (group == 0x0010 and row.value not in characteristics)
            or row.value in (0x00080050, 0x00080080, 0x00080081)  # accession, institution
        ):
            forbidden[row.value] = f"{keyword_for_tag(row.value)} ({vr})"
    return forbidden


@pytest.mark.parametrize("profile_name", ALL_PROFILES)
def test_no_override_keeps_an_identifier(profile_name: str) -> None:
    profile = shipped_profile(profile_name)
    forbidden = _identifying_keywords()
    kept = [
        f"{key} -> {word}: {forbidden[override_tag(key)]}"
        for key, word in all_overrides(profile).items()
        if word == "keep" and override_tag(key) in forbidden
    ]
    assert kept == []
