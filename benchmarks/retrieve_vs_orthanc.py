"""WADO-RS retrieval that makes pixels or metadata, against Orthanc: rendered images,
decoded compressed instances and frames, and the metadata of a 200-slice CT series (what a
viewer such as OHIF asks for when it opens a series), latency per request.

Both servers are started fresh on loopback. Each case's objects are stored in radbank by
STOW-RS (de-identified there) and radbank's stored bytes are posted to Orthanc, so both
serve the same objects. Each request is timed from sending to the last byte of the answer,
one client, the two servers alternated in blocks of ten so that both see the same machine
load. Printed: median and 95th percentile latency in ms for each server and the ratio of
the medians radbank/Orthanc (below 1: radbank answers sooner). No time is asserted.

    python benchmarks/retrieve_vs_orthanc.py                 # 200 requests per case
    python benchmarks/retrieve_vs_orthanc.py --requests 50   # quick look
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from pydicom import dcmread
from pydicom.data import get_testdata_file

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from liveserver import start_server as start_radbank  # noqa: E402
from peers.orthanc import OrthancPeer, orthanc_missing_reason  # noqa: E402

PROJECT = "bench"
BOUNDARY = "radbank-benchmark-" + uuid.uuid4().hex
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DICOM = 'multipart/related; type="application/dicom"'
DICOM_JSON = "application/dicom+json"
SERIES = "planted-ct-series"
SERIES_SIZE = 200
OCTETS = 'multipart/related; type="application/octet-stream"'


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # how the object is made: "planted-ct" or a pydicom test file
    resource: str  # appended to the instance's path
    accept: str


CASES = (
    Case(
        "rendered CT 512x512, JPEG, window 40,400",
        "planted-ct",
        "/rendered?window=40,400,linear",
        "image/jpeg",
    ),
    Case(
        "rendered CT 512x512, PNG, viewport 128",
        "planted-ct",
        "/rendered?window=40,400,linear&viewport=128,128",
        "image/png",
    ),
    Case(
        "rendered CR 1760x1760 MONOCHROME1, JPEG",
        "RG3_UNCR.dcm",
        "/rendered?window=550,1024,linear",
        "image/jpeg",
    ),
    Case("instance decoded, JPEG Lossless 1024x256", "JPEG-LL.dcm", "", DICOM),
    Case("instance decoded, 12-bit JPEG 1024x256", "JPGExtended.dcm", "", DICOM),
    Case(
        "10 frames decoded, JPEG-LS 64x64",
        "emri_small_jpeg_ls_lossless.dcm",
        "/frames/1,2,3,4,5,6,7,8,9,10",
        OCTETS,
    ),
    Case(f"metadata of a {SERIES_SIZE}-slice CT series", SERIES, "/metadata", DICOM_JSON),
)


@dataclass
class Result:
    case: str
    radbank_median_ms: float
    radbank_p95_ms: float
    orthanc_median_ms: float
    orthanc_p95_ms: float
    ratio: float


def _part10s(source: str) -> list[bytes]:
    from radbank import synthetic

    if source == "planted-ct":
        return [next(iter(synthetic.planted_ct_instances(1, 1)))]
    if source == SERIES:
        return list(synthetic.planted_ct_instances(SERIES_SIZE, 1))
    dataset = dcmread(get_testdata_file(source))
    dataset.BurnedInAnnotation = "NO"
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return [out.getvalue()]


def _stow_body(parts: list[bytes]) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    return b"".join(head + part + b"\r\n" for part in parts) + f"--{BOUNDARY}--\r\n".encode()


def _store(radbank_url: str, headers: dict[str, str], orthanc_url: str, parts: list[bytes]) -> str:
    """Store in radbank, copy radbank's stored objects to Orthanc; the path of the
    instance, or of the series of several."""
    reply = httpx.post(
        f"{radbank_url}/studies",
        content=_stow_body(parts),
        headers={
            **headers,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        },
        timeout=120,
    )
    reply.raise_for_status()
    referenced = reply.json()["00081199"]["Value"]
    if len(referenced) != len(parts):
        raise RuntimeError(f"radbank stored {len(referenced)} of {len(parts)} instances")
    paths = [
        "/" + r["00081190"]["Value"][0].split(f"/projects/{PROJECT}/", 1)[1] for r in referenced
    ]
    for path in paths:
        stored = httpx.get(
            radbank_url + path, headers={**headers, "Accept": DICOM_ANY}, timeout=120
        )
        stored.raise_for_status()
        body = stored.content
        start = body.index(b"\r\n\r\n") + 4
        end = body.rindex(b"\r\n--")
        httpx.post(
            f"{orthanc_url}/instances", content=body[start:end], timeout=120
        ).raise_for_status()
    return paths[0] if len(paths) == 1 else paths[0].rsplit("/instances/", 1)[0]


def _timed(get: Callable[[], httpx.Response]) -> float:
    start = time.perf_counter()
    reply = get()
    elapsed = time.perf_counter() - start
    if reply.status_code != 200:
        raise RuntimeError(f"{reply.request.url}: {reply.status_code} {reply.text[:200]}")
    return elapsed * 1000


def run(requests: int) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="radbank-retrieve-") as work:
        radbank = start_radbank(Path(work) / "radbank" / "data", token=uuid.uuid4().hex * 2)
        orthanc = OrthancPeer(Path(work) / "orthanc").start()
        try:
            with radbank.client() as http:
                http.post("/api/projects", json={"name": PROJECT}).raise_for_status()
            radbank_url = f"{radbank.base_url}/dicom-web/projects/{PROJECT}"
            headers = {"Authorization": f"Bearer {radbank.token}"}
            paths = {
                source: _store(radbank_url, headers, orthanc.base_url, _part10s(source))
                for source in dict.fromkeys(case.source for case in CASES)
            }
            with httpx.Client(timeout=120) as http:
                for case in CASES:
                    path = paths[case.source] + case.resource
                    servers = {
                        "radbank": lambda p=path, a=case.accept: http.get(
                            radbank_url + p, headers={**headers, "Accept": a}
                        ),
                        "orthanc": lambda p=path, a=case.accept: http.get(
                            orthanc.dicomweb_url + p, headers={"Accept": a}
                        ),
                    }
                    times: dict[str, list[float]] = {"radbank": [], "orthanc": []}
                    for get in servers.values():
                        for _ in range(5):  # warm-up
                            _timed(get)
                    for block in range(0, requests, 10):
                        for name, get in servers.items():
                            times[name] += [_timed(get) for _ in range(min(10, requests - block))]
                    result = Result(
                        case.name,
                        statistics.median(times["radbank"]),
                        statistics.quantiles(times["radbank"], n=20)[-1],
                        statistics.median(times["orthanc"]),
                        statistics.quantiles(times["orthanc"], n=20)[-1],
                        statistics.median(times["radbank"]) / statistics.median(times["orthanc"]),
                    )
                    results.append(result)
                    print(
                        f"{case.name:48} radbank {result.radbank_median_ms:7.1f} "
                        f"(p95 {result.radbank_p95_ms:7.1f})  Orthanc {result.orthanc_median_ms:7.1f} "
                        f"(p95 {result.orthanc_p95_ms:7.1f})  ratio {result.ratio:5.2f}",
                        flush=True,
                    )
        finally:
            radbank.stop()
            orthanc.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=200, help="timed requests per case and server"
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    missing = orthanc_missing_reason()
    if missing:
        sys.exit(f"Orthanc is needed: {missing}")
    results = run(args.requests)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
