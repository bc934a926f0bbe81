"""Non-DICOM submissions (JSON-LD, JSON, CSV) become validated, pseudonymised quads that
link to the subject and the studies exactly as the images do, or are refused whole with
every violation listed. The references resolve against a real node: synthetic studies are
ingested through the real pipeline and looked up in the real index."""

from __future__ import annotations

import datetime
import io
import random
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pyoxigraph as ox
import pytest
from pydicom import Dataset
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import SH

from radbank.app import Services, build_services
from radbank.config import Settings
from radbank.dicom.deid import Option, Profile, deidentify
from radbank.governance.policy import ADMIN
from radbank.index import Index, Project
from radbank.ingest import Item
from radbank.ingest.site_identity import ProjectIdentity
from radbank.projects import create_project
from radbank.semantic import vocabulary as v
from radbank.semantic.submissions import (
    CONTEXT,
    CONTEXT_URL,
    Held,
    Submission,
    SubmissionRejected,
    Violation,
    prepare_submission,
)
from radbank.synthetic import demo_studies
from radbank.synthetic_dose import ct_rdsr

# pyshacl drives rdflib through APIs rdflib has deprecated; nothing radbank can act on.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")

DATA = Path(__file__).parent / "data"
MEDIA = {".json": "application/json", ".csv": "text/csv", ".jsonld": "application/ld+json"}
EXAMPLES = sorted(DATA.glob("*.*"))
NOW = datetime.datetime(2026, 1, 1, 9, 30, tzinfo=datetime.UTC)

# The site's identifiers the examples in data/ use (synthetic: no real patient).
ROOT = "1.2.826.0.1.3680043.8.498"
PATIENTS = {  # patient ID -> (name, birth date)
    "PAT-0001": ("Doe^Jane", "19600214"),
    "PAT-0002": ("Smith^John", "19551103"),
}
ISSUER = "HOSP-A"
# What the examples contain that identifies someone, or that only the site knows.
IDENTIFYING = ["Jane", "Doe", "PAT-000", "HOSP-A", "1960", "0612345678", ROOT]
LEVELS = {
    v.RB + "study": ("study",),
    v.RB + "irradiationEvent": ("event",),
    v.PROV + "used": ("series", "instance"),
}


# --- a node holding two patients' CT studies --------------------------------------------


def _studies() -> list[Dataset]:
    """Per patient: one CT study of two series (each with its Irradiation Event UID) and
    its dose report, with the identifiers the examples reference."""
    images = list(
        demo_studies(
            sites=1,
            patients_per_site=2,
            studies_per_patient=1,
            series_per_study=2,
            instances_per_series=1,
            dose_reports=False,
        )
    )
    datasets = []
    for number, (patient_id, (name, birth)) in enumerate(PATIENTS.items(), start=1):
        study = images[2 * number - 2 : 2 * number]
        for series, ds in enumerate(study, start=1):
            ds.PatientID, ds.IssuerOfPatientID = patient_id, ISSUER
            ds.PatientName, ds.PatientBirthDate = name, birth
            ds.StudyInstanceUID = f"{ROOT}.{number}.1"
            ds.SeriesInstanceUID = f"{ROOT}.{number}.1.{series}"
            ds.SOPInstanceUID = f"{ROOT}.{number}.1.{series}.1"
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.IrradiationEventUID = f"{ROOT}.{number}.1.{series}.9"
        datasets += [*study, ct_rdsr(number, images=study)]
    return datasets


def _bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class IndexHoldings:
    """What a project holds, from the real index (the lookups the node's submit makes)."""

    def __init__(self, index: Index, project: Project) -> None:
        self.index, self.project = index, project
        self.calls = 0

    def subjects(self, pseudonyms: object) -> set[str]:
        self.calls += 1
        return self.index.held_subjects(self.project.id, list(pseudonyms))  # type: ignore[call-overload]

    def objects(self, uids: object) -> dict[str, Held]:
        self.calls += 1
        held = self.index.held_objects(self.project.id, list(uids))  # type: ignore[call-overload]
        return {uid: Held(level, pseudonym or "") for uid, (level, pseudonym) in held.items()}


@dataclass(repr=False)
class Node:
    services: Services
    originals: list[Dataset]
    stored: dict[str, dict[str, Dataset]]  # project -> original SOP Instance UID -> stored

    def project(self, name: str) -> Project:
        project = self.services.index.get_project(name)
        assert project is not None
        return project

    def identity(self, name: str) -> ProjectIdentity:
        return ProjectIdentity.for_project(self.project(name), self.services.keys)

    def holdings(self, name: str) -> IndexHoldings:
        return IndexHoldings(self.services.index, self.project(name))

    def submit(
        self,
        body: bytes | Path,
        kind: str,
        media_type: str = "",
        project: str = "ct-trial",
        **options: int,
    ) -> Submission:
        if isinstance(body, Path):
            media_type = media_type or MEDIA[body.suffix]
            body = body.read_bytes()
        return prepare_submission(
            body,
            media_type,
            kind,
            project=project,
            submission_id="sub-1",
            submitted_by="site-uploader",
            submitted_at=NOW,
            identity=self.identity(project),
            holdings=self.holdings(project),
            **options,
        )

    def refused(
        self, body: bytes | str | Path, kind: str, media_type: str = "", **kw: object
    ) -> list[Violation]:
        data = body.encode() if isinstance(body, str) else body
        with pytest.raises(SubmissionRejected) as caught:
            self.submit(data, kind, media_type, **kw)  # type: ignore[arg-type]
        return caught.value.violations

    def subject(self, project: str, patient_id: str) -> str:
        """The subject IRI of a patient, from the PatientID the pipeline stored."""
        stored = next(s for original, s in self._pairs(project) if original.PatientID == patient_id)
        return v.subject_iri(project, str(stored.PatientID))

    def stored_uid(self, project: str, keyword: str, original_uid: str) -> str:
        return next(
            str(s[keyword].value)
            for original, s in self._pairs(project)
            if str(original[keyword].value) == original_uid
        )

    def shift_days(self, project: str, patient_id: str) -> int:
        """How far the pipeline moved this patient's Study Date."""
        original, stored = next(
            (o, s) for o, s in self._pairs(project) if o.PatientID == patient_id
        )
        parse = datetime.datetime.strptime
        return (parse(stored.StudyDate, "%Y%m%d") - parse(original.StudyDate, "%Y%m%d")).days

    def _pairs(self, project: str) -> Iterator[tuple[Dataset, Dataset]]:
        for original in self.originals:
            yield original, self.stored[project][str(original.SOPInstanceUID)]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """ct-trial shifts dates (research-dose), plain-trial removes them (basic); both hold
    the same two patients' studies."""
    services, _ = build_services(
        Settings(data_dir=tmp_path_factory.mktemp("node") / "data", admin_token="test-token")
    )
    originals = _studies()
    files = [_bytes(ds) for ds in originals]
    stored: dict[str, dict[str, Dataset]] = {}
    for name, profile in (("ct-trial", "research-dose"), ("plain-trial", "basic")):
        project = create_project(
            services.index,
            name,
            keys=services.keys,
            trail=services.trail,
            actor="tester",
            profile=profile,
        )
        items = [Item(f"file-{n}.dcm", data) for n, data in enumerate(files)]
        outcomes = services.pipeline.ingest(items, project, source="test", principal=ADMIN)
        assert all(o.acknowledged for o in outcomes), outcomes
        records = services.index.get_instances(project.id, [o.sop_instance_uid for o in outcomes])
        stored[name] = {
            str(original.SOPInstanceUID): pydicom.dcmread(
                io.BytesIO(services.store.get(records[str(o.sop_instance_uid)].blob_key))
            )
            for original, o in zip(originals, outcomes, strict=True)
        }
    yield Node(services, originals, stored)
    services.close()


def _quads(submission: Submission) -> list[ox.Quad]:
    return [q for quads in submission.parts.values() for q in quads] + submission.shared


def _text(submission: Submission) -> str:
    return (ox.serialize(_quads(submission), format=ox.RdfFormat.N_QUADS) or b"").decode()


def _values(submission: Submission, predicate: str) -> list[ox.NamedNode | ox.Literal]:
    return [q.object for q in _quads(submission) if q.predicate.value == predicate]


# --- every example is accepted, linked like the images, and de-identified -------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_accepted_and_linked_like_its_images(node: Node, path: Path) -> None:
    kind = path.stem
    submission = node.submit(path, kind)

    records = {"crf": 2, "outcome": 3, "organ-doses": 3, "mrt-dosimetry": 1}
    assert submission.records == records[kind]
    patients = ["PAT-0001"] if kind == "mrt-dosimetry" else ["PAT-0001", "PAT-0002"]
    assert set(submission.parts) == {node.subject("ct-trial", p) for p in patients}
    # Every quad is in the project's graph; every node of a part says whose it is.
    graph = v.graph_iri("ct-trial")
    assert {q.graph_name.value for q in _quads(submission)} == {graph}  # type: ignore[union-attr]
    for subject, quads in submission.parts.items():
        nodes = {q.subject for q in quads}
        tagged = {q.subject for q in quads if q.predicate.value == v.RB + "subject"}
        assert nodes == tagged and {
            q.object.value for q in quads if q.predicate.value == v.RB + "subject"
        } == {subject}
        assert all(
            n.value.startswith("urn:radbank:submission:ct-trial:sub-1/")  # type: ignore[union-attr]
            for n in nodes
        )
    # References are UIDs the node stores, each held at the level its property names.
    references = [
        (q.predicate.value, v.uid_from_iri(q.object.value))
        for q in _quads(submission)
        if isinstance(q.object, ox.NamedNode) and q.object.value.startswith("urn:oid:")
    ]
    held = node.services.index.held_objects(
        node.project("ct-trial").id, [uid for _, uid in references]
    )
    assert references
    for predicate, uid in references:
        assert held[uid][0] in LEVELS[predicate], (predicate, uid)
    # Nothing the site alone knows survives: names, birth dates, IDs, original UIDs. (The
    # digits of pseudonymised UIDs, 2.25.<128-bit number> under a random project key, may
    # hold any digit run, "1960" too: they are left out of the search.)
    text = re.sub(r"2\.25\.[0-9]+", "2.25.N", _text(submission))
    assert [word for word in IDENTIFYING if word in text] == []


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.stem == "crf"], ids=lambda p: p.name)
def test_a_case_report_form_names_the_study_the_pipeline_stored(node: Node, path: Path) -> None:
    submission = node.submit(path, "crf")
    study = node.stored_uid("ct-trial", "StudyInstanceUID", f"{ROOT}.1.1")
    assert [o.value for o in _values(submission, v.RB + "study")] == [f"urn:oid:{study}"]
    jane = node.subject("ct-trial", "PAT-0001")
    form = next(
        q.subject for q in submission.parts[jane] if q.predicate.value == v.RB + "visitDate"
    )
    assert any(
        q.subject == form and q.predicate.value == v.RB + "study" for q in submission.parts[jane]
    )


def test_organ_doses_reference_the_irradiation_events_the_dose_report_gave(node: Node) -> None:
    submission = node.submit(DATA / "organ-doses.csv", "organ-doses")
    events = {o.value for o in _values(submission, v.RB + "irradiationEvent")}
    assert events == {f"urn:oid:{node.identity('ct-trial').uid(f'{ROOT}.1.1.1.9')}"}
    held = node.services.index.held_objects(
        node.project("ct-trial").id, [v.uid_from_iri(e) for e in events]
    )
    assert [level for level, _ in held.values()] == ["event"]
    # The event alone says whose the doses are: no patient_id in those rows.
    jane = node.subject("ct-trial", "PAT-0001")
    assert sum(q.predicate.value == v.RB + "irradiationEvent" for q in submission.parts[jane]) == 2


@pytest.mark.parametrize("kind", ["crf", "outcome", "organ-doses", "mrt-dosimetry"])
def test_json_csv_and_jsonld_of_one_record_give_the_same_graph(node: Node, kind: str) -> None:
    graphs = {path.suffix: _graph(node.submit(path, kind)) for path in DATA.glob(f"{kind}.*")}
    assert len(graphs) == (2 if kind == "mrt-dosimetry" else 3)
    json = graphs[".json"]
    for suffix, graph in graphs.items():
        assert isomorphic(json, graph), suffix


def _graph(submission: Submission) -> Graph:
    """The submission with its minted node IRIs as blank nodes (formats name them apart)."""
    minted = submission.submission_iri + "/"
    nodes: dict[str, BNode] = {}

    def term(t: ox.NamedNode | ox.Literal) -> URIRef | Literal | BNode:
        if isinstance(t, ox.Literal):
            if t.language:
                return Literal(t.value, lang=t.language)
            return Literal(t.value, datatype=URIRef(t.datatype.value))
        return nodes.setdefault(t.value, BNode()) if t.value.startswith(minted) else URIRef(t.value)

    graph = Graph()
    for q in _quads(submission):
        graph.add((term(q.subject), term(q.predicate), term(q.object)))  # type: ignore[arg-type]
    return graph


def test_the_submission_is_a_prov_activity_and_shared_quads_hold_no_personal_data(
    node: Node,
) -> None:
    submission = node.submit(DATA / "organ-doses.json", "organ-doses")
    activity = ox.NamedNode(submission.submission_iri)
    assert submission.submission_iri == "urn:radbank:submission:ct-trial:sub-1"
    shared = {(q.subject, q.predicate.value, q.object) for q in submission.shared}
    assert (activity, v.RDF + "type", ox.NamedNode(v.PROV + "Activity")) in shared
    assert (activity, v.RB + "submissionKind", ox.Literal("organ-doses")) in shared
    started = ox.Literal("2026-01-01T09:30:00+00:00", datatype=ox.NamedNode(v.XSD + "dateTime"))
    assert (activity, v.PROV + "startedAtTime", started) in shared
    agents = [o for s, p, o in shared if s == activity and p == v.PROV + "wasAssociatedWith"]
    assert agents and all(
        (a, v.RDF + "type", ox.NamedNode(v.PROV + "Agent")) in shared for a in agents
    )
    # Besides the activity and its agent, only the software that ran the simulation.
    software = {s for s, p, o in shared if o == ox.NamedNode(v.PROV + "SoftwareAgent")}
    assert {s for s, _, _ in shared} == {activity, *agents, *software}
    assert (next(iter(software)), v.RDFS + "label", ox.Literal("ImpactMC 1.5")) in shared
    # Each record is tied to the submission.
    roots = {
        q.subject
        for q in _quads(submission)
        if q.object == ox.NamedNode(v.RB + "MonteCarloOrganDose")
    }
    tied = {q.subject for q in _quads(submission) if q.object == activity}
    assert len(roots) == 3 and roots <= tied


# --- identity: the same pseudonyms, UIDs and dates as the DICOM pipeline -----------------


def test_pseudonyms_and_uids_equal_those_the_pipeline_stored(node: Node) -> None:
    for project in ("ct-trial", "plain-trial"):
        identity = node.identity(project)
        for original, stored in node._pairs(project):
            assert stored.PatientID == identity.pseudonym(original.PatientID, ISSUER)
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                assert str(stored[keyword].value) == identity.uid(str(original[keyword].value))
    assert node.identity("ct-trial").pseudonym("PAT-0001", ISSUER) != node.identity(
        "plain-trial"
    ).pseudonym("PAT-0001", ISSUER)


def test_dates_are_shifted_with_the_patients_own_shift(node: Node) -> None:
    submission = node.submit(DATA / "crf.json", "crf")
    for patient, visit in (("PAT-0001", "2024-03-01"), ("PAT-0002", "2024-03-08")):
        quads = submission.parts[node.subject("ct-trial", patient)]
        [shifted] = [q.object.value for q in quads if q.predicate.value == v.RB + "visitDate"]
        days = node.shift_days("ct-trial", patient)
        assert days < 0
        expected = datetime.date.fromisoformat(visit) + datetime.timedelta(days=days)
        assert shifted == expected.isoformat()
    # A date inside a form field moves with the same shift.
    jane = submission.parts[node.subject("ct-trial", "PAT-0001")]
    dates = [
        q.object.value
        for q in jane
        if isinstance(q.object, ox.Literal) and q.object.datatype.value == v.XSD + "date"
    ]
    diagnosis = datetime.date(2023, 11, 2) + datetime.timedelta(
        node.shift_days("ct-trial", "PAT-0001")
    )
    assert diagnosis.isoformat() in dates


def test_a_profile_that_removes_dates_refuses_records_that_need_one(node: Node) -> None:
    violations = node.refused(DATA / "crf.csv", "crf", project="plain-trial")
    assert [(v.row, v.field) for v in violations] == [
        ("row 1 (line 2)", "visit_date"),
        ("row 2 (line 3)", "visit_date"),
    ]
    assert all("plain-trial (basic) removes dates" in v.reason for v in violations)
    outcome = node.refused(DATA / "outcome.jsonld", "outcome", project="plain-trial")
    assert {v.field for v in outcome} == {"dcterms:date"}
    # Organ doses need no date: accepted, the dates they give are removed and reported.
    doses = (
        (DATA / "organ-doses.jsonld")
        .read_text()
        .replace(
            '"@type": "MonteCarloSimulation",',
            '"@type": "MonteCarloSimulation", "prov:startedAtTime": '
            '{"@value": "2024-03-02T10:15:00+01:00", "@type": "xsd:dateTime"},',
        )
    )
    plain = node.submit(doses.encode(), "organ-doses", "application/ld+json", project="plain-trial")
    assert plain.removed == ("prov:startedAtTime",)
    assert len(_values(plain, v.PROV + "startedAtTime")) == 1  # the submission's own
    shifted = node.submit(doses.encode(), "organ-doses", "application/ld+json")
    moments = {o.value for o in _values(shifted, v.PROV + "startedAtTime")}
    days = node.shift_days("ct-trial", "PAT-0001")
    moved = datetime.datetime(
        2024, 3, 2, 10, 15, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert (moved + datetime.timedelta(days=days)).isoformat() in moments


@pytest.mark.parametrize(
    "profile",
    [
        Profile.named("basic"),
        Profile.named("basic-dates"),
        Profile.named("research-dose"),
        Profile("full-dates", "1", frozenset({Option.RETAIN_LONGITUDINAL_FULL_DATES})),
        Profile.named("basic").with_overrides({"StudyDate": "keep"}),
    ],
    ids=["basic", "basic-dates", "research-dose", "full-dates", "basic+keep-study-date"],
)
def test_a_submissions_dates_follow_the_profile_as_study_date_does(profile: Profile) -> None:
    key = bytes(range(32))
    original = _studies()[0]
    done = deidentify(pydicom.dcmread(io.BytesIO(_bytes(original))), profile, key)
    stored = str(done.dataset.get("StudyDate", "") or "")
    identity = ProjectIdentity(key, profile)
    date = datetime.datetime.strptime(original.StudyDate, "%Y%m%d").date()
    result = identity.date(date, done.patient_pseudonym)
    assert (result.strftime("%Y%m%d") if result else "") == stored
    assert identity.profile_name == profile.name


def test_uids_are_kept_where_the_profile_retains_them() -> None:
    key = bytes(32)
    retains = ProjectIdentity(key, Profile("keep-uids", "1", frozenset({Option.RETAIN_UIDS})))
    assert retains.uid(f"{ROOT}.1.1") == f"{ROOT}.1.1"
    remaps = ProjectIdentity(key, Profile.named("basic"))
    assert remaps.uid(f"{ROOT}.1.1").startswith("2.25.")
    assert remaps.uid("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"


def test_names_birth_dates_and_free_text_are_handled_like_dicom(node: Node) -> None:
    submission = node.submit(DATA / "crf.csv", "crf")
    assert submission.removed == ("birth_date", "patient_name")
    comments = [o.value for o in _values(submission, v.RDFS + "comment")]
    values = [o.value for o in _values(submission, v.RB + "fieldValue")]
    [comment] = comments
    [adverse] = [value for value in values if "nausea" in value]
    # Narrative keeps medical words and drops who, where and when.
    assert "first cycle well" in comment
    assert [word for word in ("Jane", "Doe", "2024-03-05") if word in comment] == []
    assert adverse.startswith("Grade 1 nausea after cycle 1") and "0612345678" not in adverse
    # Short values and descriptors keep their words.
    assert "Baseline" in [o.value for o in _values(submission, v.DCT + "title")]
    mrt = node.submit(DATA / "mrt-dosimetry.json", "mrt-dosimetry")
    assert [o.value for o in _values(mrt, v.RB + "method")] == ["MIRD S-values, OLINDA/EXM 2.2"]
    assert sorted(o.value for o in _values(mrt, v.RB + "regionName")) == ["lesion 1", "liver"]
    # JSON-LD: identifying properties of the patient are removed and reported.
    jsonld = node.submit(DATA / "crf.jsonld", "crf")
    assert jsonld.removed == ("foaf:name", "schema:birthDate")


def test_identifying_form_fields_are_removed_whatever_their_column(node: Node) -> None:
    body = (
        # Known columns match whatever their case; form fields keep their names.
        "Patient_ID,Issuer_of_Patient_ID,Visit_Date,ECOG,mother_name,dateOfBirth,email,drug_name\n"
        "PAT-0001,HOSP-A,2024-03-01,1,Mary Doe,1960-02-14,jane@example.org,lutetium\n"
    )
    submission = node.submit(body.encode(), "crf", "text/csv")
    assert submission.removed == ("dateOfBirth", "email", "mother_name")
    names = {o.value for o in _values(submission, v.RB + "fieldName")}
    assert names == {"ECOG", "drug_name"}
    assert "Mary" not in _text(submission) and "example.org" not in _text(submission)


# --- refused whole, with every violation listed -----------------------------------------


def _listed(violations: list[Violation]) -> list[tuple[str | None, str | None]]:
    return [(v.row, v.field) for v in violations]


def test_an_invalid_csv_lists_every_violation_by_row_and_column(node: Node) -> None:
    body = (
        "patient_id,issuer_of_patient_id,visit_date,study_instance_uid,weight_kg\n"
        f"PAT-0001,HOSP-A,01/03/2024,{ROOT}.1.1.1,72.5\n"
        "PAT-0009,HOSP-A,2024-03-01,,70\n"
        f"PAT-0002,HOSP-A,2024-02-30,{ROOT}.2.1,\n"
    )
    violations = node.refused(body, "crf", "text/csv")
    assert _listed(violations) == [
        ("row 1 (line 2)", "visit_date"),
        ("row 1 (line 2)", "study_instance_uid"),
        ("row 2 (line 3)", "patient_id"),
        ("row 3 (line 4)", "visit_date"),
        ("row 3 (line 4)", "(field columns)"),
    ]
    reasons = [v.reason for v in violations]
    assert reasons[0].startswith("'01/03/2024' is not a date: write YYYY-MM-DD")
    assert reasons[1] == f"{ROOT}.1.1.1 is a series of project ct-trial, not a study"
    assert reasons[2].startswith("patient PAT-0009 (issuer HOSP-A) is not held by project ct-trial")
    assert reasons[3].startswith("'2024-02-30' is not a date")
    assert reasons[4].startswith("A case report form needs at least one radbank:field")
    text = str(SubmissionRejected(violations))
    assert text.splitlines()[2].startswith("row 2 (line 3), patient_id: patient PAT-0009")


def test_invalid_organ_doses_are_refused_record_by_record(node: Node) -> None:
    event = f"{ROOT}.1.1.1.9"
    body = f"""{{"simulation": {{"software": "ImpactMC 1.5"}},
      "organ_doses": [
        {{"irradiation_event_uid": "{event}", "organ_code": "SCT:10200004", "value": -1.5, "unit": "mGy"}},
        {{"irradiation_event_uid": "{event}", "organ_name": "lung", "value": 3, "unit": "cGy"}},
        {{"irradiation_event_uid": "{event}", "value": "12.5", "unit": "mGy"}},
        {{"irradiation_event_uid": "1.2.3.4.5", "organ_name": "liver", "value": 2, "unit": "mGy"}},
        {{"patient_id": "PAT-0002", "issuer_of_patient_id": "HOSP-A",
          "irradiation_event_uid": "{event}", "organ_name": "liver", "value": 2, "unit": "mGy"}}
      ]}}"""
    violations = node.refused(body, "organ-doses", "application/json")
    assert _listed(violations) == [
        ("$.organ_doses[0]", "value"),
        ("$.organ_doses[1]", "unit"),
        ("$.organ_doses[2]", "value"),
        ("$.organ_doses[2]", "organ_code"),
        ("$.organ_doses[3]", "irradiation_event_uid"),
        ("$.organ_doses[4]", None),
    ]
    reasons = [v.reason for v in violations]
    assert reasons[0] == "An organ dose cannot be negative."
    assert reasons[1].startswith("An organ dose is stated in mGy or Gy")
    assert reasons[2] == "'12.5' is not a number"
    assert reasons[3].startswith("Name the organ")
    assert reasons[4] == (
        "irradiation event 1.2.3.4.5 is not held by project ct-trial (never stored, or erased)"
    )
    assert reasons[5].startswith("refers to 2 different patients (patient_id PAT-0002;")


def test_an_invalid_dosimetry_names_the_nested_field(node: Node) -> None:
    text = (DATA / "mrt-dosimetry.json").read_text()
    text = text.replace('"fit": {"model": "mono-exponential"}', '"fit": {}')
    text = text.replace(
        '{"voi": "liver", "value": 4.2, "unit": "Gy"}',
        '{"voi": "liver", "value": 4.2, "unit": "mGy"}',
    )
    text = text.replace(
        '"voi": "lesion-1",\n          "points"', '"voi": "kidney",\n          "points"'
    )
    assert text.count("kidney") == 1 and text.count('"fit": {}') == 1
    violations = node.refused(text, "mrt-dosimetry", "application/json")
    assert _listed(violations) == [
        ("$.workflows[0]", "time_activity_curves[1].voi"),
        ("$.workflows[0]", "fit.model"),
        ("$.workflows[0]", "absorbed_doses[0].unit"),
    ]
    assert violations[0].reason == "'kidney' is not the id of one of the volumes_of_interest"
    assert violations[1].reason.startswith("A curve fit names its model")
    assert violations[2].reason.startswith(
        "An absorbed dose per volume of interest is stated in gray"
    )


def test_an_invalid_outcome_csv_names_each_missing_column(node: Node) -> None:
    body = "patient_id,issuer_of_patient_id,code,date,value\nPAT-0001,HOSP-A,,September 2024,\n"
    violations = node.refused(body, "outcome", "text/csv")
    assert _listed(violations) == [
        ("row 1 (line 2)", "date"),
        ("row 1 (line 2)", "code"),
        ("row 1 (line 2)", "value"),
    ]
    assert violations[1].reason.startswith("Code the type of outcome")
    assert violations[2].reason.startswith("An outcome needs exactly one radbank:observedValue")


def test_an_invalid_jsonld_form_names_its_node_and_property(node: Node) -> None:
    body = f"""{{"@context": "{CONTEXT_URL}", "@id": "form-1", "@type": "CaseReportForm",
      "subject": "urn:radbank:patient:HOSP-A:PAT-0001",
      "field": [{{"@type": "CaseReportFormField", "fieldName": "ecog", "fieldValue": 1}},
                {{"@type": "CaseReportFormField", "fieldName": "ecog", "fieldValue": 2}}]}}"""
    violations = node.refused(body, "crf", "application/ld+json")
    assert set(_listed(violations)) == {("form-1", None), ("form-1", "radbank:visitDate")}
    reasons = sorted(v.reason for v in violations)
    assert reasons[0].startswith("A case report form needs exactly one radbank:visitDate")
    assert reasons[1].startswith('Field name "ecog" appears more than once')


def test_unknown_references_are_refused_per_row_with_what_the_site_sent(node: Node) -> None:
    node_study = node.stored_uid("ct-trial", "StudyInstanceUID", f"{ROOT}.1.1")
    body = (
        "patient_id,issuer_of_patient_id,code,date,value,study_instance_uid\n"
        f"PAT-0001,HOSP-A,SCT:419620001,2024-09-01,false,{ROOT}.1.1\n"
        f"PAT-0001,HOSP-A,SCT:419620001,2024-09-01,false,{ROOT}.7.7\n"
        f"PAT-0001,HOSP-A,SCT:419620001,2024-09-01,false,{node_study}\n"
        "PAT-0001,,SCT:419620001,2024-09-01,false,\n"
    )
    violations = node.refused(body, "outcome", "text/csv")
    assert _listed(violations) == [
        ("row 2 (line 3)", "study_instance_uid"),
        ("row 3 (line 4)", "study_instance_uid"),
        ("row 4 (line 5)", "patient_id"),
    ]
    assert violations[0].reason == (
        f"study {ROOT}.7.7 is not held by project ct-trial (never stored, or erased)"
    )
    assert "already pseudonymised" in violations[1].reason
    assert "give it too (issuer_of_patient_id)" in violations[2].reason
    # The other project holds the same patients under other pseudonyms: nothing links.
    plain = node.identity("plain-trial")
    assert plain.uid(f"{ROOT}.1.1") != node_study


def test_references_are_looked_up_in_two_batched_calls(node: Node) -> None:
    holdings = node.holdings("ct-trial")
    prepare_submission(
        (DATA / "organ-doses.json").read_bytes(),
        "application/json",
        "organ-doses",
        project="ct-trial",
        submission_id="sub-1",
        submitted_by="site-uploader",
        submitted_at=NOW,
        identity=node.identity("ct-trial"),
        holdings=holdings,
    )
    assert holdings.calls == 2  # one for the subjects, one for the objects


def test_a_jsonld_node_shared_by_two_patients_is_refused(node: Node) -> None:
    text = (DATA / "organ-doses.jsonld").read_text()
    text = text.replace(
        '"wasGeneratedBy": "simulation-PAT-0002"', '"wasGeneratedBy": "simulation-event-9"'
    )
    violations = node.refused(text, "organ-doses", "application/ld+json")
    reasons = {v.row: v.reason for v in violations}
    assert set(reasons) == {
        "liver-event-9",
        "lung-event-9",
        "kidney-PAT-0002",
        "simulation-PAT-0002",
    }
    for row in ("liver-event-9", "lung-event-9", "kidney-PAT-0002"):
        assert reasons[row].startswith("refers to 2 different patients")
    # The simulation no dose names any more belongs to nobody: not stored either.
    assert reasons["simulation-PAT-0002"].startswith("says nothing that ties it to a patient")


# --- JSON-LD never fetches anything -------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize(
    "context",
    [
        '"https://example.org/context.jsonld"',
        '["https://w3id.org/radbank/context.jsonld", "https://example.org/more.jsonld"]',
        '{"@import": "https://example.org/context.jsonld"}',
        '{"visit": {"@id": "https://w3id.org/radbank/ontology#visitDate", '
        '"@context": "https://example.org/scoped.jsonld"}}',
    ],
    ids=["remote", "remote in a list", "@import", "scoped remote"],
)
def test_a_remote_context_is_refused_without_network_access(
    node: Node, no_network: list[object], context: str
) -> None:
    body = f'{{"@context": {context}, "@id": "form-1", "@type": "radbank:CaseReportForm"}}'
    violations = node.refused(body, "crf", "application/ld+json")
    assert [v.field for v in violations] in (["@context"], ["@import"])
    assert "fetches nothing" in violations[0].reason
    assert no_network == []


def test_the_radbank_context_is_known_by_name_and_uses_ontology_terms(
    no_network: list[object],
) -> None:
    ontology = Graph().parse(v.ONTOLOGY_PATH)
    defined = {str(s) for s in ontology.subjects()}
    for term, definition in CONTEXT.items():
        iri = definition["@id"] if isinstance(definition, dict) else definition
        if not isinstance(iri, str) or iri.startswith("@") or iri.endswith(("#", "/")):
            continue
        if iri.startswith(v.RB):
            assert iri in defined, term
        else:
            assert iri.startswith((v.PROV, v.DCT, v.QUDT, v.RDFS)), term
    assert no_network == []


@pytest.mark.parametrize(
    ("graph", "field", "reason"),
    [
        (
            '{"@id": "o1", "@type": "Outcome", "subject": "urn:radbank:subject:ct-trial:RB-ABCDEFGHIJKLMNOPQRST"}',
            "radbank:subject",
            "the node computes the pseudonym",
        ),
        (
            '{"@id": "urn:oid:1.2.3", "@type": "radbank:ImagingStudy"}',
            "rdf:type",
            "describes a DICOM object",
        ),
        (
            '{"@id": "o1", "@type": "Outcome", "comment": {"@id": "mailto:jane@example.org"}}',
            "rdfs:comment",
            "described nowhere",
        ),
        (
            '{"@id": "o1", "@type": "Outcome", "radbank:visitdate": "2024-01-01"}',
            "radbank:visitdate",
            "not a term",
        ),
        ('{"@id": "o1", "@type": "CaseReportForm"}', "@type", "belongs in a crf submission"),
        (
            '{"@id": "o1", "@type": "Outcome", "comment": {"@value": "Jane Doe", "@type": "xsd:integer"}}',
            "rdfs:comment",
            "is not a valid xsd:integer",
        ),
        (
            '{"@id": "o1", "@type": "Outcome", "comment": {"@value": {"name": "Jane"}, "@type": "@json"}}',
            "rdfs:comment",
            "datatype rdf:JSON is not accepted",
        ),
        (
            '{"@id": "o1", "@type": "Outcome", "code": "https://ehr.example.org/patients/12345"}',
            "radbank:code",
            "not a term of a known vocabulary",
        ),
        (
            '{"@id": "sw", "@type": "SoftwareAgent", "subject": "urn:radbank:patient:HOSP-A:PAT-0001"}',
            "radbank:subject",
            "shared by the records of every patient",
        ),
    ],
    ids=[
        "pseudonym sent",
        "describes a study",
        "mailto IRI",
        "misspelt term",
        "other kind",
        "a name typed as a number",
        "JSON literal",
        "a link to a record",
        "a software agent naming a patient",
    ],
)
def test_jsonld_that_reaches_beyond_its_records_is_refused(
    node: Node, graph: str, field: str, reason: str
) -> None:
    body = f'{{"@context": "{CONTEXT_URL}", "@graph": [{graph}]}}'
    violations = node.refused(body, "outcome", "application/ld+json")
    assert any(v.field == field and reason in v.reason for v in violations), violations


# --- hostile input: refused in words, never another exception ---------------------------


def _forms(fields: str = '{"w": 1}', old: str = "", new: str = "") -> bytes:
    """A crf JSON document of one form with these `fields`, `old` replaced by `new`."""
    form = (
        '{"patient_id": "PAT-0001", "issuer_of_patient_id": "HOSP-A", '
        '"visit_date": "2024-03-01", "fields": ' + fields + "}"
    )
    return ('{"forms": [' + form.replace(old, new) + "]}").encode()


HOSTILE = [
    ("crf", "application/json", b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    (
        "crf",
        "application/json",
        _forms('{"w": NaN}'),
        "NaN is not a JSON number",
    ),
    (
        "crf",
        "application/json",
        _forms('{"w": -Infinity}'),
        "-Infinity is not",
    ),
    (
        "crf",
        "application/json",
        _forms('{"w": 1e400}'),
        "too large a number",
    ),
    (
        "crf",
        "application/json",
        _forms('{"w": ' + "9" * 5000 + "}"),
        "not valid JSON",
    ),
    ("crf", "application/json", b'{"forms": [], "forms": []}', "appears twice"),
    ("crf", "application/json", b'{"forms": "many"}', "in a 'forms' array"),
    ("crf", "application/json", b"[1, 2]", "is a JSON object"),
    (
        "crf",
        "application/json",
        _forms("[1, 2]"),
        "fields is a JSON object",
    ),
    (
        "crf",
        "application/json",
        _forms('{"w": 1}', '"2024-03-01"', "20240301"),
        "20240301 is not a date",
    ),
    (
        "crf",
        "application/json",
        _forms('{"w": 1}', "visit_date", "visitdate"),
        "unknown key",
    ),
    (
        "crf",
        "application/json",
        _forms('{"w": 1}', "PAT-0001", "P" * 100),
        "1 to 64 characters",
    ),
    ("crf", "application/json", b"", "not valid JSON"),
    ("crf", "application/json", b'{"@context": {}, "forms": []}', "send it as application/ld+json"),
    ("crf", "text/csv", b"", "the CSV is empty"),
    ("crf", "text/csv", b"patient_id,visit_date\n", "a header but no rows"),
    (
        "crf",
        "text/csv",
        b"patient_id,visit_date\nPAT-0001,2024\x00-03-01\n",
        "NUL character (line 2)",
    ),
    ("crf", "text/csv", b"patient_id;visit_date\nPAT-0001;2024-03-01\n", "not semicolons"),
    ("crf", "text/csv", b"patient_id,patient_id\nPAT-0001,x\n", "appears twice"),
    (
        "crf",
        "text/csv",
        b"patient_id,visit_date\nPAT-0001,2024-03-01,extra\n",
        "3 cells where the header names 2",
    ),
    (
        "crf",
        "text/csv",
        "patient_id,visit_date,remark\nPAT-0001,2024-03-01,Fièvre\n".encode("latin-1"),
        "not UTF-8 (byte 0xe8 on line 2",
    ),
    ("crf", "text/csv; charset=iso-8859-1", b"patient_id\nx\n", "declared as iso-8859-1"),
    ("crf", "application/xml", b"<forms/>", "cannot read 'application/xml'"),
    ("mrt-dosimetry", "text/csv", b"patient_id\nPAT-0001\n", "send it as JSON"),
    ("crf", "application/ld+json", b'{"a": ' * 100 + b"1" + b"}" * 100, "nested deeper"),
    ("crf", "application/ld+json", b'{"@context": {}, "@id": 5}', "not valid JSON-LD"),
    (
        "crf",
        "application/ld+json",
        b'{"@context": {}, "@id": "urn:g", "@graph": [{"@id": "urn:a", "urn:p": "x"}]}',
        "not valid JSON-LD",
    ),
    (
        "outcome",
        "application/ld+json",
        ('{"@context": "' + CONTEXT_URL + '", "@id": "o", "@type": "CaseReportForm"}').encode(),
        "holds at least one radbank:Outcome",
    ),
    ("nonsense", "text/csv", b"a\n1\n", "unknown kind"),
    (
        "outcome",
        "text/csv",
        b"patient_id,code,date,value\nPAT-0001,https://ehr.example.org/jane,2024-01-01,1\n",
        "is not a code",
    ),
]


@pytest.mark.parametrize(
    ("kind", "media_type", "body", "reason"), HOSTILE, ids=[h[3] for h in HOSTILE]
)
def test_hostile_input_is_refused_in_words(
    node: Node, kind: str, media_type: str, body: bytes, reason: str
) -> None:
    violations = node.refused(body, kind, media_type)
    assert any(reason in str(v) for v in violations), violations


def test_more_records_than_allowed_are_refused(node: Node) -> None:
    rows = "".join(f"PAT-0001,HOSP-A,2024-03-0{n},{n}\n" for n in range(1, 7))
    body = "patient_id,issuer_of_patient_id,visit_date,ecog\n" + rows
    violations = node.refused(body, "crf", "text/csv", max_records=5)
    assert [str(v) for v in violations] == [
        "row 6 (line 7): more than 5 rows: split the submission into parts"
    ]


def test_damaged_examples_are_accepted_or_refused_never_crash(node: Node) -> None:
    rng = random.Random(20261127)
    for _ in range(60):
        path = rng.choice(EXAMPLES)
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(data))
            action = rng.choice(("flip", "delete", "insert"))
            if action == "flip":
                data[position] = rng.randrange(256)
            elif action == "delete":
                del data[position : position + rng.randint(1, 20)]
            else:
                data[position:position] = rng.choice(
                    [b"{", b'"', b",", b"\n", b"-1", b"\xff", b":"]
                )
        try:
            node.submit(bytes(data), path.stem, MEDIA[path.suffix])
        except SubmissionRejected as exc:
            assert exc.violations and all(v.reason for v in exc.violations)


# --- documentation -------------------------------------------------------------------------


def test_the_documentation_shows_every_example_unchanged() -> None:
    text = (DATA.parents[2] / "docs" / "submissions.md").read_text()
    shown = re.findall(r"^`([\w.-]+)` \([A-Z-]+\):\n\n```\w+\n(.*?)^```$", text, re.S | re.M)
    assert dict(shown) == {path.name: path.read_text() for path in EXAMPLES}


# --- the shapes this module relies on -----------------------------------------------------


def test_the_only_sparql_constraint_is_the_repeated_field_name() -> None:
    # pyshacl parses a SPARQL constraint's query again for every focus node (10 ms a form):
    # submissions evaluates this one itself, with its message, and gives pyshacl the shapes
    # without it. A new SPARQL constraint in shapes.ttl must be looked at there.
    shapes = Graph().parse(v.SHAPES_PATH)
    found = [(s, str(shapes.value(c, SH.message))) for s, c in shapes.subject_objects(SH.sparql)]
    assert len(found) == 1
    [(shape, message)] = found
    assert shape == URIRef(v.RB + "CaseReportFormShape")
    assert re.match(r'Field name "\{\?name\}" appears more than once', message)
