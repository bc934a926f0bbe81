"""STOW-RS status codes, duplicates, conflicts and every kind of bad request."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import corpus  # noqa: E402
import httpx
import pydicom
import pytest
from liveserver import new_project, start_server  # noqa: E402

from radbank.api.multipart import write_parts  # noqa: E402
from radbank.api.stow import _BATCH_PARTS  # noqa: E402 - long requests are stored in batches

CT = corpus.path("CT_small.dcm")
REFERENCED, FAILED, FAILURE_REASON, REASON_TEXT = "00081199", "00081198", "00081197", "00091001"
SOP_CLASS, SOP_INSTANCE, RETRIEVE_URL = "00081150", "00081155", "00081190"
WARNING_REASON, OTHER_FAILURES = "00081196", "0008119A"


def _body(
    parts: list[bytes], boundary: str = "xyzzy", content_type: str = "application/dicom"
) -> bytes:
    return b"".join(
        write_parts([({"Content-Type": content_type}, iter([p])) for p in parts], boundary)
    )


def _post(
    node,
    parts: list[bytes],
    *,
    study: str | None = None,
    boundary: str = "xyzzy",  # noqa: ANN001
    content_type: str | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    url = f"{node.dicomweb_url}/studies" + (f"/{study}" if study else "")
    headers = {
        "Content-Type": content_type
        or f'multipart/related; type="application/dicom"; boundary={boundary}'
    }
    with node.client() as http:
        return http.post(
            url, content=_body(parts, boundary) if body is None else body, headers=headers
        )


def _instances(node) -> list:  # noqa: ANN001
    with node.client() as http:
        return http.get(f"{node.dicomweb_url}/instances").json()


def _modified(path: Path, **changes: str) -> bytes:
    dataset = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def test_all_stored_is_200_with_retrieve_urls(live_node) -> None:  # noqa: ANN001
    reply = _post(live_node, [CT.read_bytes()])
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/dicom+json")
    item = reply.json()[REFERENCED]["Value"][0]
    assert item["00081190"]["Value"][0].startswith(f"{live_node.dicomweb_url}/studies/2.25.")
    assert reply.json()["00081190"]["Value"][0].endswith(
        item["00081190"]["Value"][0].split("/series/")[0].split("/studies/")[1]
    )


def test_resend_is_acknowledged_as_duplicate_and_stored_once(live_node) -> None:  # noqa: ANN001
    first = _post(live_node, [CT.read_bytes()])
    again = _post(live_node, [CT.read_bytes(), CT.read_bytes()])
    assert first.status_code == again.status_code == 200
    assert len(again.json()[REFERENCED]["Value"]) == 2
    assert len(_instances(live_node)) == 1


def test_conflicting_resend_is_409_and_keeps_the_original(live_node) -> None:  # noqa: ANN001
    assert _post(live_node, [CT.read_bytes()]).status_code == 200
    before = _instances(live_node)
    changed = _modified(CT, InstanceNumber="42")
    reply = _post(live_node, [changed])
    assert reply.status_code == 409
    failed = reply.json()[FAILED]["Value"][0]
    assert failed[FAILURE_REASON]["Value"] == [0x0111]
    assert "different content" in failed[REASON_TEXT]["Value"][0]
    # Named as the sender knows it; the reason names the stored instance it conflicts with.
    assert failed[SOP_INSTANCE]["Value"] == [pydicom.dcmread(CT).SOPInstanceUID]
    assert before[0]["00080018"]["Value"][0] in failed[REASON_TEXT]["Value"][0]
    assert _instances(live_node) == before


def test_partly_bad_request_is_202_naming_the_bad_part(live_node) -> None:  # noqa: ANN001
    reply = _post(live_node, [CT.read_bytes(), b"this is not DICOM at all" * 20])
    assert reply.status_code == 202
    body = reply.json()
    assert len(body[REFERENCED]["Value"]) == 1
    failed = body[FAILED]["Value"][0]
    assert failed[FAILURE_REASON]["Value"] == [0xC000]
    assert "part 2" in failed[REASON_TEXT]["Value"][0]


def test_only_garbage_is_400(live_node) -> None:  # noqa: ANN001
    reply = _post(live_node, [b"\x00" * 50])
    assert reply.status_code == 400
    assert "too short" in reply.json()[FAILED]["Value"][0][REASON_TEXT]["Value"][0]
    assert _instances(live_node) == []


def test_study_scoped_store_rejects_other_studies_with_409(live_node) -> None:  # noqa: ANN001
    original_study = pydicom.dcmread(CT).StudyInstanceUID
    assert _post(live_node, [CT.read_bytes()], study=original_study).status_code == 200
    other = _modified(CT, SOPInstanceUID="1.2.3.4.5", StudyInstanceUID="1.2.3.4.6")
    reply = _post(live_node, [other], study=original_study)
    assert reply.status_code == 409
    failed = reply.json()[FAILED]["Value"][0]
    assert failed[FAILURE_REASON]["Value"] == [0xA900]
    assert failed[SOP_CLASS]["Value"] == [pydicom.dcmread(CT).SOPClassUID]
    assert failed[SOP_INSTANCE]["Value"] == ["1.2.3.4.5"]


def test_study_scoped_store_to_the_retrieve_url_of_the_study(live_node) -> None:  # noqa: ANN001
    """A sender adding to a study it stored may post to the study's RetrieveURL, which
    names the study by its de-identified UID; an instance of another study is still 409."""
    first = _post(live_node, [CT.read_bytes()])
    study_url = first.json()[RETRIEVE_URL]["Value"][0]
    stored_study = study_url.rsplit("/", 1)[-1]
    added = _modified(CT, SOPInstanceUID="1.2.3.4.7")
    reply = _post(live_node, [added], study=stored_study)
    assert reply.status_code == 200, reply.json()
    other = _modified(CT, SOPInstanceUID="1.2.3.4.8", StudyInstanceUID="1.2.3.4.9")
    assert _post(live_node, [other], study=stored_study).status_code == 409


@pytest.mark.parametrize(
    ("content_type", "status", "words"),
    [
        ("application/dicom", 415, "multipart/related"),
        ("application/json", 415, "multipart/related"),
        ('multipart/related; type="application/dicom+json"; boundary=xyzzy', 415, "not supported"),
        ('multipart/related; type="application/dicom"', 400, "boundary"),
    ],
)
def test_wrong_content_type(live_node, content_type: str, status: int, words: str) -> None:  # noqa: ANN001
    reply = _post(live_node, [CT.read_bytes()], content_type=content_type)
    assert reply.status_code == status
    assert words in str(reply.json())
    assert _instances(live_node) == []


def test_wrong_boundary_is_400(live_node) -> None:  # noqa: ANN001
    body = _body([CT.read_bytes()], boundary="actual")
    reply = _post(live_node, [], body=body, boundary="announced")
    assert reply.status_code == 400
    assert "does not occur" in str(reply.json())
    assert _instances(live_node) == []


def test_truncated_multipart_body_is_400(live_node) -> None:  # noqa: ANN001
    body = _body([CT.read_bytes()])
    reply = _post(live_node, [], body=body[: len(body) // 2])
    assert reply.status_code == 400
    assert "ended before" in str(reply.json())
    assert _instances(live_node) == []


def test_empty_request_is_400(live_node) -> None:  # noqa: ANN001
    reply = _post(live_node, [], body=b"--xyzzy--\r\n")
    assert reply.status_code == 400


def _series(count: int) -> list[bytes]:
    """`count` instances of CT_small's series, numbered 1.. (Instance Number)."""
    return [
        _modified(CT, SOPInstanceUID=f"1.2.826.0.1.3680043.8.498.77.{n}", InstanceNumber=str(n))
        for n in range(1, count + 1)
    ]


def test_a_malformed_body_stores_nothing_and_names_the_part(live_node) -> None:  # noqa: ANN001
    """Parts read in full before the body turned out broken are not stored behind a 400
    that tells the sender nothing was."""
    body = _body(_series(3))
    reply = _post(live_node, [], body=body[:-500])
    assert reply.status_code == 400
    assert REFERENCED not in reply.json()
    [other] = reply.json()[OTHER_FAILURES]["Value"]
    assert other[FAILURE_REASON]["Value"] == [0xC000]
    assert "in part 3" in other[REASON_TEXT]["Value"][0]
    assert "nothing of this request was stored" in other[REASON_TEXT]["Value"][0]
    assert _instances(live_node) == []


def test_a_body_broken_after_stored_batches_is_202_listing_them(live_node) -> None:  # noqa: ANN001
    """A long request is stored batch by batch while it arrives; when it then breaks, the
    instances already stored are acknowledged (202) and the answer says from which part on
    nothing was stored."""
    files = _series(_BATCH_PARTS + 3)
    body = _body(files)
    reply = _post(live_node, [], body=body[: -len(files[-1]) // 2])
    assert reply.status_code == 202
    stored = {item[SOP_INSTANCE]["Value"][0] for item in reply.json()[REFERENCED]["Value"]}
    assert stored == {i["00080018"]["Value"][0] for i in _instances(live_node)}
    assert 0 < len(stored) < len(files) - 1
    [other] = reply.json()[OTHER_FAILURES]["Value"]
    assert (
        f"part {len(stored) + 1} and the parts after it were not stored"
        in (other[REASON_TEXT]["Value"][0])
    )


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/dicom+xml", 406),
        ("text/html", 406),
        ("application/dicom+json", 200),
        ("application/json", 200),
        ("*/*", 200),
        ("application/dicom+xml, application/dicom+json; q=0.5", 200),
    ],
)
def test_accept_of_the_response(live_node, accept: str, status: int) -> None:  # noqa: ANN001
    """The answer is DICOM JSON (PS3.18 10.5.3); a client that accepts only another form
    gets 406 before anything is stored, instead of instances it is never told about."""
    with live_node.client() as http:
        reply = http.post(
            f"{live_node.dicomweb_url}/studies",
            content=_body([CT.read_bytes()]),
            headers={
                "Content-Type": 'multipart/related; type="application/dicom"; boundary=xyzzy',
                "Accept": accept,
            },
        )
    assert reply.status_code == status
    if status == 406:
        assert "application/dicom+json" in reply.json()["error"]
        assert _instances(live_node) == []
    else:
        assert reply.headers["content-type"].startswith("application/dicom+json")


def test_a_client_gone_mid_part_leaves_whole_instances_only(server) -> None:  # noqa: ANN001
    """A sender that disconnects in the middle of a part: no server fault (the audit trail
    records the request as the client's, not as a 500), and what the node lists is whole."""
    project = new_project(server)
    files = _series(_BATCH_PARTS + 4)
    body = _body(files)
    cut = len(body) - len(files[-1]) // 2
    host, port = server.base_url.removeprefix("http://").split(":")
    head = (
        f"POST /dicom-web/projects/{project}/studies HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Length: {len(body)}\r\n"
        'Content-Type: multipart/related; type="application/dicom"; boundary=xyzzy\r\n\r\n'
    )
    with socket.create_connection((host, int(port))) as sender:
        sender.sendall(head.encode() + body[:cut])
    with server.client() as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the node has finished with the request
            trail = http.get("/api/audit", params={"format": "syslog", "project": project}).text
            if "dicomweb.store_instances" in trail:
                break
            time.sleep(0.2)
        stored = http.get(f"/dicom-web/projects/{project}/instances", params={"limit": 1000}).json()
        for instance in stored:
            reply = http.get(
                instance["00081190"]["Value"][0],
                headers={
                    "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'
                },
            )
            assert reply.status_code == 200
    store = next(line for line in trail.splitlines() if "dicomweb.store_instances" in line)
    assert 'status="500"' not in store, store
    numbers = {int(i["00200013"]["Value"][0]) for i in stored}
    assert len(files) not in numbers  # the part cut short
    assert numbers == set(range(1, len(numbers) + 1))  # whole parts, in the order sent


def test_part_with_wrong_content_type_fails_alone(live_node) -> None:  # noqa: ANN001
    body = b"".join(
        write_parts(
            [
                ({"Content-Type": "application/dicom"}, iter([CT.read_bytes()])),
                ({"Content-Type": "text/plain"}, iter([b"hello"])),
            ],
            "xyzzy",
        )
    )
    reply = _post(live_node, [], body=body)
    assert reply.status_code == 202
    assert "text/plain" in reply.json()[FAILED]["Value"][0][REASON_TEXT]["Value"][0]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/dicom-web/projects/no-such-project/studies", 404),
        ("/dicom-web/projects/UPPER/studies", 400),
        ("/dicom-web/projects/%2e%2e/studies", 400),
        ("/dicom-web/projects/a%2fb/studies", 404),
    ],
)
def test_unknown_or_hostile_project_names(live_node, path: str, status: int) -> None:  # noqa: ANN001
    with live_node.client() as http:
        reply = http.post(
            path,
            content=_body([CT.read_bytes()]),
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyzzy'},
        )
    assert reply.status_code == status
    assert reply.json()["error"]


def test_invalid_study_uid_in_url_is_400(live_node) -> None:  # noqa: ANN001
    reply = _post(live_node, [CT.read_bytes()], study="not-a-uid")
    assert reply.status_code == 400


@pytest.mark.parametrize("token", [None, "wrong", "test-admin-token-but-longer"])
def test_no_or_wrong_token_is_401_and_stores_nothing(live_node, token: str | None) -> None:  # noqa: ANN001
    headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyzzy'}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    reply = httpx.post(
        f"{live_node.dicomweb_url}/studies", content=_body([CT.read_bytes()]), headers=headers
    )
    assert reply.status_code == 401
    assert _instances(live_node) == []


@pytest.fixture(scope="module")
def small_limit_server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    server = start_server(
        tmp_path_factory.mktemp("small") / "data",
        extra_env={"RADBANK_MAX_REQUEST_BYTES": "100000", "RADBANK_MAX_INSTANCE_BYTES": "60000"},
    )
    with server.client() as http:
        assert http.post("/api/projects", json={"name": "small"}).status_code == 201
    yield server
    server.stop()


def test_oversize_body_is_413(small_limit_server) -> None:  # noqa: ANN001
    body = _body([CT.read_bytes()] * 5)
    with small_limit_server.client() as http:
        reply = http.post(
            "/dicom-web/projects/small/studies",
            content=body,
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyzzy'},
        )
        assert reply.status_code == 413
        assert "limit" in reply.json()["error"]
        assert "RADBANK_MAX_REQUEST_BYTES" in reply.json()["error"]
        assert http.get("/dicom-web/projects/small/instances").json() == []


def test_oversize_chunked_body_is_413(small_limit_server) -> None:  # noqa: ANN001
    body = _body([CT.read_bytes()] * 5)

    def chunks():  # noqa: ANN202
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    with small_limit_server.client() as http:
        reply = http.post(
            "/dicom-web/projects/small/studies",
            content=chunks(),
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyzzy'},
        )
        assert reply.status_code == 413
        assert "RADBANK_MAX_REQUEST_BYTES" in str(reply.json())


def test_oversize_part_is_413(small_limit_server) -> None:  # noqa: ANN001
    big = pydicom.dcmread(corpus.path("MR_small.dcm"))
    big.PixelData = bytes(70000)
    big.Rows, big.Columns = 100, 350
    out = io.BytesIO()
    big.save_as(out)
    with small_limit_server.client() as http:
        reply = http.post(
            "/dicom-web/projects/small/studies",
            content=_body([out.getvalue()]),
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyzzy'},
        )
        assert reply.status_code == 413
        assert "part 1" in str(reply.json())
        # one object cannot be split: the answer names the limit its operator can raise
        assert "RADBANK_MAX_INSTANCE_BYTES" in str(reply.json())
        assert "split the upload" not in str(reply.json())


def test_series_claimed_by_two_studies_is_refused_and_leaves_no_blob(live_node) -> None:  # noqa: ANN001
    assert _post(live_node, [CT.read_bytes()]).status_code == 200
    blobs_before = sorted(p.name for p in live_node.data_dir.rglob("*.dcm"))
    other_study = _modified(CT, SOPInstanceUID="1.2.3.4.5.6", StudyInstanceUID="1.2.3.4.5.7")
    reply = _post(live_node, [other_study])
    assert reply.status_code == 409
    failed = reply.json()[FAILED]["Value"][0]
    assert "another study" in failed[REASON_TEXT]["Value"][0]
    assert len(_instances(live_node)) == 1
    assert sorted(p.name for p in live_node.data_dir.rglob("*.dcm")) == blobs_before


def test_a_study_sent_again_for_another_patient_is_refused(live_node) -> None:  # noqa: ANN001
    """Senders reuse Study Instance UIDs (two vendor dose reports of ../shared/data/rdsr do);
    filing a second patient's object into the first patient's study would mix two subjects
    (and an erasure of one would leave the other's study half-gone)."""
    assert _post(live_node, [CT.read_bytes()]).status_code == 200
    other_patient = _modified(
        CT, SOPInstanceUID="1.2.3.4.5.8", SeriesInstanceUID="1.2.3.4.5.9", PatientID="OTHER-1"
    )
    reply = _post(live_node, [other_patient])
    assert reply.status_code == 409
    reason = reply.json()[FAILED]["Value"][0][REASON_TEXT]["Value"][0]
    assert "already belongs to patient" in reason and "one patient" in reason
    assert len(_instances(live_node)) == 1


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95, 0.999])
def test_truncated_files_are_refused_naming_the_cut(live_node, fraction: float) -> None:  # noqa: ANN001
    data = CT.read_bytes()
    reply = _post(live_node, [data[: int(len(data) * fraction)]])
    assert reply.status_code == 400
    reason = reply.json()[FAILED]["Value"][0][REASON_TEXT]["Value"][0]
    assert "truncated" in reason or "not a readable" in reason
    assert _instances(live_node) == []


def test_a_file_cut_right_before_its_pixel_data_is_held(live_node) -> None:  # noqa: ANN001
    """Cut between two elements, the file reads as complete; the image has no pixels. It
    is held for review with the reason, not served as an image that shows nothing."""
    data = CT.read_bytes()
    reply = _post(live_node, [data[: data.rindex(b"\xe0\x7f\x10\x00")]])
    assert reply.status_code == 202
    [held] = reply.json()[REFERENCED]["Value"]
    assert held[WARNING_REASON]["Value"] == [0xB000]
    reason = held[REASON_TEXT]["Value"][0]
    assert "no Pixel Data (7FE0,0010)" in reason and "cut short" in reason
    assert _instances(live_node) == []


def test_quarantined_objects_are_listed_for_the_steward(live_node) -> None:  # noqa: ANN001
    """A held object is in the node's hands (a sender must not send it again, which would
    hold it twice), but cannot be retrieved yet: acknowledged with a Warning Reason, without
    a Retrieve URL, not reported as failed."""
    screen = corpus.path("SC_rgb.dcm").read_bytes()
    reply = _post(live_node, [screen])
    assert reply.status_code == 202
    assert FAILED not in reply.json()
    [held] = reply.json()[REFERENCED]["Value"]
    assert held[WARNING_REASON]["Value"] == [0xB000]
    assert "quarantined for review" in held[REASON_TEXT]["Value"][0]
    assert RETRIEVE_URL not in held and RETRIEVE_URL not in reply.json()
    assert _instances(live_node) == []
    with live_node.client() as http:
        listed = http.get(f"/api/projects/{live_node.project}/quarantine").json()
        missing = http.get("/api/projects/no-such/quarantine")
    assert len(listed) == 1
    assert listed[0]["source"] == "stow-rs"
    assert "Secondary Capture" in listed[0]["reason"]
    assert listed[0]["sop_instance_uid"].startswith("2.25.")
    assert missing.status_code == 404
    # Sent again, it is held once: one entry to review and release, not two sharing a file.
    again = _post(live_node, [screen])
    assert again.status_code == 202
    [held] = again.json()[REFERENCED]["Value"]
    assert "already quarantined for review" in held[REASON_TEXT]["Value"][0]
    with live_node.client() as http:
        assert len(http.get(f"/api/projects/{live_node.project}/quarantine").json()) == 1


def test_concurrent_senders_of_the_same_study_store_each_instance_once(live_node) -> None:  # noqa: ANN001
    import threading

    from radbank.synthetic import planted_ct_instances

    files = list(planted_ct_instances(48, 1, seed=11))
    changed = pydicom.dcmread(io.BytesIO(files[5]))
    changed.InstanceNumber = 999  # same SOP Instance UID, other content
    out = io.BytesIO()
    changed.save_as(out)
    replies: list[httpx.Response] = []

    def send(parts: list[bytes]) -> None:
        replies.append(_post(live_node, parts))

    senders = [
        threading.Thread(target=send, args=(files,)),
        threading.Thread(target=send, args=(files[::-1],)),
        threading.Thread(target=send, args=([out.getvalue(), *files[10:20]],)),
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert all(r.status_code in (200, 202, 409) for r in replies), [r.status_code for r in replies]
    assert len(_instances(live_node)) == 48
    conflicts = [
        item
        for r in replies
        for item in r.json().get(FAILED, {}).get("Value", [])
        if item[FAILURE_REASON]["Value"] == [0x0111]
    ]
    # Whichever version of instance 6 came first is kept; every other sender is told.
    assert len(conflicts) in (1, 2)
    assert len({item["00081155"]["Value"][0] for item in conflicts}) == 1
    verify = subprocess.run(
        [sys.executable, "-m", "radbank", "verify", "--data-dir", str(live_node.data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout


def test_only_healthz_answers_without_a_token(live_node) -> None:  # noqa: ANN001
    assert httpx.get(f"{live_node.base_url}/healthz").status_code == 200
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(live_node.base_url + path).status_code == 404
    assert httpx.get(f"{live_node.base_url}/api/openapi.json").status_code == 401
    with live_node.client() as http:
        schema = http.get("/api/openapi.json").json()
    assert "/dicom-web/projects/{project}/studies" in schema["paths"]
