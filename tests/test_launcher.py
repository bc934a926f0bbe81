"""The `radbank` executable's process set-up: the C allocator settings it passes on.

`tune_allocator` is a speed measure (docs/benchmarks.md, issue 3); what an operator can
notice, and what these tests check in real child processes, is that the settings reach the
processes radbank starts (server workers) and that values set in the environment win.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
