"""The DCAT-AP description of a project, as harvesters of data catalogues read it: the node
as a dcat:Catalog, the project as a dcat:Dataset (with the HealthDCAT-AP counts where they
apply), and its distributions (DICOMweb, SPARQL, the dose table as CSV and Parquet), each
reached through a dcat:DataService or a download URL.

    triples = dataset_description(project, stats, base_url="https://node.example",
                                  node_name="Example node")
    body = serialize(triples, "text/turtle")

The lead serves it at <base>/api/projects/<name>/dcat. The dataset is the hash IRI
<base>/api/projects/<name>/dcat#dataset: dereferencing it (the fragment stays with the
client) returns this description, and the IRI names the dataset, not the document. It is
owl:sameAs urn:radbank:project:<name>, the project's IRI in the node's RDF store, so a
harvester can follow it into SPARQL. The catalogue is <base>/#catalog, the same in the
record of every project of a node, so a harvester merges them into one catalogue.

Also the project-level pieces that radbank.semantic.mapping.project_quads states in the
project's named graph: `licence_iri`, `access_rights_iri`, `data_use_terms`, and the
DICOMweb and SPARQL services (`service_triples`).

HealthDCAT-AP terms (numberOfUniqueIndividuals, numberOfRecords, as xsd:nonNegativeInteger)
are in http://healthdataportal.eu/ns/health#, as the HealthDCAT-AP draft and its reference
implementation in ckanext-dcat (profile euro_health_dcat_ap) use them; the namespace is a
draft one and may change when HealthDCAT-AP is ratified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

from pyoxigraph import Literal, NamedNode, RdfFormat, Triple
from pyoxigraph import serialize as _serialize

from radbank.semantic.vocabulary import (
    DCAT,
    DCT,
    DUO,
    FOAF,
    ONTOLOGY_IRI,
    OWL,
    RB,
    RDF,
    RDFS,
    XSD,
    project_iri,
)

__all__ = [
    "HEALTHDCATAP",
    "MEDIA_TYPES",
    "ProjectLike",
    "access_rights_iri",
    "data_use_terms",
    "dataset_description",
    "dataset_iri",
    "licence_iri",
    "record_url",
    "serialize",
    "service_triples",
]

HEALTHDCATAP = "http://healthdataportal.eu/ns/health#"
_ACCESS_RIGHT = "http://publications.europa.eu/resource/authority/access-right/"
_DATA_THEME = "http://publications.europa.eu/resource/authority/data-theme/"
_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
_IANA = "http://www.iana.org/assignments/media-types/"
_SPDX = "http://spdx.org/licenses/"
_OBO = "http://purl.obolibrary.org/obo/"
# Disease vocabularies with OBO PURLs; other codes (ICD10:C34) stay as written.
_OBO_PREFIXES = frozenset({"MONDO", "DOID", "HP", "NCIT"})
_SPDX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")

DICOMWEB_STANDARD = "https://www.dicomstandard.org/using/dicomweb"
DICOM_STANDARD = "https://www.dicomstandard.org/current"
SPARQL_PROTOCOL = "https://www.w3.org/TR/sparql11-protocol/"

MEDIA_TYPES: dict[str, RdfFormat] = {
    "text/turtle": RdfFormat.TURTLE,
    "application/ld+json": RdfFormat.JSON_LD,
    "application/rdf+xml": RdfFormat.RDF_XML,
    "application/n-triples": RdfFormat.N_TRIPLES,
}
"""The media types `serialize` writes, for content negotiation."""

_PREFIXES = {
    "dcat": DCAT,
    "dcterms": DCT,
    "foaf": FOAF,
    "healthdcatap": HEALTHDCATAP,
    "owl": OWL,
    "radbank": RB,
    "rdfs": RDFS,
    "xsd": XSD,
}


class ProjectLike(Protocol):
    """What the descriptions read of a project (radbank.index.Project has it)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def licence(self) -> str: ...
    @property
    def ip_statement(self) -> str: ...
    @property
    def data_use(self) -> Sequence[str]: ...
    @property
    def open_access(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...


def _node(iri: str) -> NamedNode:
    return NamedNode(iri)


_TYPE = _node(RDF + "type")
_LABEL = _node(RDFS + "label")
_COMMENT = _node(RDFS + "comment")
_SAME_AS = _node(OWL + "sameAs")
_TITLE, _DESCRIPTION, _IDENTIFIER, _PUBLISHER, _LICENSE = (
    _node(DCT + n) for n in ("title", "description", "identifier", "publisher", "license")
)
_ACCESS_RIGHTS, _RIGHTS, _CONFORMS_TO, _TEMPORAL, _ISSUED, _FORMAT = (
    _node(DCT + n) for n in ("accessRights", "rights", "conformsTo", "temporal", "issued", "format")
)
_LICENSE_DOCUMENT, _RIGHTS_STATEMENT, _PERIOD = (
    _node(DCT + n) for n in ("LicenseDocument", "RightsStatement", "PeriodOfTime")
)
_CATALOG, _DATASET, _DISTRIBUTION, _DATA_SERVICE = (
    _node(DCAT + n) for n in ("Catalog", "Dataset", "Distribution", "DataService")
)
_HAS_DATASET, _HAS_SERVICE, _HAS_DISTRIBUTION = (
    _node(DCAT + n) for n in ("dataset", "service", "distribution")
)
_ACCESS_URL, _DOWNLOAD_URL, _ACCESS_SERVICE, _ENDPOINT_URL, _SERVES_DATASET = (
    _node(DCAT + n)
    for n in ("accessURL", "downloadURL", "accessService", "endpointURL", "servesDataset")
)
_MEDIA_TYPE, _THEME, _KEYWORD, _START_DATE, _END_DATE = (
    _node(DCAT + n) for n in ("mediaType", "theme", "keyword", "startDate", "endDate")
)
_FOAF_AGENT, _FOAF_NAME, _HOMEPAGE = (_node(FOAF + n) for n in ("Agent", "name", "homepage"))
_PROJECT = _node(RB + "Project")
_DATA_USE_CONDITION = _node(RB + "dataUseCondition")
_DATA_USE_DISEASE = _node(RB + "dataUseDisease")
_INDIVIDUALS = _node(HEALTHDCATAP + "numberOfUniqueIndividuals")
_RECORDS = _node(HEALTHDCATAP + "numberOfRecords")
_XSD_DATE = _node(XSD + "date")
_XSD_DATETIME = _node(XSD + "dateTime")
_XSD_COUNT = _node(XSD + "nonNegativeInteger")


def _en(text: str) -> Literal:
    return Literal(text, language="en")


# --- project-level pieces, shared with radbank.semantic.mapping ---------------------------


def licence_iri(licence: str) -> str | None:
    """The IRI of a licence as projects state it: an SPDX id ("CC-BY-4.0") is
    http://spdx.org/licenses/<id>; a URL is itself; a LicenseRef-<name> (a licence of the
    project's own, explained by its ip_statement) or nothing has none."""
    text = licence.strip()
    if text.startswith(("http://", "https://")):
        return text
    text = text.replace(" ", "-")
    if not text or text.startswith("LicenseRef-") or _SPDX_ID.fullmatch(text) is None:
        return None
    return _SPDX + text


def access_rights_iri(open_access: bool) -> str:
    """PUBLIC for an open-access project, RESTRICTED otherwise (EU access-right table)."""
    return _ACCESS_RIGHT + ("PUBLIC" if open_access else "RESTRICTED")


def data_use_terms(codes: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    """(DUO term IRI, disease) for each data-use condition a project declares ("DUO:0000042",
    "DUO:0000007:MONDO:0004992"). The disease is an OBO IRI for MONDO, DOID, HP and NCIt
    codes, the code as written otherwise, None when the condition names none."""
    for code in codes:
        scheme, _, rest = code.strip().partition(":")
        number, _, disease = rest.partition(":")
        if scheme != "DUO" or not number.isdigit():
            continue
        if not disease:
            yield DUO + number, None
            continue
        prefix, _, local = disease.partition(":")
        is_obo = prefix in _OBO_PREFIXES and re.fullmatch(r"[A-Za-z0-9]+", local)
        yield DUO + number, (f"{_OBO}{prefix}_{local}" if is_obo else disease)


def service_triples(
    dataset: NamedNode, project_name: str, base_url: str, licence: str | None = None
) -> list[Triple]:
    """The DICOMweb and SPARQL endpoints of a project as dcat:DataServices serving `dataset`,
    and one dcat:Distribution through each (IRI: the endpoint URL, and that + #distribution)."""
    base = base_url.rstrip("/")
    endpoints = (
        (
            f"{base}/dicom-web/projects/{project_name}",
            "DICOMweb (QIDO-RS, WADO-RS, STOW-RS)",
            DICOMWEB_STANDARD,
            "application/dicom",
        ),
        (
            f"{base}/sparql",
            "SPARQL 1.1 endpoint (named graph urn:radbank:graph:" + project_name + ")",
            SPARQL_PROTOCOL,
            "application/sparql-results+json",
        ),
    )
    triples = []
    for url, title, standard, media_type in endpoints:
        service, distribution = _node(url), _node(url + "#distribution")
        triples += [
            Triple(service, _TYPE, _DATA_SERVICE),
            Triple(service, _TITLE, _en(title)),
            Triple(service, _ENDPOINT_URL, service),
            Triple(service, _CONFORMS_TO, _node(standard)),
            Triple(service, _SERVES_DATASET, dataset),
            Triple(dataset, _HAS_DISTRIBUTION, distribution),
            Triple(distribution, _TYPE, _DISTRIBUTION),
            Triple(distribution, _TITLE, _en(title)),
            Triple(distribution, _ACCESS_URL, service),
            Triple(distribution, _ACCESS_SERVICE, service),
            Triple(distribution, _MEDIA_TYPE, _node(_IANA + media_type)),
        ]
        if licence:
            triples.append(Triple(distribution, _LICENSE, _node(licence)))
    return triples


# --- the DCAT-AP record ----------------------------------------------------------------------


def record_url(base_url: str, project_name: str) -> str:
    """Where the lead serves the record: <base>/api/projects/<name>/dcat."""
    return f"{base_url.rstrip('/')}/api/projects/{project_name}/dcat"


def dataset_iri(base_url: str, project_name: str) -> str:
    """The project's dataset IRI in DCAT records: the record URL + #dataset."""
    return record_url(base_url, project_name) + "#dataset"


def dataset_description(
    project: ProjectLike, stats: Mapping[str, Any], *, base_url: str, node_name: str
) -> list[Triple]:
    """The DCAT-AP catalogue record of `project`, with the counts of `stats`:
    {"subjects", "studies", "instances", "dose_reports": int, "modalities": [str],
    "earliest", "latest": date | None} (missing keys are left out)."""
    base = base_url.rstrip("/")
    name = project.name
    record = record_url(base, name)
    dataset = _node(record + "#dataset")
    catalog, publisher = _node(base + "/#catalog"), _node(base + "/#publisher")
    licence = licence_iri(project.licence or "")
    out = [
        Triple(catalog, _TYPE, _CATALOG),
        Triple(catalog, _TITLE, _en(node_name)),
        Triple(catalog, _DESCRIPTION, _en(f"The datasets held by the radbank node {node_name}.")),
        Triple(catalog, _PUBLISHER, publisher),
        Triple(catalog, _HOMEPAGE, _node(base + "/")),
        Triple(catalog, _HAS_DATASET, dataset),
        Triple(publisher, _TYPE, _FOAF_AGENT),
        Triple(publisher, _FOAF_NAME, Literal(node_name)),
        Triple(dataset, _TYPE, _DATASET),
        Triple(dataset, _TYPE, _PROJECT),
        Triple(dataset, _SAME_AS, _node(project_iri(name))),
        Triple(dataset, _IDENTIFIER, Literal(name)),
        Triple(dataset, _TITLE, _en(project.title or name)),
        Triple(dataset, _DESCRIPTION, _en(project.description or _default_description(name))),
        Triple(dataset, _PUBLISHER, publisher),
        Triple(dataset, _ACCESS_RIGHTS, _node(access_rights_iri(project.open_access))),
        Triple(dataset, _CONFORMS_TO, _node(DICOM_STANDARD)),
        Triple(dataset, _CONFORMS_TO, _node(ONTOLOGY_IRI)),
        Triple(dataset, _THEME, _node(_DATA_THEME + "HEAL")),
        Triple(dataset, _ISSUED, _datetime(project.created_at)),
    ]
    out += _rights(dataset, record, project, licence)
    out += _keywords(dataset, stats)
    out += _counts(dataset, stats)
    out += _temporal(dataset, record, stats)
    for condition, disease in data_use_terms(project.data_use):
        out.append(Triple(dataset, _DATA_USE_CONDITION, _node(condition)))
        if disease is not None:
            disease_term = _node(disease) if disease.startswith(_OBO) else Literal(disease)
            out.append(Triple(dataset, _DATA_USE_DISEASE, disease_term))
    services = service_triples(dataset, name, base, licence)
    out += services
    out += [
        Triple(catalog, _HAS_SERVICE, t.subject)
        for t in services
        if t.predicate == _TYPE and t.object == _DATA_SERVICE
    ]
    out += _dose_exports(dataset, base, name, licence)
    return out


def _default_description(name: str) -> str:
    return (
        f"Project {name}: de-identified DICOM images and radiation dose structured reports, "
        "with the dose values read from them."
    )


def _datetime(moment: datetime) -> Literal:
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return Literal(utc.isoformat().replace("+00:00", "Z"), datatype=_XSD_DATETIME)


def _rights(
    dataset: NamedNode, record: str, project: ProjectLike, licence: str | None
) -> list[Triple]:
    out = []
    statement = (project.ip_statement or "").strip()
    if licence is not None:
        out.append(Triple(dataset, _LICENSE, _node(licence)))
    elif project.licence:
        # A licence of the project's own (LicenseRef-...): a document named after it,
        # explained by the intellectual-property statement.
        document = _node(record + "#licence")
        out += [
            Triple(dataset, _LICENSE, document),
            Triple(document, _TYPE, _LICENSE_DOCUMENT),
            Triple(document, _LABEL, Literal(project.licence)),
        ]
        if statement:
            out.append(Triple(document, _DESCRIPTION, _en(statement)))
    if statement:
        rights = _node(record + "#rights")
        out += [
            Triple(dataset, _RIGHTS, rights),
            Triple(rights, _TYPE, _RIGHTS_STATEMENT),
            Triple(rights, _LABEL, _en(statement)),
        ]
    return out


def _keywords(dataset: NamedNode, stats: Mapping[str, Any]) -> list[Triple]:
    words = ["medical imaging", "radiation dose", "DICOM"]
    if stats.get("dose_reports"):
        words.append("radiation dose structured report")
    words += sorted({str(m) for m in stats.get("modalities") or () if m})
    return [Triple(dataset, _KEYWORD, _en(word)) for word in words]


def _counts(dataset: NamedNode, stats: Mapping[str, Any]) -> list[Triple]:
    out = []
    for key, predicate in (("subjects", _INDIVIDUALS), ("instances", _RECORDS)):
        value = stats.get(key)
        if isinstance(value, int) and value >= 0:
            out.append(Triple(dataset, predicate, Literal(str(value), datatype=_XSD_COUNT)))
    parts = [
        f"{stats[key]} {word}"
        for key, word in (
            ("subjects", "subjects"),
            ("studies", "studies"),
            ("instances", "DICOM instances"),
            ("dose_reports", "dose reports"),
        )
        if isinstance(stats.get(key), int)
    ]
    if parts:
        out.append(Triple(dataset, _COMMENT, _en("Holds " + ", ".join(parts) + ".")))
    return out


def _temporal(dataset: NamedNode, record: str, stats: Mapping[str, Any]) -> list[Triple]:
    earliest, latest = stats.get("earliest"), stats.get("latest")
    if not isinstance(earliest, date) and not isinstance(latest, date):
        return []
    # Study dates as stored: shifted when the project's profile shifts dates.
    period = _node(record + "#temporal-coverage")
    out = [Triple(dataset, _TEMPORAL, period), Triple(period, _TYPE, _PERIOD)]
    for value, predicate in ((earliest, _START_DATE), (latest, _END_DATE)):
        if isinstance(value, date):
            day = value.date() if isinstance(value, datetime) else value
            out.append(Triple(period, predicate, Literal(day.isoformat(), datatype=_XSD_DATE)))
    return out


def _dose_exports(dataset: NamedNode, base: str, name: str, licence: str | None) -> list[Triple]:
    out = []
    export = f"{base}/api/projects/{name}/dose/events/export"
    for fmt, label, media_type, file_type in (
        ("csv", "CSV", "text/csv", "CSV"),
        ("parquet", "Parquet", "application/vnd.apache.parquet", "PARQUET"),
    ):
        distribution = _node(f"{export}?format={fmt}")
        out += [
            Triple(dataset, _HAS_DISTRIBUTION, distribution),
            Triple(distribution, _TYPE, _DISTRIBUTION),
            Triple(
                distribution,
                _TITLE,
                _en(f"Dose table: one row per irradiation event ({label})"),
            ),
            Triple(distribution, _ACCESS_URL, distribution),
            Triple(distribution, _DOWNLOAD_URL, distribution),
            Triple(distribution, _MEDIA_TYPE, _node(_IANA + media_type)),
            Triple(distribution, _FORMAT, _node(_FILE_TYPE + file_type)),
        ]
        if licence:
            out.append(Triple(distribution, _LICENSE, _node(licence)))
    return out


def serialize(triples: Iterable[Triple], media_type: str) -> bytes:
    """The triples in one of `MEDIA_TYPES` (Turtle, JSON-LD, RDF/XML, N-Triples); parameters
    such as "; charset=utf-8" are ignored. ValueError names the types on offer."""
    fmt = MEDIA_TYPES.get(media_type.split(";", 1)[0].strip().lower())
    if fmt is None:
        offered = ", ".join(MEDIA_TYPES)
        raise ValueError(f"cannot write RDF as {media_type!r}; choose one of {offered}")
    prefixes = _PREFIXES if fmt in (RdfFormat.TURTLE, RdfFormat.RDF_XML) else None
    # Each subject's triples together, in the order subjects first appear: readable Turtle.
    ordered = list(triples)
    first: dict[Any, int] = {}
    for position, triple in enumerate(ordered):
        first.setdefault(triple.subject, position)
    ordered.sort(key=lambda triple: first[triple.subject])
    return _serialize(ordered, format=fmt, prefixes=prefixes)
