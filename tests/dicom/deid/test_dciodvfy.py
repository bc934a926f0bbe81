"""De-identification keeps every object as valid as it was: dciodvfy (Debian dicom3tools)
reports no Error in the de-identified output that it did not report for the input.

Every readable file of pydicom's test corpus (tests/corpus.py) and every vendor object of
../shared/data/rdsr is de-identified with `basic` and with `research-dose`, written with
radbank's Part 10 encoder and checked. Error lines are compared after normalisation (values,
UIDs and quoted strings removed) so that the comparison is about the kind of error and the
attribute, not about values that de-identification changes by design. Inputs whose own
reading by dciodvfy fails part-way (truncated files) are left out: their input report is
incomplete, so "new" errors in the output would mean nothing (they are still de-identified
and written, which must not fail). Inputs that cannot be re-encoded even before
de-identification (ingest refuses them) are left out too. Objects the engine refuses
with DeidentificationError are not outputs; any other exception, or an output that cannot
be written, is a failure. Files run in parallel on two processes.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
import tempfile
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import corpus
import pytest
from deid_helpers import PROJECT_KEY
from phi_corpus import rdsr_files, read_dicom, shipped_profile

from radbank.dicom.deid import DeidentificationError, Profile, deidentify
from radbank.dicom.encode import part10_bytes

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (Debian package dicom3tools)"
)
PROFILES = ("basic", "research-dose")
WORKERS = 2
# dciodvfy could not read the whole input: its report on the input is incomplete.
_UNREADABLE = ("read failed", "Seek failed")
# A value in angle brackets, unless it names the element, module or attribute concerned.
_VALUE = re.compile(r"(?<!Element=)(?<!Module=)(?<!attribute )<[^<>]*>")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_DOTTED_NUMBER = re.compile(r"\b\d+(?:\.\d+)+\b")
_UID_VALUE = re.compile(r"(?<=UID )[0-9.]+\b")  # "... ReferencedSOPInstanceUID 0"


def normalise(line: str) -> str:
    """The kind of error and the attribute, without the values de-identification changes."""
    line = _VALUE.sub("<>", line)
    line = _QUOTED.sub("''", line)
    line = re.sub(r" = '' \(0x[0-9a-f]+\)", "", line)
    line = _UID_VALUE.sub("#", line)
    return _DOTTED_NUMBER.sub("#", line).strip()


def errors(path: Path) -> list[str]:
    completed = subprocess.run(
        [DCIODVFY or "dciodvfy", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        check=False,
    )
    lines = (completed.stdout + completed.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


@dataclass
class FileReport:
    name: str
    excluded: str = ""
    refused: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def check_file(path: Path, profile_names: tuple[str, ...]) -> FileReport:
    """dciodvfy on the input and on its de-identified output under each profile."""
    report = FileReport(name=str(path.relative_to(path.parents[1])))
    before_lines = errors(path)
    unreadable = [line for line in before_lines if any(word in line for word in _UNREADABLE)]
    if unreadable:
        report.excluded = unreadable[0]  # still de-identified and written below
    try:
        part10_bytes(read_dicom(path))
    except Exception as exc:  # noqa: BLE001 - the input itself is the problem
        # e.g. implicit VR data under an explicit transfer syntax: ingest refuses such an
        # input before de-identification, so there is no output to compare.
        report.excluded = f"the input itself cannot be re-encoded: {exc!r:.120}"
        return report
    before = Counter(normalise(line) for line in before_lines)
    with tempfile.TemporaryDirectory() as scratch:
        for profile_name in profile_names:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    result = deidentify(read_dicom(path), Profile.named(profile_name), PROJECT_KEY)
                except DeidentificationError:
                    report.refused.append(profile_name)
                    continue
                except Exception as exc:  # noqa: BLE001 - any other exception is the finding
                    report.failures.append(f"{profile_name}: engine raised {exc!r:.300}")
                    continue
                try:
                    written = part10_bytes(result.dataset)
                except Exception as exc:  # noqa: BLE001 - an unwritable output is the finding
                    report.failures.append(f"{profile_name}: output not writable: {exc!r:.300}")
                    continue
            if report.excluded:
                continue
            output = Path(scratch) / f"{profile_name}.dcm"
            output.write_bytes(written)
            after_lines = errors(output)
            new = Counter(normalise(line) for line in after_lines) - before
            for kind in sorted(new):
                example = next(line for line in after_lines if normalise(line) == kind)
                report.failures.append(f"{profile_name}: {example}")
    return report


def _inputs() -> list[Path]:
    readable, _ = corpus.classified()
    return [*readable, *rdsr_files()]


def _run(profile_names: tuple[str, ...]) -> list[FileReport]:
    paths = _inputs()
    context = multiprocessing.get_context("fork")  # workers inherit the imported engine
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as pool:
        return list(pool.map(check_file, paths, [profile_names] * len(paths), chunksize=4))


@pytest.mark.parametrize("profile_name", PROFILES)
def test_deidentified_outputs_have_no_new_dciodvfy_error(profile_name: str) -> None:
    shipped_profile(profile_name)
    reports = _run((profile_name,))
    checked = [r for r in reports if not r.excluded and profile_name not in r.refused]
    failures = [f"{r.name}: {failure}" for r in reports for failure in r.failures]
    assert len(checked) > 200, [r.name for r in reports if r not in checked]
    assert failures == [], (
        f"{len(failures)} new dciodvfy errors or unwritable outputs:\n" + "\n".join(failures)
    )


def test_normalise_keeps_the_attribute_and_drops_the_value() -> None:
    line = (
        "Error - Value invalid for this VR - (0x0008,0x0018) UI SOP Instance UID  UI [1] = "
        "<dccc95> - Character invalid for this VR = 'a' (0x61)"
    )
    assert normalise(line) == (
        "Error - Value invalid for this VR - (0x0008,0x0018) UI SOP Instance UID  UI [1] = <>"
        " - Character invalid for this VR"
    )
    assert normalise(
        "Error - StudyInstanceUID has same value as FrameOfReferenceUID <1.3.6.1.4.1.5962.1>"
    ) == normalise("Error - StudyInstanceUID has same value as FrameOfReferenceUID <2.25.601>")
    assert normalise("Error - ... but have IMAGE ReferencedSOPInstanceUID 0") == normalise(
        "Error - ... but have IMAGE ReferencedSOPInstanceUID 2.25.267075316"
    )
    assert "<Laterality>" in normalise(
        "Error - Missing attribute Type 2C Conditional Element=<Laterality> Module=<GeneralSeries>"
    )
    assert "<Pixel Spacing>" in normalise(
        "Error - Value is zero for value 1 of attribute <Pixel Spacing>"
    )
