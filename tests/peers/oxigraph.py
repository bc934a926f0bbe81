"""A real Oxigraph SPARQL server (`oxigraph serve`, pip package `oxigraph` in [test]) on a
free loopback port: the remote RDF store of tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from peers.orthanc import free_tcp_port


def oxigraph_binary() -> str | None:
    beside = Path(sys.executable).parent / "oxigraph"
    return str(beside) if beside.exists() else shutil.which("oxigraph")


@contextmanager
def oxigraph_server(directory: Path, *, timeout_s: int = 5) -> Iterator[str]:
    """Run `oxigraph serve` on `directory` until the block ends; yields its base URL. Its
    own query timeout (`timeout_s`) stops evaluations a client gave up on."""
    binary = oxigraph_binary()
    if binary is None:
        raise FileNotFoundError("the Oxigraph server is not installed (pip package `oxigraph`)")
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    with (directory / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", "--location", str(directory / "data"), "--bind",
             f"127.0.0.1:{port}", "--timeout-s", str(timeout_s)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"oxigraph serve ended: {(directory / 'server.log').read_text()}"
                )
            try:
                httpx.get(f"{base}/query", params={"query": "ASK {}"}, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(10)
