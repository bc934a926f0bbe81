"""A real radbank server process on loopback, for tests and benchmarks."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from peers.orthanc import free_tcp_port as free_port

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Two vendor reports of one study that the vendor's anonymiser gave two Patient IDs; a node
# refuses a study of two patients, so tests that store both give the second the first's ID.
SAME_STUDY_REPORTS = ("NM-CT-RDSR-Siemens.dcm", "NM-RRDSR-Siemens.dcm")


def vendor_file(path: Path) -> bytes:
    """The bytes of a file of ../shared/data/rdsr, with one patient per study."""
    if path.name != SAME_STUDY_REPORTS[1]:
        return path.read_bytes()
    import io

    import pydicom

    dataset = pydicom.dcmread(path)
    dataset.PatientID = pydicom.dcmread(
        path.with_name(SAME_STUDY_REPORTS[0]), stop_before_pixels=True
    ).PatientID
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


_counter = itertools.count()


@dataclass
class RunningServer:
    base_url: str
    token: str
    data_dir: Path
    process: subprocess.Popen
    log: Path
    port: int
    env: dict[str, str]

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120
        )


def start_server(
    data_dir: Path,
    *,
    token: str = "test-admin-token",
    port: int | None = None,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
) -> RunningServer:
    """Start `radbank serve` as a real process and wait until it answers."""
    port = port or free_port()
    env = dict(os.environ, RADBANK_ADMIN_TOKEN=token, **(extra_env or {}))
    log = data_dir.parent / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = log.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radbank",
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    server = RunningServer(f"http://127.0.0.1:{port}", token, data_dir, process, log, port, env)
    try:
        wait_until_healthy(server.base_url, process, log)
    except RuntimeError:
        server.stop(kill=True)
        raise
    return server


def wait_until_healthy(
    base_url: str, process: subprocess.Popen, log: Path | None = None, timeout_s: float = 60
) -> None:
    """Return once `radbank serve` answers /healthz; raise with its log if it never does."""

    def tail() -> str:
        return log.read_text(errors="replace")[-4000:] if log and log.exists() else "(no log)"

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"radbank serve exited with code {process.returncode}:\n{tail()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"radbank serve did not answer {base_url}/healthz:\n{tail()}")


@dataclass
class LiveNode:
    base_url: str
    token: str
    data_dir: Path
    project: str

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}/dicom-web/projects/{self.project}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=120)


def new_project(server: RunningServer, profile: str = "basic-dates") -> str:
    name = f"p{os.getpid()}-{next(_counter)}"
    response = httpx.post(
        f"{server.base_url}/api/projects",
        json={"name": name, "profile": profile},
        headers={"Authorization": f"Bearer {server.token}"},
    )
    assert response.status_code == 201, response.text
    return name
