"""STOW-RS ingest throughput and QIDO-RS latency of radbank against Orthanc, in one run.

Both servers run on 127.0.0.1 with fresh storage in a temporary directory; each ingest run
gets a freshly started server so neither pays for data a previous run left behind.

1. Ingest: N 512x512 CT instances (Part 10, ~0.5 MB each) in S studies, with planted
   patient identity, sent by STOW-RS with one request per study, by 1 and then 2 concurrent
   clients. Request bodies are built before timing. Prints instances/s, MB/s (10^6 bytes of
   DICOM parts) and the ratio radbank/Orthanc (above 1: radbank is faster), and the CPU
   time each server's processes and the clients used during the run (Linux): on a small
   machine the two compete for the same cores, and a server's CPU per instance is steadier
   from minute to minute than its throughput.
2. QIDO-RS: loads Q small studies (one small CT or MR instance each) into each server, then
   times R sequential requests of four typical queries (PatientID, StudyDate range,
   ModalitiesInStudy, PatientName wildcard); prints median and p95 latency and the ratio
   radbank/Orthanc (above 1: radbank is slower).

radbank de-identifies on ingest (pseudonyms, shifted dates), so query values are not
taken from the generated data: on each server they are chosen from the studies it holds
(listed by QIDO-RS first) by the same rule, for the same selectivity on both (see
`plan_queries`); the number of matches is printed next to each latency.

    python benchmarks/ingest_vs_orthanc.py --json bench.json
    python benchmarks/ingest_vs_orthanc.py --instances 200 --studies 4 \\
        --qido-studies 1000 --qido-requests 50          # a quick run
    python benchmarks/ingest_vs_orthanc.py --orthanc-only   # the peer alone

The run is bounded by --time-limit; servers are stopped on every exit path, Ctrl-C
included.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import random
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
# The peers and the radbank process harness live with the tests.
from liveserver import start_server as start_radbank  # noqa: E402
from peers.orthanc import (  # noqa: E402
    OrthancPeer,
    orthanc_missing_reason,
    qido_query_string,
)

BOUNDARY = "radbank-benchmark-" + uuid.uuid4().hex
STOW_CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
PROJECT = "bench"
MB = 1_000_000
QIDO_LOAD_BATCH = 100
MIN_QIDO_REQUESTS = 20
PLAN_PAGE = 500
QUERY_NAMES = ("PatientID", "StudyDate range", "ModalitiesInStudy", "PatientName wildcard")


class TimeLimitReached(RuntimeError):
    """The run reached --time-limit; results so far are still reported."""


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.remaining() <= 0:
            raise TimeLimitReached(f"time limit reached during {what}")


# ---------------------------------------------------------------------------- corpora


def ingest_corpus(n_instances: int, n_studies: int) -> list[list[bytes]]:
    """The ingest corpus as Part 10 bytes, grouped by study (one STOW-RS request each)."""
    from radbank import synthetic

    by_study: dict[str, list[bytes]] = {}
    for part in synthetic.planted_ct_instances(n_instances, n_studies):
        study_uid = dcmread(io.BytesIO(part), stop_before_pixels=True).StudyInstanceUID
        by_study.setdefault(study_uid, []).append(part)
    return list(by_study.values())


def qido_corpus(n_studies: int, seed: int = 20240611) -> list[bytes]:
    """One small instance per study, with identity and dates spread for realistic queries.

    Four studies per patient (a PatientID query matches a handful), study dates spread
    over ten years, one study in twenty an MR (ModalitiesInStudy=MR matches about 5 %).
    """
    rng = random.Random(seed)
    families = [
        "SMITH",
        "MUELLER",
        "DUBOIS",
        "ROSSI",
        "GARCIA",
        "NOWAK",
        "JANSEN",
        "SILVA",
        "KOWALSKI",
        "PETERS",
        "HORVATH",
        "NIELSEN",
        "FISCHER",
        "MARTIN",
        "LAMBERT",
    ]
    givens = ["ANNA", "JAN", "MARIE", "LUCA", "EVA", "TOMAS", "SOFIA", "PIETER", "ELENA", "OLAF"]
    templates = {
        "CT": dcmread(get_testdata_file("CT_small.dcm")),
        "MR": dcmread(get_testdata_file("MR_small.dcm")),
    }
    first_day = datetime.date(2015, 1, 1)
    n_patients = max(1, n_studies // 4)
    parts = []
    for i in range(n_studies):
        patient = i % n_patients
        modality = "MR" if rng.random() < 0.05 else "CT"
        ds = templates[modality]
        ds.PatientID = f"P{patient:07d}"
        ds.PatientName = (
            f"{families[patient % len(families)]}{patient // len(families)}"
            f"^{givens[patient % len(givens)]}"
        )
        ds.PatientBirthDate = f"{1930 + patient % 70}0{1 + patient % 9}1{patient % 10}"
        ds.PatientSex = "MF"[patient % 2]
        study_date = first_day + datetime.timedelta(days=rng.randrange(3650))
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
        ds.AccessionNumber = f"A{i:09d}"
        ds.StudyID = str(i % 10000)
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        parts.append(buffer.getvalue())
    return parts


def multipart_body(parts: Sequence[bytes]) -> bytes:
    chunks = []
    for part in parts:
        chunks.append(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    dicomweb_url: str
    headers: dict[str, str]
    stop: Callable[[], None]
    pid: int | None = None  # the server's main process (its CPU time is read with its children's)


def start_server(name: str, workdir: Path, args: argparse.Namespace) -> Server:
    if name == "orthanc":
        orthanc = OrthancPeer(workdir).start()
        return Server(name, orthanc.dicomweb_url, {}, orthanc.stop, orthanc.pid)
    radbank = start_radbank(
        workdir / "data", token=uuid.uuid4().hex + uuid.uuid4().hex, workers=args.workers
    )
    # Shifted dates are kept, so StudyDate ranges have something to match.
    with radbank.client() as http:
        http.post(
            "/api/projects", json={"name": PROJECT, "profile": "basic-dates"}
        ).raise_for_status()
    return Server(
        name,
        f"{radbank.base_url}/dicom-web/projects/{PROJECT}",
        {"Authorization": f"Bearer {radbank.token}"},
        radbank.stop,
        radbank.process.pid,
    )


# ---------------------------------------------------------------------------- ingest


@dataclass
class IngestResult:
    server: str
    clients: int
    instances: int
    megabytes: float
    seconds: float
    failed_instances: int
    server_cpu_s: float | None = None  # user + system time of the server's processes
    client_cpu_s: float | None = None  # of this process (the sending clients)
    server_system_cpu_s: float | None = None  # the kernel's share of server_cpu_s
    instances_per_s: float = field(init=False)
    mb_per_s: float = field(init=False)
    server_cpu_ms_per_instance: float | None = field(init=False)
    server_system_ms_per_instance: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.instances_per_s = self.instances / self.seconds if self.seconds else 0.0
        self.mb_per_s = self.megabytes / self.seconds if self.seconds else 0.0
        self.server_cpu_ms_per_instance = _per_instance_ms(self.server_cpu_s, self.instances)
        self.server_system_ms_per_instance = _per_instance_ms(
            self.server_system_cpu_s, self.instances
        )


def _per_instance_ms(seconds: float | None, instances: int) -> float | None:
    return 1000 * seconds / instances if seconds is not None and instances else None


def process_tree_cpu_s(pid: int | None) -> tuple[float, float] | None:
    """(user, system) CPU seconds of a process and its living descendants (Linux /proc),
    or None where that cannot be read. Only differences are meaningful: read before and
    after a run, while the server's processes (uvicorn's workers) all live."""
    if pid is None:
        return None
    try:
        parents: dict[int, int] = {}
        times: dict[int, tuple[float, float]] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:  # exited meanwhile
                continue
            fields = stat.rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            times[int(entry)] = (int(fields[11]) / tick, int(fields[12]) / tick)
    except (OSError, ValueError):
        return None
    if pid not in times:
        return None
    user = system = 0.0
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        own_user, own_system = times.get(current, (0.0, 0.0))
        user, system = user + own_user, system + own_system
        frontier.extend(child for child, parent in parents.items() if parent == current)
    return user, system


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _failed_in_answer(response: httpx.Response, n_parts: int) -> int:
    """Instances a STOW-RS answer reports as failed (Failed SOP Sequence, PS3.18 10.5.3)."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "00081198" in answer:
        return len(answer["00081198"].get("Value") or [])
    return 0 if response.status_code in (200, 202) else n_parts


def stow(
    server: Server,
    bodies: Sequence[tuple[bytes, int]],
    clients: int,
    deadline: Deadline,
) -> tuple[float, int]:
    """Send every (body, part count) by STOW-RS from `clients` threads; wall time, failures."""
    queue: Iterator[tuple[bytes, int]] = iter(bodies)
    headers = {
        **server.headers,
        "Content-Type": STOW_CONTENT_TYPE,
        "Accept": "application/dicom+json",
    }
    abort = threading.Event()

    def client() -> int:
        failed = 0
        with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as http:
            # next() on a list iterator is atomic under the GIL: the clients share the
            # queue without a lock, and each request body is sent exactly once.
            for body, n_parts in queue:
                if abort.is_set():
                    break
                deadline.check(f"STOW-RS to {server.name}")
                response = http.post(
                    f"{server.dicomweb_url}/studies", content=body, headers=headers
                )
                failed += _failed_in_answer(response, n_parts)
        return failed

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client) for _ in range(clients)]
        try:
            failures = sum(future.result() for future in futures)
        except BaseException:
            # Ctrl-C or the time limit: the other clients stop after their current request.
            abort.set()
            raise
    return time.perf_counter() - started, failures


def run_ingest(
    servers: Sequence[str],
    studies: list[list[bytes]],
    args: argparse.Namespace,
    workroot: Path,
    deadline: Deadline,
) -> list[IngestResult]:
    bodies = [(multipart_body(parts), len(parts)) for parts in studies]
    n_instances = sum(len(parts) for parts in studies)
    megabytes = sum(len(part) for parts in studies for part in parts) / MB
    results = []
    for clients in (1, 2):
        for name in servers:
            deadline.check("ingest")
            server = start_server(name, workroot / f"ingest-{name}-{clients}", args)
            try:
                server_before, client_before = process_tree_cpu_s(server.pid), _own_cpu_s()
                seconds, failures = stow(server, bodies, clients, deadline)
                server_after, client_cpu = process_tree_cpu_s(server.pid), _own_cpu_s()
            finally:
                server.stop()
            server_cpu = server_system = None
            if server_before is not None and server_after is not None:
                server_system = server_after[1] - server_before[1]
                server_cpu = server_after[0] - server_before[0] + server_system
            result = IngestResult(
                name,
                clients,
                n_instances,
                megabytes,
                seconds,
                failures,
                server_cpu,
                client_cpu - client_before,
                server_system,
            )
            results.append(result)
            print(
                f"  {name:8} {clients} client(s): {result.instances_per_s:8.1f} instances/s "
                f"{result.mb_per_s:8.1f} MB/s  ({seconds:.1f} s, {failures} failed; CPU: "
                f"server {_fmt_cpu(server_cpu)} of which system {_fmt_cpu(server_system)}, "
                f"clients {_fmt_cpu(result.client_cpu_s)})",
                flush=True,
            )
    return results


# ---------------------------------------------------------------------------- QIDO-RS


@dataclass
class QidoResult:
    server: str
    query: str
    query_string: str
    matches: int
    requests: int
    median_ms: float
    p95_ms: float


def _first_value(result: dict[str, Any], tag: str) -> Any:
    values = result.get(tag, {}).get("Value") or [None]
    value = values[0]
    return value.get("Alphabetic") if isinstance(value, dict) else value


def _search(http: httpx.Client, server: Server, query_string: str) -> list[dict[str, Any]]:
    response = http.get(f"{server.dicomweb_url}/studies?{query_string}", headers=server.headers)
    response.raise_for_status()
    return response.json() if response.content else []


def _all_studies(http: httpx.Client, server: Server) -> list[dict[str, Any]]:
    """Every study, a page at a time (radbank caps a QIDO-RS answer at qido_max_limit)."""
    studies: list[dict[str, Any]] = []
    while True:
        page = _search(http, server, f"limit={PLAN_PAGE}&offset={len(studies)}")
        studies += page
        if len(page) < PLAN_PAGE:
            return studies


def plan_queries(http: httpx.Client, server: Server) -> dict[str, str]:
    """The four query strings for one server, planned from the studies it holds.

    radbank's pseudonyms and shifted dates differ from what was sent, so values are
    chosen by the same rule on each server, for the same selectivity on both: the
    PatientID of the study whose PatientName is the median one; the StudyDate range
    around the median date that holds 1.5 % of the studies; ModalitiesInStudy=MR (5 %);
    the shortest prefix of the median PatientName (from 2 characters) followed by `*` that
    matches at most 1 % of the studies.
    """
    studies = _all_studies(http, server)
    named = sorted(
        (_first_value(s, "00100010") or "", _first_value(s, "00100020") or "") for s in studies
    )
    dates = sorted(d for s in studies if (d := _first_value(s, "00080020")))
    if not named or not dates:
        raise RuntimeError(f"{server.name} has no dated study to plan queries from")
    name, patient_id = named[len(named) // 2]
    half_window = max(1, len(dates) * 15 // 1000) // 2
    middle = len(dates) // 2
    low, high = (
        dates[max(0, middle - half_window)],
        dates[min(len(dates) - 1, middle + half_window)],
    )
    most = max(1, len(named) // 100)
    wildcard = f"{name}*"
    for length in range(2, len(name)):
        prefix = name[:length]
        if " " in prefix or not prefix.isascii():
            break  # Orthanc cannot match these characters (see qido_query_string)
        if sum(1 for other, _ in named if other.startswith(prefix)) <= most:
            wildcard = f"{prefix}*"
            break
    return {
        "PatientID": qido_query_string([("PatientID", patient_id)]),
        "StudyDate range": qido_query_string([("StudyDate", f"{low}-{high}")]),
        "ModalitiesInStudy": qido_query_string([("ModalitiesInStudy", "MR")]),
        "PatientName wildcard": qido_query_string([("PatientName", wildcard)]),
    }


def load_for_qido(server: Server, parts: Sequence[bytes], deadline: Deadline) -> float:
    bodies = [
        (multipart_body(parts[i : i + QIDO_LOAD_BATCH]), len(parts[i : i + QIDO_LOAD_BATCH]))
        for i in range(0, len(parts), QIDO_LOAD_BATCH)
    ]
    seconds, failures = stow(server, bodies, 2, deadline)
    if failures:
        raise RuntimeError(f"{server.name} refused {failures} of the QIDO-RS corpus instances")
    return seconds


def time_queries(
    server: Server,
    n_requests: int,
    seconds_per_query: float,
    deadline: Deadline,
) -> list[QidoResult]:
    """Latency of each planned query: n_requests, or fewer when a query's time is spent."""
    results = []
    with httpx.Client(timeout=120) as http:
        for query, query_string in plan_queries(http, server).items():
            matches = len(_search(http, server, query_string))
            latencies_ms: list[float] = []
            budget_ends = time.monotonic() + seconds_per_query
            for _ in range(n_requests):
                deadline.check(f"QIDO-RS on {server.name}")
                if len(latencies_ms) >= MIN_QIDO_REQUESTS and time.monotonic() > budget_ends:
                    break
                started = time.perf_counter()
                _search(http, server, query_string)
                latencies_ms.append((time.perf_counter() - started) * 1000)
            results.append(
                QidoResult(
                    server.name,
                    query,
                    query_string,
                    matches,
                    len(latencies_ms),
                    statistics.median(latencies_ms),
                    statistics.quantiles(latencies_ms, n=20)[-1]
                    if len(latencies_ms) > 1
                    else latencies_ms[0],
                )
            )
            print(
                f"    {query:22} {results[-1].matches:6d} matches, "
                f"median {results[-1].median_ms:.1f} ms over {len(latencies_ms)} requests",
                flush=True,
            )
    return results


def run_qido(
    servers: Sequence[str], args: argparse.Namespace, workroot: Path, deadline: Deadline
) -> tuple[list[dict[str, Any]], list[QidoResult]]:
    parts = qido_corpus(args.qido_studies)
    loads, results = [], []
    for name in servers:
        deadline.check("QIDO-RS load")
        server = start_server(name, workroot / f"qido-{name}", args)
        try:
            seconds = load_for_qido(server, parts, deadline)
            loads.append(
                {
                    "server": name,
                    "studies": len(parts),
                    "seconds": seconds,
                    "instances_per_s": len(parts) / seconds,
                }
            )
            print(
                f"  {name:8} loaded {len(parts)} studies in {seconds:.1f} s "
                f"({len(parts) / seconds:.0f} instances/s, 2 clients, "
                f"{QIDO_LOAD_BATCH} per request)",
                flush=True,
            )
            results.extend(
                time_queries(server, args.qido_requests, args.qido_query_seconds, deadline)
            )
        finally:
            server.stop()
    return loads, results


# ---------------------------------------------------------------------------- report


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _fmt_ratio(value: float | None) -> str:
    return "   -" if value is None else f"{value:6.2f}"


def _fmt_cpu(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f} s"


def report(ingest: list[IngestResult], qido: list[QidoResult]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "ingest_ratio_radbank_over_orthanc": {},
        "qido_ratio_radbank_over_orthanc": {},
    }
    if ingest:
        print(
            "\nSTOW-RS ingest                 instances/s      MB/s   failed"
            "  server CPU ms/instance (of which system)"
        )
        for r in ingest:
            per_instance, system = r.server_cpu_ms_per_instance, r.server_system_ms_per_instance
            print(
                f"  {r.server:8} {r.clients} client(s)      {r.instances_per_s:10.1f} "
                f"{r.mb_per_s:9.1f} {r.failed_instances:8d}"
                f"  {'n/a' if per_instance is None else f'{per_instance:10.2f}'}"
                f"{'' if system is None else f' ({system:.2f})'}"
            )
        for clients in (1, 2):
            by_server = {r.server: r for r in ingest if r.clients == clients}
            if {"orthanc", "radbank"} <= by_server.keys():
                value = ratio(
                    by_server["radbank"].instances_per_s, by_server["orthanc"].instances_per_s
                )
                summary["ingest_ratio_radbank_over_orthanc"][f"{clients}_clients"] = value
                print(
                    f"  radbank/Orthanc throughput, {clients} client(s): {_fmt_ratio(value)}"
                    "  (above 1: radbank faster)"
                )
    if qido:
        print("\nQIDO-RS /studies         server    matches requests  median ms   p95 ms")
        for r in qido:
            print(
                f"  {r.query:22} {r.server:8} {r.matches:8d} {r.requests:8d} "
                f"{r.median_ms:10.2f} {r.p95_ms:8.2f}"
            )
        for query in QUERY_NAMES:
            by_server = {r.server: r for r in qido if r.query == query}
            if {"orthanc", "radbank"} <= by_server.keys():
                median = ratio(by_server["radbank"].median_ms, by_server["orthanc"].median_ms)
                p95 = ratio(by_server["radbank"].p95_ms, by_server["orthanc"].p95_ms)
                summary["qido_ratio_radbank_over_orthanc"][query] = {"median": median, "p95": p95}
                print(
                    f"  radbank/Orthanc latency, {query:22} median {_fmt_ratio(median)} "
                    f"p95 {_fmt_ratio(p95)}  (above 1: radbank slower)"
                )
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--instances", type=int, default=2000, help="CT instances to ingest")
    parser.add_argument("--studies", type=int, default=40, help="studies they form")
    parser.add_argument(
        "--qido-studies",
        type=int,
        default=10_000,
        help="studies loaded for the QIDO-RS latency test",
    )
    parser.add_argument(
        "--qido-requests", type=int, default=200, help="timed requests per query and server"
    )
    parser.add_argument(
        "--qido-query-seconds",
        type=float,
        default=60,
        help=f"time budget of one query on one server: fewer requests (at least "
        f"{MIN_QIDO_REQUESTS}) when it is spent",
    )
    parser.add_argument("--workers", type=int, default=2, help="radbank serve --workers")
    parser.add_argument(
        "--orthanc-only", action="store_true", help="measure Orthanc alone (no radbank)"
    )
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-qido", action="store_true")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=1800,
        help="seconds after which the run stops and reports what it has",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where servers keep their data (default: a temporary directory, removed at the end)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    return parser.parse_args(argv)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = orthanc_missing_reason()
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    # SIGTERM (a CI timeout, `kill`) takes the same path as Ctrl-C: servers are stopped.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    servers = ["orthanc"] if args.orthanc_only else ["orthanc", "radbank"]
    deadline = Deadline(args.time_limit)
    workroot = args.workdir or Path(tempfile.mkdtemp(prefix="radbank-bench-"))
    ingest: list[IngestResult] = []
    qido: list[QidoResult] = []
    loads: list[dict[str, Any]] = []
    status = 0
    try:
        if not args.skip_ingest:
            print(
                f"Building {args.instances} CT instances in {args.studies} studies...", flush=True
            )
            studies = ingest_corpus(args.instances, args.studies)
            print(
                f"STOW-RS ingest, {sum(map(len, studies))} instances in {len(studies)} requests:",
                flush=True,
            )
            ingest = run_ingest(servers, studies, args, workroot, deadline)
            del studies
        if not args.skip_qido:
            print(
                f"QIDO-RS with {args.qido_studies} studies, {args.qido_requests} requests "
                "per query:",
                flush=True,
            )
            loads, qido = run_qido(servers, args, workroot, deadline)
    except TimeLimitReached as exc:
        print(f"\n{exc}; reporting what was measured", file=sys.stderr)
        status = 3
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        status = 130
    finally:
        if args.workdir is None:
            shutil.rmtree(workroot, ignore_errors=True)
    summary = report(ingest, qido)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": {
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                    },
                    "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                    "ingest": [asdict(r) for r in ingest],
                    "qido_load": loads,
                    "qido": [asdict(r) for r in qido],
                    **summary,
                    "complete": status == 0,
                },
                indent=2,
            )
        )
        print(f"\nresults written to {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
