"""Schemathesis over real HTTP: no operation of the node's OpenAPI schema answers a 5xx.

Every operation of the schema (none excluded) is called on the session's live server with
schema-driven inputs, valid and invalid (schemathesis' examples, coverage and fuzzing
phases, at most 25 fuzzed examples per operation, derandomised): as the node administrator,
anonymously, and as the administrator on a project, study, series, instance and user that
exist (so that bodies, frame lists, tags and roles are fuzzed past the check of the names).
Every answer must be below 500; every refusal must be the documented JSON error
{"error": <text>, "status": <code>} (or, for STOW-RS, a DICOM store response listing the
refused parts), without a traceback and without the bearer token.

The schema is the one the code builds (tools/export_openapi.py), because schemathesis
parametrises the tests when the module is collected, before the server runs;
`test_the_fuzzed_schema_is_the_one_the_node_serves` proves that it equals what the live
server serves at /api/openapi.json, so no operation of the node escapes the fuzzing.

Fuzzing as administrator changes the node: it may create projects and users, grant roles,
change settings, disable or promote fuzz-made users, revoke tokens whose ids it guesses.
That is harmless to the other tests, which make their own projects and users; the admin
token cannot be revoked over HTTP (it lives in the node's key file, not in the token
table), so the `server` fixture stays usable. Requests leave from their own loopback
address so that the sign-in throttle the fuzzing trips (429) locks out only the fuzzer.
"""

from __future__ import annotations

import importlib.util
import io
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from liveserver import RunningServer, new_project
from requests.adapters import HTTPAdapter
from schemathesis.checks import not_a_server_error

from radbank.api.multipart import write_parts
from radbank.synthetic import demo_studies

ROOT = Path(__file__).resolve().parents[2]
FUZZ_ADDRESS = "127.0.0.33"  # the fuzzer's own source address (see the module docstring)
BOUNDARY = "radbank-fuzz-boundary"
FAILED_SOP_SEQUENCE = "00081198"
STOW_CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _schema_of_the_code() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(
        "export_openapi", ROOT / "tools" / "export_openapi.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.loads(module.schema())


SCHEMA_DOCUMENT = _schema_of_the_code()
schema = schemathesis.openapi.from_dict(SCHEMA_DOCUMENT)


@schemathesis.serializer("multipart/related")
def _stow_body(context: schemathesis.SerializationContext, value: object) -> bytes:
    """The generated body as the one part of a STOW-RS request (sent with STOW_CONTENT_TYPE)."""
    data = getattr(value, "data", value)  # format "binary" comes wrapped, with .data bytes
    if not isinstance(data, bytes):
        data = data.encode() if isinstance(data, str) else json.dumps(data, default=str).encode()
    return (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class _FromAddress(HTTPAdapter):
    """Connections from the given local address."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture(scope="module")
def fuzz_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FromAddress(FUZZ_ADDRESS))
    return session


@pytest.fixture(scope="module")
def real_objects(server: RunningServer) -> dict[str, str]:
    """Path parameters naming things that exist: a project holding one CT instance, a user."""
    project = new_project(server)
    dataset = next(demo_studies(sites=1, patients_per_site=1, studies_per_patient=1, seed=11))
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    body = b"".join(
        write_parts([({"Content-Type": "application/dicom"}, [buffer.getvalue()])], "b")
    )
    user = f"fuzz-{secrets.token_hex(4)}"
    with server.client() as admin:
        stored = admin.post(
            f"/dicom-web/projects/{project}/studies",
            content=body,
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        )
        assert stored.status_code == 200, stored.text
        found = admin.get(f"/dicom-web/projects/{project}/instances").json()[0]
        assert admin.post("/api/users", json={"name": user}).status_code == 201
    study, series, sop = (found[tag]["Value"][0] for tag in ("0020000D", "0020000E", "00080018"))
    return {
        "project": project,
        "study": study,
        "series": series,
        "sop": sop,
        "name": user,
        "user": user,
    }


FUZZ_SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _call(
    case: schemathesis.Case,
    server: RunningServer,
    session: requests.Session,
    headers: dict[str, str],
) -> None:
    if (case.media_type or "").startswith("multipart/related"):
        headers = {**headers, "Content-Type": STOW_CONTENT_TYPE}
    response = case.call_and_validate(
        base_url=server.base_url,
        session=session,
        headers=headers,
        checks=[not_a_server_error],
        timeout=60,
    )
    text = response.content.decode("utf-8", "replace")
    assert "Traceback" not in text
    assert server.token not in text, "the admin token is echoed in an answer"
    if response.status_code < 400:
        return
    reproduce = case.as_curl_command(headers=headers)
    content_type = response.headers.get("content-type")
    if content_type == ["application/dicom+json"]:
        # STOW-RS refuses parts with a store response listing them (PS3.18 10.5.3).
        assert case.method == "POST" and FAILED_SOP_SEQUENCE in json.loads(text), reproduce
        return
    assert content_type == ["application/json"], (reproduce, content_type, text[:300])
    body = json.loads(text)
    assert isinstance(body.get("error"), str) and body["error"], reproduce
    assert body.get("status") == response.status_code, reproduce


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_server_error_as_administrator(
    case: schemathesis.Case, server: RunningServer, fuzz_session: requests.Session
) -> None:
    _call(case, server, fuzz_session, {"Authorization": f"Bearer {server.token}"})


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_server_error_anonymously(
    case: schemathesis.Case, server: RunningServer, fuzz_session: requests.Session
) -> None:
    if case.headers:  # the schema's bearer scheme makes schemathesis send some Authorization
        case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    _call(case, server, fuzz_session, {})


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_server_error_as_administrator_on_real_objects(
    case: schemathesis.Case,
    server: RunningServer,
    fuzz_session: requests.Session,
    real_objects: dict[str, str],
) -> None:
    """Past the validation of names: bodies, frames, tags and roles on things that exist."""
    if case.path_parameters:
        case.path_parameters = {
            key: real_objects.get(key, value) for key, value in case.path_parameters.items()
        }
    _call(case, server, fuzz_session, {"Authorization": f"Bearer {server.token}"})


def test_the_fuzzed_schema_is_the_one_the_node_serves(server: RunningServer) -> None:
    with server.client() as admin:
        served = admin.get("/api/openapi.json")
    assert served.status_code == 200, served.text
    assert served.json() == SCHEMA_DOCUMENT, "tools/export_openapi.py differs from the node"
    anonymous = requests.get(f"{server.base_url}/api/openapi.json", timeout=60)
    assert anonymous.status_code == 401  # the one route outside the schema: for users only
    operations = [(m, p) for p, methods in SCHEMA_DOCUMENT["paths"].items() for m in methods]
    assert len(operations) >= 30  # the whole API, not an empty or truncated schema
