"""Over real HTTP: random query strings, paths, headers and bodies never get a 500."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF), max_size=30
)


@pytest.fixture(scope="module")
def http(server):  # noqa: ANN001, ANN201
    from liveserver import new_project

    project = new_project(server)
    with server.client() as client:
        yield client, f"/dicom-web/projects/{project}"


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    level=st.sampled_from(["/studies", "/series", "/instances", "/studies/1.2.3/series"]),
    params=st.lists(st.tuples(SAFE_TEXT, SAFE_TEXT), max_size=5),
)
def test_qido_never_answers_500(http, level: str, params: list) -> None:  # noqa: ANN001
    client, base = http
    reply = client.get(base + level, params=params)
    assert reply.status_code in (200, 400), (params, reply.status_code, reply.text[:300])


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.lists(
        SAFE_TEXT.filter(lambda s: "/" not in s and s not in (".", "..")), min_size=1, max_size=5
    ),
    accept=SAFE_TEXT,
)
def test_wado_paths_and_accept_headers_never_answer_500(http, path: list, accept: str) -> None:  # noqa: ANN001
    client, base = http
    url = base + "/studies/" + "/".join(quote(segment, safe="") for segment in path)
    try:
        reply = client.get(url, headers={"Accept": accept})
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return  # the client itself refuses to send such a header
    assert reply.status_code < 500, (path, accept, reply.status_code, reply.text[:300])


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content_type=SAFE_TEXT, body=st.binary(max_size=3000))
def test_stow_never_answers_500(http, content_type: str, body: bytes) -> None:  # noqa: ANN001
    client, base = http
    for header in (
        content_type,
        f'multipart/related; type="application/dicom"; boundary={content_type or "b"}',
    ):
        try:
            reply = client.post(base + "/studies", content=body, headers={"Content-Type": header})
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            continue
        assert reply.status_code in (400, 409, 413, 415), (
            header,
            reply.status_code,
            reply.text[:300],
        )
