"""Folder-to-folder de-identification: `radbank deid` against dicognito and deid, in one run.

The corpus is the planted CT corpus of ingest_vs_orthanc.py (default 2,000 identified
512x512 CT instances, ~0.5 MB each, in 40 studies, names, IDs, birth dates, addresses,
accession numbers, institutions, physicians and a private identity block planted in them),
written to a temporary folder before any clock starts. Each tool then de-identifies the
whole folder into an empty output folder:

- radbank: `python -m radbank deid IN OUT --profile P --key-file K --quiet --jobs N`, as a
  subprocess (its startup counts; the peers run in this process and pay none), with the
  profile `basic` and, when shipped, `research-dose`. radbank's tool uses all cores by
  default (N = the machine's CPUs here) and that is part of what is measured; `basic` with
  `--jobs 1` is timed too, for the per-core comparison.
- dicognito: its documented Python API (one `Anonymizer` for the run, `dcmread`,
  `anonymize`, `save_as` into the output folder), single process, its defaults.
- deid (pydicom/deid on PyPI): `get_files` and `replace_identifiers(save=True,
  output_folder=OUT)` with its default recipe, single process.

Time is the wall clock of the whole subprocess or call, reading and writing every file
included, the median of --repeat runs; outputs are removed and dirty pages flushed (sync)
between runs, outside the clock. Printed: files/s per tool and radbank/faster peer (above 1:
radbank faster). The issue's target is at least 5x the faster peer with no canary left.

radbank's run ends with its output on disk (it syncs before it reports a file written);
the peers' runs end with theirs still in the page cache, to be written by the kernel later.
The sync after each run is therefore timed too (outside the run's clock), and a second
ratio compares the tools at the same end state, the output on disk: run + that sync.

Then every byte of every file of each output folder is scanned for every planted identifying
string (`radbank.synthetic.canary_attributes`, UTF-8, which is ASCII for most of them): per
tool the files holding any canary, the total hits, how many distinct canaries are left and the
five found in most files (all of them in --json). The identified input is scanned the same
way, as a check of the scanner. A radbank profile that keeps an attribute on purpose (e.g.
`research-dose` retains device identity: Station Name, Device Serial Number) is not
scanned for the values planted only in such attributes; they are listed as kept on purpose.

    python benchmarks/deid_vs_peers.py --json deid-bench.json      # full run, ~10 min
    python benchmarks/deid_vs_peers.py --instances 200 --studies 4  # a quick run
    python benchmarks/deid_vs_peers.py --help                       # every option
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest_vs_orthanc import ingest_corpus  # the same corpus generator (benchmarks/)
from pydicom import dcmread
from pydicom.datadict import tag_for_keyword

from radbank.dicom.deid import PROFILE_NAMES, Profile
from radbank.dicom.deid.profile import compile_profile
from radbank.governance.sitekey import KEY_BYTES, write_key_file
from radbank.synthetic import canary_attributes

TOOLS = ("radbank", "dicognito", "deid")
PEERS = ("dicognito", "deid")
RADBANK_PROFILES = ("basic", "research-dose")
TARGET_RATIO = 5.0
TOP_LEAKS = 5
MB = 1_000_000


# ---------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    folder: Path
    files: int
    megabytes: float
    canaries: dict[str, set[str]]  # value -> keywords of the attributes it was planted in
    pixel_data: bytes  # the same in every instance of the planted corpus


def write_corpus(folder: Path, n_instances: int, n_studies: int) -> Corpus:
    """Write the planted corpus as folder/study-SSS/SSS-NNNN.dcm and gather its canaries.

    File names are unique across the tree because deid writes every output into one folder
    under the input's base name. The planted generator encodes each study's header once and
    changes only UIDs, numbers and positions per instance, so the first instance of a study
    holds every identifying value of the study.
    """
    canaries: dict[str, set[str]] = {}
    pixel_data = b""
    files = 0
    size = 0
    for study_number, parts in enumerate(ingest_corpus(n_instances, n_studies), start=1):
        study_folder = folder / f"study-{study_number:03d}"
        study_folder.mkdir(parents=True)
        first = dcmread(io.BytesIO(parts[0]))
        for canary, keywords in canary_attributes(first).items():
            canaries.setdefault(canary, set()).update(keywords)
        pixel_data = first.PixelData
        for instance_number, part in enumerate(parts, start=1):
            (study_folder / f"{study_number:03d}-{instance_number:04d}.dcm").write_bytes(part)
            files += 1
            size += len(part)
    return Corpus(folder, files, size / MB, canaries, pixel_data)


# ---------------------------------------------------------------------------- canary scan


@dataclass
class LeakScan:
    files: int = 0
    files_with_canary: int = 0
    canary_hits: int = 0
    files_with_pixels_kept: int = 0
    # canary -> number of files holding it
    leaked: Counter[str] = field(default_factory=Counter)


class CanaryScanner:
    """Counts planted strings in files, every byte of each file.

    Every instance carries the same 0.5 MB of pixel data, so those bytes are scanned once:
    in a file that holds them verbatim, only the bytes before and after are scanned per
    file, with the boundaries placed so that a match straddling the pixel data is counted
    exactly once. A file without them (re-encoded pixels) is scanned whole.
    """

    def __init__(self, canaries: Sequence[str], pixel_data: bytes) -> None:
        self.needles = [(canary, canary.encode("utf-8")) for canary in canaries]
        self.pixel_data = pixel_data
        self.hits_in_pixel_data = {
            canary: pixel_data.count(needle) for canary, needle in self.needles
        }

    def _hits(self, data: bytes) -> tuple[dict[str, int], bool]:
        start = len(data) - len(self.pixel_data)
        if not data.endswith(self.pixel_data):
            start = data.find(self.pixel_data)
        if start < 0:
            return {canary: data.count(needle) for canary, needle in self.needles}, False
        end = start + len(self.pixel_data)
        hits = {}
        for canary, needle in self.needles:
            hits[canary] = (
                data.count(needle, 0, start + len(needle) - 1)
                + self.hits_in_pixel_data[canary]
                + data.count(needle, end - len(needle) + 1)
            )
        return hits, True

    def scan(self, folder: Path) -> LeakScan:
        result = LeakScan()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            hits, pixels_kept = self._hits(path.read_bytes())
            result.files += 1
            result.files_with_pixels_kept += pixels_kept
            found = {canary: n for canary, n in hits.items() if n}
            if found:
                result.files_with_canary += 1
                result.canary_hits += sum(found.values())
                result.leaked.update(found.keys())
        return result


# ---------------------------------------------------------------------------- tools

# A tool de-identifies every file of the first folder into the second, an absent folder.
Runner = Callable[[Path, Path], None]


def radbank_runner(profile: str, jobs: int, key_file: Path) -> Runner:
    """`radbank deid` as a site runs it: a process of its own, startup included."""

    def run(source: Path, target: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "radbank",
            "deid",
            str(source),
            str(target),
            "--profile",
            profile,
            "--key-file",
            str(key_file),
            "--quiet",
            "--jobs",
            str(jobs),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"exit status {done.returncode}: {' | '.join(tail)}")

    return run


def dicognito_runner() -> Runner:
    """dicognito's documented Python use: one Anonymizer for the run, read, anonymize, save.

    Its console script is not used: in dicognito 0.19 `dicognito` fails at startup (its
    entry point calls main() without the arguments it requires); the API does the same
    work minus the process startup.
    """
    import pydicom
    from dicognito.anonymizer import Anonymizer

    def run(source: Path, target: Path) -> None:
        anonymizer = Anonymizer()
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            output = target / path.relative_to(source)
            output.parent.mkdir(parents=True, exist_ok=True)
            with pydicom.dcmread(path) as dataset:
                anonymizer.anonymize(dataset)
                dataset.save_as(output)

    return run


def deid_runner() -> Runner:
    """deid's documented use with its default recipe (deid=None): every output in one folder."""
    from deid.dicom import get_files, replace_identifiers

    def run(source: Path, target: Path) -> None:
        target.mkdir(parents=True)
        replace_identifiers(list(get_files(str(source))), save=True, output_folder=str(target))

    return run


# ---------------------------------------------------------------------------- runs


@dataclass
class ToolRun:
    tool: str  # "radbank", "dicognito", "deid"
    label: str  # e.g. "radbank basic --jobs 2"
    files: int
    megabytes: float
    seconds: list[float] = field(default_factory=list)
    # per run, the os.sync() after it: what putting the output on disk cost beyond the
    # run (radbank syncs in its run, so near nothing there; the peers leave it all)
    sync_seconds: list[float] = field(default_factory=list)
    error: str | None = None
    files_out: int = 0
    files_with_pixels_kept: int = 0
    files_with_canary: int = 0
    canary_hits: int = 0
    # canary -> number of output files holding it, most files first
    leaked: dict[str, int] = field(default_factory=dict)
    profile: str | None = None  # radbank's profile
    kept_on_purpose: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds and not self.error else None

    @property
    def files_per_s(self) -> float | None:
        median = self.median_s
        return self.files / median if median else None

    @property
    def durable_files_per_s(self) -> float | None:
        """Files per second to the same end state for every tool: the output on disk."""
        if not self.seconds or self.error or len(self.sync_seconds) != len(self.seconds):
            return None
        median = statistics.median(map(sum, zip(self.seconds, self.sync_seconds, strict=True)))
        return self.files / median if median else None


def kept_by_profile(canaries: dict[str, set[str]], profile_name: str) -> list[str]:
    """The planted values that `profile_name` keeps on purpose: every attribute they were
    planted in is a top-level one the profile keeps (action K), e.g. device identity in
    research-dose. Values inside sequences are always expected to go."""
    compiled = compile_profile(Profile.named(profile_name))

    def kept(keyword: str) -> bool:
        tag = tag_for_keyword(keyword) if keyword and "/" not in keyword else None
        return tag is not None and compiled.resolve(tag) == "K"

    return sorted(c for c, keywords in canaries.items() if keywords and all(map(kept, keywords)))


def time_tool(
    run: Runner,
    record: ToolRun,
    corpus: Corpus,
    output: Path,
    scanner: CanaryScanner,
    repeat: int,
) -> None:
    for attempt in range(repeat):
        shutil.rmtree(output, ignore_errors=True)
        os.sync()  # the previous tool's writes are not flushed on this tool's clock
        started = time.perf_counter()
        try:
            run(corpus.folder, output)
        except Exception as exc:  # a peer or radbank failing is a result to report
            record.error = f"{type(exc).__name__}: {exc}"[:300]
            break
        record.seconds.append(time.perf_counter() - started)
        synced = time.perf_counter()
        os.sync()
        record.sync_seconds.append(time.perf_counter() - synced)
        print(
            f"  {record.label:32} run {attempt + 1}/{repeat}: {record.seconds[-1]:7.1f} s "
            f"({record.files / record.seconds[-1]:7.1f} files/s), then sync "
            f"{record.sync_seconds[-1]:5.2f} s",
            flush=True,
        )
    if record.error:
        print(f"  {record.label:32} FAILED: {record.error}", flush=True)
    if output.exists():
        scan = scanner.scan(output)
        record.files_out = scan.files
        record.files_with_pixels_kept = scan.files_with_pixels_kept
        record.files_with_canary = scan.files_with_canary
        record.canary_hits = scan.canary_hits
        record.leaked = dict(scan.leaked.most_common())
        shutil.rmtree(output, ignore_errors=True)


def plan(args: argparse.Namespace, key_file: Path) -> list[tuple[ToolRun, Runner]]:
    """(record, runner) for every timed configuration, radbank first."""
    runs: list[tuple[ToolRun, Runner]] = []

    def add(tool: str, label: str, runner: Runner, profile: str | None = None) -> None:
        runs.append((ToolRun(tool, label, 0, 0.0, profile=profile), runner))

    if "radbank" in args.tools:
        for profile in args.profiles:
            add(
                "radbank",
                f"radbank {profile} --jobs {args.jobs}",
                radbank_runner(profile, args.jobs, key_file),
                profile,
            )
        if args.jobs != 1 and "basic" in args.profiles:
            add("radbank", "radbank basic --jobs 1", radbank_runner("basic", 1, key_file), "basic")
    if "dicognito" in args.tools:
        add("dicognito", "dicognito (Python API)", dicognito_runner())
    if "deid" in args.tools:
        add("deid", "deid (default recipe)", deid_runner())
    return runs


# ---------------------------------------------------------------------------- report


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def print_ratios(
    records: list[ToolRun], of: Callable[[ToolRun], float | None], *, canaries: bool = False
) -> dict[str, float | None]:
    """Print and return radbank's ratio to a peer for each radbank configuration."""
    ratios: dict[str, float | None] = {}
    for r in records:
        if r.tool != "radbank":
            continue
        value = ratios[r.label] = of(r)
        shown = "   -" if value is None else f"{value:6.2f}"
        left = f"   canaries left in {r.files_with_canary} files" if canaries else ""
        print(f"  {r.label:32} {shown}{left}")
    return ratios


def report(records: list[ToolRun], baseline: LeakScan, jobs: int) -> dict[str, Any]:
    print(
        f"\n{'':34}{'files/s':>9} {'median s':>9} {'files out':>10} {'pixels kept':>12} "
        f"{'w/ canary':>10} {'hits':>8} {'distinct':>9}"
    )
    print(
        f"  {'input (identified, not timed)':32}{'':>9} {'':>9} {baseline.files:10d} "
        f"{baseline.files_with_pixels_kept:12d} {baseline.files_with_canary:10d} "
        f"{baseline.canary_hits:8d} {len(baseline.leaked):9d}"
    )
    for r in records:
        speed = "failed" if r.error else f"{r.files_per_s:9.1f}"
        median = "" if r.error else f"{r.median_s:9.1f}"
        print(
            f"  {r.label:32}{speed:>9} {median:>9} {r.files_out:10d} "
            f"{r.files_with_pixels_kept:12d} {r.files_with_canary:10d} {r.canary_hits:8d} "
            f"{len(r.leaked):9d}"
        )
    for r in records:
        if r.kept_on_purpose:
            kept = ", ".join(repr(c) for c in r.kept_on_purpose[:TOP_LEAKS])
            print(f"  {r.label} keeps on purpose (not counted): {kept}")
        if r.leaked:
            top = list(r.leaked.items())[:TOP_LEAKS]
            leaks = ", ".join(f"{canary!r} ({n} files)" for canary, n in top)
            print(f"  {r.label} leaves {len(r.leaked)} canaries, e.g. {leaks}")
    peers = [r for r in records if r.tool in PEERS and r.files_per_s]
    faster_peer = max(peers, key=lambda r: r.files_per_s or 0.0, default=None)
    summary: dict[str, Any] = {
        "faster_peer": faster_peer.label if faster_peer else None,
        "ratio_radbank_over_faster_peer": {},
    }
    if faster_peer is None:
        print("\nno peer measured: no ratio")
        return summary
    print(f"\nradbank / {faster_peer.label} (above 1: radbank faster)")
    summary["ratio_radbank_over_faster_peer"] = print_ratios(
        records, lambda r: ratio(r.files_per_s, faster_peer.files_per_s), canaries=True
    )
    durable_peer = max(peers, key=lambda r: r.durable_files_per_s or 0.0)
    print(
        f"\nthe same end state, output on disk (each run + the sync after it; radbank syncs "
        f"in its run): radbank / {durable_peer.label}"
    )
    summary["ratio_on_disk"] = print_ratios(
        records, lambda r: ratio(r.durable_files_per_s, durable_peer.durable_files_per_s)
    )
    headline = next((r for r in records if r.label == f"radbank basic --jobs {jobs}"), None)
    if headline and headline.files_per_s:
        value = ratio(headline.files_per_s, faster_peer.files_per_s) or 0.0
        met = value >= TARGET_RATIO and headline.files_with_canary == 0
        summary["target_met"] = met
        print(
            f"target (>= {TARGET_RATIO:g}x the faster peer, 0 canaries, {headline.label}): "
            f"{'met' if met else 'NOT met'} ({value:.2f}x, "
            f"{headline.files_with_canary} files with canaries)"
        )
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--instances", type=int, default=2000, help="CT instances in the corpus")
    parser.add_argument("--studies", type=int, default=40, help="studies they form")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per tool (median)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="radbank deid --jobs")
    parser.add_argument(
        "--profiles",
        nargs="+",
        default=[p for p in RADBANK_PROFILES if p in PROFILE_NAMES],
        help=f"radbank profiles to time (default: those of {', '.join(RADBANK_PROFILES)} "
        "that radbank ships)",
    )
    parser.add_argument(
        "--tools", nargs="+", choices=TOOLS, default=list(TOOLS), help="tools to run"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where corpus and outputs go (default: a temporary directory, removed at the end)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.jobs < 1:
        parser.error("--repeat and --jobs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workroot = args.workdir or Path(tempfile.mkdtemp(prefix="radbank-deid-bench-"))
    records: list[ToolRun] = []
    try:
        print(f"Writing {args.instances} CT instances in {args.studies} studies...", flush=True)
        corpus = write_corpus(workroot / "input", args.instances, args.studies)
        key_file = workroot / "project.key"
        write_key_file(key_file, secrets.token_bytes(KEY_BYTES))
        scanner = CanaryScanner(list(corpus.canaries), corpus.pixel_data)
        baseline = scanner.scan(corpus.folder)
        print(
            f"{corpus.files} files, {corpus.megabytes:.0f} MB, {len(corpus.canaries)} planted "
            f"canaries; {os.cpu_count()} CPUs",
            flush=True,
        )
        for record, runner in plan(args, key_file):
            record.files, record.megabytes = corpus.files, corpus.megabytes
            scanned = scanner
            if record.profile is not None:
                record.kept_on_purpose = kept_by_profile(corpus.canaries, record.profile)
                kept = set(record.kept_on_purpose)
                must_go = [c for c in corpus.canaries if c not in kept]
                scanned = CanaryScanner(must_go, corpus.pixel_data)
            time_tool(runner, record, corpus, workroot / "output", scanned, args.repeat)
            records.append(record)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if args.workdir is None:
            shutil.rmtree(workroot, ignore_errors=True)
    summary = report(records, baseline, args.jobs)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": {
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                    },
                    "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                    "corpus": {
                        "files": corpus.files,
                        "megabytes": corpus.megabytes,
                        "canaries": len(corpus.canaries),
                        "input_files_with_canary": baseline.files_with_canary,
                    },
                    "runs": [
                        {**asdict(r), "median_s": r.median_s, "files_per_s": r.files_per_s}
                        for r in records
                    ],
                    **summary,
                },
                indent=2,
            )
        )
        print(f"\nresults written to {args.json}")
    return 0 if all(r.error is None for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
