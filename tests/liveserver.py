"""A real radbank server process on loopback, for tests and benchmarks."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_counter = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"radbank serve exited early:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop(kill=True)
    raise RuntimeError(f"radbank serve did not start:\n{log.read_text()[-4000:]}")


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
