"""The radbank ontology and the SHACL shapes of non-DICOM submissions: they parse, every term
is labelled and defined, DICOM/PROV/DCAT/QUDT/DUO terms are reused rather than minted, each
submission kind accepts a correct sample and refuses broken ones in words, and
docs/ontology.md is generated from the current Turtle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyoxigraph
import pyshacl
import pytest
from pydicom.sr._concepts_dict import concepts
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH, SKOS

from radbank.governance import duo
from radbank.semantic import vocabulary as v

ROOT = Path(__file__).resolve().parents[2]
# pyshacl drives rdflib through APIs rdflib has deprecated; nothing radbank can act on.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")
RB_TYPES = {
    OWL.Class,
    OWL.ObjectProperty,
    OWL.DatatypeProperty,
    OWL.AnnotationProperty,
    RDF.Property,
    SKOS.Collection,
}


def _graph(path: Path) -> Graph:
    return Graph().parse(path, format="turtle")


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return _graph(v.ONTOLOGY_PATH)


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return _graph(v.SHAPES_PATH)


def _terms(ontology: Graph) -> set[URIRef]:
    return {
        term
        for kind in RB_TYPES
        for term in ontology.subjects(RDF.type, kind)
        if isinstance(term, URIRef) and str(term).startswith(v.RB)
    }


# --- the files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [v.ONTOLOGY_PATH, v.SHAPES_PATH], ids=["ontology", "shapes"])
def test_turtle_parses_with_oxigraph_and_rdflib(path: Path) -> None:
    store = pyoxigraph.Store()
    store.load(path=str(path), format=pyoxigraph.RdfFormat.TURTLE)
    assert len(store) == len(_graph(path)) > 100


def test_ontology_is_versioned_and_licensed(ontology: Graph) -> None:
    header = URIRef(v.ONTOLOGY_IRI)
    assert (header, RDF.type, OWL.Ontology) in ontology
    assert (
        ontology.value(header, OWL.versionInfo) == Literal(v.ONTOLOGY_VERSION) == Literal("1.1.0")
    )
    assert ontology.value(header, OWL.versionIRI) == URIRef(
        f"{v.ONTOLOGY_IRI}/{v.ONTOLOGY_VERSION}"
    )
    assert ontology.value(header, URIRef(v.DCT + "license")) == URIRef(
        "https://creativecommons.org/licenses/by/4.0/"
    )
    assert ontology.value(header, URIRef(v.DCT + "created")) is not None
    assert ontology.value(header, URIRef(v.DCT + "modified")) is not None


def test_every_term_has_a_label_and_a_definition(ontology: Graph) -> None:
    terms = _terms(ontology)
    assert len(terms) > 60
    unlabelled = sorted(t for t in terms if ontology.value(t, RDFS.label) is None)
    undefined = sorted(
        t
        for t in terms
        if ontology.value(t, SKOS.definition) is None and ontology.value(t, RDFS.comment) is None
    )
    assert unlabelled == [] and undefined == []


def test_classes_requested_by_the_design_exist(ontology: Graph) -> None:
    wanted = {
        "Subject", "ImagingStudy", "Series", "Instance", "Device", "Procedure",
        "RadiationDoseReport", "IrradiationEvent", "CTAcquisition", "ProjectionXRayEvent",
        "RadiopharmaceuticalAdministration", "DoseQuantity", "SensitivityCalibration",
        "Segmentation", "VolumeOfInterest", "TimeActivityCurve", "CurveFit",
        "TimeIntegratedActivity", "VolumeOfInterestDose", "MonteCarloOrganDose",
        "ClinicalObservation", "CaseReportForm", "Outcome", "QualityOfLifeAssessment",
        "Project", "Consent", "Ingest", "Deidentification", "DoseExtraction",
    }  # fmt: skip
    classes = {str(c).removeprefix(v.RB) for c in ontology.subjects(RDF.type, OWL.Class)}
    assert wanted <= classes


def test_processing_steps_are_prov_activities_and_results_prov_entities(ontology: Graph) -> None:
    def ancestors(cls: URIRef) -> set[URIRef]:
        return set(ontology.transitive_objects(cls, RDFS.subClassOf))

    steps = (
        "Ingest",
        "Deidentification",
        "DoseExtraction",
        "SensitivityCalibration",
        "Segmentation",
        "CurveFit",
        "AbsorbedDoseCalculation",
        "MonteCarloSimulation",
    )
    for step in steps:
        assert URIRef(v.PROV + "Activity") in ancestors(URIRef(v.RB + step)), step
    results = (
        "VolumeOfInterest",
        "TimeActivityCurve",
        "TimeIntegratedActivity",
        "VolumeOfInterestDose",
        "MonteCarloOrganDose",
        "DoseQuantity",
    )
    for result in results:
        assert URIRef(v.PROV + "Entity") in ancestors(URIRef(v.RB + result)), result


# --- reuse, not reinvention -----------------------------------------------------------

# The dose quantities the design names, by DICOM code value (113738 is Dose (RP), the
# per-event value; 113725 is Dose (RP) Total).
DOSE_CODES = (
    "113830",
    "113838",
    "113930",
    "113507",
    "128513",
    "113813",
    "113722",
    "113725",
    "113738",
    "113839",
)


def _dcm_meanings() -> dict[str, set[str]]:
    """Meaning (lower case) -> DCM code values, from pydicom's copy of PS3.16."""
    meanings: dict[str, set[str]] = {}
    for by_code in concepts["DCM"].values():
        for code, (meaning, _) in by_code.items():
            meanings.setdefault(meaning.lower(), set()).add(code)
    return meanings


def test_dose_quantities_are_dicom_concepts_with_the_standards_labels(ontology: Graph) -> None:
    members = set(ontology.objects(URIRef(v.RB + "doseQuantityConcepts"), SKOS.member))
    meanings = {
        code: meaning
        for by_code in concepts["DCM"].values()
        for code, (meaning, _) in by_code.items()
    }
    for code in DOSE_CODES:
        iri = URIRef(v.dcm_concept(code))
        assert iri in members, code
    for member in members:
        code = str(member).removeprefix(v.DCM)
        assert str(ontology.value(member, RDFS.label)) == meanings[code], code
    phantom = URIRef(v.RB + "ctdiwPhantomType")
    assert (phantom, RDFS.seeAlso, URIRef(v.dcm_concept("113835"))) in ontology


def test_a_term_named_like_a_dicom_concept_points_to_it(ontology: Graph) -> None:
    meanings = _dcm_meanings()
    links = (SKOS.exactMatch, SKOS.closeMatch, SKOS.narrowMatch, SKOS.broadMatch, RDFS.seeAlso)
    unlinked = []
    for term in _terms(ontology):
        codes = meanings.get(str(ontology.value(term, RDFS.label)).lower(), set())
        linked = {
            str(o).removeprefix(v.DCM) for link in links for o in ontology.objects(term, link)
        }
        if codes and not codes & linked:
            unlinked.append((str(term), sorted(codes)))
    assert unlinked == []


def test_no_radbank_term_duplicates_prov_dcat_qudt_or_duo(ontology: Graph) -> None:
    reused = {
        # PROV-O
        "Activity", "Entity", "Agent", "SoftwareAgent", "Person", "Plan", "used",
        "wasGeneratedBy", "wasAssociatedWith", "wasDerivedFrom", "startedAtTime",
        "endedAtTime", "generated", "wasInformedBy", "atTime",
        # DCAT
        "Dataset", "Distribution", "DataService", "Catalog", "endpointURL", "servesDataset",
        "accessURL", "downloadURL", "distribution", "version",
        # QUDT
        "QuantityValue", "Quantity", "Unit", "QuantityKind", "numericValue", "hasUnit",
        "unit", "value", "quantityValue", "hasQuantityKind", "ucumCode",
    }  # fmt: skip
    terms = _terms(ontology)
    minted = {str(term).removeprefix(v.RB).lower() for term in terms}
    assert minted & {name.lower() for name in reused} == set()
    labels = {str(ontology.value(term, RDFS.label)).lower() for term in terms}
    assert labels & {term.label.lower() for term in duo.terms()} == set()
    header = URIRef(v.ONTOLOGY_IRI)
    assert ontology.value(header, OWL.imports) is None  # reused by IRI, not copied


def test_submission_kinds_match_the_shapes(shapes: Graph) -> None:
    kind = URIRef(v.RB + "submissionKind")
    roots = {
        str(shapes.value(shape, kind)): str(target)
        for shape, target in shapes.subject_objects(SH.targetClass)
        if str(target) in v.SUBMISSION_KINDS.values()
    }
    assert roots == v.SUBMISSION_KINDS


def test_every_constraint_explains_itself(shapes: Graph) -> None:
    silent = [
        shapes.value(p, SH.path)
        for p in shapes.objects(None, SH.property)
        if shapes.value(p, SH.message) is None
    ]
    assert silent == []
    for target in v.SUBMISSION_KINDS.values():
        assert any(shapes.subjects(SH.targetClass, URIRef(target)))


# --- vocabulary helpers -----------------------------------------------------------------


def test_iris_of_dicom_objects_subjects_and_projects() -> None:
    assert v.study_iri("2.25.1234") == "urn:oid:2.25.1234"
    assert v.uid_from_iri(v.instance_iri("1.2.840.10008.1")) == "1.2.840.10008.1"
    assert v.subject_iri("ct-trial", "RB-ABCDEFGHIJKLMNOPQRST") == (
        "urn:radbank:subject:ct-trial:RB-ABCDEFGHIJKLMNOPQRST"
    )
    assert v.project_iri("ct-trial") == "urn:radbank:project:ct-trial"
    assert v.dcm_concept("113830") == "http://dicom.nema.org/resources/ontology/DCM/113830"
    assert v.concept_iri("SCT:77477000") == "http://snomed.info/id/77477000"
    assert v.concept_iri("DUO:0000042") == "http://purl.obolibrary.org/obo/DUO_0000042"
    for bad in (
        lambda: v.study_iri("1.2.3 > <x"),
        lambda: v.study_iri("01.2"),
        lambda: v.subject_iri("ct-trial", "John Smith"),
        lambda: v.project_iri("CT Trial"),
        lambda: v.dcm_concept("113830>"),
        lambda: v.concept_iri("LN:1234-5"),
        lambda: v.uid_from_iri("http://example.org/1.2"),
    ):
        with pytest.raises(ValueError):
            bad()


def test_dose_table_units_map_to_qudt_or_stay_ucum() -> None:
    assert v.qudt_unit("mGy") == v.UNIT + "MilliGRAY"
    assert v.qudt_unit("MBq") == v.UNIT + "MegaBQ"
    assert v.qudt_unit("Gy") == v.UNIT + "GRAY"
    assert v.qudt_unit("mGy.cm") is None  # QUDT has no milligray centimetre
    dose_table_units = {
        "mGy",
        "mGy.cm",
        "Gy.m2",
        "Gy",
        "MBq",
        "mSv",
        "s",
        "kV",
        "mA",
        "mm",
        "cm",
        "m2",
        "mA.s",
    }
    assert dose_table_units - set(v.QUDT_UNITS) == {"mGy.cm", "Gy.m2", "mA.s"}


# --- submissions --------------------------------------------------------------------------

PREFIXES = """
@prefix radbank: <https://w3id.org/radbank/ontology#> .
@prefix dcm: <http://dicom.nema.org/resources/ontology/DCM/> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix qudt: <http://qudt.org/schema/qudt/> .
@prefix unit: <http://qudt.org/vocab/unit/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <urn:example:> .
"""
SUBJECT = "<urn:radbank:subject:mrt-trial:RB-ABCDEFGHIJKLMNOPQRST>"

MRT_DOSIMETRY = f"""
ex:workflow a radbank:DosimetryWorkflow ;
    radbank:subject {SUBJECT} ;
    radbank:study <urn:oid:2.25.100> ;
    dcterms:hasPart ex:calibration , ex:segmentation , ex:fit , ex:dose-calculation .
ex:calibration a radbank:SensitivityCalibration ;
    prov:used <urn:oid:2.25.200> ;
    radbank:sensitivity [ qudt:numericValue 9.8 ; qudt:ucumCode "s-1.MBq-1" ] .
ex:segmentation a radbank:Segmentation ;
    prov:used <urn:oid:2.25.101> .
ex:liver a radbank:VolumeOfInterest ;
    prov:wasGeneratedBy ex:segmentation ;
    radbank:anatomicalRegion <http://snomed.info/id/10200004> ;
    radbank:regionName "liver" ;
    radbank:volume [ qudt:numericValue 1520 ; qudt:ucumCode "mL" ] .
ex:liver-curve a radbank:TimeActivityCurve ;
    radbank:volumeOfInterest ex:liver ;
    radbank:timeActivityPoint [
        a radbank:TimeActivityPoint ;
        radbank:timeSinceAdministration [ qudt:numericValue 4 ; qudt:ucumCode "h" ] ;
        radbank:measuredActivity [ qudt:numericValue 812.5 ; qudt:ucumCode "MBq" ]
    ] , [
        a radbank:TimeActivityPoint ;
        radbank:timeSinceAdministration [ qudt:numericValue 24 ; qudt:ucumCode "h" ] ;
        radbank:measuredActivity [ qudt:numericValue 640.0 ; qudt:ucumCode "MBq" ]
    ] .
ex:fit a radbank:CurveFit ;
    prov:used ex:liver-curve ;
    radbank:fitModel "mono-exponential" .
ex:liver-tia a radbank:TimeIntegratedActivity ;
    qudt:numericValue 41000.0 ;
    qudt:ucumCode "MBq.h" ;
    radbank:volumeOfInterest ex:liver ;
    prov:wasGeneratedBy ex:fit .
ex:dose-calculation a radbank:AbsorbedDoseCalculation ;
    prov:used ex:liver-tia ;
    radbank:method "MIRD S-values, OLINDA/EXM 2.2" .
ex:liver-dose a radbank:VolumeOfInterestDose ;
    qudt:numericValue 4.2 ;
    qudt:ucumCode "Gy" ;
    qudt:hasUnit unit:GRAY ;
    radbank:quantityConcept dcm:128513 ;
    radbank:volumeOfInterest ex:liver ;
    prov:wasGeneratedBy ex:dose-calculation .
"""

ORGAN_DOSES = f"""
ex:liver-dose a radbank:MonteCarloOrganDose ;
    qudt:numericValue 12.5 ;
    qudt:ucumCode "mGy" ;
    qudt:hasUnit unit:MilliGRAY ;
    radbank:quantityConcept dcm:113518 ;
    radbank:anatomicalRegion <http://snomed.info/id/10200004> ;
    radbank:irradiationEvent <urn:oid:2.25.300> ;
    radbank:subject {SUBJECT} ;
    prov:wasGeneratedBy ex:simulation .
ex:simulation a radbank:MonteCarloSimulation ;
    prov:wasAssociatedWith ex:software ;
    radbank:method "adult female voxel phantom, 1e8 histories" .
ex:software a prov:SoftwareAgent ;
    rdfs:label "ImpactMC 1.5" .
"""

CRF = f"""
ex:form a radbank:CaseReportForm ;
    radbank:subject {SUBJECT} ;
    radbank:visitDate "2024-03-01"^^xsd:date ;
    dcterms:title "Baseline" ;
    radbank:field ex:weight , ex:ecog .
ex:weight a radbank:CaseReportFormField ;
    radbank:fieldName "weight_kg" ;
    radbank:fieldValue 72.5 .
ex:ecog a radbank:CaseReportFormField ;
    radbank:fieldName "ecog" ;
    radbank:fieldValue 1 .
"""

OUTCOME = f"""
ex:outcome a radbank:Outcome ;
    radbank:subject {SUBJECT} ;
    radbank:study <urn:oid:2.25.100> ;
    radbank:code <http://snomed.info/id/419620001> ;
    dcterms:date "2024-09-01"^^xsd:date ;
    radbank:observedValue [ qudt:numericValue 6 ; qudt:ucumCode "mo" ] .
"""

SAMPLES = {
    "mrt-dosimetry": MRT_DOSIMETRY,
    "organ-doses": ORGAN_DOSES,
    "crf": CRF,
    "outcome": OUTCOME,
}

# (kind, what is broken, text replaced, replacement, the message the submitter reads)
BROKEN = [
    ("mrt-dosimetry", "missing fit model", 'radbank:fitModel "mono-exponential" .', ".",
     "A curve fit names its model in one radbank:fitModel string"),
    ("mrt-dosimetry", "missing subject", f"radbank:subject {SUBJECT} ;", "",
     "A dosimetry workflow needs exactly one radbank:subject"),
    ("mrt-dosimetry", "missing calibration", "ex:calibration , ", "",
     "A dosimetry workflow needs a radbank:SensitivityCalibration step"),
    ("mrt-dosimetry", "negative dose", "qudt:numericValue 4.2 ;", "qudt:numericValue -4.2 ;",
     "An absorbed dose cannot be negative."),
    ("mrt-dosimetry", "negative activity", "qudt:numericValue 812.5 ;",
     "qudt:numericValue -812.5 ;", "The measured activity is one number not below 0"),
    ("mrt-dosimetry", "dose as text", "qudt:numericValue 4.2 ;", 'qudt:numericValue "4.2" ;',
     "An absorbed dose is one number (qudt:numericValue)"),
    ("mrt-dosimetry", "dose in mGy", 'qudt:ucumCode "Gy" ;', 'qudt:ucumCode "mGy" ;',
     "An absorbed dose per volume of interest is stated in gray"),
    ("mrt-dosimetry", "time without unit", 'qudt:numericValue 4 ; qudt:ucumCode "h"',
     "qudt:numericValue 4", "The time since administration is stated in s, min, h or d"),
    ("organ-doses", "missing organ", "radbank:anatomicalRegion <http://snomed.info/id/10200004> ;",
     "", "Name the organ"),
    ("organ-doses", "missing event or study", "radbank:irradiationEvent <urn:oid:2.25.300> ;", "",
     "Say what the organ dose was computed for"),
    ("organ-doses", "missing software", "prov:wasAssociatedWith ex:software ;", "",
     "A Monte Carlo simulation prov:wasAssociatedWith the prov:SoftwareAgent"),
    ("organ-doses", "negative dose", "qudt:numericValue 12.5 ;", "qudt:numericValue -12.5 ;",
     "An organ dose cannot be negative."),
    ("organ-doses", "dose as text", "qudt:numericValue 12.5 ;", 'qudt:numericValue "12.5" ;',
     "An organ dose is one number (qudt:numericValue)"),
    ("organ-doses", "event as text", "<urn:oid:2.25.300>", '"2.25.300"',
     "Say what the organ dose was computed for"),
    ("crf", "missing visit date", 'radbank:visitDate "2024-03-01"^^xsd:date ;', "",
     "A case report form needs exactly one radbank:visitDate"),
    ("crf", "visit date as text", '"2024-03-01"^^xsd:date', '"01/03/2024"',
     "A case report form needs exactly one radbank:visitDate"),
    ("crf", "impossible visit date", '"2024-03-01"^^xsd:date', '"2024-02-30"^^xsd:date',
     "A case report form needs exactly one radbank:visitDate"),
    ("crf", "field without value", "radbank:fieldValue 72.5 .", ".",
     "A field needs exactly one radbank:fieldValue"),
    ("crf", "field value in a language", "radbank:fieldValue 72.5 .",
     'radbank:fieldValue "72.5"@en .', "A field needs exactly one radbank:fieldValue"),
    ("crf", "repeated field name", 'radbank:fieldName "ecog"', 'radbank:fieldName "weight_kg"',
     'Field name "weight_kg" appears more than once'),
    ("outcome", "missing outcome type", "radbank:code <http://snomed.info/id/419620001> ;", "",
     "Code the type of outcome"),
    ("outcome", "date as text", '"2024-09-01"^^xsd:date', '"September 2024"',
     "An outcome needs exactly one dcterms:date"),
    ("outcome", "quantity without unit", 'qudt:numericValue 6 ; qudt:ucumCode "mo"',
     "qudt:numericValue 6", "An outcome needs exactly one radbank:observedValue"),
]  # fmt: skip


def _validate(text: str, *, meta_shacl: bool = False) -> tuple[bool, list[str]]:
    data = Graph().parse(data=PREFIXES + text, format="turtle")
    conforms, report, _ = pyshacl.validate(
        data,
        shacl_graph=str(v.SHAPES_PATH),
        ont_graph=str(v.ONTOLOGY_PATH),
        meta_shacl=meta_shacl,
    )
    messages = sorted(str(m) for m in report.objects(None, SH.resultMessage))
    return conforms, messages


def test_shapes_are_valid_shacl() -> None:
    # meta_shacl checks the shapes graph against the W3C SHACL-SHACL shapes first and raises
    # if it does not conform.
    conforms, messages = _validate(CRF, meta_shacl=True)
    assert conforms, messages


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_a_correct_submission_conforms(kind: str) -> None:
    conforms, messages = _validate(SAMPLES[kind])
    assert conforms, messages


def test_every_kind_has_its_root_in_the_sample() -> None:
    for kind, text in SAMPLES.items():
        data = Graph().parse(data=PREFIXES + text, format="turtle")
        assert any(data.subjects(RDF.type, URIRef(v.SUBMISSION_KINDS[kind]))), kind


@pytest.mark.parametrize(
    ("kind", "old", "new", "message"),
    [(kind, old, new, message) for kind, _, old, new, message in BROKEN],
    ids=[f"{kind}: {what}" for kind, what, *_ in BROKEN],
)
def test_a_broken_submission_fails_in_words(kind: str, old: str, new: str, message: str) -> None:
    assert old in SAMPLES[kind]
    conforms, messages = _validate(SAMPLES[kind].replace(old, new, 1))
    assert not conforms
    assert any(message in m for m in messages), messages


def test_each_kind_has_a_missing_field_and_a_wrong_datatype_case() -> None:
    for kind in SAMPLES:
        whats = [what for k, what, *_ in BROKEN if k == kind]
        assert any(w.startswith("missing") for w in whats), kind
        assert any(" as text" in w for w in whats), kind
        if kind in ("mrt-dosimetry", "organ-doses"):
            assert "negative dose" in whats, kind


def test_a_quality_of_life_assessment_is_checked_as_a_case_report_form() -> None:
    qol = CRF.replace("a radbank:CaseReportForm ;", "a radbank:QualityOfLifeAssessment ;")
    assert _validate(qol)[0]
    conforms, messages = _validate(qol.replace('radbank:visitDate "2024-03-01"^^xsd:date ;', ""))
    assert not conforms
    assert any("radbank:visitDate" in m for m in messages)


# --- documentation ------------------------------------------------------------------------


def test_ontology_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "export_ontology_docs", ROOT / "tools" / "export_ontology_docs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "ontology.md").read_text()
    assert module.document(text) == text, (
        "docs/ontology.md is stale: run python tools/export_ontology_docs.py"
    )
