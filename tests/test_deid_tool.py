"""`radbank deid IN OUT`, the offline tool a hospital runs before anything leaves the site.

The runs go through the real command in a subprocess (worker processes, exit codes, what a
site sees on screen); refusals, which stop before any work, through typer's CliRunner.
Inputs are pydicom's test files (good, truncated, not DICOM, SR, multi-frame, a secondary
capture that must be quarantined, a DICOMDIR) and planted CT instances from
radbank.synthetic whose identity must not reach OUT.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import fcntl
import hashlib
import io
import os
import pty
import select
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import corpus
import pagecache
import pydicom
import pytest
from typer.testing import CliRunner

from radbank import offline, synthetic
from radbank.cli import app
from radbank.dicom.deid import Profile, deidentify
from radbank.dicom.deid.manifest import file_tag, read_tags
from radbank.dicom.encode import part10_bytes
from radbank.dicom.instance import read_instance
from radbank.governance.sitekey import read_key_file, write_key_file
from radbank.store.files import write_parts

PROFILE = "basic-dates"
CORPUS_FILES = {
    "CT_small.dcm": "written",
    "MR_small.dcm": "written",
    "test-SR.dcm": "written",  # Comprehensive SR
    "emri_small.dcm": "written",  # Enhanced MR, 10 frames
    "SC_rgb_rle_2frame.dcm": "quarantined",  # secondary capture: burned-in risk
    "MR_truncated.dcm": "rejected",
    "README.txt": "rejected",
    "DICOMDIR": "skipped-dicomdir",
}
N_PLANTED = 8


def deid(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radbank", "deid", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def report(out: Path) -> dict[str, dict[str, str]]:
    with (out / "deid-report.csv").open(newline="") as handle:
        return {row["input"]: row for row in csv.DictReader(handle)}


def fingerprints(folder: Path) -> dict[Path, tuple[str, int]]:
    """sha256 and mtime of every file: what a run must leave untouched."""
    return {
        p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def planted() -> list[bytes]:
    return list(synthetic.planted_ct_instances(N_PLANTED, 2))


def write_planted(folder: Path, parts: list[bytes]) -> None:
    # Neutral names: the report carries input file names, and write_files' names (site,
    # patient ID) are identifying by design.
    folder.mkdir(parents=True)
    for number, part in enumerate(parts):
        (folder / f"{number:04d}.dcm").write_bytes(part)


@pytest.fixture(scope="module")
def mixed_run(
    tmp_path_factory: pytest.TempPathFactory, planted: list[bytes]
) -> tuple[Path, Path, Path, subprocess.CompletedProcess, dict[Path, tuple[str, int]]]:
    """One run over a mixed folder: (IN, OUT, key file, the process, inputs before)."""
    root = tmp_path_factory.mktemp("mixed")
    source = root / "in"
    (source / "corpus").mkdir(parents=True)
    for name in CORPUS_FILES:
        shutil.copy(corpus.path(name), source / "corpus" / name)
    write_planted(source / "planted" / "ct", planted)
    before = fingerprints(source)
    target, key_file = root / "out", root / "site.key"
    result = deid(
        source, target, "--profile", PROFILE, "--key-file", key_file, "--jobs", "2", "--manifest"
    )
    return source, target, key_file, result, before


def test_mixed_folder_gives_one_report_row_per_file_and_exit_code_1(mixed_run) -> None:
    source, target, key_file, result, before = mixed_run
    assert result.returncode == 1, result.stdout + result.stderr
    rows = report(target)
    expected = {f"corpus/{name}": status for name, status in CORPUS_FILES.items()}
    expected |= {f"planted/ct/{n:04d}.dcm": "written" for n in range(N_PLANTED)}
    assert {name: row["status"] for name, row in rows.items()} == expected
    assert "truncated" in rows["corpus/MR_truncated.dcm"]["reason"]
    assert "not a DICOM file" in rows["corpus/README.txt"]["reason"]
    quarantined = rows["corpus/SC_rgb_rle_2frame.dcm"]
    assert "BurnedInAnnotation" in quarantined["reason"] and quarantined["output"] == ""
    assert quarantined["sop_instance_uid"].startswith("2.25.")
    assert "12 written, 1 quarantined, 2 rejected, 0 skipped-existing, 1 skipped-dicomdir" in (
        result.stdout
    )
    assert "rejected: corpus/README.txt" in result.stdout
    assert "de-identifying" not in result.stderr  # no progress bar without a terminal
    # The key file was made for this run, private, and the site is told how to use it.
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert f"Created key file {key_file}" in result.stderr
    assert f"radbank project create NAME --key-file {key_file}" in result.stderr
    assert fingerprints(source) == before


def test_output_layout_names_files_by_pseudonymised_uids_only(mixed_run) -> None:
    _, target, _, _, _ = mixed_run
    rows = report(target)
    written = {row["output"]: row for row in rows.values() if row["status"] == "written"}
    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert files == {*written, "deid-report.csv", "deid-run.json", "deid-manifest.txt"}
    # The manifest tags every written file, under the project key, and nothing else.
    key = read_key_file(mixed_run[2])
    tags = read_tags((target / "deid-manifest.txt").read_bytes())
    assert tags == {
        file_tag(key, hashlib.sha256((target / output).read_bytes()).digest()) for output in written
    }
    for output, row in written.items():
        study, series, instance = output.split("/")
        dataset = pydicom.dcmread(target / output)
        assert (study, series, instance) == (
            dataset.StudyInstanceUID,
            dataset.SeriesInstanceUID,
            f"{dataset.SOPInstanceUID}.dcm",
        )
        assert all(uid.startswith("2.25.") for uid in (study, series, dataset.SOPInstanceUID))
        assert row["sop_instance_uid"] == dataset.SOPInstanceUID
        assert row["patient_pseudonym"] == dataset.PatientID


def test_no_planted_identity_in_any_byte_of_the_output(mixed_run, planted) -> None:
    source, target, _, _, _ = mixed_run
    forbidden: set[bytes] = set()
    for part in planted:
        dataset = pydicom.dcmread(io.BytesIO(part))
        forbidden |= {value.encode() for value in synthetic.canary_values(dataset)}
    for path in source.rglob("*.dcm"):
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - the malformed inputs have nothing to look for
            continue
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            if keyword in dataset:
                forbidden.add(str(dataset[keyword].value).encode())
    assert len(forbidden) > 50
    outputs = [p for p in target.rglob("*") if p.is_file()]
    assert {p.name for p in outputs} >= {"deid-report.csv", "deid-run.json"}
    for path in outputs:
        data = path.read_bytes()
        left = sorted(value for value in forbidden if value in data)
        assert not left, f"{path.relative_to(target)} still holds {left}"


def test_written_files_are_byte_identical_to_the_engine_with_the_same_key(mixed_run) -> None:
    source, target, key_file, _, _ = mixed_run
    key = read_key_file(key_file)
    written = [row for row in report(target).values() if row["status"] == "written"]
    assert len(written) == 12
    for row in written:
        dataset = read_instance(row["input"], (source / row["input"]).read_bytes())
        result = deidentify(dataset, Profile.named(PROFILE), key)
        assert row["patient_pseudonym"] == result.patient_pseudonym
        assert (target / row["output"]).read_bytes() == part10_bytes(result.dataset), row["input"]


def test_same_key_same_output_elsewhere_other_key_other_uids(mixed_run, tmp_path: Path) -> None:
    source, target, key_file, _, _ = mixed_run
    single = source / "corpus" / "CT_small.dcm"
    first = report(target)["corpus/CT_small.dcm"]
    again = deid(single, tmp_path / "again", "--profile", PROFILE, "--key-file", key_file)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Created key file" not in again.stderr
    row = report(tmp_path / "again")["CT_small.dcm"]
    assert row["output"] == first["output"]
    assert (tmp_path / "again" / row["output"]).read_bytes() == (
        target / first["output"]
    ).read_bytes()
    other_key = tmp_path / "other.key"
    other = deid(single, tmp_path / "other", "--profile", PROFILE, "--key-file", other_key)
    assert other.returncode == 0, other.stdout + other.stderr
    other_row = report(tmp_path / "other")["CT_small.dcm"]
    assert other_row["sop_instance_uid"] != first["sop_instance_uid"]
    assert other_row["patient_pseudonym"] != first["patient_pseudonym"]


def test_rerun_redoes_only_missing_and_half_written_files(tmp_path: Path, planted) -> None:
    source, target, key_file = tmp_path / "in", tmp_path / "out", tmp_path / "site.key"
    write_planted(source, planted)
    before = fingerprints(source)
    args = (source, target, "--profile", PROFILE, "--key-file", key_file, "--jobs", "2")
    assert deid(*args).returncode == 0
    first = report(target)
    outputs = {name: target / row["output"] for name, row in first.items()}
    content = {name: path.read_bytes() for name, path in outputs.items()}
    deleted, half_written = ["0001.dcm", "0005.dcm"], "0006.dcm"
    for name in deleted:
        outputs[name].unlink()
    # A run killed while writing: the temporary file is there, the final one is not.
    partial = outputs[half_written].with_name(f".{outputs[half_written].name}.4242.partial")
    partial.write_bytes(content[half_written][:1000])
    outputs[half_written].unlink()
    # ... and it was killed before its last report row was complete.
    lines = (target / "deid-report.csv").read_text().splitlines(keepends=True)
    (target / "deid-report.csv").write_text("".join(lines[:-1]) + lines[-1][:20])
    cut_off = lines[-1].split(",")[0]
    untouched = {
        name: (path.stat().st_ino, path.stat().st_mtime_ns)
        for name, path in outputs.items()
        if name not in (*deleted, half_written)
    }

    rerun = deid(*args)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "removed 1 partial file(s) left by an interrupted run" in rerun.stdout
    assert not partial.exists()
    rows = report(target)
    assert {name: row["status"] for name, row in rows.items()} == {
        name: "written" if name in (*deleted, half_written) else "skipped-existing"
        for name in first
    }
    assert rows[cut_off]["reason"] == "the output folder already holds this de-identified instance"
    for name, path in outputs.items():
        assert path.read_bytes() == content[name]
    for name, identity in untouched.items():
        assert (outputs[name].stat().st_ino, outputs[name].stat().st_mtime_ns) == identity
    assert fingerprints(source) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_named_pipe_among_inputs_is_rejected_not_waited_on(
    tmp_path: Path, planted, jobs: str
) -> None:
    """Before, a FIFO in the input folder made the run wait forever for a writer."""
    source, target, key_file = tmp_path / "in", tmp_path / "out", tmp_path / "site.key"
    write_planted(source, planted[:3])
    os.mkfifo(source / "pipe")
    result = deid(source, target, "--profile", PROFILE, "--key-file", key_file, "--jobs", jobs)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = report(target)
    assert rows["pipe"]["status"] == "rejected"
    assert rows["pipe"]["reason"] == "not a file but a named pipe (FIFO); nothing was read from it"
    assert [rows[f"{n:04d}.dcm"]["status"] for n in range(3)] == ["written"] * 3


def test_folders_not_read_are_in_the_report_and_names_print_as_they_are(
    tmp_path: Path, planted
) -> None:
    """A link to a folder (not followed) and a folder that cannot be read are report rows
    with their reasons, not silently missing; on screen, a file name's control characters
    are escapes and its brackets are brackets."""
    source, target, key_file = tmp_path / "in", tmp_path / "out", tmp_path / "site.key"
    write_planted(source, planted[:2])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (source / "link").symlink_to(elsewhere, target_is_directory=True)
    (source / "a[" / "b]").mkdir(parents=True)
    (source / "a[" / "b]" / "esc\x1b[2Jx.txt").write_bytes(b"not dicom" * 50)
    (source / "locked").mkdir()
    (source / "locked").chmod(0)
    as_user = (
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
         "--inh-caps=-dac_override,-dac_read_search", "--"]
        if os.geteuid() == 0 and shutil.which("setpriv") else []
    )  # fmt: skip
    try:
        result = subprocess.run(
            [*as_user, sys.executable, "-m", "radbank", "deid", str(source), str(target),
             "--profile", PROFILE, "--key-file", str(key_file)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        (source / "locked").chmod(0o700)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = report(target)
    assert rows["link"]["status"] == "rejected"
    assert rows["link"]["reason"].startswith("a link to a folder, not followed")
    if as_user or os.geteuid() != 0:
        assert rows["locked"]["reason"] == "cannot read the folder (Permission denied)"
    assert "\x1b" not in result.stdout
    assert "a[/b]/esc\\x1b[2Jx.txt" in result.stdout


@pytest.mark.parametrize("rename_noreplace", [True, False], ids=["renameat2", "hard-link"])
def test_naming_an_output_never_replaces_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rename_noreplace: bool
) -> None:
    """Both ways of naming a finished file (renameat2 where the system has it, a hard link
    elsewhere) leave the temporary name gone on success and never replace a file."""
    if not rename_noreplace:
        monkeypatch.setattr(offline, "_renameat2", None)
    elif offline._renameat2 is None:
        pytest.skip("no renameat2 here")
    first, second, final = tmp_path / ".a.partial", tmp_path / ".b.partial", tmp_path / "x.dcm"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    assert offline._publish(str(first), str(final)) is True
    assert not first.exists() and final.read_bytes() == b"first"
    assert offline._publish(second, final) is False
    assert final.read_bytes() == b"first" and second.read_bytes() == b"second"


def written_parts(path: Path, parts: list[bytes | memoryview]) -> bytes:
    """The bytes `write_parts` leaves in a new file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        write_parts(fd, parts)
    finally:
        os.close(fd)
    return path.read_bytes()


@pytest.mark.parametrize("count", [1, 96, 1025, 3000])
def test_parts_are_written_whole_however_many(tmp_path: Path, count: int) -> None:
    """The encoded file reaches disk in one writev(2) of its parts, or joined where there
    are more parts than one call takes: the same bytes either way."""
    source = bytes(range(256)) * 2048
    view = memoryview(source)
    parts = [b"head", *(view[i * 64 : i * 64 + 64] for i in range(count)), b"tail"]
    assert written_parts(tmp_path / "out", parts) == b"".join(parts)


def test_a_short_writev_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """writev(2) may write less than asked (a signal, a full quota); the rest still
    reaches the file. A local disk does not write short on demand, so os.writev is
    wrapped here to stop after 1,000 bytes."""
    real_writev = os.writev
    monkeypatch.setattr(
        os, "writev", lambda fd, parts: real_writev(fd, [bytes(b"".join(parts))[:1000]])
    )
    parts = [b"head", memoryview(bytes(range(256)) * 64), b"tail"]
    assert written_parts(tmp_path / "out", parts) == b"".join(parts)


def test_naming_falls_back_where_renameat2_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without RENAME_NOREPLACE (NFS, some FUSE) answers EINVAL: the file is
    named by a hard link instead, still never replacing one. No such file system is
    mounted here, so renameat2's answer is simulated."""

    def refused(*_: object) -> int:
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(offline, "_renameat2", refused)
    temp, final = tmp_path / ".x.partial", tmp_path / "x.dcm"
    temp.write_bytes(b"data")
    assert offline._publish(temp, final) is True
    assert final.read_bytes() == b"data" and not temp.exists()
    temp.write_bytes(b"other")
    assert offline._publish(temp, final) is False
    assert final.read_bytes() == b"data"


@pagecache.linux_only
def test_written_files_do_not_stay_in_memory(tmp_path: Path, planted) -> None:
    """A large export must not fill the workstation's memory with its output: once a file
    is on disk its cached pages are released for the next files (and other programs)."""
    pagecache.skip_in_memory(tmp_path)
    source, target, key_file = tmp_path / "in", tmp_path / "out", tmp_path / "site.key"
    write_planted(source, planted)
    result = deid(source, target, "--profile", PROFILE, "--key-file", key_file, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = [target / row["output"] for row in report(target).values()]
    assert len(outputs) == N_PLANTED
    # Before the fix every page of every output stayed cached (~0.5 MB per file).
    assert sum(pagecache.resident_pages(path) for path in outputs) == 0
    for path in outputs:  # released, not lost
        assert pydicom.dcmread(path).PatientIdentityRemoved == "YES"


def test_progress_bar_on_a_terminal_only(tmp_path: Path, planted) -> None:
    source, key_file = tmp_path / "in", tmp_path / "site.key"
    write_planted(source, planted)
    shown = run_in_terminal(source, tmp_path / "out", "--key-file", key_file, "--jobs", "2")
    assert "de-identifying" in shown and "files/s" in shown
    quiet = run_in_terminal(source, tmp_path / "out2", "--key-file", key_file, "--quiet")
    assert "de-identifying" not in quiet
    assert f"{N_PLANTED} written" in quiet


def run_in_terminal(source: Path, target: Path, *args: str | Path) -> str:
    """The command's output as a terminal shows it (the tool draws progress only there)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "radbank", "deid", str(source), str(target)]
        + ["--profile", PROFILE, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"},
    )
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 120)
        if not ready:
            process.kill()
            raise AssertionError(f"no output for 120 s; so far: {shown!r}")
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0, shown
    return shown.decode(errors="replace")


def test_same_instance_twice_is_written_once_and_never_overwritten(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    shutil.copy(corpus.path("CT_small.dcm"), source / "a.dcm")
    shutil.copy(corpus.path("CT_small.dcm"), source / "b.dcm")
    changed = pydicom.dcmread(corpus.path("CT_small.dcm"))
    original_pixels = changed.PixelData
    changed.PixelData = bytes(reversed(original_pixels))
    changed.save_as(source / "c.dcm")
    target = tmp_path / "out"
    result = invoke(
        source, target, "--profile", PROFILE, "--key-file", tmp_path / "k", "--jobs", "1"
    )
    assert result.exit_code == 1, result.output
    rows = report(target)
    assert [rows[name]["status"] for name in ("a.dcm", "b.dcm", "c.dcm")] == [
        "written",
        "skipped-existing",
        "rejected",
    ]
    assert rows["b.dcm"]["output"] == rows["a.dcm"]["output"]
    assert "with other content" in rows["c.dcm"]["reason"]
    assert pydicom.dcmread(target / rows["a.dcm"]["output"]).PixelData == original_pixels


# ------------------------------------------------------------------------------ refusals


def invoke(*args: str | Path):
    return CliRunner().invoke(app, ["deid", *map(str, args)])


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "in"
    source.mkdir()
    shutil.copy(corpus.path("CT_small.dcm"), source / "a.dcm")
    return source, tmp_path / "site.key"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("in/out", "is inside the input"),
        ("in", "is the input"),
        (".", "is inside the output folder"),
    ],
)
def test_refuses_output_overlapping_the_input(folders, target: str, message: str) -> None:
    source, key_file = folders
    before = fingerprints(source.parent)
    result = invoke(source, source.parent / target, "--profile", PROFILE, "--key-file", key_file)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert fingerprints(source.parent) == before  # not even the key file was created


def test_refuses_another_key_profile_or_concurrent_run_for_an_existing_output(
    folders, tmp_path: Path
) -> None:
    source, key_file = folders
    target = tmp_path / "out"
    assert invoke(source, target, "--profile", PROFILE, "--key-file", key_file).exit_code == 0
    other_key = tmp_path / "other.key"
    write_key_file(other_key, os.urandom(32))
    wrong = invoke(source, target, "--profile", PROFILE, "--key-file", other_key)
    assert wrong.exit_code == 2 and "made with another key" in wrong.stderr, wrong.output
    missing = invoke(source, target, "--profile", PROFILE, "--key-file", tmp_path / "new.key")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr, missing.output
    assert not (tmp_path / "new.key").exists()
    profile = invoke(source, target, "--profile", "basic", "--key-file", key_file)
    assert profile.exit_code == 2, profile.output
    assert f"holds output of profile {PROFILE}" in profile.stderr
    # every file listed in the manifest, or none: the node would de-identify the others again
    tagged = invoke(source, target, "--profile", PROFILE, "--key-file", key_file, "--manifest")
    assert tagged.exit_code == 2 and "run without --manifest" in tagged.stderr, tagged.output
    assert invoke(source, target, "--profile", PROFILE, "--key-file", key_file).exit_code == 0
    with (target / "deid-run.json").open() as record:
        fcntl.flock(record.fileno(), fcntl.LOCK_EX)  # as a run in progress holds it
        busy = invoke(source, target, "--profile", PROFILE, "--key-file", key_file)
    assert busy.exit_code == 2 and "another radbank deid is writing" in busy.stderr


def test_refuses_a_key_file_others_can_read(folders, tmp_path: Path) -> None:
    source, key_file = folders
    write_key_file(key_file, os.urandom(32))
    key_file.chmod(0o644)
    result = invoke(source, tmp_path / "out", "--profile", PROFILE, "--key-file", key_file)
    assert result.exit_code == 2 and f"chmod 600 {key_file}" in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def test_refuses_foreign_output_folder_unknown_profile_and_key_inside_output(
    folders, tmp_path: Path
) -> None:
    source, key_file = folders
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("someone else's")
    result = invoke(source, foreign, "--profile", PROFILE, "--key-file", key_file)
    assert result.exit_code == 2 and "not written by radbank deid" in result.stderr
    unknown = invoke(source, tmp_path / "out", "--profile", "nonsense", "--key-file", key_file)
    assert unknown.exit_code == 2 and "shipped profiles: basic" in unknown.stderr
    inside = invoke(
        source, tmp_path / "out", "--profile", PROFILE, "--key-file", tmp_path / "out/k"
    )
    assert inside.exit_code == 2 and "never sent with the data" in inside.stderr
    assert not key_file.exists()


def test_a_kept_uid_is_written_as_the_file_holds_it(tmp_path: Path, planted) -> None:
    """A UID the project keeps is written as the file holds it (a space-padded Series
    Instance UID stays space-padded), byte for byte what the engine writes for the same
    input: reading the original UIDs for report reasons does not decode them."""
    source, key_file = tmp_path / "in", tmp_path / "site.key"
    dataset = pydicom.dcmread(io.BytesIO(planted[0]))
    padded = (
        dataset.SeriesInstanceUID + ".1"
        if len(dataset.SeriesInstanceUID) % 2 == 0
        else (dataset.SeriesInstanceUID)
    )
    dataset.SeriesInstanceUID = padded
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue().replace(padded.encode() + b"\x00", padded.encode() + b" ")
    assert padded.encode() + b" " in data
    source.mkdir()
    (source / "0000.dcm").write_bytes(data)
    settings = tmp_path / "project.json"
    settings.write_text('{"profile": "basic", "overrides": {"SeriesInstanceUID": "keep"}}')
    target = tmp_path / "out"
    result = deid(source, target, "--settings", settings, "--key-file", key_file, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    (written,) = sorted(target.rglob("*.dcm"))
    assert padded.encode() + b" " in written.read_bytes()
    profile = (
        offline.load_settings(settings, None).instance_settings(read_key_file(key_file)).profile
    )
    engine = deidentify(read_instance("0000.dcm", data), profile, read_key_file(key_file))
    assert written.read_bytes() == part10_bytes(engine.dataset, data)


def test_project_settings_file_applies_overrides_and_is_part_of_the_run_record(
    tmp_path: Path, planted
) -> None:
    source, key_file = tmp_path / "in", tmp_path / "site.key"
    write_planted(source, planted[:2])
    settings = tmp_path / "project.json"
    # What `radbank project show NAME --json` prints (the fields the tool uses, and others).
    settings.write_text(
        '{"name": "trial", "profile": "basic-dates", "ocr_check": false, "pixel_rules": [],'
        ' "overrides": {"PatientWeight": "keep", "StudyDescription": "replace:CT TRIAL"}}'
    )
    target = tmp_path / "out"
    result = deid(source, target, "--settings", settings, "--key-file", key_file, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    written = [pydicom.dcmread(p) for p in sorted(target.rglob("*.dcm"))]
    assert len(written) == 2
    assert all(ds.PatientWeight == 78 and ds.StudyDescription == "CT TRIAL" for ds in written)
    assert all("overrides" in ds.DeidentificationMethod for ds in written)

    # The same folder with other settings would mix two de-identifications: refused.
    plain = deid(source, target, "--profile", "basic-dates", "--key-file", key_file)
    assert plain.returncode == 2 and "other project settings" in plain.stderr
    contradiction = deid(
        source, tmp_path / "out2", "--settings", settings, "--profile", "basic",
        "--key-file", key_file,
    )  # fmt: skip
    assert contradiction.returncode == 2 and "contradicts" in contradiction.stderr
    settings.write_text('{"profile": "basic", "overrides": {"NoSuchKeyword": "keep"}}')
    invalid = deid(source, tmp_path / "out3", "--settings", settings, "--key-file", key_file)
    assert invalid.returncode == 2 and "NoSuchKeyword" in invalid.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_pydicom_warnings_name_the_input_on_the_console_and_stay_out_of_the_report(
    tmp_path: Path, jobs: str
) -> None:
    """What pydicom notices about a file's values is said on the console, naming the input
    (in worker processes too), not as pydicom's source line on stderr; the report, which
    leaves the site with the output, does not carry it: a warning quotes the value."""
    source = tmp_path / "in"
    source.mkdir()
    # An Integer String of "1A": pydicom warns, quoting the value.
    shutil.copy(corpus.path("badVR.dcm"), source / "bad-value.dcm")
    shutil.copy(corpus.path("MR_small.dcm"), source / "good.dcm")
    result = deid(source, tmp_path / "out", "--key-file", tmp_path / "k", "--jobs", jobs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UserWarning" not in result.stderr and "warn_and_log" not in result.stderr
    assert "warning: bad-value.dcm: Invalid value for VR IS: '1A'" in result.stdout
    assert "good.dcm" not in result.stdout
    rows = report(tmp_path / "out")
    assert {row["status"] for row in rows.values()} == {"written"}
    assert "Invalid value" not in (tmp_path / "out" / "deid-report.csv").read_text()
