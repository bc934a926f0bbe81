"""`radbank deid`: de-identify a folder at the site, before anything leaves the hospital.

This module owns the offline tool: checking IN, OUT and the key file, the run record that
ties an output folder to one profile, key and input (`deid-run.json`), the worker processes
that read, de-identify, check, encode and write one file each, the output layout
OUT/<study>/<series>/<instance>.dcm (pseudonymised UIDs only), the per-file CSV report
(`deid-report.csv`) and resuming an interrupted run from it.

The de-identification is the node's own: the same parser as `radbank.ingest.pipeline`
(truncated files and unknown transfer syntaxes refused), `radbank.dicom.deid.deidentify`,
the quality checks and the Part 10 encoder, so a written file is byte-identical to what a
node whose project holds the same key stores for the same input and profile.
See docs/offline-deid.md.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import fcntl
import hashlib
import hmac
import json
import multiprocessing
import operator
import os
import secrets
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, TextIO

import typer
from pydicom import Dataset
from pydicom.uid import MediaStorageDirectoryStorage
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from radbank.dicom.deid import PROFILE_NAMES, DeidentificationError, Profile
from radbank.dicom.deid.manifest import append_tags, tag_of_parts
from radbank.dicom.deid.pixels import parse_pixel_rules
from radbank.dicom.instance import (
    InstanceSettings,
    Unreadable,
    deidentify_instance,
    failure,
    read_instance,
    uids_as_read,
)
from radbank.dicom.pydicom_warnings import naming_pydicom_warnings, warning_lines
from radbank.governance.sitekey import KeyFileError, load_or_create_key_file
from radbank.inputs import DICOMDIR_REASON, NotAFile, read_input, shown_name, walk
from radbank.store.files import release_cached_pages, write_parts

REPORT_NAME = "deid-report.csv"
RUN_RECORD_NAME = "deid-run.json"
RUN_RECORD_FORMAT = "radbank-deid-run"
RUN_RECORD_VERSION = 2
DEFAULT_PROFILE = "research-dose"
# Temporary files are hidden and end in this suffix; a run removes those an earlier,
# killed run left behind before it starts.
PARTIAL_SUFFIX = ".partial"
# Files per task handed to a worker: small enough that the last tasks end together (a
# worker finishing a long one alone leaves the other cores idle), large enough that the
# pipes carry few messages.
_MAX_CHUNK_FILES = 16
# Files are made durable in groups (see _publish_all): at most this many, or this often.
_SYNC_FILES = 256
_SYNC_SECONDS = 0.5
_WITHHELD_UID = "(original UID withheld)"


class Status(StrEnum):
    """What happened to one input file; the values appear in the report."""

    WRITTEN = "written"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"
    SKIPPED_EXISTING = "skipped-existing"
    SKIPPED_DICOMDIR = "skipped-dicomdir"


_STATUS_VALUES = frozenset(status.value for status in Status)
# Statuses of files that a later run over the same input does not process again.
_DONE = frozenset({Status.WRITTEN, Status.SKIPPED_EXISTING})
_FINAL = frozenset({Status.QUARANTINED, Status.SKIPPED_DICOMDIR})


@dataclass(frozen=True)
class ReportRow:
    """One row of deid-report.csv. Nothing in it comes from the identified data set: the
    input path is the site's own file name, the rest is pseudonymised or radbank's text."""

    input: str  # relative to IN, with '/' separators
    status: Status
    output: str = ""  # relative to OUT; empty when nothing was written
    patient_pseudonym: str = ""
    sop_instance_uid: str = ""  # de-identified
    reason: str = ""


REPORT_COLUMNS = tuple(f.name for f in fields(ReportRow))


# A row's values in column order (StrEnum statuses write as their value); not
# dataclasses.astuple, which deep-copies every field: the main process writes a row per
# file while the workers wait for it.
_report_values = operator.attrgetter(*REPORT_COLUMNS)


@dataclass(frozen=True)
class Done:
    """A worker's result for one file: its report row and, for a file written under a
    temporary name that still has to be published, that name."""

    row: ReportRow
    temp: str | None = None
    tag: str | None = None  # the written file's tag for the manifest (radbank.dicom.deid.manifest)
    # pydicom's warnings about the file's values: for the console only, as they may quote
    # a value of the original; the report leaves the site with the output.
    warnings: tuple[str, ...] = ()


class Refused(RuntimeError):
    """The run cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RunSummary:
    rows: list[ReportRow]
    processed: int  # files read in this run (not carried over from an earlier one)
    seconds: float
    removed_partials: int
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by input, see Done

    @property
    def counts(self) -> Counter[Status]:
        return Counter(row.status for row in self.rows)


def deid_command(
    source: Annotated[
        Path,
        typer.Argument(metavar="IN", help="Folder (searched recursively) or single file to read"),
    ],
    target: Annotated[
        Path,
        typer.Argument(metavar="OUT", help="Folder to write de-identified files and the report to"),
    ],
    key_file: Annotated[
        Path,
        typer.Option(
            "--key-file",
            help="Project key file (mode 0600); created with a new random key if absent",
        ),
    ],
    profile: Annotated[
        str | None,
        typer.Option(
            help=f"De-identification profile: {', '.join(PROFILE_NAMES)} "
            f"(default {DEFAULT_PROFILE}, or the profile of --settings)"
        ),
    ] = None,
    settings_file: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            help="A project's settings as printed by 'radbank project show NAME --json': its "
            "profile, overrides, pixel rules and OCR check are applied as the node would",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Worker processes (default: one per core)"),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no per-file listing")
    ] = False,
    manifest: Annotated[
        bool,
        typer.Option(
            "--manifest",
            help="Also write OUT/deid-manifest.txt, a tag per file under the project key: "
            "radbank import on the node then stores the files as they are instead of "
            "de-identifying them again (one SHA-256 per file more)",
        ),
    ] = False,
) -> None:
    """De-identify DICOM files at the site, with the node's engine, before they leave it.

    Writes OUT/<study>/<series>/<instance>.dcm and OUT/deid-report.csv; the same command
    again resumes. Exit code 0: nothing rejected, 1: files rejected, 2: run refused.
    """
    # No markup: file names and reasons are printed as they are (brackets included).
    out = Console(soft_wrap=True, highlight=False, markup=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
    try:
        settings = replace(load_settings(settings_file, profile), manifest=manifest)
        run = prepare_run(source, target, settings, key_file)
    except (Refused, KeyFileError) as exc:
        err.print(Text.assemble(("error:", "red"), f" {shown_name(str(exc))}"))
        raise typer.Exit(2) from exc
    if run.key_created:
        err.print(
            f"Created key file {key_file} with a new random key (mode 0600). Keep it at the "
            "site and back it up: the same key gives the same pseudonyms and UIDs. A node "
            f"links with this output when its project holds this key: "
            f"radbank project create NAME --key-file {key_file}"
        )
    show_progress = err.is_terminal and not quiet
    try:
        with _ProgressBar(err, show_progress) as advance:
            summary = run.execute(jobs or os.cpu_count() or 1, advance)
    except KeyboardInterrupt:
        err.print(f"interrupted: run the same command again to resume into {target}")
        raise typer.Exit(130) from None
    finally:
        run.close()
    _print_summary(out, summary, target, quiet=quiet)
    if summary.counts[Status.REJECTED]:
        raise typer.Exit(1)


def _print_summary(out: Console, summary: RunSummary, target: Path, *, quiet: bool) -> None:
    counts = summary.counts
    rate = summary.processed / summary.seconds if summary.seconds > 0 else 0.0
    if summary.removed_partials and not quiet:
        out.print(f"removed {summary.removed_partials} partial file(s) left by an interrupted run")
    out.print(
        f"{len(summary.rows)} file(s): "
        + ", ".join(f"{counts[status]} {status.value}" for status in Status)
        + f"; processed {summary.processed} in {summary.seconds:.1f} s ({rate:.1f} files/s)"
    )
    out.print(f"report: {target / REPORT_NAME}")
    if quiet:
        return
    for row in summary.rows:
        if row.status in (Status.REJECTED, Status.QUARANTINED):
            out.print(f"  {row.status.value}: {shown_name(row.input)}: {shown_name(row.reason)}")
    for line in warning_lines(summary.warnings):
        out.print(shown_name(line))


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} files/s" if speed else "- files/s")


class _ProgressBar:
    """A rich progress bar (files, rate, time left) on a terminal; nothing otherwise."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.started = False
        self.progress = Progress(
            TextColumn("de-identifying"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not enabled,
        )
        self.task = self.progress.add_task("deid", total=None, start=False)

    def __enter__(self) -> Callable[[int, int], None]:
        return self.advance

    def advance(self, done: int, total: int) -> None:
        # The bar starts with the first result, after the worker processes were forked:
        # rich draws from a thread, and forking a threaded process is unsafe.
        if not self.started:
            self.started = True
            self.progress.start()
            self.progress.start_task(self.task)
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


# ----------------------------------------------------------------------------- the run


@dataclass
class Run:
    """A checked, locked run: what to read, where to write, with which profile and key."""

    source_root: Path  # the folder input paths are relative to
    inputs: list[str]
    target: Path
    settings: SiteSettings
    profile: Profile
    key: bytes
    key_created: bool
    previous: dict[str, ReportRow]
    removed_partials: int
    lock: TextIO
    unread: dict[str, str] = field(default_factory=dict)  # inputs not read, and why

    def close(self) -> None:
        self.lock.close()  # releases the lock

    def execute(self, jobs: int, advance: Callable[[int, int], None]) -> RunSummary:
        """Process every input not done by an earlier run; write the report as results come."""
        started = time.monotonic()
        rows: dict[str, ReportRow] = {}
        warned: dict[str, tuple[str, ...]] = {}
        todo: list[str] = []
        for name in self.inputs:
            carried = _carried_over(self.previous.get(name), self.target)
            if name in self.unread:
                rows[name] = _rejected(name, self.unread[name])
            elif carried is not None:
                rows[name] = carried
            else:
                todo.append(name)
        total = len(self.inputs)
        report = _open_report_for_append(self.target, list(self.previous.values()))
        try:
            worker = _WorkerSettings(self.source_root, self.target, self.settings, self.key)
            # closing(): on Ctrl-C the pool is shut down before the report is finished.
            with closing(_results(worker, todo, jobs)) as results:
                pending: list[Done] = []
                synced = time.monotonic()
                for batch in results:
                    pending.extend(batch)
                    warned.update((d.row.input, d.warnings) for d in batch if d.warnings)
                    if len(pending) >= _SYNC_FILES or time.monotonic() - synced >= _SYNC_SECONDS:
                        _publish_all(self.target, pending, report, rows)
                        pending.clear()
                        synced = time.monotonic()
                    advance(len(rows) + len(pending), total)
                _publish_all(self.target, pending, report, rows)
        finally:
            report.close()
            # Everything finished so far is in the report, also after Ctrl-C.
            ordered = [rows[name] for name in self.inputs if name in rows]
            _write_report(self.target, ordered)
        return RunSummary(
            ordered, len(todo), time.monotonic() - started, self.removed_partials, warned
        )


@dataclass(frozen=True)
class SiteSettings:
    """What the tool applies: a profile (with a project's overrides), pixel rules, OCR check.
    Plain data, so worker processes can rebuild the engine's settings from it."""

    profile: str = DEFAULT_PROFILE
    overrides: tuple[tuple[str, str], ...] = ()
    pixel_rules: tuple[str, ...] = ()  # each rule as canonical JSON
    ocr_check: bool = False
    # Also list every file written in OUT/deid-manifest.txt, tagged under the key, for the
    # node to store as it is (radbank.dicom.deid.manifest): one SHA-256 per file.
    manifest: bool = False

    def instance_settings(self, key: bytes) -> InstanceSettings:
        return InstanceSettings(
            profile=Profile.named(self.profile).with_overrides(dict(self.overrides)),
            key=key,
            pixel_rules=parse_pixel_rules([json.loads(rule) for rule in self.pixel_rules]),
            ocr_check=self.ocr_check,
        )


def load_settings(path: Path | None, profile: str | None) -> SiteSettings:
    """The settings of a run: --settings (a project's `project show --json`), else --profile."""
    if path is None:
        settings = SiteSettings(profile=profile or DEFAULT_PROFILE)
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("the file holds no JSON object")
            overrides = data.get("overrides") or {}
            rules = data.get("pixel_rules") or []
            if not isinstance(overrides, dict) or not isinstance(rules, list):
                raise ValueError("'overrides' must be an object and 'pixel_rules' a list")
            settings = SiteSettings(
                profile=str(data.get("profile") or DEFAULT_PROFILE),
                overrides=tuple(sorted((str(k), str(v)) for k, v in overrides.items())),
                pixel_rules=tuple(json.dumps(rule, sort_keys=True) for rule in rules),
                ocr_check=bool(data.get("ocr_check", False)),
            )
        except (OSError, ValueError) as exc:
            raise Refused(
                f"cannot use settings file {path}: {exc}; give the output of "
                "'radbank project show NAME --json'"
            ) from None
        if profile is not None and profile != settings.profile:
            raise Refused(
                f"--profile {profile} contradicts the profile {settings.profile} of {path}; "
                "leave out --profile"
            )
    try:
        settings.instance_settings(b"\x00" * 32)  # checks profile, overrides and rules now
    except ValueError as exc:
        raise Refused(f"invalid settings: {exc}") from None
    return settings


def prepare_run(source: Path, target: Path, settings: SiteSettings, key_file: Path) -> Run:
    """Check paths, settings and key; create or check the run record; lock OUT.

    Nothing is created (not even the key file) unless the run can start.
    """
    profile = settings.instance_settings(b"\x00" * 32).profile
    if not source.exists():
        raise Refused(f"input {source} does not exist")
    source = source.resolve()
    resolved_target = target.resolve()
    _check_paths(source, resolved_target, key_file.resolve())
    record_path = resolved_target / RUN_RECORD_NAME
    has_record = record_path.is_file()
    if resolved_target.exists() and not has_record and any(resolved_target.iterdir()):
        raise Refused(
            f"output folder {target} is not empty and holds no {RUN_RECORD_NAME}, so it was "
            "not written by radbank deid; give a new or empty folder"
        )
    if has_record and not key_file.exists():
        raise Refused(
            f"output folder {target} holds the output of an earlier run made with another key, "
            f"and key file {key_file} does not exist; give the key file of that run, or a new "
            "output folder"
        )
    key, created = load_or_create_key_file(key_file)
    resolved_target.mkdir(parents=True, exist_ok=True)
    record = _run_record(settings, profile, key, source)
    if not has_record:
        _create_file(record_path, json.dumps(record, indent=2) + "\n")
    lock = record_path.open(encoding="utf-8")
    try:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refused(
                f"another radbank deid is writing to {target}; wait for it to finish"
            ) from None
        _check_run_record(lock.read(), record, target, key_file)
        removed = _remove_partials(resolved_target)
        previous = _read_report(resolved_target / REPORT_NAME)
        root, inputs, unread = _list_inputs(source)
    except BaseException:
        lock.close()
        raise
    return Run(
        root, inputs, resolved_target, settings, profile, key, created, previous, removed, lock,
        unread,
    )  # fmt: skip


def _check_paths(source: Path, target: Path, key_file: Path) -> None:
    if target == source:
        raise Refused(f"output folder {target} is the input; give a separate output folder")
    if target.is_relative_to(source):
        raise Refused(
            f"output folder {target} is inside the input {source}; give an output folder "
            "outside the input"
        )
    if source.is_relative_to(target):
        raise Refused(
            f"input {source} is inside the output folder {target}; give an output folder "
            "outside the input"
        )
    if target.exists() and not target.is_dir():
        raise Refused(f"output {target} exists and is not a folder; give a folder")
    for folder, what in ((target, "output folder"), (source, "input")):
        if key_file.is_relative_to(folder):
            raise Refused(
                f"key file {key_file} is inside the {what} {folder}; keep the key file "
                "outside both, so it is never sent with the data"
            )


def _run_record(
    settings: SiteSettings, profile: Profile, key: bytes, source: Path
) -> dict[str, object]:
    """What a later run into the same folder must match. Fingerprints are keyed HMACs:
    they tell keys and inputs apart without revealing the key or the site's paths."""
    rules = "\n".join(settings.pixel_rules).encode()
    return {
        "format": RUN_RECORD_FORMAT,
        "version": RUN_RECORD_VERSION,
        "profile": profile.name,
        "profile_version": profile.version,
        "deidentification_method": profile.method,
        "pixel_rules_sha256": hashlib.sha256(rules).hexdigest(),
        "ocr_check": settings.ocr_check,
        "manifest": settings.manifest,
        "key_fingerprint": _fingerprint(key, b"key"),
        "input_fingerprint": _fingerprint(key, b"input\x00" + os.fsencode(source)),
    }


def _fingerprint(key: bytes, what: bytes) -> str:
    return hmac.new(key, b"radbank deid run\x00" + what, "sha256").hexdigest()[:32]


def _check_run_record(text: str, expected: dict[str, object], target: Path, key_file: Path) -> None:
    try:
        found = json.loads(text)
        if found.get("format") != RUN_RECORD_FORMAT:
            raise ValueError(f"format is {found.get('format')!r}")
    except (ValueError, AttributeError) as exc:
        raise Refused(
            f"{target / RUN_RECORD_NAME} is not a radbank deid run record ({exc}); give a new "
            "output folder"
        ) from None
    if found.get("version") != RUN_RECORD_VERSION:
        raise Refused(
            f"{target} was written by a radbank deid with run record version "
            f"{found.get('version')!r}; give a new output folder"
        )
    if (found.get("profile"), found.get("profile_version")) != (
        expected["profile"],
        expected["profile_version"],
    ):
        raise Refused(
            f"{target} holds output of profile {found.get('profile')} version "
            f"{found.get('profile_version')}, not {expected['profile']} version "
            f"{expected['profile_version']}; use --profile {found.get('profile')} to resume "
            "that run, or give a new output folder"
        )
    for field_name in ("deidentification_method", "pixel_rules_sha256", "ocr_check"):
        if found.get(field_name) != expected[field_name]:
            raise Refused(
                f"{target} holds output made with other project settings ({field_name} "
                f"{found.get(field_name)!r}, now {expected[field_name]!r}); give the settings "
                "of that run, or a new output folder"
            )
    if found.get("manifest", False) != expected["manifest"]:
        option = "with" if found.get("manifest") else "without"
        raise Refused(
            f"{target} holds output of a run {option} --manifest; resume it {option} "
            "--manifest (every file must be listed, or none), or give a new output folder"
        )
    if found.get("key_fingerprint") != expected["key_fingerprint"]:
        raise Refused(
            f"{target} holds output made with another key than the one in {key_file} "
            f"(key fingerprint {found.get('key_fingerprint')}, this key "
            f"{expected['key_fingerprint']}); give the key file of that run, or a new output "
            "folder"
        )
    if found.get("input_fingerprint") != expected["input_fingerprint"]:
        raise Refused(
            f"{target} holds output of a run over another input folder (or the input moved); "
            "give a new output folder for this input"
        )


def _create_file(path: Path, text: str) -> None:
    """Write `path` whole or not at all, never replacing an existing file (a concurrent
    first run may have made it; the lock and the run record check decide next)."""
    temp = _temporary(path)
    try:
        temp.write_text(text, encoding="utf-8")
        _publish(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _temporary(path: Path) -> Path:
    # Unique per call: two inputs with one de-identified UID can be pending in one group.
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


def _publish(temp: str | Path, final: str | Path) -> bool:
    """Give the complete file `temp` its final name; False if `final` exists already.
    On True the temporary name is gone; on False or an error it may remain.

    Nothing is ever replaced, so two writers of one name cannot overwrite each other: a
    rename that refuses to replace (Linux renameat2 RENAME_NOREPLACE, one call); where the
    system lacks it, a hard link, then the temporary name removed; on file systems without
    hard links (FAT, exFAT) a checked rename."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(temp), _AT_FDCWD, os.fsencode(final), 1) == 0:
            return True
        if ctypes.get_errno() == errno.EEXIST:
            return False
        # Anything else (a file system or a sandbox without renameat2, or a real error,
        # which the link below reports as it did before) goes the portable way.
    try:
        os.link(temp, final)
    except FileExistsError:
        return False
    except OSError:
        if os.path.exists(final):
            return False
        os.rename(temp, final)
        return True
    os.unlink(temp)
    return True


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None  # not glibc 2.28+ (or not Linux): links, as before
    function.argtypes = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    )
    return function


_AT_FDCWD = -100
_renameat2 = _load_renameat2()


def _publish_all(
    target: Path, done: list[Done], report: TextIO, rows: dict[str, ReportRow]
) -> None:
    """Group commit: the files' tags are appended to the manifest (synced), one file-system
    sync makes every file of the group durable, then each gets its final name, a second
    sync makes the names durable, and only then do their rows reach the report. A file
    under its final name is therefore always complete and listed, also after a power cut,
    and a file the report lists as written is on disk; syncing once per group instead of
    once per file keeps the disk from setting the pace."""
    if not done:
        return
    if any(d.temp for d in done):
        # Listed before named: after a crash, every file under its final name is listed.
        append_tags(target, [d.tag for d in done if d.temp and d.tag])
        _sync_file_system(target)
    published: list[ReportRow] = []
    folder = os.fspath(target)  # plain strings: pathlib costs more than the system calls
    for result in done:
        row, temp = result.row, result.temp
        if temp is not None:
            final = os.path.join(folder, row.output)
            named = False
            try:
                _release_cached_pages(temp)
                named = _publish(temp, final)
                if not named:
                    # Two inputs with the same de-identified SOP Instance UID, or an
                    # earlier run's file whose report row was cut short.
                    row = _against_existing(row, Path(final), Path(temp).read_bytes())
            except OSError as exc:
                row = _write_failed(row, exc)
            finally:
                if not named:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
        published.append(row)
    _sync_file_system(target)
    for row in published:
        rows[row.input] = row
    csv.writer(report).writerows(_report_values(row) for row in published)
    report.flush()
    os.fsync(report.fileno())


def _release_cached_pages(path: str | Path) -> None:
    """Drop the page cache of a file that is on disk now (see `release_cached_pages`): the
    run does not read it again, and the next files are written into the memory released."""
    _advise(path, release_cached_pages)


def _read_ahead(fd: int) -> None:
    os.posix_fadvise(fd, 0, 0, _FADV_WILLNEED)  # type: ignore[arg-type]


def _advise(path: str | Path, advice: Callable[[int], None]) -> None:
    """Give the kernel advice about a file, by path. Advice only: a file that cannot be
    opened is skipped (its data is durable, or its read reports the problem); O_NONBLOCK,
    so that a FIFO among the inputs cannot hang the run here."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        advice(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sync_file_system(path: Path) -> None:
    """syncfs(2) on the file system holding `path` (sync(2) where syncfs is missing)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()


def _remove_partials(target: Path) -> int:
    removed = 0
    for folder, _, files in os.walk(target):
        for name in files:
            if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
                os.unlink(os.path.join(folder, name))
                removed += 1
    return removed


def _list_inputs(source: Path) -> tuple[Path, list[str], dict[str, str]]:
    """(root, paths relative to root, the reasons of those not read): every file under a
    folder, or the single file. A folder that cannot be read and a link to a folder are
    listed too, each with its reason, so the report names them."""
    if not source.is_dir():
        return source.parent, [source.name], {}
    found: list[str] = []
    unread: dict[str, str] = {}
    for path, problem in walk(source):
        name = path.relative_to(source).as_posix()
        found.append(name)
        if problem is not None:
            unread[name] = problem
    return source, found, unread


def _carried_over(previous: ReportRow | None, target: Path) -> ReportRow | None:
    """The row of a file an earlier run finished, or None when it must be (re)done."""
    if previous is None:
        return None
    if previous.status in _DONE and previous.output and (target / previous.output).is_file():
        return replace(previous, status=Status.SKIPPED_EXISTING, reason="written by an earlier run")
    if previous.status in _FINAL:
        return previous
    return None


# -------------------------------------------------------------------------- the report


def _read_report(path: Path) -> dict[str, ReportRow]:
    """Rows of an earlier run's report, the last row per input winning; a line cut short by
    a killed run, or anything else unreadable, is ignored (that file is done again)."""
    rows: dict[str, ReportRow] = {}
    try:
        handle = path.open(newline="", encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return rows
    with handle:
        for values in csv.reader(handle):
            if len(values) != len(REPORT_COLUMNS) or values[1] not in _STATUS_VALUES:
                continue
            row = ReportRow(values[0], Status(values[1]), *values[2:])
            rows[row.input] = row
    return rows


def _write_report(target: Path, rows: Iterable[ReportRow]) -> None:
    path = target / REPORT_NAME
    temp = _temporary(path)
    with temp.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        writer.writerows(_report_values(row) for row in rows)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _open_report_for_append(target: Path, previous: list[ReportRow]) -> TextIO:
    # Rewritten first so that appending never continues a line a killed run cut short.
    _write_report(target, previous)
    return (target / REPORT_NAME).open("a", newline="", encoding="utf-8", errors="surrogateescape")


# ------------------------------------------------------------------------- the workers


@dataclass(frozen=True)
class _WorkerSettings:
    source_root: Path
    target: Path
    settings: SiteSettings
    key: bytes


def _results(settings: _WorkerSettings, todo: list[str], jobs: int) -> Iterator[list[Done]]:
    """Report rows in batches as workers finish them; in this process when jobs is 1."""
    size = max(1, min(_MAX_CHUNK_FILES, len(todo) // (jobs * 8)))
    chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
    if jobs == 1 or len(todo) <= 1:
        worker = _Worker(settings)
        for chunk in chunks:
            worker.prefetch(chunk)
            for name in chunk:
                yield [worker.run(name)]
        return
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    executor = ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(settings,),
    )
    try:
        # Only names go to the workers and only report rows come back: no data set, no
        # pixel data crosses a pipe.
        futures: list[Future[list[Done]]] = [executor.submit(_run_chunk, chunk) for chunk in chunks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


_worker: _Worker | None = None
_FADV_WILLNEED: int | None = getattr(os, "POSIX_FADV_WILLNEED", None)


def _start_worker(settings: _WorkerSettings) -> None:
    global _worker
    # Ctrl-C reaches the whole process group: the main process stops handing out work and
    # the workers finish the file they are on, so no output is left half-written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = _Worker(settings)


def _run_chunk(names: list[str]) -> list[Done]:
    assert _worker is not None, "the pool initializer sets up the worker"
    return _worker.run_all(names)


class _Worker:
    """Reads, de-identifies, checks, encodes and writes one file at a time."""

    def __init__(self, settings: _WorkerSettings) -> None:
        self.source_root = settings.source_root
        self.target = settings.target
        self.settings = settings.settings.instance_settings(settings.key)
        self.tagging = settings.settings.manifest
        self.folders: set[Path] = set()  # output folders this worker made or found

    def run_all(self, names: list[str]) -> list[Done]:
        self.prefetch(names)
        return [self.run(name) for name in names]

    def prefetch(self, names: list[str]) -> None:
        """Ask the kernel to read the next files while this one is worked on.

        Inputs at a site are on disk, not in memory (a folder just copied from the PACS, a
        network share, a USB disk): read one by one, each file's read waits for the disk
        while the core idles. Read-ahead of the whole task overlaps the disk with the work
        (planted CT corpus, inputs not cached: 2.7-3.1 s against 3.2-3.8 s for 2,000
        files, docs/benchmarks.md run M); files already cached cost a system call each."""
        if _FADV_WILLNEED is None:
            return
        for name in names:
            _advise(self.source_root / name, _read_ahead)

    def run(self, name: str) -> Done:
        found: list[str] = []  # this file's: the worker handles one file at a time
        with naming_pydicom_warnings(lambda _name, text: found.append(text)):
            outcome = self._process(name)
        done = outcome if isinstance(outcome, Done) else Done(outcome)
        return replace(done, warnings=tuple(dict.fromkeys(found))) if found else done

    def _process(self, name: str) -> Done | ReportRow:
        if PurePosixPath(name).name.upper() == "DICOMDIR":
            return ReportRow(name, Status.SKIPPED_DICOMDIR, reason=DICOMDIR_REASON)
        try:
            data = read_input(self.source_root / name)
        except NotAFile as exc:
            return _rejected(name, f"not a file but {exc}; nothing was read from it")
        except OSError as exc:
            return _rejected(name, f"cannot read the file ({exc.strerror})")
        try:
            dataset = read_instance(name, data)
        except Unreadable as exc:
            return _rejected(name, str(exc).removeprefix(f"{name}: "))
        if dataset.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
            return ReportRow(name, Status.SKIPPED_DICOMDIR, reason=DICOMDIR_REASON)
        originals = _original_uids(dataset)
        try:
            done = deidentify_instance(dataset, self.settings, data)
            if done.rejects:
                return _rejected(name, "; ".join(done.rejects))
            result = done.result
            sop_instance_uid = str(result.dataset.SOPInstanceUID)
            quarantines = done.quarantines
            if quarantines:
                return ReportRow(
                    name,
                    Status.QUARANTINED,
                    patient_pseudonym=result.patient_pseudonym,
                    sop_instance_uid=sop_instance_uid,
                    reason="not written, review before release: " + "; ".join(quarantines),
                )
            parts = done.parts
            # quality.check rejected invalid UIDs: these are digits and dots, safe as names.
            output = PurePosixPath(
                str(result.dataset.StudyInstanceUID),
                str(result.dataset.SeriesInstanceUID),
                f"{sop_instance_uid}.dcm",
            )
        except DeidentificationError as exc:
            return _rejected(name, _withhold(str(exc), originals))
        except Exception as exc:  # noqa: BLE001 - hostile input can fail anywhere in pydicom
            return _rejected(
                name,
                f"cannot be read as a DICOM data set ({_withhold(failure(exc), originals)})",
            )
        row = ReportRow(
            name,
            Status.WRITTEN,
            str(output),
            result.patient_pseudonym,
            sop_instance_uid,
        )
        return self._write(row, parts)

    def _write(self, row: ReportRow, parts: list[bytes | memoryview]) -> Done:
        """Write the file under a temporary name; the main process names it (`_publish_all`)
        once the data is on disk."""
        final = self.target / row.output
        # An output already there (an earlier run's file whose report row was cut short,
        # another input with the same UID) is found when the file is named: same content
        # is skipped, other content rejected (`_publish_all`).
        temp = _temporary(final)
        try:
            if final.parent not in self.folders:
                final.parent.mkdir(parents=True, exist_ok=True)
                self.folders.add(final.parent)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                write_parts(fd, parts)
            finally:
                os.close(fd)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            self.folders.discard(final.parent)  # made again for the next file, if removed
            return Done(_write_failed(row, exc))
        tag = tag_of_parts(self.settings.key, parts) if self.tagging else None
        return Done(row, str(temp), tag)


def _write_failed(row: ReportRow, exc: OSError) -> ReportRow:
    return replace(
        row,
        status=Status.REJECTED,
        output="",
        reason=f"cannot write {row.output} ({exc.strerror}); check free space and "
        "permissions of the output folder, then run again",
    )


def _rejected(name: str, reason: str) -> ReportRow:
    return ReportRow(name, Status.REJECTED, reason=reason)


def _against_existing(row: ReportRow, final: Path, blob: bytes) -> ReportRow:
    if final.read_bytes() == blob:
        return replace(
            row,
            status=Status.SKIPPED_EXISTING,
            reason="the output folder already holds this de-identified instance",
        )
    return replace(
        row,
        status=Status.REJECTED,
        output="",
        reason=f"the output folder already holds {row.output} with other content "
        "(another input file with the same SOP Instance UID?); it was not replaced",
    )


def _original_uids(dataset: Dataset) -> list[str]:
    """The identified UIDs of the object, to keep them out of the report's reasons (read
    as the file holds them: see `uids_as_read`)."""
    return [uid for tag in _IDENTIFYING_UIDS for uid in uids_as_read(dataset, tag)]


# SOP Instance, Study Instance and Series Instance UID
_IDENTIFYING_UIDS = (0x00080018, 0x0020000D, 0x0020000E)


def _withhold(message: str, originals: list[str]) -> str:
    for uid in originals:
        message = message.replace(uid, _WITHHELD_UID)
    return message
