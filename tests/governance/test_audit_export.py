"""Export of the audit trail: FHIR R4 AuditEvents (one, a Bundle, NDJSON) and RFC 5424 syslog
lines carry each record's fields as documented, survive hostile values, and a real trail
exported in every format reads back with its ids and hash chain in order."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from radbank.governance.audit import AuditTrail, Outcome, record_hash
from radbank.governance.audit_export import (
    ACTION_SYSTEM,
    AUDIT_EVENT_TYPE,
    DCM,
    FORMATS,
    MAX_PARAM_CHARS,
    export,
    fhir_audit_event,
    fhir_bundle,
    fhir_ndjson,
    syslog_line,
)
from radbank.index import GENESIS_HASH, AuditRecord, Index

NODE = "radbank.example.org"
MOMENT = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)


def make_record(**changes: Any) -> AuditRecord:
    """A sealed record (its hash computed as the trail computes it) with changes applied."""
    fields: dict[str, Any] = {
        "id": 7,
        "time": MOMENT,
        "actor": "dr-broker",
        "action": "vault.open",
        "resource": "project:ct",
        "project": "ct",
        "detail": {"reason": "withdrawal"},
        "source": "192.0.2.10",
        "outcome": "success",
        "prev_hash": "ab" * 32,
        "hash": "",
    }
    record = AuditRecord(**{**fields, **changes})
    return replace(record, hash=record_hash(record))


# A hand-written check of FHIR R4 AuditEvent and Bundle: no FHIR validator (the HL7 validator
# or fhir.resources) is available offline here, so cardinalities, element names, types and
# required code values are taken from the R4 specification and checked one by one.

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
FHIR_INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|"
    r"3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|"
    r"1[0-3]):[0-5][0-9]|14:00))"
)
EVENT_ELEMENTS = {
    "resourceType", "id", "meta", "text", "extension", "type", "subtype", "action", "period",
    "recorded", "outcome", "outcomeDesc", "purposeOfEvent", "agent", "source", "entity",
}  # fmt: skip
AGENT_ELEMENTS = {
    "type", "role", "who", "altId", "name", "requestor", "location", "policy", "media",
    "network", "purposeOfUse",
}  # fmt: skip
ENTITY_ELEMENTS = {
    "what", "type", "role", "lifecycle", "securityLabel", "name", "description", "query",
    "detail",
}  # fmt: skip


def assert_no_empty_values(value: Any, where: str = "") -> None:
    """FHIR JSON has no null, no empty string, no empty array or object."""
    assert value not in (None, "", [], {}), f"empty value at {where or 'top'}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert_no_empty_values(item, f"{where}.{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            assert_no_empty_values(item, f"{where}[{number}]")


def assert_coding(coding: Any) -> None:
    assert isinstance(coding, dict) and set(coding) <= {"system", "code", "display"}
    assert all(isinstance(part, str) for part in coding.values())
    assert "code" in coding


def assert_reference(reference: Any) -> None:
    assert isinstance(reference, dict) and reference
    assert set(reference) <= {"reference", "type", "identifier", "display"}
    if "identifier" in reference:
        assert set(reference["identifier"]) <= {"system", "value"}
        assert all(isinstance(part, str) for part in reference["identifier"].values())


def assert_r4_audit_event(event: dict[str, Any]) -> None:
    assert_no_empty_values(event)
    assert set(event) <= EVENT_ELEMENTS
    assert event["resourceType"] == "AuditEvent"
    assert FHIR_ID.fullmatch(event["id"])
    assert_coding(event["type"])  # 1..1
    for coding in event.get("subtype", []):
        assert_coding(coding)
    assert event.get("action", "E") in {"C", "R", "U", "D", "E"}
    assert FHIR_INSTANT.fullmatch(event["recorded"])  # 1..1
    assert event.get("outcome", "0") in {"0", "4", "8", "12"}
    assert isinstance(event.get("outcomeDesc", "-"), str)
    assert isinstance(event["agent"], list) and event["agent"]  # 1..*
    for agent in event["agent"]:
        assert set(agent) <= AGENT_ELEMENTS
        assert isinstance(agent["requestor"], bool)  # 1..1
        if "who" in agent:
            assert_reference(agent["who"])
        if "network" in agent:
            assert set(agent["network"]) <= {"address", "type"}
            assert agent["network"]["type"] in {"1", "2", "3", "4", "5"}
        for concept in agent.get("purposeOfUse", []):
            assert set(concept) <= {"coding", "text"}
    source = event["source"]  # 1..1
    assert set(source) <= {"site", "observer", "type"}
    assert_reference(source["observer"])  # 1..1
    for coding in source.get("type", []):
        assert_coding(coding)
    for entity in event.get("entity", []):
        assert set(entity) <= ENTITY_ELEMENTS
        assert not ("name" in entity and "query" in entity), "sev-1: name or query, not both"
        if "what" in entity:
            assert_reference(entity["what"])
        for key in ("type", "role", "lifecycle"):
            if key in entity:
                assert_coding(entity[key])
        if "query" in entity:
            base64.b64decode(entity["query"], validate=True)
        for detail in entity.get("detail", []):
            assert isinstance(detail["type"], str)
            assert len(set(detail) & {"valueString", "valueBase64Binary"}) == 1


def assert_r4_bundle(bundle: dict[str, Any]) -> None:
    assert_no_empty_values(bundle)
    assert set(bundle) <= {"resourceType", "id", "meta", "type", "timestamp", "entry"}
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    for entry in bundle.get("entry", []):
        assert set(entry) <= {"fullUrl", "resource"}
        assert_r4_audit_event(entry["resource"])


def chain_details(event: dict[str, Any]) -> dict[str, str]:
    return {
        detail["type"]: detail["valueString"]
        for entity in event["entity"]
        for detail in entity.get("detail", [])
    }


def imported(event: dict[str, Any]) -> AuditRecord:
    """What an importer rebuilds from an AuditEvent to check radbank's hash chain."""
    details = chain_details(event)
    fields = json.loads(details["radbank-record"])
    fields["time"] = datetime.fromisoformat(fields["time"])
    return AuditRecord(**fields, hash=details["radbank-hash"])


# RFC 5424, section 6: HEADER, one SD-ELEMENT (PARAM-VALUE escapes \" \\ \]), MSG.
SYSLOG = re.compile(
    r"<(?P<pri>[0-9]{1,3})>1 "
    r"(?P<timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})) "
    r"(?P<hostname>[!-~]{1,255}) (?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) "
    r"(?P<msgid>[!-~]{1,32}) "
    r'\[(?P<sd_id>[^ =\]"]{1,32})(?P<params>(?: [^ =\]"]{1,32}="(?:[^"\\\]]|\\.)*")*)\]'
    r" (?P<msg>.+)"
)
PARAM = re.compile(r' ([^ =\]"]{1,32})="((?:[^"\\\]]|\\.)*)"')


def parse_syslog(line: str) -> tuple[re.Match[str], dict[str, str]]:
    match = SYSLOG.fullmatch(line)
    assert match, f"not an RFC 5424 line: {line!r}"
    params = {
        name: re.sub(r'\\(["\\\]])', r"\1", value) for name, value in PARAM.findall(match["params"])
    }
    return match, params


# FHIR AuditEvent: one record


@pytest.mark.parametrize(
    ("action", "detail", "system", "code", "verb"),
    [
        ("auth.sign-in", {}, DCM, "110114", "E"),
        ("audit.export", {}, DCM, "110101", "R"),
        ("vault.open", {"reason": "withdrawal"}, DCM, "110110", "R"),
        ("vault.lookup", {}, DCM, "110110", "R"),
        ("qido.search", {}, DCM, "110112", "E"),
        ("dicomweb.search_studies", {"method": "GET"}, DCM, "110112", "E"),
        ("wado.retrieve", {}, DCM, "110104", "R"),
        ("dicomweb.retrieve_frames", {"method": "GET"}, DCM, "110104", "R"),
        ("dicomweb.study_metadata", {"method": "GET"}, DCM, "110104", "R"),
        ("stow.store", {}, DCM, "110104", "C"),
        ("dicomweb.store_instances", {"method": "POST"}, DCM, "110104", "C"),
        ("project.export-key", {}, DCM, "110106", "R"),
        ("dataset.import", {}, DCM, "110107", "C"),
        ("project.create", {}, DCM, "110113", "C"),
        ("project.settings", {}, DCM, "110113", "U"),
        ("project.revoke-role", {}, DCM, "110113", "D"),
        ("user.disable", {}, DCM, "110113", "U"),
        ("token.issue", {}, DCM, "110113", "C"),
        ("vault.rotate", {}, DCM, "110113", "U"),
        ("api.members", {"method": "GET"}, AUDIT_EVENT_TYPE, "rest", "R"),
        ("api.change_settings", {"method": "PATCH"}, AUDIT_EVENT_TYPE, "rest", "U"),
        ("api.revoke_token", {"method": "DELETE"}, AUDIT_EVENT_TYPE, "rest", "D"),
        ("http.unmatched", {"method": "POST"}, AUDIT_EVENT_TYPE, "rest", "C"),
        ("store.gc", {}, DCM, "110100", "E"),
    ],
)
def test_the_event_type_and_action_follow_the_documented_table(
    action: str, detail: dict[str, Any], system: str, code: str, verb: str
) -> None:
    event = fhir_audit_event(make_record(action=action, detail=detail), node=NODE)
    assert_r4_audit_event(event)
    assert (event["type"]["system"], event["type"]["code"], event["action"]) == (system, code, verb)
    assert event["subtype"] == [{"system": ACTION_SYSTEM, "code": action}]


@pytest.mark.parametrize(
    ("outcome", "detail", "code", "description"),
    [
        ("success", {"status": 200}, "0", "success"),
        ("denied", {"status": 403}, "4", "denied (HTTP 403)"),
        ("denied", {"reason": "bad credentials"}, "4", "denied (reason: bad credentials)"),
        ("failure", {"reason": "withdrawal", "error": "wrong key file"}, "8",
         "failure (wrong key file; reason: withdrawal)"),
        ("failure", {"status": 500}, "8", "failure (HTTP 500)"),
        ("failure", {}, "8", "failure"),
    ],
)  # fmt: skip
def test_the_outcome_is_coded_and_explained(
    outcome: str, detail: dict[str, Any], code: str, description: str
) -> None:
    event = fhir_audit_event(make_record(outcome=outcome, detail=detail), node=NODE)
    assert_r4_audit_event(event)
    assert (event["outcome"], event["outcomeDesc"]) == (code, description)


def test_the_event_names_the_node_and_keeps_the_time_to_the_microsecond() -> None:
    paris = timezone(timedelta(hours=2))
    record = make_record(time=MOMENT.astimezone(paris))
    event = fhir_audit_event(record, node=NODE)
    assert_r4_audit_event(event)
    assert event["id"] == f"{NODE}-7"
    assert event["recorded"] == "2024-05-01T12:30:45.123456Z"
    assert event["source"] == {
        "observer": {"display": NODE},
        "type": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }
        ],
    }


def test_a_node_name_that_is_no_fhir_id_still_gives_a_valid_unique_id() -> None:
    record = make_record(id=123456)
    event = fhir_audit_event(record, node="node_1 (" + "x" * 100 + ")")
    assert_r4_audit_event(event)
    assert event["id"].startswith("node-1--xxx") and event["id"].endswith("-123456")
    assert len(event["id"]) == 64


@pytest.mark.parametrize(
    ("source", "network"),
    [
        ("192.0.2.10", {"address": "192.0.2.10", "type": "2"}),
        ("2001:db8::1", {"address": "2001:db8::1", "type": "2"}),
        ("workstation.example.org", {"address": "workstation.example.org", "type": "1"}),
        ("local", None),
        ("", None),
    ],
)
def test_the_agent_is_the_requesting_actor_at_its_address(
    source: str, network: dict[str, str] | None
) -> None:
    event = fhir_audit_event(make_record(source=source), node=NODE)
    assert_r4_audit_event(event)
    [agent] = event["agent"]
    assert agent["who"] == {"identifier": {"value": "dr-broker"}}
    assert agent["requestor"] is True
    assert agent.get("network") == network


def test_the_purpose_of_use_comes_from_the_detail() -> None:
    one = fhir_audit_event(make_record(detail={"purpose": "HRESCH"}), node=NODE)
    several = fhir_audit_event(make_record(detail={"purpose": ["TREAT", "HRESCH"]}), node=NODE)
    none = fhir_audit_event(make_record(detail={}), node=NODE)
    for event in (one, several, none):
        assert_r4_audit_event(event)
    assert one["agent"][0]["purposeOfUse"] == [{"text": "HRESCH"}]
    assert several["agent"][0]["purposeOfUse"] == [{"text": "TREAT"}, {"text": "HRESCH"}]
    assert "purposeOfUse" not in none["agent"][0]


def test_entities_are_the_project_each_uid_and_the_query() -> None:
    record = make_record(
        action="dicomweb.search_series_instances",
        detail={
            "method": "GET",
            "query": "Modality=CT&limit=10",
            "uids": {"StudyInstanceUID": "1.2.826.0.1.3", "SeriesInstanceUID": "not-a-uid"},
        },
    )
    event = fhir_audit_event(record, node=NODE)
    assert_r4_audit_event(event)
    project, study, series, query = event["entity"]
    assert project["what"] == {"identifier": {"value": "project:ct"}}
    assert project["name"] == "ct"
    assert study["what"]["identifier"] == {
        "system": "urn:dicom:uid",
        "value": "urn:oid:1.2.826.0.1.3",
    }
    assert study["description"] == "StudyInstanceUID"
    # A path parameter that is no UID is kept, but not claimed to be an OID.
    assert series["what"]["identifier"] == {"value": "not-a-uid"}
    assert query["role"]["code"] == "24"
    assert base64.b64decode(query["query"]).decode() == "Modality=CT&limit=10"


def test_a_list_of_uids_and_a_structured_query_are_entities_too() -> None:
    record = make_record(
        action="qido.search",
        resource="node",
        project=None,
        detail={"uids": ["1.2.3", "1.2.4"], "query": {"PatientID": "RB-1*"}},
    )
    event = fhir_audit_event(record, node=NODE)
    assert_r4_audit_event(event)
    node, first, second, query = event["entity"]
    assert "name" not in node
    assert [first["what"]["identifier"]["value"], second["what"]["identifier"]["value"]] == [
        "urn:oid:1.2.3",
        "urn:oid:1.2.4",
    ]
    assert json.loads(base64.b64decode(query["query"])) == {"PatientID": "RB-1*"}


def test_an_importer_can_recompute_the_hash_from_the_event() -> None:
    record = make_record(
        actor='Zoë "x"\n',
        detail={"reason": "withdrawal", "pseudonyms": ["RB-1"], "uids": ["1.2.3"]},
    )
    event = fhir_audit_event(record, node=NODE)
    details = chain_details(event)
    assert details["radbank-hash"] == record.hash
    assert details["radbank-prev-hash"] == record.prev_hash
    assert imported(event) == record
    assert record_hash(imported(event)) == details["radbank-hash"]


# Bundle and NDJSON


def test_a_bundle_holds_the_events_in_order_and_streams_the_same() -> None:
    records = [make_record(id=n, prev_hash=f"{n:064x}") for n in (1, 2, 3)]
    bundle = fhir_bundle(records, node=NODE)
    assert_r4_bundle(bundle)
    assert [entry["resource"]["id"] for entry in bundle["entry"]] == [
        f"{NODE}-1",
        f"{NODE}-2",
        f"{NODE}-3",
    ]
    assert json.loads("".join(export(iter(records), "fhir-bundle", node=NODE))) == bundle


def test_an_empty_trail_gives_a_bundle_without_entries() -> None:
    bundle = fhir_bundle([], node=NODE)
    assert bundle == {"resourceType": "Bundle", "type": "collection"}
    assert json.loads("".join(export([], "fhir-bundle", node=NODE))) == bundle


def test_ndjson_is_one_ascii_event_per_line() -> None:
    records = [make_record(id=1, actor="Zoë\u2028\n"), make_record(id=2)]
    lines = list(fhir_ndjson(records, node=NODE))
    assert len(lines) == 2 and all(line.endswith("\n") for line in lines)
    text = "".join(lines)
    # ASCII only: no reader, however it splits lines, sees a break inside an event.
    assert text.isascii() and len(text.splitlines()) == 2
    assert [json.loads(line) for line in lines] == [
        fhir_audit_event(record, node=NODE) for record in records
    ]
    assert json.loads(lines[0])["agent"][0]["who"]["identifier"]["value"] == "Zoë\u2028\n"


# Syslog


@pytest.mark.parametrize(
    ("action", "outcome", "pri"),
    [
        ("vault.open", "success", 20 * 8 + 6),
        ("dicomweb.retrieve_study", "denied", 20 * 8 + 4),
        ("vault.open", "failure", 20 * 8 + 3),
        ("auth.sign-in", "success", 10 * 8 + 6),
        ("auth.sign-in", "denied", 10 * 8 + 4),
        ("auth.sign-in", "failure", 10 * 8 + 3),
    ],
)
def test_the_syslog_priority_is_facility_and_severity(action: str, outcome: str, pri: int) -> None:
    match, params = parse_syslog(
        syslog_line(make_record(action=action, outcome=outcome), node=NODE)
    )
    assert int(match["pri"]) == pri
    assert params["outcome"] == outcome


def test_a_syslog_line_carries_the_record() -> None:
    record = make_record(
        detail={"method": "GET", "path": "/x", "status": 200, "reason": "withdrawal"}
    )
    line = syslog_line(record, node=NODE)
    match, params = parse_syslog(line)
    assert match["timestamp"] == "2024-05-01T12:30:45.123456Z"
    assert (match["hostname"], match["app"], match["procid"], match["msgid"]) == (
        NODE,
        "radbank",
        "-",
        "vault.open",
    )
    assert match["sd_id"] == "radbank@32473"
    assert params == {
        "id": "7",
        "action": "vault.open",
        "actor": "dr-broker",
        "resource": "project:ct",
        "project": "ct",
        "outcome": "success",
        "source": "192.0.2.10",
        "hash": record.hash,
        "prev": record.prev_hash,
        "method": "GET",
        "path": "/x",
        "status": "200",
        "reason": "withdrawal",
    }
    assert match["msg"] == "dr-broker did vault.open on project:ct from 192.0.2.10: success"


def test_a_record_without_project_or_address_leaves_them_out() -> None:
    record = make_record(resource="node", project=None, source="local", outcome="denied")
    match, params = parse_syslog(syslog_line(record, node=NODE, app="radbank-audit"))
    assert "project" not in params and params["source"] == "local"
    assert match["app"] == "radbank-audit"
    assert match["msg"] == "dr-broker did vault.open on node locally: denied (reason: withdrawal)"


def test_header_fields_are_printable_ascii_and_cut_to_their_limits() -> None:
    record = make_record(action="dicomweb.search_series_instances_and_more")
    match, params = parse_syslog(syslog_line(record, node="mon nœud " + "n" * 300, app="my app"))
    assert match["hostname"] == "mon-n-ud-" + "n" * 246
    assert match["app"] == "my-app"
    assert match["msgid"] == "dicomweb.search_series_instances"
    assert params["action"] == "dicomweb.search_series_instances_and_more"


# (hostile value, what an RFC 5424 reader gets back): quotes, brackets and backslashes
# exactly; each line break or other control character as the text \uXXXX.
HOSTILE = [
    ('evil"] [radbank@32473 actor="admin"]', 'evil"] [radbank@32473 actor="admin"]'),
    ("back\\slash\\", "back\\slash\\"),
    (
        "line\nbreak\r\nforged <14>1 - - - - - - admin did vault.open",
        "line\\u000abreak\\u000d\\u000aforged <14>1 - - - - - - admin did vault.open",
    ),
    ("next\x85line\u2028sep\x00nul\tend", "next\\u0085line\\u2028sep\\u0000nul\\u0009end"),
]


@pytest.mark.parametrize(("value", "read_back"), HOSTILE)
def test_hostile_values_stay_inside_their_parameter_on_one_line(value: str, read_back: str) -> None:
    record = make_record(
        actor=value, resource=f"project:{value}", project=value, detail={"reason": value}
    )
    line = syslog_line(record, node=NODE)
    assert len(line.splitlines()) == 1 and "\n" not in line and "\r" not in line
    match, params = parse_syslog(line)
    assert match["sd_id"] == "radbank@32473"
    assert params["hash"] == record.hash  # nothing forged a parameter of the element
    assert params["actor"] == params["project"] == params["reason"] == read_back
    assert params["resource"] == f"project:{read_back}"


def test_a_line_break_and_a_typed_escape_are_told_apart() -> None:
    broken = syslog_line(make_record(actor="a\nb"), node=NODE)
    typed = syslog_line(make_record(actor="a\\u000ab"), node=NODE)
    assert 'actor="a\\u000ab"' in broken
    assert 'actor="a\\\\u000ab"' in typed


def test_a_huge_actor_is_cut_and_said_to_be_cut() -> None:
    record = make_record(actor="A" * 10_000 + "\n", detail={"query": "q" * 5000})
    line = syslog_line(record, node=NODE)
    assert len(line) < 3000 and len(line.splitlines()) == 1
    match, params = parse_syslog(line)
    assert params["actor"] == "A" * MAX_PARAM_CHARS
    assert params["query"] == "q" * MAX_PARAM_CHARS
    assert params["truncated"] == "actor,query"
    assert params["hash"] == record.hash
    assert match["msg"].startswith("A" * 64 + "... did vault.open")


def test_non_ascii_is_utf8_with_a_bom_in_the_message_only() -> None:
    line = syslog_line(make_record(actor="Zoë Ångström"), node=NODE)
    match, params = parse_syslog(line)
    assert params["actor"] == "Zoë Ångström"
    assert (
        match["msg"] == "\ufeffZoë Ångström did vault.open on project:ct from 192.0.2.10: success"
    )
    encoded = line.encode()
    assert encoded.count(b"\xef\xbb\xbf") == 1
    assert encoded.index(b"\xef\xbb\xbf") == encoded.index(b"] ") + 2
    # An ASCII message has no BOM: it is MSG-ANY, readable by every receiver.
    assert "\ufeff" not in syslog_line(make_record(), node=NODE)


# Streaming and formats


def test_an_unknown_format_is_refused_before_anything_is_read() -> None:
    def records() -> Iterator[AuditRecord]:
        raise AssertionError("records read for an unknown format")
        yield

    with pytest.raises(ValueError, match="'csv'.*fhir-bundle, fhir-ndjson, syslog"):
        export(records(), "csv", node=NODE)
    assert set(FORMATS) == {"fhir-bundle", "fhir-ndjson", "syslog"}


def test_an_empty_node_name_is_refused() -> None:
    with pytest.raises(ValueError, match="node is empty"):
        export([], "syslog", node=" ")
    with pytest.raises(ValueError, match="node is empty"):
        fhir_audit_event(make_record(), node="")


# A real trail on SQLite, exported in every format


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    index = Index(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        audit = AuditTrail(index)
        audit.record(
            "auth.sign-in",
            actor="mallory\n<38>1 forged",
            resource="node",
            detail={"reason": "bad credentials"},
            source="198.51.100.7",
            outcome=Outcome.DENIED,
        )
        audit.record(
            "dicomweb.search_studies",
            actor="alice",
            resource="project:ct",
            project="ct",
            detail={"method": "GET", "query": "PatientID=RB-*&limit=5", "status": 200},
            source="2001:db8::5",
        )
        audit.record(
            "dicomweb.retrieve_study",
            actor="alice",
            resource="project:ct",
            project="ct",
            detail={"method": "GET", "uids": {"StudyInstanceUID": "1.2.826.0.1.9"}},
            source="2001:db8::5",
        )
        audit.record(
            "vault.open",
            actor="dr-broker",
            resource="project:ct",
            project="ct",
            detail={"reason": "withdrawal", "error": "wrong key file"},
            source="local",
            outcome=Outcome.FAILURE,
        )
        audit.record("project.create", actor="admin", resource="project:mr", project="mr")
        yield audit
    finally:
        index.close()


def test_a_real_trail_exports_in_order_with_its_chain_in_every_format(trail: AuditTrail) -> None:
    stored = list(trail.records())
    ids = [record.id for record in stored]
    hashes = [record.hash for record in stored]
    assert ids == [1, 2, 3, 4, 5] and trail.verify() == []

    bundle = json.loads("".join(export(trail.records(), "fhir-bundle", node=NODE)))
    assert_r4_bundle(bundle)
    bundled = [entry["resource"] for entry in bundle["entry"]]

    lines = "".join(export(trail.records(), "fhir-ndjson", node=NODE)).splitlines()
    events = [json.loads(line) for line in lines]
    assert events == bundled

    for event, record in zip(events, stored, strict=True):
        assert_r4_audit_event(event)
        assert event["id"] == f"{NODE}-{record.id}"
        assert chain_details(event)["radbank-hash"] == record.hash
        assert imported(event) == record
    # An importer holding only the export verifies the chain: every hash recomputes and
    # every record links to the one before it.
    rebuilt = [imported(event) for event in events]
    assert all(record_hash(record) == record.hash for record in rebuilt)
    assert [record.prev_hash for record in rebuilt] == [GENESIS_HASH, *hashes[:-1]]
    assert [(e["type"]["code"], e["action"], e["outcome"]) for e in events] == [
        ("110114", "E", "4"),
        ("110112", "E", "0"),
        ("110104", "R", "0"),
        ("110110", "R", "8"),
        ("110113", "C", "0"),
    ]

    syslog = "".join(export(trail.records(), "syslog", node=NODE))
    assert syslog.endswith("\n")
    parsed = [parse_syslog(line) for line in syslog.splitlines()]
    assert [int(params["id"]) for _, params in parsed] == ids
    assert [params["hash"] for _, params in parsed] == hashes
    assert [params["prev"] for _, params in parsed] == [GENESIS_HASH, *hashes[:-1]]
    assert [int(match["pri"]) % 8 for match, _ in parsed] == [4, 6, 6, 3, 6]
    assert parsed[0][1]["actor"] == "mallory\\u000a<38>1 forged"
