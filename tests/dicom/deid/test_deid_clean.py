"""Clean Descriptors: descriptions keep their words and lose the object's identity; narrative
(Image Comments) keeps only known words (test_deid_narrative.py)."""

from __future__ import annotations

import pytest
from deid_helpers import PROJECT_KEY, make_ct, write_bytes
from pydicom import Dataset

from radbank.dicom.deid import Option, Profile, deidentify
from radbank.dicom.deid.clean import PLACEHOLDER, Cleaner

CLEAN = Profile("clean", "1", frozenset({Option.CLEAN_DESCRIPTORS}))


def _cleaned(**attributes: str) -> dict[str, str]:
    ds = make_ct()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    out = deidentify(ds, CLEAN, PROJECT_KEY).dataset
    return {keyword: str(out.get(keyword, "")) for keyword in attributes}


def test_own_identifiers_are_replaced_and_the_description_kept() -> None:
    out = _cleaned(
        StudyDescription="CT thorax Jane DOE PAT-0001",
        SeriesDescription="Acc ACC123456 by Dr Who",
        ImageComments="born 14.02.1960, St Example Hospital",
        ProtocolName="Thorax low dose 1.25mm",
    )
    assert out["StudyDescription"] == f"CT thorax {PLACEHOLDER} {PLACEHOLDER} {PLACEHOLDER}"
    assert out["SeriesDescription"] == f"Acc {PLACEHOLDER} by Dr {PLACEHOLDER}"
    # Narrative: "born" is no medical word either, so the whole run goes.
    assert out["ImageComments"] == f"{PLACEHOLDER} {PLACEHOLDER}, {PLACEHOLDER}"
    assert out["ProtocolName"] == "Thorax low dose 1.25mm"  # nothing identifying: unchanged


def test_generic_patterns_are_replaced() -> None:
    cleaner = Cleaner(names=[], identifiers=[])
    text = (
        "call +44 20 7352 8171 or 020 7352 8171, mail jane.doe@example.org, "
        "seen 2024-03-05 and 05/03/2024 and 12-May-16, MRN 12345678, "
        "UID 1.2.826.0.1.3680043.8.498.1, CTDI 9.586082 mGy at 120 kV"
    )
    cleaned = cleaner.clean(text)
    for gone in ("7352", "jane.doe", "2024", "May-16", "12345678", "3680043"):
        assert gone not in cleaned, gone
    assert "CTDI 9.586082 mGy at 120 kV" in cleaned  # decimals and short numbers stay
    codes = cleaner.clean("order MRN-00417 / ACC123456, kernel Br40d, Sn100kV, 4DCT")
    assert codes == f"order {PLACEHOLDER} / {PLACEHOLDER}, kernel Br40d, Sn100kV, 4DCT"


def test_names_are_matched_word_by_word_and_in_any_case() -> None:
    cleaner = Cleaner(names=["Doe^Jane", "Doe", "Jane"], identifiers=[])
    assert cleaner.clean("JANE DOE, doe j.") == f"{PLACEHOLDER} {PLACEHOLDER}, {PLACEHOLDER} j."
    assert cleaner.clean("Janet Doerr") == "Janet Doerr"  # whole words only


def test_identifiers_inside_sequences_are_known_before_they_are_removed() -> None:
    ds = make_ct()
    ds.OtherPatientIDs = "NHS-998877"
    ds.StudyDescription = "follow-up of NHS-998877"
    out = deidentify(ds, CLEAN, PROJECT_KEY).dataset
    assert "OtherPatientIDs" not in out
    assert out.StudyDescription == f"follow-up of {PLACEHOLDER}"


def test_cleaned_values_fit_their_vr() -> None:
    ds = make_ct()
    ds.Occupation = "Jane Doe, Jane D"  # SH: 16 characters at most
    out = deidentify(ds, CLEAN, PROJECT_KEY).dataset
    assert len(out.Occupation) <= 16
    assert b"Jane" not in write_bytes(out)


def test_without_the_option_descriptors_are_removed() -> None:
    ds = make_ct()
    ds.StudyDescription = "CT thorax"
    assert "StudyDescription" not in deidentify(ds, Profile.named("basic"), PROJECT_KEY).dataset


PROTOCOLS = [
    "Thorax Routine 1.0 B70f",
    "CAP W CONTRAST 5mm",
    "AbdPelvis_Venous",
    "CT Head wo 4.8mm Hr40 MPR sag/cor",
    "Dual Energy Sn140kV/100kV Qr40",
    "Ped Abdomen 0-5y Low Dose",
    "PET/CT FDG WB 2.5 min/bed",
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_names_without_identifiers_are_kept_exactly(protocol: str) -> None:
    """Dose reference levels are computed per protocol: descriptors keep every word,
    however unusual, that is not one of the object's identifiers."""
    ds = make_ct()
    request = Dataset()
    request.RequestedProcedureDescription = protocol
    request.ScheduledProcedureStepDescription = protocol
    ds.RequestAttributesSequence = [request]
    out = _research_dose(
        ds,
        ProtocolName=protocol,
        StudyDescription=protocol,
        SeriesDescription=protocol,
        PerformedProcedureStepDescription=protocol,
        RequestedProcedureDescription=protocol,
    )
    for keyword in (
        "ProtocolName", "StudyDescription", "SeriesDescription",
        "PerformedProcedureStepDescription", "RequestedProcedureDescription",
    ):  # fmt: skip
        assert out.get(keyword) == protocol, keyword
    item = out.RequestAttributesSequence[0]
    assert item.RequestedProcedureDescription == protocol
    assert item.ScheduledProcedureStepDescription == protocol


def test_descriptors_lose_the_objects_names_and_identifiers_only() -> None:
    out = _research_dose(
        make_ct(),
        ProtocolName="Dr Who cardiac Doe ACC123456",
        SeriesDescription="Thorax Jane 1.0 B70f 2024-03-05.",
    )
    assert out.ProtocolName == f"Dr {PLACEHOLDER} cardiac {PLACEHOLDER} {PLACEHOLDER}"
    assert out.SeriesDescription == f"Thorax {PLACEHOLDER} 1.0 B70f {PLACEHOLDER}."


def _research_dose(ds: Dataset, **attributes: str) -> Dataset:
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return deidentify(ds, Profile.named("research-dose"), PROJECT_KEY).dataset
