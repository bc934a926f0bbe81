"""The `radbank` executable's process set-up: the C allocator settings it passes on.

`tune_allocator` is a speed measure (docs/benchmarks.md, issue 3); what an operator can
notice, and what these tests check in real child processes, is that the settings reach the
processes radbank starts (server workers) and that values set in the environment win.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from radbank.launcher import plain_arguments
from radbank.offline import deid_command

CHILD_SEES = (
    "from radbank.launcher import tune_allocator; tune_allocator(); import subprocess, sys; "
    "print(subprocess.check_output([sys.executable, '-c', "
    '\'import os; print(os.environ.get("MALLOC_MMAP_THRESHOLD_"), '
    'os.environ.get("MALLOC_TRIM_THRESHOLD_"))\'], text=True).strip())'
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the settings are glibc's, on Linux"
)


def _run(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD_SEES], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_processes_radbank_starts_get_the_allocator_settings() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert _run(env) == f"{4 * 1024 * 1024} {32 * 1024 * 1024}"


def test_settings_in_the_environment_win() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    assert _run(env) == f"131072 {32 * 1024 * 1024}"


# ------------------------------------------------ `radbank deid` without Typer's start-up


def typer_arguments(argv: list[str]) -> dict[str, object] | None:
    """What Typer calls deid_command with for `argv` (None when it refuses the line)."""
    seen: dict[str, object] = {}

    @functools.wraps(deid_command)
    def record(**arguments: object) -> None:
        seen.update(arguments)

    command = typer.Typer(add_completion=False)
    command.command()(record)
    result = CliRunner().invoke(command, argv)
    return seen if result.exit_code == 0 else None


@pytest.mark.parametrize(
    "argv",
    [
        ["in", "out", "--key-file", "k"],
        ["--key-file", "site.key", "in", "out", "--profile", "basic", "-j", "2", "-q"],
        ["in", "out", "--key-file=k", "--jobs=3", "--settings", "project.json"],
        ["in dir", "out", "--quiet", "--key-file", "k", "--profile=research-dose", "--jobs", "1"],
    ],
)
def test_plain_command_lines_get_what_typer_would_pass(argv: list[str]) -> None:
    expected = typer_arguments(argv)
    assert expected is not None
    assert plain_arguments(deid_command, argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["in", "out"],  # the key file is required
        ["in", "out", "--key-file", "k", "--jobs", "0"],  # below the minimum
        ["in", "out", "--key-file", "k", "--jobs", "x"],
        ["in", "out", "--key-file", "k", "--jobs", "-1"],
        ["in", "out", "--key-file", "k", "-j2"],
        ["in", "out", "--key-file", "k", "--no-quiet"],
        ["in", "out", "extra", "--key-file", "k"],
        ["in", "out", "--key-file", "k", "--profile"],
        ["in", "out", "--key-file", "k", "--profile", "basic", "--profile", "basic"],
        ["in", "out", "--key-file", "k", "--", "-x"],
        ["in", "out", "--key-file", "k", "--quiet=yes"],
        ["in", "out", "--key-file", "k", "-q=1"],
    ],
)
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert plain_arguments(deid_command, argv) is None


def test_existing_paths_get_what_typer_would_pass(tmp_path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "site.key").write_bytes(b"")
    argv = [str(tmp_path / "in"), str(tmp_path / "out"), "--key-file", str(tmp_path / "site.key")]
    assert plain_arguments(deid_command, argv) == typer_arguments(argv)


def test_an_unreadable_path_is_left_to_typer(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Typer refuses an existing path the user cannot read (exit 2, "is not readable").
    The tests run as root, who reads everything, so unreadability is simulated here."""
    (tmp_path / "in").mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: str(path) != str(tmp_path / "in") and real_access(path, mode),
    )
    argv = [str(tmp_path / "in"), str(tmp_path / "out"), "--key-file", "k"]
    assert plain_arguments(deid_command, argv) is None
    assert typer_arguments(argv) is None


def test_typer_still_answers_what_the_plain_reader_does_not(tmp_path) -> None:
    def deid(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "radbank", "deid", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = deid(str(tmp_path), str(tmp_path / "out"), "--key-file", "k", "--jobs", "0")
    assert refused.returncode == 2
    assert "Invalid value for '--jobs'" in refused.stderr
    assert not (tmp_path / "out").exists()
    helped = deid("--help")
    assert helped.returncode == 0 and "--key-file" in helped.stdout


# ------------------------------------------------------------- numpy's OpenBLAS threads

THREADS_AFTER_NUMPY = (
    "from radbank.launcher import limit_math_threads; limit_math_threads(); import os; "
    "import numpy; print(len(os.listdir('/proc/self/task')), os.environ['OPENBLAS_NUM_THREADS'])"
)


def test_numpy_starts_no_thread_in_radbank_processes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "OMP_"))}
    done = subprocess.run(
        [sys.executable, "-c", THREADS_AFTER_NUMPY], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]  # the main thread only


def test_an_openblas_setting_in_the_environment_wins() -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", THREADS_AFTER_NUMPY], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "2"
