"""A STOW-RS request far larger than the server's memory budget is processed part by part."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pydicom
import pytest
from liveserver import start_server

from radbank.api.multipart import write_parts
from radbank.synthetic import planted_ct_instances

INSTANCES = 800  # ~420 MB in one request


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
def test_a_request_of_hundreds_of_megabytes_is_streamed(tmp_path) -> None:  # noqa: ANN001
    server = start_server(tmp_path / "data")
    try:
        with server.client() as http:
            assert http.post("/api/projects", json={"name": "big"}).status_code == 201
            http.get("/dicom-web/projects/big/studies")  # warm up: imports, first query
        baseline = _peak_rss_mb(server.process.pid)
        sent = 0

        def body():  # noqa: ANN202
            nonlocal sent
            parts = (
                ({"Content-Type": "application/dicom"}, iter([data]))
                for data in planted_ct_instances(INSTANCES, 8, seed=3)
            )
            for chunk in write_parts(parts, "big-boundary"):
                sent += len(chunk)
                yield chunk

        with server.client() as http:
            reply = http.post(
                "/dicom-web/projects/big/studies",
                content=body(),
                headers={
                    "Content-Type": 'multipart/related; type="application/dicom"; boundary=big-boundary'
                },
                timeout=httpx.Timeout(600),
            )
        assert reply.status_code == 200, reply.text[:500]
        assert len(reply.json()["00081199"]["Value"]) == INSTANCES
        growth = _peak_rss_mb(server.process.pid) - baseline
        assert sent > 400 * 10**6
        # Bounded by a few in-flight batches, not by the request: the body is 8x larger.
        assert growth < 150, (
            f"server memory grew by {growth:.0f} MB for a {sent / 1e6:.0f} MB request"
        )
        with server.client() as http:
            one = http.get("/dicom-web/projects/big/instances", params={"limit": 1}).json()[0]
            reply = http.get(
                one["00081190"]["Value"][0],
                headers={
                    "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'
                },
            )
        assert reply.status_code == 200
        boundary = reply.headers["content-type"].split("boundary=")[1]
        part = reply.content.split(f"--{boundary}".encode())[1].split(b"\r\n\r\n", 1)[1][:-2]
        assert pydicom.dcmread(io.BytesIO(part)).Rows == 512
    finally:
        server.stop()
