"""Narrative free text (Image Comments, Additional Patient History, Reason for the Requested
Procedure, SR comments): only known medical and technical words survive, so a name that is
nowhere in the header goes too, while the clinical content stays readable."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pydicom
import pytest
from deid_helpers import PROJECT_KEY, make_ct, write_bytes
from pydicom import Dataset

from radbank.dicom.deid import Option, Profile, deidentify
from radbank.dicom.deid.clean import PLACEHOLDER, VOCABULARY_FILE, vocabulary

RESEARCH_DOSE = Profile.named("research-dose")
# Clean Descriptors without Retain Patient Characteristics: Patient's Age is removed.
CLEAN_ONLY = Profile("clean", "1", frozenset({Option.CLEAN_DESCRIPTORS}))
ROOT = Path(__file__).resolve().parents[3]
R = PLACEHOLDER


def _comments(text: str, profile: Profile = RESEARCH_DOSE, **attributes: str) -> Dataset:
    ds = make_ct()
    ds.ImageComments = text
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return deidentify(ds, profile, PROJECT_KEY).dataset


def test_names_that_are_not_in_the_header_are_removed() -> None:
    out = _comments("Pt John Smith, wife Mary called Dr Jones re: scan")
    assert out.ImageComments == f"Pt {R}, wife {R} called Dr {R} re: scan"


# (narrative, fragments that identify someone, clinical content that must survive)
REALISTIC = [
    (
        "English",
        "67 y/o male, seen by Dr Robert Taylor at St George's Hospital, 12 Baker Street, "
        "London NW1 6XE, tel 020 7946 0958, on 3 March 2024. Hx of colon cancer, "
        "CT CAP with contrast: no new lesions, 8 mm nodule RUL stable.",
        ["Robert", "Taylor", "George", "Baker", "London", "NW1", "6XE", "7946", "0958", "2024"],
        ["Hx of colon cancer", "CT CAP with contrast", "no new lesions", "8 mm nodule RUL"],
    ),
    (
        "German",
        "Patientin Anna Müller, geb. 14.02.1960, Hauptstraße 5, 80331 München, Tel. 089 "
        "1234567, Klinikum Schwabing. Kontrastmittel: Iomeprol 80 ml, 120 kV.",
        ["Anna", "Müller", "1960", "Hauptstraße", "80331", "München", "1234567", "Schwabing"],
        ["Iomeprol 80 ml, 120 kV"],
    ),
    (
        "French",
        "Mme Françoise Dubois, 12 rue de la Paix, 75002 Paris, 06 12 34 56 78, "
        "adressée par le Dr Lefebvre (Hôpital Lariboisière). Scanner thoracique, "
        "CTDIvol 8.2 mGy, DLP 310 mGy.cm.",
        ["Françoise", "Dubois", "Paix", "75002", "Paris", "56 78", "Lefebvre", "Lariboisière"],
        ["CTDIvol 8.2 mGy, DLP 310 mGy.cm"],
    ),
    (
        "Spanish",
        "Sr. José García López, 45 años, Calle Mayor 3, 28013 Madrid, Hospital "
        "Universitario La Paz; PET FDG 370 MBq, glucemia 95 mg/dl.",
        ["José", "García", "López", "Mayor", "28013", "Madrid"],
        ["PET FDG 370 MBq", "95 mg/dl"],
    ),
    (
        "Italian",
        "Sig. Giuseppe Rossi, via Roma 10, 20121 Milano, Ospedale Niguarda, medico "
        "curante dott.ssa Francesca Bianchi. SPECT Tc-99m 740 MBq.",
        ["Giuseppe", "Rossi", "Roma", "20121", "Milano", "Niguarda", "Francesca", "Bianchi"],
        ["SPECT Tc-99m 740 MBq"],
    ),
    (
        "Dutch",
        "Dhr. Jan de Vries en mevr. Sanne Jansen, Kerkstraat 1, 3511 Utrecht, UMC "
        "Utrecht. Lu-177 dosimetry, 7.4 GBq.",
        ["Jan", "Vries", "Sanne", "Jansen", "Kerkstraat", "Utrecht"],
        ["Lu-177 dosimetry, 7.4 GBq"],
    ),
    (
        "Polish",
        "Pan Piotr Nowak i Katarzyna Kowalska, ul. Długa 5, 31-147 Kraków, szpital "
        "Jana Pawła II. Pain in left shoulder after fall.",
        ["Piotr", "Nowak", "Katarzyna", "Kowalska", "Długa", "Kraków", "Jana", "Pawła"],
        ["Pain in left shoulder after fall"],
    ),
    (
        "Swedish",
        "Lars Andersson och Ingrid Johansson, Storgatan 3, 411 38 Göteborg, "
        "Sahlgrenska. Follow-up of white matter lesions, MRI T2 FLAIR.",
        ["Lars", "Andersson", "Ingrid", "Johansson", "Storgatan", "Göteborg", "Sahlgrenska"],
        ["Follow-up of white matter lesions, MRI T2 FLAIR"],
    ),
]


@pytest.mark.parametrize(("text", "identity", "clinical"), [r[1:] for r in REALISTIC],
                         ids=[r[0] for r in REALISTIC])  # fmt: skip
def test_realistic_narrative_keeps_clinical_content_only(
    text: str, identity: list[str], clinical: list[str]
) -> None:
    out = _comments(text, PatientComments=text, AdditionalPatientHistory=text)
    written = write_bytes(out)
    for keyword in ("ImageComments", "PatientComments", "AdditionalPatientHistory"):
        cleaned = str(out.get(keyword))
        for fragment in identity:
            assert fragment not in cleaned, (keyword, fragment, cleaned)
        for fragment in clinical:
            assert fragment in cleaned, (keyword, fragment, cleaned)
    for fragment in identity:
        if fragment.isdigit():
            continue  # digits occur in the remapped UIDs of the object
        for encoding in ("latin-1", "utf-8"):
            assert fragment.encode(encoding, "ignore") not in written, fragment


def test_clinical_and_dose_content_is_kept_word_for_word() -> None:
    text = (
        "CT CAP W CONTRAST 5mm, 120kV, 250 mAs, CTDIvol 12.5 mGy, DLP 450 mGy*cm. "
        "Omnipaque 350, 4 ml/s, bolus tracking. White matter lesions; L4-L5 disc. "
        "Tc-99m MDP 740 MBq, 99mTc, I-131 3.7 GBq. No evidence of metastases."
    )
    assert _comments(text).ImageComments == text


def test_runs_of_unknown_words_become_one_placeholder_and_punctuation_stays() -> None:
    out = _comments("Smith-Jones, Mary Ann O'Brien (neighbour) and Dr. Kowalczyk: CT head.")
    assert out.ImageComments == f"{R}, {R} ({R}) and Dr. {R}: CT head."


def test_phone_and_record_numbers_written_in_groups_are_removed() -> None:
    out = _comments("call 7352 8171 or 555.123.4567, bed 12, record 123 456 789")
    assert out.ImageComments == f"call {R} or {R}, bed 12, record {R}"


def test_ages_follow_patient_characteristics() -> None:
    text = "67-year-old man, aged 67, 67 yo; 67 Jahre alt; 45 años"
    # research-dose keeps Patient's Age (Retain Patient Characteristics): so does narrative.
    assert "67-year-old" in _comments(text).ImageComments
    removed = _comments(text, CLEAN_ONLY)
    assert "PatientAge" not in removed
    assert removed.ImageComments == f"{R} man, {R}, {R}; {R}; {R}"


def test_eponyms_outside_the_name_list_stay() -> None:
    """A known limit, documented: eponyms that are not common names stay (Parkinson,
    Hodgkin); those that are (Wilson disease) go."""
    out = _comments("Parkinson disease, Hodgkin lymphoma, Wilson disease")
    assert out.ImageComments == f"Parkinson disease, Hodgkin lymphoma, {R} disease"


def test_narrative_lo_values_are_cleaned_as_narrative_and_protocol_text_as_descriptor() -> None:
    ds = make_ct()
    ds.ReasonForTheRequestedProcedure = "Fall at home, husband Pierre Dubois found her"
    ds.AcquisitionProtocolDescription = "Thorax Routine 1.0 B70f Marcel"
    out = deidentify(ds, RESEARCH_DOSE, PROJECT_KEY).dataset
    assert out.ReasonForTheRequestedProcedure == f"Fall at home, husband {R} found her"
    # Written by the scanner, needed per protocol: every word but identifiers is kept.
    assert out.AcquisitionProtocolDescription == "Thorax Routine 1.0 B70f Marcel"


def _text_item(concept: tuple[str, str, str], text: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = concept
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = [code]
    item.TextValue = text
    return item


def test_sr_comments_and_unknown_concepts_are_narrative_protocols_are_descriptors() -> None:
    ds = make_ct()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"
    ds.ContentSequence = [
        _text_item(("121106", "DCM", "Comment"), "Repeat scan, Mary Rossi moved"),
        _text_item(("113907", "DCM", "Reason for Proceeding"), "Dr Kowalski approved"),
        _text_item(("027", "99PHI-IXR-XPER", "Performing Physicians Name"), "Bianchi Luca"),
        _text_item(("125203", "DCM", "Acquisition Protocol"), "AbdPelvis_Venous"),
        _text_item(("113605", "DCM", "Irradiation Event Label"), "A"),
    ]
    items = deidentify(ds, RESEARCH_DOSE, PROJECT_KEY).dataset.ContentSequence
    assert [item.TextValue for item in items] == [
        f"Repeat scan, {R} moved",
        f"Dr {R} approved",
        R,
        "AbdPelvis_Venous",
        "A",
    ]


def test_the_vocabulary_holds_no_common_name_and_no_initial() -> None:
    words = vocabulary().words
    assert len(words) > 6000
    for name in (
        "john", "mary", "smith", "jones", "white", "müller", "schmidt", "dubois", "martin",
        "garcia", "lopez", "rossi", "bianchi", "jansen", "vries", "nowak", "kowalski",
        "andersson", "hansen", "korhonen", "van", "von", "de",
    ):  # fmt: skip
        assert name not in words, name
    short = sorted(word for word in words if len(word) <= 2)
    assert "j" not in short and "jm" not in short
    assert {"no", "of", "ct", "iv", "w", "mm"} <= set(short)
    # The medical words the name list would take stay in their phrases.
    assert ("white", "matter") in vocabulary().phrases


def test_the_shipped_vocabulary_is_what_the_tool_makes() -> None:
    shipped = json.loads(
        (ROOT / "src/radbank/dicom/deid/data" / VOCABULARY_FILE).read_text("utf-8")
    )
    if shipped["pydicom"] != pydicom.__version__:
        pytest.skip(
            f"the vocabulary was made from pydicom {shipped['pydicom']}, this is "
            f"{pydicom.__version__}: run python tools/make_clean_vocabulary.py"
        )
    spec = importlib.util.spec_from_file_location(
        "make_clean_vocabulary", ROOT / "tools" / "make_clean_vocabulary.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.build() == shipped, "stale vocabulary: run python tools/make_clean_vocabulary.py"
