"""Export of the audit trail: FHIR R4 AuditEvent (for health-data exchange) and RFC 5424
syslog (for SIEMs). Everything here is a pure function of the stored records; `export`
streams one of the formats as text chunks for a command or an HTTP route.

    for chunk in export(trail.records(), "fhir-ndjson", node="radbank.example.org"):
        out.write(chunk)

Formats (`FORMATS`): "fhir-bundle" (one Bundle of type collection), "fhir-ndjson" (one
AuditEvent per line, as FHIR bulk data writes them), "syslog" (one RFC 5424 message per line,
i.e. non-transparent framing, RFC 6587 3.4.2; no message contains a line break).

FHIR AuditEvent.type, by the radbank action ("area.verb"; first rule that matches):

    area auth                                    DCM 110114 User Authentication
    area audit                                   DCM 110101 Audit Log Used
    vault.open, vault.lookup                     DCM 110110 Patient Record (re-identification)
    a query verb (search, query, find), qido.*   DCM 110112 Query
    a DICOM transfer (retrieve, metadata,        DCM 110104 DICOM Instances Transferred
      frames, bulkdata, store), wado.*, stow.*
    a verb with export / import                  DCM 110106 Export / DCM 110107 Import
    area user, token, project, vault, keys       DCM 110113 Security Alert (changes to who may
                                                   see what and how data is de-identified)
    any other HTTP request (detail has "method") audit-event-type "rest"
    anything else                                DCM 110100 Application Activity

DICOMweb retrieval and storage are "DICOM Instances Transferred" rather than Export / Import
because PS3.15 A.5.3.6 keeps Export for data leaving by other means (files, media, mail). The
subtype always carries the exact radbank action (system `ACTION_SYSTEM`). AuditEvent.action
comes from the verb's first known word (create C, open R, settings U, revoke D, ...), else
from the HTTP method (GET R, POST C, PUT/PATCH U, DELETE D), else E; queries are always E.
outcome: success "0", denied "4" (minor failure: refused, nothing happened), failure "8".

Chain: the entity of the resource carries details "radbank-hash", "radbank-prev-hash" and
"radbank-record" (the record's fields as JSON), from which `governance.audit.record_hash`
recomputes the hash, so an importer can verify the chain without reading radbank's tables.
JSON output is ASCII (non-ASCII as \\u escapes), so no value can end a line in any reader.

Syslog: facility authpriv (10) for auth.* actions, so sign-ins land where a site already
watches sign-ins, and local4 (20) for everything else, so one rule routes radbank's trail;
severity info (6) for success, warning (4) for denied, err (3) for failure. The structured
data element `radbank@32473` (32473 is the example enterprise number of RFC 5612) holds the
record's fields; values longer than `MAX_PARAM_CHARS` are cut, and `truncated` names them.
Control characters (CR, LF, NEL, U+2028, ...) are written as the text \\uXXXX: in a
PARAM-VALUE that backslash is not one of RFC 5424's three escapes (which are applied as
6.3.3 says), so the raw line tells an escaped line break from a typed "\\u000a" (written
\\\\u000a). MSG is a short sentence, plain ASCII when it can be, else UTF-8 starting with the
BOM as RFC 5424 6.4 requires; the exact values are in the FHIR export and under the hash.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC
from typing import Any

from radbank.index import AuditRecord

FORMATS = ("fhir-bundle", "fhir-ndjson", "syslog")

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
ACTION_SYSTEM = "https://radbank.org/audit-action"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SD_ID = "radbank@32473"
MAX_PARAM_CHARS = 256

_APPLICATION_ACTIVITY = {"system": DCM, "code": "110100", "display": "Application Activity"}
_AUDIT_LOG_USED = {"system": DCM, "code": "110101", "display": "Audit Log Used"}
_INSTANCES_TRANSFERRED = {"system": DCM, "code": "110104", "display": "DICOM Instances Transferred"}
_EXPORT = {"system": DCM, "code": "110106", "display": "Export"}
_IMPORT = {"system": DCM, "code": "110107", "display": "Import"}
_PATIENT_RECORD = {"system": DCM, "code": "110110", "display": "Patient Record"}
_QUERY = {"system": DCM, "code": "110112", "display": "Query"}
_SECURITY_ALERT = {"system": DCM, "code": "110113", "display": "Security Alert"}
_USER_AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
_REST = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
_SYSTEM_OBJECT = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}

_QUERY_WORDS = frozenset({"search", "query", "find"})
_TRANSFER_WORDS = frozenset({"retrieve", "metadata", "frames", "bulkdata", "store"})
_ADMIN_AREAS = frozenset({"user", "token", "project", "vault", "keys"})
_VERB_ACTIONS = {
    **dict.fromkeys(("create", "init", "issue", "grant", "store", "import", "add"), "C"),
    **dict.fromkeys(
        ("open", "read", "retrieve", "lookup", "get", "list", "show", "export", "metadata"), "R"
    ),
    **dict.fromkeys(
        ("update", "settings", "dataset", "rotate", "password", "roles", "enable", "disable")
        + ("change", "edit", "rename"),
        "U",
    ),
    **dict.fromkeys(("delete", "revoke", "remove", "purge", "withdraw"), "D"),
}
_METHOD_ACTIONS = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}

# outcome -> (FHIR outcome code, syslog severity); anything unknown counts as a failure.
_OUTCOMES = {"success": ("0", 6), "denied": ("4", 4), "failure": ("8", 3)}
_FAILED = ("8", 3)

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_FHIR_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SD_SPECIAL = re.compile(r'["\\\]]')
_FACILITY_AUTHPRIV = 10
_FACILITY_LOCAL4 = 20
_SD_DETAIL_KEYS = ("method", "path", "status", "query", "reason", "purpose")


# FHIR R4 AuditEvent


def fhir_audit_event(record: AuditRecord, *, node: str) -> dict[str, Any]:
    """The record as a FHIR R4 AuditEvent; node: this node's name (observer, id prefix)."""
    _require_node(node)
    detail = dict(record.detail)
    area, words = _action_words(record.action)
    event_type, action = _classify(area, words, detail)
    outcome_code, _ = _OUTCOMES.get(record.outcome, _FAILED)
    return {
        "resourceType": "AuditEvent",
        "id": _fhir_id(node, record.id),
        "type": dict(event_type),  # a copy: the caller may change the event it gets
        "subtype": [{"system": ACTION_SYSTEM, "code": record.action}],
        "action": action,
        "recorded": _instant(record),
        "outcome": outcome_code,
        "outcomeDesc": _outcome_text(record, detail),
        "agent": [_agent(record, detail)],
        "source": {
            "observer": {"display": node},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": _entities(record, detail),
    }


def fhir_bundle(records: Iterable[AuditRecord], *, node: str) -> dict[str, Any]:
    """A FHIR Bundle of type collection holding one AuditEvent per record, in order."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    entries = [{"resource": fhir_audit_event(record, node=node)} for record in records]
    if entries:  # FHIR forbids empty arrays
        bundle["entry"] = entries
    return bundle


def fhir_ndjson(records: Iterable[AuditRecord], *, node: str) -> Iterator[str]:
    """One AuditEvent per line, each ending with "\\n" (FHIR bulk data NDJSON)."""
    _require_node(node)
    for record in records:
        yield _json(fhir_audit_event(record, node=node)) + "\n"


def _bundle_chunks(records: Iterable[AuditRecord], node: str) -> Iterator[str]:
    """`fhir_bundle` as JSON text, one entry per chunk, without holding the trail."""
    yield '{"resourceType":"Bundle","type":"collection"'
    separator = ',"entry":['
    for record in records:
        yield separator + _json({"resource": fhir_audit_event(record, node=node)})
        separator = ","
    yield "]}" if separator == "," else "}"


def _action_words(action: str) -> tuple[str, list[str]]:
    area, _, verb = action.lower().partition(".")
    return area, [word for word in re.split(r"[._-]", verb) if word]


def _classify(
    area: str, words: list[str], detail: Mapping[str, Any]
) -> tuple[Mapping[str, str], str]:
    """(AuditEvent.type, AuditEvent.action) of a record: the table in the module docstring."""
    found = set(words)
    action = _action_code(words, detail)
    if area == "auth":
        return _USER_AUTHENTICATION, action
    if area == "audit":
        return _AUDIT_LOG_USED, action
    if area == "vault" and found & {"open", "lookup"}:
        return _PATIENT_RECORD, "R"
    if area == "qido" or found & _QUERY_WORDS:
        return _QUERY, "E"
    if area in ("wado", "stow") or found & _TRANSFER_WORDS:
        return _INSTANCES_TRANSFERRED, "C" if area == "stow" or "store" in found else "R"
    if "export" in found:
        return _EXPORT, "R"
    if "import" in found:
        return _IMPORT, "C"
    if area in _ADMIN_AREAS:
        return _SECURITY_ALERT, action
    if "method" in detail:
        return _REST, action
    return _APPLICATION_ACTIVITY, action


def _action_code(words: list[str], detail: Mapping[str, Any]) -> str:
    for word in words:
        if word in _VERB_ACTIONS:
            return _VERB_ACTIONS[word]
    return _METHOD_ACTIONS.get(str(detail.get("method", "")).upper(), "E")


def _fhir_id(node: str, record_id: int) -> str:
    # FHIR ids are [A-Za-z0-9.-]{1,64}: the record id is kept whole, the node name cut.
    suffix = f"-{record_id}"
    return _FHIR_ID_UNSAFE.sub("-", node)[: 64 - len(suffix)] + suffix


def _instant(record: AuditRecord) -> str:
    return record.time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _outcome_text(record: AuditRecord, detail: Mapping[str, Any]) -> str:
    """The outcome, and for one that is not a success what the record says about it.

    "reason" is labelled, not presented as the cause: for a sign-in it is why it was refused,
    for a vault opening why the broker opened it.
    """
    text = record.outcome or "unknown outcome"
    if record.outcome == "success":
        return text
    notes = [str(detail["error"])] if detail.get("error") else []
    if detail.get("reason"):
        notes.append(f"reason: {detail['reason']}")
    if "status" in detail:
        notes.append(f"HTTP {detail['status']}")
    return f"{text} ({'; '.join(notes)})" if notes else text


def _agent(record: AuditRecord, detail: Mapping[str, Any]) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": True}
    if record.actor:
        agent["who"] = {"identifier": {"value": record.actor}}
    network = _network(record.source)
    if network:
        agent["network"] = network
    purposes = detail.get("purpose")
    if isinstance(purposes, str):
        purposes = [purposes]
    if isinstance(purposes, list):
        texts = [{"text": purpose} for purpose in purposes if isinstance(purpose, str) and purpose]
        if texts:
            agent["purposeOfUse"] = texts
    return agent


def _network(source: str) -> dict[str, str] | None:
    """agent.network: type 2 for an IP address, 1 (machine name) for any other name, none
    for "local" (the command line) or an unknown source."""
    if not source or source == "local":
        return None
    try:
        ipaddress.ip_address(source)
    except ValueError:
        return {"address": source, "type": "1"}
    return {"address": source, "type": "2"}


def _entities(record: AuditRecord, detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    resource: dict[str, Any] = {
        "what": {"identifier": {"value": record.resource or "-"}},
        "type": dict(_SYSTEM_OBJECT),
        "detail": [
            {"type": "radbank-hash", "valueString": record.hash},
            {"type": "radbank-prev-hash", "valueString": record.prev_hash},
            {"type": "radbank-record", "valueString": _record_json(record)},
        ],
    }
    if record.project:
        resource["name"] = record.project
    entities = [resource]
    for keyword, uid in _uids(detail.get("uids")):
        identifier = (
            {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}
            if _UID.fullmatch(uid)
            else {"value": uid}
        )
        entity: dict[str, Any] = {"what": {"identifier": identifier}, "type": dict(_SYSTEM_OBJECT)}
        if keyword:
            entity["description"] = keyword
        entities.append(entity)
    query = detail.get("query")
    if query:
        text = query if isinstance(query, str) else _json(query, sort_keys=True)
        entities.append(
            {
                "type": dict(_SYSTEM_OBJECT),
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(text.encode(errors="backslashreplace")).decode("ascii"),
            }
        )
    return entities


def _uids(uids: Any) -> list[tuple[str, str]]:
    """(keyword, UID) pairs of detail["uids"]: a mapping keyword -> UID, or a list of UIDs."""
    if isinstance(uids, Mapping):
        pairs = [(str(keyword), value) for keyword, value in uids.items()]
    elif isinstance(uids, list):
        pairs = [("", value) for value in uids]
    else:
        return []
    return [(keyword, value) for keyword, value in pairs if isinstance(value, str) and value]


def _record_json(record: AuditRecord) -> str:
    """The fields that governance.audit.record_hash covers, time as it formats it."""
    return _json(
        {
            "id": record.id,
            "time": record.time.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": record.actor,
            "action": record.action,
            "resource": record.resource,
            "project": record.project,
            "detail": dict(record.detail),
            "source": record.source,
            "outcome": record.outcome,
            "prev_hash": record.prev_hash,
        },
        sort_keys=True,
    )


def _json(value: Any, *, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=sort_keys)


# RFC 5424 syslog


def syslog_line(record: AuditRecord, *, node: str, app: str = "radbank") -> str:
    """The record as one RFC 5424 message, without a trailing line break (framing is the
    transport's); encode it as UTF-8."""
    _require_node(node)
    facility = _FACILITY_AUTHPRIV if record.action.startswith("auth.") else _FACILITY_LOCAL4
    _, severity = _OUTCOMES.get(record.outcome, _FAILED)
    timestamp = record.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    header = " ".join(
        (
            f"<{facility * 8 + severity}>1",
            timestamp,
            _header_field(node, 255),
            _header_field(app, 48),
            "-",  # PROCID: the exporting process did not do what the record says
            _header_field(record.action, 32),
        )
    )
    return f"{header} {_structured_data(record)} {_message(record)}"


def _header_field(value: str, limit: int) -> str:
    """A header field: PRINTUSASCII (33-126) only, at most limit characters, "-" if empty."""
    return "".join(c if "!" <= c <= "~" else "-" for c in value)[:limit] or "-"


def _structured_data(record: AuditRecord) -> str:
    values: dict[str, Any] = {
        "id": record.id,
        "action": record.action,
        "actor": record.actor,
        "resource": record.resource,
        "project": record.project,
        "outcome": record.outcome,
        "source": record.source,
        "hash": record.hash,
        "prev": record.prev_hash,
    }
    for key in _SD_DETAIL_KEYS:
        values[key] = record.detail.get(key)
    params: list[str] = []
    truncated: list[str] = []
    for name, value in values.items():
        if value is None or value == "":
            continue
        text = value if isinstance(value, str) else _json(value)
        if len(text) > MAX_PARAM_CHARS:
            text = text[:MAX_PARAM_CHARS]
            truncated.append(name)
        params.append(f'{name}="{_param_value(text)}"')
    if truncated:
        params.append(f'truncated="{",".join(truncated)}"')
    return f"[{SD_ID} {' '.join(params)}]"


def _param_value(text: str) -> str:
    # RFC 5424 6.3.3 escapes first, so the backslash of a \uXXXX written next stays single.
    return _escape_controls(_SD_SPECIAL.sub(lambda match: "\\" + match.group(), text))


def _escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _message(record: AuditRecord) -> str:
    """A sentence for a person reading the log; it is cut where values are long."""
    where = "locally"
    if record.source and record.source != "local":
        where = f"from {_short(record.source, 64)}"
    outcome = _short(_outcome_text(record, record.detail), 128)
    text = _escape_controls(
        f"{_short(record.actor or 'someone', 64)} did {_short(record.action, 64)} on "
        f"{_short(record.resource, 64)} {where}: {outcome}"
    )
    return text if text.isascii() else "\ufeff" + text


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# Streaming


def export(records: Iterable[AuditRecord], fmt: str, *, node: str) -> Iterator[str]:
    """Text chunks of the records in format fmt (one of `FORMATS`), to write or stream in
    order. An unknown format is refused here, before anything is read or sent."""
    writers: dict[str, Callable[[], Iterator[str]]] = {
        "fhir-bundle": lambda: _bundle_chunks(records, node),
        "fhir-ndjson": lambda: fhir_ndjson(records, node=node),
        "syslog": lambda: (syslog_line(record, node=node) + "\n" for record in records),
    }
    if fmt not in writers:
        raise ValueError(f"unknown audit export format {fmt!r}: use one of {', '.join(FORMATS)}")
    _require_node(node)
    return writers[fmt]()


def _require_node(node: str) -> None:
    if not node.strip():
        raise ValueError("node is empty: give this node's name (e.g. its host name)")
