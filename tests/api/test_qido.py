"""QIDO-RS over HTTP: matching, paging, includefield, and hostile parameters."""

from __future__ import annotations

import io

import corpus  # noqa: E402
import pydicom
import pytest
from liveserver import LiveNode, new_project, start_server

from radbank.api.multipart import write_parts  # noqa: E402


def _store(node, datasets: list[pydicom.Dataset]) -> None:  # noqa: ANN001
    parts = []
    for dataset in datasets:
        out = io.BytesIO()
        dataset.save_as(out)
        parts.append(({"Content-Type": "application/dicom"}, iter([out.getvalue()])))
    with node.client() as http:
        reply = http.post(
            f"{node.dicomweb_url}/studies",
            content=b"".join(write_parts(parts, "b")),
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        )
    assert reply.status_code == 200, reply.text


def _ct(number: int) -> pydicom.Dataset:
    dataset = pydicom.dcmread(corpus.path("CT_small.dcm"))
    dataset.PatientID = f"PAT-{number % 2}"
    dataset.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}"
    dataset.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}.1"
    dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}.1.1"
    dataset.StudyDescription = f"CHEST {number}"
    dataset.AccessionNumber = f"ACC{number}"
    return dataset


@pytest.fixture
def populated(live_node_any_index):  # noqa: ANN001, ANN201
    live_node = live_node_any_index
    _store(live_node, [_ct(number) for number in range(5)])
    return live_node


def _get(node, path: str, params=None):  # noqa: ANN001, ANN202
    with node.client() as http:
        return http.get(f"{node.dicomweb_url}{path}", params=params)


def test_required_study_attributes_and_retrieve_url(populated) -> None:  # noqa: ANN001
    reply = _get(populated, "/studies")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/dicom+json")
    studies = reply.json()
    assert len(studies) == 5
    for study in studies:
        for tag in (
            "00080020",
            "00080030",
            "00080050",
            "00080090",
            "00100010",
            "00100020",
            "00100030",
            "00100040",
            "0020000D",
            "00200010",
            "00080061",
            "00201206",
            "00201208",
            "00081190",
        ):
            assert tag in study, tag


def test_paging_is_stable_and_complete(populated) -> None:  # noqa: ANN001
    pages = [
        _get(populated, "/studies", {"limit": 2, "offset": offset}).json() for offset in (0, 2, 4)
    ]
    uids = [s["0020000D"]["Value"][0] for page in pages for s in page]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert len(set(uids)) == 5


def test_wildcards_and_includefield(populated) -> None:  # noqa: ANN001
    # Identity is pseudonymised: two patients, each "RB-" + 20 characters.
    studies = _get(populated, "/studies", {"PatientID": "RB-*"}).json()
    assert len(studies) == 5
    patient = studies[0]["00100020"]["Value"][0]
    assert len(_get(populated, "/studies", {"PatientID": patient[:-1] + "?"}).json()) in (2, 3)
    assert len(_get(populated, "/studies", {"PatientName": patient.lower()}).json()) in (2, 3)
    assert len(_get(populated, "/studies", {"ModalitiesInStudy": "CT"}).json()) == 5
    # The basic profile empties AccessionNumber and removes StudyDescription.
    assert _get(populated, "/studies", {"AccessionNumber": "ACC3"}).json() == []
    one = _get(populated, "/series", {"includefield": "all", "limit": 1}).json()[0]
    assert "00180050" in one or "00080060" in one


@pytest.mark.parametrize(
    "params",
    [
        {"PatientID": "' OR 1=1 --"},
        {"PatientName": "%"},
        {"PatientName": "_"},
        {"StudyDescription": "x'); DROP TABLE instances; --"},
        {"PatientID": "RB-%"},
    ],
)
def test_sql_metacharacters_are_matched_literally(populated, params) -> None:  # noqa: ANN001
    reply = _get(populated, "/studies", params)
    assert reply.status_code == 200
    assert reply.json() == []
    assert len(_get(populated, "/studies").json()) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"StudyDate": "99999999"},
        {"StudyDate": "20241399-20250101"},
        {"limit": "-1"},
        {"limit": "many"},
        {"offset": "-5"},
        {"NoSuchAttribute": "x"},
        {"StudyInstanceUID": "not a uid"},
        {"PatientID": "x" * 5000},
        {"includefield": "NotAKeyword"},
        {"AccessionNumber": "a\\b"},
    ],
)
def test_hostile_parameters_are_400_with_a_reason(populated, params) -> None:  # noqa: ANN001
    reply = _get(populated, "/studies", params)
    assert reply.status_code == 400
    assert reply.json()["error"]


def test_absurd_limit_is_capped(populated) -> None:  # noqa: ANN001
    reply = _get(populated, "/studies", {"limit": str(10**6)})
    assert reply.status_code == 200
    assert len(reply.json()) == 5
    overflow = _get(populated, "/studies", {"limit": str(10**12)})
    assert overflow.status_code == 400
    assert "limit must be at most" in overflow.json()["error"]


def test_unknown_study_in_scoped_search_is_empty(populated) -> None:  # noqa: ANN001
    reply = _get(populated, "/studies/1.2.3/series")
    assert reply.status_code == 200
    assert reply.json() == []


def test_a_repeated_uid_key_is_a_list_of_uids(populated) -> None:  # noqa: ANN001
    """Each value of a UID key given more than once is an item of its UID list (PS3.18
    8.3.4.1); other keys still may be given only once."""
    first, second, *_ = [s["0020000D"]["Value"][0] for s in _get(populated, "/studies").json()]
    with populated.client() as http:
        reply = http.get(
            f"{populated.dicomweb_url}/studies",
            params=[("StudyInstanceUID", first), ("StudyInstanceUID", second)],
        )
        assert reply.status_code == 200
        assert {s["0020000D"]["Value"][0] for s in reply.json()} == {first, second}
        repeated = http.get(
            f"{populated.dicomweb_url}/studies", params=[("PatientID", "a"), ("PatientID", "b")]
        )
    assert repeated.status_code == 400
    assert "PatientID is given more than once" in repeated.json()["error"]


@pytest.mark.parametrize(
    "accept",
    ['multipart/related; type="application/dicom+xml"', "application/dicom+xml", "text/html"],
)
def test_results_in_a_form_not_served_are_406(populated, accept: str) -> None:  # noqa: ANN001
    """Search results are served as DICOM JSON only: a client that accepts only another
    form (by header or by the accept query parameter) is told so, not sent JSON anyway."""
    with populated.client() as http:
        by_header = http.get(f"{populated.dicomweb_url}/studies", headers={"Accept": accept})
        by_parameter = http.get(f"{populated.dicomweb_url}/studies", params={"accept": accept})
        browser = http.get(
            f"{populated.dicomweb_url}/studies",
            headers={"Accept": f"{accept}, application/dicom+json;q=0.5"},
        )
    for reply in (by_header, by_parameter):
        assert reply.status_code == 406
        assert "a search result is served as application/dicom+json" in reply.json()["error"]
    assert browser.status_code == 200
    assert len(browser.json()) == 5


def test_both_warnings_are_given_when_both_apply(tmp_path) -> None:  # noqa: ANN001
    """A result cut at the node's maximum and an unsupported fuzzymatching both warn, in
    the one Warning header (PS3.18 8.3.4.4 and 8.3.4.5)."""
    server = start_server(tmp_path / "data", extra_env={"RADBANK_QIDO_MAX_LIMIT": "2"})
    try:
        node = LiveNode(server.base_url, server.token, server.data_dir, new_project(server))
        _store(node, [_ct(number) for number in range(3)])
        capped = _get(node, "/studies")
        both = _get(node, "/studies", {"fuzzymatching": "true"})
        fuzzy_only = _get(node, "/studies", {"fuzzymatching": "true", "limit": "1"})
    finally:
        server.stop()
    exceeded = "299 radbank: The number of results exceeded the maximum"
    not_fuzzy = "299 radbank: The fuzzymatching parameter is not supported"
    assert len(capped.json()) == 2 and capped.headers["warning"].startswith(exceeded)
    assert both.headers["warning"].startswith(exceeded)
    assert not_fuzzy in both.headers["warning"]
    assert fuzzy_only.headers["warning"].startswith(not_fuzzy)
