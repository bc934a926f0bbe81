"""Dose reports read per second on one core: `extract_bytes` against pydicom, in one run.

Three ways from a file's bytes, on the same files in the same process:

- `extract_bytes(data)`: radbank's reader of the bytes (pydicom only for what it declines).
- `extract_bytes cold`: the same with the reader's process-wide caches emptied before each
  file (the code sequences and concept names a kind of report repeats, kept across files
  as a node ingesting from a few scanner models keeps them): what a node's first report
  from a new model costs.
- `extract(dcmread(data))`: the dose extraction on a pydicom data set, the path before
  `extract_bytes`.
- the peer, pydicom reading the whole file: `dcmread(data)` and every element's value
  converted (`Dataset.walk`), the least any pydicom-based extractor pays (OpenREM and
  highdicom read reports through pydicom).

Sets: the vendor files of ../shared/data/rdsr (12 RDSRs and 4 images with dose in their
header; GPL test data of OpenREM, read in place) when present, and, when
`radbank.synthetic_dose` is installed, `--synthetic` (default 50) of its reports of each kind (CT,
fluoroscopy) and of its default mix (75% CT). Then the non-dose objects the ingest
pipeline passes too: an MR image (pydicom's MR_small.dcm) and a 512x512 CT image with
CTDIvol in its header (`radbank.synthetic.planted_ct_instances`), in microseconds each.

Before any clock starts every file's `extract_bytes` report is compared with
`extract(dcmread)`'s (printed: differences, and how many files the reader read without
pydicom). The process is pinned to one core (`--core`); each way runs over the whole set
`--repeat` times and the fastest run counts. Printed: reports/s per way and set, and
extract_bytes / each pydicom way (above 1: extract_bytes faster). The issue's target is at
least 1,000 reports/s for extract_bytes, averaged over the set.

    python benchmarks/dose_parse.py                      # vendor files, 50 synthetic, ~2 min
    python benchmarks/dose_parse.py --synthetic 0        # the vendor files alone
    python benchmarks/dose_parse.py --help
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file

from radbank.dicom.dose import _part10, _tree, extract, extract_bytes

TARGET_REPORTS_PER_S = 1000.0
SINGLE_BATCH = 100  # calls per timed run for the non-dose objects
VENDOR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rdsr"

# A way of reading a file's bytes to a dose report (or, for the peer, to a data set).
Way = Callable[[bytes], object]


def by_extract_bytes(data: bytes) -> object:
    return extract_bytes(data)


def by_extract_bytes_cold(data: bytes) -> object:
    _part10._SHARED.clear()
    _tree._KEYS.clear()
    return extract_bytes(data)


def by_extract_dcmread(data: bytes) -> object:
    return extract(pydicom.dcmread(io.BytesIO(data), force=True))


def by_pydicom_full_read(data: bytes) -> object:
    dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    dataset.walk(lambda _, element: element.value)  # converts each value, sequences too
    return dataset


WAYS: dict[str, Way] = {
    "extract_bytes": by_extract_bytes,
    "extract_bytes cold": by_extract_bytes_cold,
    "extract(dcmread)": by_extract_dcmread,
    "pydicom full read": by_pydicom_full_read,
}


@dataclass
class SetRun:
    name: str
    files: int
    kilobytes_per_file: float
    differences: int = 0  # files whose extract_bytes report differs from extract(dcmread)
    read_without_pydicom: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # way -> fastest run

    def per_s(self, way: str) -> float:
        return self.files / self.seconds[way]


# ---------------------------------------------------------------------------- sets


def vendor_files(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(folder.glob("*.dcm"))]


def synthetic_sets(count: int, seed: int) -> dict[str, list[bytes]]:
    try:
        from radbank.synthetic_dose import dose_reports
    except ImportError:
        return {}
    sets = {
        f"synthetic {kind}": list(dose_reports(count, seed, kinds=(kind,)))
        for kind in ("CT", "fluoroscopy")
    }
    sets["synthetic mix (75% CT)"] = list(dose_reports(count, seed + 1))
    return sets


def non_dose_objects() -> dict[str, bytes]:
    from radbank.synthetic import planted_ct_instances

    return {
        "MR image, no dose (MR_small.dcm)": Path(get_testdata_file("MR_small.dcm")).read_bytes(),
        "CT 512x512 image, CTDIvol in header": next(planted_ct_instances(1, 1)),
    }


# ---------------------------------------------------------------------------- timing


def fastest(way: Way, files: Sequence[bytes], repeat: int) -> float:
    """The fastest of `repeat` runs of `way` over all the files, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for data in files:
            way(data)
        best = min(best, time.perf_counter() - start)
    return best


def compare(files: Sequence[bytes], run: SetRun) -> None:
    """Count the files whose reports differ and those read without pydicom (not timed)."""
    for data in files:
        if extract_bytes(data) != by_extract_dcmread(data):
            run.differences += 1
        try:
            _part10.read(data)
            run.read_without_pydicom += 1
        except _part10.Declined:
            pass


def measure(name: str, files: list[bytes], repeat: int) -> SetRun:
    run = SetRun(name, len(files), sum(map(len, files)) / len(files) / 1000)
    compare(files, run)
    for label, way in WAYS.items():
        run.seconds[label] = fastest(way, files, repeat)
    return run


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def report(runs: list[SetRun], single: dict[str, dict[str, float]]) -> dict[str, Any]:
    print(
        f"\n{'reports/s, one core':34}{'files':>6} {'kB/file':>8} "
        + " ".join(f"{label:>18}" for label in WAYS)
        + f" {'same report':>12} {'no pydicom':>11}"
    )
    for run in runs:
        print(
            f"  {run.name:32}{run.files:6d} {run.kilobytes_per_file:8.1f} "
            + " ".join(f"{run.per_s(label):18.1f}" for label in WAYS)
            + f" {run.files - run.differences:12d} {run.read_without_pydicom:11d}"
        )
    print("\nextract_bytes / each way (above 1: extract_bytes faster)")
    summary: dict[str, Any] = {"ratios": {}}
    for run in runs:
        ratios = {
            label: ratio(run.per_s("extract_bytes"), run.per_s(label))
            for label in WAYS
            if label != "extract_bytes"
        }
        summary["ratios"][run.name] = ratios
        shown = "   ".join(f"/ {label}: {value:6.1f}" for label, value in ratios.items())
        print(f"  {run.name:32}{shown}")
    if single:
        print("\nnon-dose objects, microseconds each (fastest run)")
        for name, times in single.items():
            shown = "   ".join(f"{label}: {seconds * 1e6:8.1f}" for label, seconds in times.items())
            print(f"  {name:38}{shown}")
    headline = next((run for run in runs if run.name.startswith("vendor")), None)
    headline = headline or (runs[0] if runs else None)
    if headline is not None:
        rate = headline.per_s("extract_bytes")
        met = rate >= TARGET_REPORTS_PER_S and headline.differences == 0
        summary["target_met"] = met
        print(
            f"\ntarget (>= {TARGET_REPORTS_PER_S:,.0f} reports/s with extract_bytes on the "
            f"{headline.name}, same reports): {'met' if met else 'NOT met'} ({rate:,.0f}/s, "
            f"{headline.differences} differences)"
        )
    return summary


# ---------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--vendor-dir", type=Path, default=VENDOR_DIR, help="vendor RDSRs")
    parser.add_argument(
        "--synthetic", type=int, default=50, help="synthetic reports per set (0: none)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic reports")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per way (fastest)")
    parser.add_argument("--core", type=int, default=0, help="the CPU core to run on")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.synthetic < 0:
        parser.error("--repeat must be at least 1 and --synthetic at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {args.core})
    warnings.simplefilter("ignore")  # pydicom's warnings about vendor quirks, not timed
    sets: dict[str, list[bytes]] = {}
    if args.vendor_dir.is_dir():
        sets["vendor files (12 RDSR, 4 image)"] = vendor_files(args.vendor_dir)
    else:
        print(f"{args.vendor_dir} is absent: no vendor files", flush=True)
    if args.synthetic:
        synthetic = synthetic_sets(args.synthetic, args.seed)
        if not synthetic:
            print("radbank.synthetic_dose is not installed: no synthetic reports", flush=True)
        sets.update(synthetic)
    print(f"one core (CPU {args.core}), Python {sys.version.split()[0]}, best of {args.repeat}")
    runs = []
    for name, files in sets.items():
        if files:
            print(f"  {name}: {len(files)} files...", flush=True)
            runs.append(measure(name, files, args.repeat))
    single = {
        name: {
            label: fastest(way, [data] * SINGLE_BATCH, args.repeat) / SINGLE_BATCH
            for label, way in WAYS.items()
        }
        for name, data in non_dose_objects().items()
    }
    summary = report(runs, single)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": {
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                    },
                    "python": sys.version.split()[0],
                    "sets": [
                        {**asdict(run), "reports_per_s": {w: run.per_s(w) for w in WAYS}}
                        for run in runs
                    ],
                    "non_dose_seconds_each": single,
                    **summary,
                },
                indent=2,
            )
        )
        print(f"\nresults written to {args.json}")
    return 0 if all(run.differences == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
