"""The names radbank writes RDF with: the namespaces of its ontology and of the vocabularies it
reuses, the IRIs it gives subjects, projects and DICOM objects, and its units.

Namespaces are plain strings, so building an IRI needs no RDF library:

    RB + "ImagingStudy"               -> "https://w3id.org/radbank/ontology#ImagingStudy"
    study_iri("2.25.1234")            -> "urn:oid:2.25.1234"
    subject_iri("ct-trial", "RB-...") -> "urn:radbank:subject:ct-trial:RB-..."
    project_iri("ct-trial")           -> "urn:radbank:project:ct-trial"
    graph_iri("ct-trial")             -> "urn:radbank:graph:ct-trial"
    dcm_concept("113830")             -> "http://dicom.nema.org/resources/ontology/DCM/113830"
    qudt_unit("mGy")                  -> "http://qudt.org/vocab/unit/MilliGRAY"

A DICOM object's IRI is urn:oid: and its pseudonymised UID (study, series, SOP instance, dose
report, irradiation event, radiopharmaceutical administration), so the UID that addresses the
object in DICOMweb also names its description in RDF; `uid_from_iri` goes back.

The ontology and the SHACL shapes of non-DICOM submissions ship as package data
(`ONTOLOGY_PATH`, `SHAPES_PATH`); `ONTOLOGY_VERSION` is read from the ontology's
owl:versionInfo. docs/ontology.md explains the choices.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "DCAT",
    "DCM",
    "DCT",
    "DUO",
    "FOAF",
    "ONTOLOGY_IRI",
    "ONTOLOGY_PATH",
    "ONTOLOGY_VERSION",
    "OWL",
    "PROV",
    "QUDT",
    "QUDT_UNITS",
    "RB",
    "RDF",
    "RDFS",
    "SCT",
    "SH",
    "SHAPES_PATH",
    "SKOS",
    "SUBMISSION_KINDS",
    "UNIT",
    "XSD",
    "concept_iri",
    "ONTOLOGY_GRAPH",
    "dcm_concept",
    "graph_iri",
    "instance_iri",
    "irradiation_event_iri",
    "project_iri",
    "qudt_unit",
    "series_iri",
    "study_iri",
    "subject_iri",
    "uid_from_iri",
    "uid_iri",
]

RB = "https://w3id.org/radbank/ontology#"
ONTOLOGY_IRI = RB.rstrip("#")
DCM = "http://dicom.nema.org/resources/ontology/DCM/"
PROV = "http://www.w3.org/ns/prov#"
DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
QUDT = "http://qudt.org/schema/qudt/"
UNIT = "http://qudt.org/vocab/unit/"
DUO = "http://purl.obolibrary.org/obo/DUO_"
SCT = "http://snomed.info/id/"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
SH = "http://www.w3.org/ns/shacl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
FOAF = "http://xmlns.com/foaf/0.1/"

ONTOLOGY_PATH = Path(__file__).resolve().parent / "ontology" / "radbank.ttl"
SHAPES_PATH = ONTOLOGY_PATH.with_name("shapes.ttl")

# The class a submission of each kind must hold at least one instance of; its shape in
# shapes.ttl carries the same kind as radbank:submissionKind (a test checks they agree).
SUBMISSION_KINDS: dict[str, str] = {
    "mrt-dosimetry": RB + "DosimetryWorkflow",
    "organ-doses": RB + "MonteCarloOrganDose",
    "crf": RB + "CaseReportForm",
    "outcome": RB + "Outcome",
}

# UCUM code -> QUDT unit, for the units of radbank's dose table and of dosimetry submissions.
# QUDT has no unit for mGy.cm, Gy.m2, mA.s or MBq.h: such values carry their UCUM code only.
QUDT_UNITS: dict[str, str] = {
    "Gy": UNIT + "GRAY",
    "mGy": UNIT + "MilliGRAY",
    "mSv": UNIT + "MilliSV",
    "Bq": UNIT + "BQ",
    "MBq": UNIT + "MegaBQ",
    "GBq": UNIT + "GigaBQ",
    "s": UNIT + "SEC",
    "min": UNIT + "MIN",
    "h": UNIT + "HR",
    "d": UNIT + "DAY",
    "kV": UNIT + "KiloV",
    "mA": UNIT + "MilliA",
    "mm": UNIT + "MilliM",
    "cm": UNIT + "CentiM",
    "m2": UNIT + "M2",
}

# RFC 3061 OID syntax (digits, no leading zeros) within DICOM's 64-character limit: what makes
# a urn:oid: IRI; the DICOM-side check is radbank.dicom.uids.is_valid_uid.
_OID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_PSEUDONYM = re.compile(r"RB-[A-Z2-7]{20}")
_CONCEPT_NAMESPACES = {"DCM": DCM, "SCT": SCT, "DUO": DUO}


def uid_iri(uid: str) -> str:
    """The IRI of the DICOM object a (pseudonymised) UID names: "urn:oid:<uid>"."""
    if len(uid) > 64 or _OID.fullmatch(uid) is None:
        raise ValueError(f"{uid[:80]!r} is not a DICOM UID (digits and dots, at most 64)")
    return "urn:oid:" + uid


# The same form serves every DICOM object; the names read better where they are used.
study_iri = series_iri = instance_iri = irradiation_event_iri = uid_iri


def uid_from_iri(iri: str) -> str:
    """The UID in a urn:oid: IRI: what DICOMweb takes to reach the object."""
    uid = iri.removeprefix("urn:oid:")
    if uid == iri:
        raise ValueError(f"{iri[:80]!r} is not a urn:oid: IRI")
    uid_iri(uid)
    return uid


def subject_iri(project: str, pseudonym: str) -> str:
    """ "urn:radbank:subject:<project>:<pseudonym>": a pseudonym is unique within its project."""
    _check_project(project)
    if _PSEUDONYM.fullmatch(pseudonym) is None:
        raise ValueError(f"{pseudonym[:80]!r} is not a radbank pseudonym (RB- and 20 characters)")
    return f"urn:radbank:subject:{project}:{pseudonym}"


def project_iri(name: str) -> str:
    """ "urn:radbank:project:<name>"."""
    _check_project(name)
    return f"urn:radbank:project:{name}"


def graph_iri(name: str) -> str:
    """ "urn:radbank:graph:<name>": the named graph that holds everything the node says
    about project `name` (its objects, dose values, submissions and dataset description)."""
    _check_project(name)
    return f"urn:radbank:graph:{name}"


# The named graph holding the ontology itself, readable by everyone who may query.
ONTOLOGY_GRAPH = "urn:radbank:graph:ontology"


def dcm_concept(code: str) -> str:
    """The IRI of a DICOM concept (coding scheme DCM, PS3.16) from its code value."""
    if not code.isdigit():
        raise ValueError(f"{code[:80]!r} is not a DCM code value")
    return DCM + code


def concept_iri(key: str) -> str:
    """The IRI of a "SCHEME:VALUE" code (as radbank.dicom.dose.codes.code_key writes it) for
    the schemes with a published IRI form: DCM, SCT (SNOMED CT) and DUO."""
    scheme, _, value = key.partition(":")
    namespace = _CONCEPT_NAMESPACES.get(scheme)
    if namespace is None or not value.isdigit():
        raise ValueError(f"{key[:80]!r}: no IRI form for this code (known: DCM, SCT, DUO)")
    return namespace + value


def qudt_unit(ucum: str) -> str | None:
    """The QUDT unit of a UCUM code, or None when QUDT has none (keep the UCUM code)."""
    return QUDT_UNITS.get(ucum)


def _check_project(name: str) -> None:
    if _PROJECT.fullmatch(name) is None:
        raise ValueError(f"{name[:80]!r} is not a project name")


def _version(path: Path) -> str:
    match = re.search(r'owl:versionInfo\s+"([^"]+)"', path.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"{path} states no owl:versionInfo")
    return match.group(1)


ONTOLOGY_VERSION = _version(ONTOLOGY_PATH)
