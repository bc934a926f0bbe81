"""The DCAT-AP record of a project, read back with rdflib as a harvester would: the properties
DCAT-AP requires are there, the counts are HealthDCAT-AP's, every serialisation says the
same."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, FOAF, OWL, RDF

from radbank.index import Project
from radbank.semantic.dcat import (
    HEALTHDCATAP,
    MEDIA_TYPES,
    dataset_description,
    record_url,
    serialize,
)

# rdflib's closed DCAT and XSD namespaces warn when pytest inspects this module's names.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
HEALTH = Namespace(HEALTHDCATAP)
# rdflib's JSON-LD parser uses an API rdflib has deprecated; nothing radbank can act on.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")
BASE = "https://node.example"
DATASET = URIRef(f"{BASE}/api/projects/ct-trial/dcat#dataset")
STATS: dict[str, Any] = {
    "subjects": 12,
    "studies": 30,
    "instances": 4200,
    "modalities": ["CT", "SR"],
    "earliest": date(2016, 3, 1),
    "latest": date(2019, 11, 30),
    "dose_reports": 30,
}
PROJECT = Project(
    id=1,
    name="ct-trial",
    title="CT dose trial",
    description="Chest CT examinations of the trial, with their dose reports.",
    profile="research-dose",
    key_salt=b"s" * 16,
    created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    licence="CC-BY-4.0",
    data_use=("DUO:0000042", "DUO:0000019"),
)


def _graph(project: Project = PROJECT, stats: dict[str, Any] = STATS) -> Graph:
    triples = dataset_description(project, stats, base_url=BASE + "/", node_name="Example node")
    return Graph().parse(data=serialize(triples, "text/turtle"), format="turtle")


def test_the_record_has_what_dcat_ap_requires() -> None:
    graph = _graph()
    (catalog,) = graph.subjects(RDF.type, DCAT.Catalog)
    for prop in (DCTERMS.title, DCTERMS.description, DCTERMS.publisher):
        assert graph.value(catalog, prop) is not None, prop
    assert (catalog, DCAT.dataset, DATASET) in graph
    assert graph.value(graph.value(catalog, DCTERMS.publisher), FOAF.name) == Literal(
        "Example node"
    )
    assert (DATASET, RDF.type, DCAT.Dataset) in graph
    assert str(graph.value(DATASET, DCTERMS.title)) == "CT dose trial"
    assert str(graph.value(DATASET, DCTERMS.description)).startswith("Chest CT")
    assert graph.value(DATASET, DCTERMS.identifier) == Literal("ct-trial")
    assert graph.value(DATASET, DCTERMS.license) == URIRef("http://spdx.org/licenses/CC-BY-4.0")
    assert graph.value(DATASET, DCTERMS.accessRights) == URIRef(
        "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
    )
    assert (
        DATASET,
        DCAT.theme,
        URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL"),
    ) in graph
    assert graph.value(DATASET, OWL.sameAs) == URIRef("urn:radbank:project:ct-trial")
    keywords = {str(k) for k in graph.objects(DATASET, DCAT.keyword)}
    assert {"radiation dose", "CT"} <= keywords


def test_every_distribution_is_reachable_and_typed() -> None:
    graph = _graph()
    distributions = set(graph.objects(DATASET, DCAT.distribution))
    assert len(distributions) == 4
    for distribution in distributions:
        assert (distribution, RDF.type, DCAT.Distribution) in graph
        assert graph.value(distribution, DCAT.accessURL) is not None, distribution
        assert graph.value(distribution, DCAT.mediaType) is not None, distribution
        assert graph.value(distribution, DCTERMS.license) == graph.value(DATASET, DCTERMS.license)
    services = {
        str(graph.value(service, DCAT.endpointURL)): graph.value(service, DCTERMS.conformsTo)
        for service in graph.subjects(DCAT.servesDataset, DATASET)
    }
    assert services == {
        f"{BASE}/dicom-web/projects/ct-trial": URIRef(
            "https://www.dicomstandard.org/using/dicomweb"
        ),
        f"{BASE}/sparql": URIRef("https://www.w3.org/TR/sparql11-protocol/"),
    }
    downloads = {
        str(graph.value(d, DCAT.downloadURL)): str(graph.value(d, DCAT.mediaType))
        for d in distributions
        if graph.value(d, DCAT.downloadURL) is not None
    }
    export = f"{BASE}/api/projects/ct-trial/dose/events/export"
    assert downloads == {
        f"{export}?format=csv": "http://www.iana.org/assignments/media-types/text/csv",
        f"{export}?format=parquet": (
            "http://www.iana.org/assignments/media-types/application/vnd.apache.parquet"
        ),
    }


def test_counts_and_coverage_are_healthdcat_ap() -> None:
    graph = _graph()
    assert graph.value(DATASET, HEALTH.numberOfUniqueIndividuals) == Literal(
        12, datatype=XSD.nonNegativeInteger
    )
    assert graph.value(DATASET, HEALTH.numberOfRecords) == Literal(
        4200, datatype=XSD.nonNegativeInteger
    )
    period = graph.value(DATASET, DCTERMS.temporal)
    assert graph.value(period, DCAT.startDate) == Literal(date(2016, 3, 1))
    assert graph.value(period, DCAT.endDate) == Literal(date(2019, 11, 30))
    empty = _graph(stats={"subjects": 0, "studies": 0, "instances": 0, "earliest": None})
    assert empty.value(DATASET, DCTERMS.temporal) is None
    assert empty.value(DATASET, HEALTH.numberOfUniqueIndividuals) == Literal(
        0, datatype=XSD.nonNegativeInteger
    )


def test_data_use_conditions_are_duo_terms() -> None:
    radbank = Namespace("https://w3id.org/radbank/ontology#")
    graph = _graph()
    assert set(graph.objects(DATASET, radbank.dataUseCondition)) == {
        URIRef("http://purl.obolibrary.org/obo/DUO_0000042"),
        URIRef("http://purl.obolibrary.org/obo/DUO_0000019"),
    }
    disease = _graph(dataclasses.replace(PROJECT, data_use=("DUO:0000007:ICD10:C34",)))
    assert disease.value(DATASET, radbank.dataUseDisease) == Literal("ICD10:C34")


def test_open_access_and_a_licence_of_the_projects_own() -> None:
    graph = _graph(
        dataclasses.replace(
            PROJECT,
            open_access=True,
            licence="LicenseRef-site-agreement",
            ip_statement="Rights held by the sites; reuse under the consortium agreement.",
        )
    )
    assert graph.value(DATASET, DCTERMS.accessRights) == URIRef(
        "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
    )
    licence = graph.value(DATASET, DCTERMS.license)
    assert (licence, RDF.type, DCTERMS.LicenseDocument) in graph
    assert str(graph.value(licence, DCTERMS.description)).startswith("Rights held by the sites")
    rights = graph.value(DATASET, DCTERMS.rights)
    assert (rights, RDF.type, DCTERMS.RightsStatement) in graph


def test_a_project_without_description_still_has_one() -> None:
    graph = _graph(dataclasses.replace(PROJECT, title="", description=""))
    assert str(graph.value(DATASET, DCTERMS.title)) == "ct-trial"
    assert "ct-trial" in str(graph.value(DATASET, DCTERMS.description))


@pytest.mark.parametrize(
    ("media_type", "rdflib_format"),
    [("application/ld+json", "json-ld"), ("application/rdf+xml", "xml")],
)
def test_every_serialisation_says_the_same(media_type: str, rdflib_format: str) -> None:
    triples = dataset_description(PROJECT, STATS, base_url=BASE, node_name="Example node")
    turtle = Graph().parse(data=serialize(triples, "text/turtle"), format="turtle")
    other = Graph().parse(data=serialize(triples, media_type), format=rdflib_format)
    assert isomorphic(turtle, other)
    assert media_type in MEDIA_TYPES


def test_media_type_parameters_are_ignored_and_unknown_types_refused() -> None:
    triples = dataset_description(PROJECT, STATS, base_url=BASE, node_name="Example node")
    assert serialize(triples, "text/turtle; charset=utf-8") == serialize(triples, "text/turtle")
    with pytest.raises(ValueError, match="text/turtle"):
        serialize(triples, "text/html")


def test_the_record_is_the_same_every_time() -> None:
    first = dataset_description(PROJECT, STATS, base_url=BASE, node_name="Example node")
    again = dataset_description(PROJECT, STATS, base_url=BASE, node_name="Example node")
    assert serialize(first, "text/turtle") == serialize(again, "text/turtle")
    assert record_url(BASE + "/", "ct-trial") + "#dataset" == str(DATASET)
