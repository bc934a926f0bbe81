"""The radbank command as a hospital IT person uses it: projects, import, verify, demo."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import corpus  # noqa: E402
import pytest


def radbank(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radbank", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_first_start_creates_a_private_key_file_and_shows_a_token_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = radbank(data, "project", "create", "trial")
    assert first.returncode == 0, first.stderr
    assert "Admin API token" in first.stdout
    assert stat.S_IMODE((data / "keys.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    second = radbank(data, "project", "list")
    assert "Admin API token" not in second.stdout
    assert "trial" in second.stdout


def test_project_names_are_validated_and_unique(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert radbank(data, "project", "create", "ok-name").returncode == 0
    again = radbank(data, "project", "create", "ok-name")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = radbank(data, "project", "create", "../evil")
    assert bad.returncode == 2 and "invalid project name" in bad.stderr
    profile = radbank(data, "project", "create", "p2", "--profile", "nonsense")
    assert profile.returncode == 2 and "unknown de-identification profile" in profile.stderr


def test_import_folder_and_zip_with_summary_and_exit_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert radbank(data, "project", "create", "imp").returncode == 0
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm"):
        shutil.copy(corpus.path(name), folder / name)
    good = radbank(data, "import", str(folder), "--project", "imp")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "3 stored, 0 duplicate, 0 quarantined, 0 rejected" in good.stdout

    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "CT_small.dcm", "a/CT_small.dcm")
        zf.writestr("b/garbage.dcm", b"not dicom" * 100)
    mixed = radbank(data, "import", str(archive), "--project", "imp")
    assert mixed.returncode == 1
    assert "0 stored, 1 duplicate, 0 quarantined, 1 rejected" in mixed.stdout
    assert "garbage.dcm" in mixed.stdout

    missing = radbank(data, "import", str(folder), "--project", "nope")
    assert missing.returncode == 2 and "unknown project" in missing.stderr


def test_verify_reports_missing_orphan_and_corrupt_blobs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    radbank(data, "project", "create", "v")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm"):
        shutil.copy(corpus.path(name), folder / name)
    assert radbank(data, "import", str(folder), "--project", "v").returncode == 0
    clean = radbank(data, "verify")
    assert clean.returncode == 0 and "verified 3 instance(s): 0 problem(s)" in clean.stdout

    blobs = sorted((data / "blobs").rglob("*.dcm"))
    blobs[0].unlink()
    blobs[1].write_bytes(blobs[1].read_bytes()[:-1] + b"X")
    (blobs[2].parent / "stray.dcm").write_bytes(b"orphan")
    broken = radbank(data, "verify")
    assert broken.returncode == 1
    assert "missing blob" in broken.stdout
    assert "checksum mismatch" in broken.stdout
    assert "orphan blob" in broken.stdout and "stray.dcm" in broken.stdout
    assert "3 problem(s)" in broken.stdout


def test_demo_loads_identified_data_de_identified(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = radbank(data, "demo")
    assert result.returncode == 0, result.stderr
    assert "stored" in result.stdout
    from radbank.synthetic import canary_values, demo_studies

    canaries = {c for d in demo_studies() for c in canary_values(d) if len(c) >= 6}
    assert canaries
    at_rest = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    leaked = [c for c in canaries if c.encode() in at_rest]
    assert leaked == [], f"identity at rest: {leaked[:10]}"
    again = radbank(data, "demo")
    assert "0 stored" in again.stdout


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_refuses_key_file_readable_by_others(tmp_path: Path, mode: int) -> None:
    data = tmp_path / "data"
    radbank(data, "project", "list")
    (data / "keys.json").chmod(mode)
    result = radbank(data, "project", "list")
    assert result.returncode == 2
    assert "must be 0600" in result.stderr


def test_serve_prints_url_and_a_one_time_token_that_works(tmp_path: Path) -> None:
    import re

    import httpx
    from liveserver import free_port, wait_until_healthy

    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADBANK_")}

    def start() -> tuple[subprocess.Popen, str]:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "radbank",
                "serve",
                "--data-dir",
                str(data),
                "--port",
                str(port),
            ],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(f"http://127.0.0.1:{port}", process, log)
        return process, port, log.read_text()

    process, port, output = start()
    try:
        assert f"http://127.0.0.1:{port}" in output
        token = re.search(r"Admin API token \(shown once.*?\): (\S+)", output).group(1)
        ok = httpx.get(
            f"http://127.0.0.1:{port}/api/projects", headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200
        denied = httpx.get(f"http://127.0.0.1:{port}/api/projects")
        assert denied.status_code == 401
        assert token not in (data / "keys.json").read_text()
    finally:
        process.terminate()
        process.wait(20)
    process, port, output = start()
    try:
        assert "Admin API token" not in output
    finally:
        process.terminate()
        process.wait(20)


def test_file_names_of_the_sender_are_not_kept_at_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    radbank(data, "project", "create", "names")
    folder = tmp_path / "Mustermann_Erika_19640812"
    folder.mkdir()
    shutil.copy(corpus.path("CT_small.dcm"), folder / "Mustermann_Erika_CT.dcm")
    shutil.copy(corpus.path("SC_rgb.dcm"), folder / "Mustermann_Erika_screen.dcm")  # quarantined
    result = radbank(data, "import", str(folder), "--project", "names")
    assert "1 stored" in result.stdout and "1 quarantined" in result.stdout
    assert "Mustermann_Erika_screen.dcm" in result.stdout  # the sender is told which file
    at_rest = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert b"Mustermann" not in at_rest


def test_import_refuses_oversize_and_corrupt_zip_members(tmp_path: Path) -> None:
    data = tmp_path / "data"
    radbank(data, "project", "create", "zips")
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.dcm", b"\0" * 3_000_000)  # compresses to almost nothing
        zf.write(corpus.path("CT_small.dcm"), "ok.dcm")
    result = radbank(
        data,
        "import",
        str(archive),
        "--project",
        "zips",
        env={"RADBANK_MAX_INSTANCE_BYTES": "1000000"},
    )
    assert result.returncode == 1
    assert "1 stored" in result.stdout
    assert "big.dcm: 3000000 bytes, larger than the limit" in result.stdout
    corrupt = tmp_path / "corrupt.zip"
    raw = archive.read_bytes()
    corrupt.write_bytes(raw[:200] + b"\xff" * 200 + raw[400:])
    broken = radbank(data, "import", str(corrupt), "--project", "zips")
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr


def test_serve_is_configured_by_environment_alone(tmp_path: Path) -> None:

    import httpx
    from liveserver import free_port, wait_until_healthy

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADBANK_")}
    env.update(
        RADBANK_DATA_DIR=str(tmp_path / "env-data"),
        RADBANK_HOST="127.0.0.1",
        RADBANK_PORT=str(port),
        RADBANK_ADMIN_TOKEN="token-from-the-environment",
        RADBANK_WORKERS="1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "radbank", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        headers = {"Authorization": "Bearer token-from-the-environment"}
        assert (
            httpx.get(f"http://127.0.0.1:{port}/api/projects", headers=headers).status_code == 200
        )
        assert (tmp_path / "env-data" / "keys.json").exists()
        assert not (tmp_path / "radbank-data").exists()
    finally:
        process.terminate()
        process.wait(20)
