"""What a node's log says about the objects it receives: pydicom's warnings name the object
and withhold the values of the received, identified object they quote."""

from __future__ import annotations

from pathlib import Path

import corpus  # noqa: E402
import httpx
from liveserver import new_project, start_server

from radbank.api.multipart import write_parts  # noqa: E402


def test_pydicom_warnings_reach_the_log_naming_the_part_without_the_value(
    tmp_path: Path,
) -> None:
    # A server of its own: Python shows a warning of one source line once per process.
    server = start_server(tmp_path / "data")
    try:
        project = new_project(server)
        data = corpus.path("badVR.dcm").read_bytes()  # an Integer String of "1A"
        body = b"".join(write_parts([({"Content-Type": "application/dicom"}, iter([data]))], "b"))
        reply = httpx.post(
            f"{server.base_url}/dicom-web/projects/{project}/studies",
            content=body,
            headers={
                "Authorization": f"Bearer {server.token}",
                "Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
            },
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
    finally:
        server.stop()
    log = server.log.read_text()
    assert "part 1: Invalid value for VR IS: (value withheld)" in log
    assert "'1A'" not in log
    assert "UserWarning" not in log and "warn_and_log" not in log
