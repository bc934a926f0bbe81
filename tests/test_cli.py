"""The radbank command as a hospital IT person uses it: projects, import, verify, demo."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import corpus  # noqa: E402
import pydicom
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
    assert clean.returncode == 0
    assert (
        "verified 3 instance(s), 0 quarantined object(s) and 0 submission part(s): "
        "0 problem(s)" in clean.stdout
    )

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


def test_verify_checks_quarantined_objects_and_release_refuses_a_damaged_one(
    tmp_path: Path,
) -> None:
    """A quarantined object's file is checked like an instance's: verify reports it changed
    or missing, and releasing it refuses with the reason instead of storing damaged bytes
    or failing with a traceback."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "q")
    screen = tmp_path / "screen.dcm"
    shutil.copy(corpus.path("SC_rgb.dcm"), screen)
    assert "1 quarantined" in radbank(data, "import", str(screen), "--project", "q").stdout
    clean = radbank(data, "verify")
    assert clean.returncode == 0, clean.stdout
    assert "1 quarantined object(s)" in clean.stdout
    (blob,) = (data / "blobs").rglob("quarantine/*/*.dcm")

    blob.write_bytes(blob.read_bytes() + b"appended")
    changed = radbank(data, "verify")
    assert changed.returncode == 1
    assert "checksum mismatch: quarantined object 1 of project q" in changed.stdout
    release = radbank(data, "project", "release", "q", "1")
    assert release.returncode == 1
    assert "does not match its checksum" in release.stdout and "Traceback" not in release.stderr

    blob.unlink()
    missing = radbank(data, "verify")
    assert missing.returncode == 1
    assert "missing blob: quarantined object 1 of project q" in missing.stdout
    release = radbank(data, "project", "release", "q", "1")
    assert release.returncode == 1
    assert "is missing from the blob store" in release.stdout
    assert "Traceback" not in release.stderr


def test_demo_loads_identified_data_de_identified(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = radbank(data, "demo")
    assert result.returncode == 0, result.stderr
    assert "stored" in result.stdout
    from radbank.synthetic import canary_attributes, demo_studies

    # The demo's profile, research-dose, keeps device identity (station name, serial
    # number) on purpose: dose statistics are per device. Everything else must be gone.
    device = {"StationName", "DeviceSerialNumber"}
    canaries = {
        value
        for d in demo_studies()
        for value, paths in canary_attributes(d).items()
        if len(value) >= 6 and not paths <= device
    }
    assert canaries
    at_rest = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    leaked = [c for c in canaries if c.encode() in at_rest]
    assert leaked == [], f"identity at rest: {leaked[:10]}"
    again = radbank(data, "demo")
    assert "0 stored" in again.stdout
    # The demo's dose reports give a dose summary for every CT study.
    exported = radbank(
        data, "export", "demo", "--table", "studies", "--csv", str(tmp_path / "d.csv")
    )
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    assert len(rows) == 24 and all(float(row["dlp_total_mGycm"]) > 0 for row in rows)
    assert {row["source"] for row in rows} == {"report"}


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
            f"http://127.0.0.1:{port}/api/users", headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200
        denied = httpx.get(f"http://127.0.0.1:{port}/api/users")
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


def planted_folder(tmp_path: Path) -> Path:
    from radbank.synthetic import demo_studies, write_files

    folder = tmp_path / "planted"
    write_files(
        demo_studies(
            sites=1,
            patients_per_site=2,
            studies_per_patient=1,
            series_per_study=1,
            instances_per_series=1,
            dose_reports=False,
        ),
        folder,
    )
    return folder


def test_project_key_files_export_and_master_key_rotation(tmp_path: Path) -> None:
    from radbank.governance.sitekey import read_key_file

    data = tmp_path / "data"
    key = tmp_path / "site.key"
    created = radbank(data, "project", "create", "site", "--key-file", str(key))
    assert created.returncode == 0, created.stderr
    assert f"Created the key file {key}" in created.stdout
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    reused = radbank(data, "project", "create", "site2", "--key-file", str(key))
    assert reused.returncode == 0 and "Created the key file" not in reused.stdout
    taken = radbank(data, "project", "create", "site", "--key-file", str(tmp_path / "new.key"))
    assert taken.returncode == 1 and not (tmp_path / "new.key").exists()

    exported = tmp_path / "exported.key"
    assert radbank(data, "project", "export-key", "site2", "--out", str(exported)).returncode == 0
    assert read_key_file(exported) == read_key_file(key)
    again = radbank(data, "project", "export-key", "site2", "--out", str(exported))
    assert again.returncode == 2 and "never overwrites" in again.stderr

    folder = planted_folder(tmp_path)
    assert "2 stored" in radbank(data, "import", str(folder), "--project", "site").stdout
    # The site's offline tool with the same key file gives the node's pseudonyms and UIDs.
    out = tmp_path / "site-output"
    site = subprocess.run(
        [sys.executable, "-m", "radbank", "deid", str(folder), str(out), "--key-file", str(key),
         "--profile", "basic", "--jobs", "1", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert site.returncode == 0, site.stdout + site.stderr

    def identities(files: list[Path]) -> set[tuple[str, str]]:
        read = [pydicom.dcmread(f) for f in files]
        return {(str(ds.PatientID), str(ds.SOPInstanceUID)) for ds in read}

    node_side = identities(sorted((data / "blobs").rglob("*.dcm")))
    assert len(node_side) == 2 and identities(sorted(out.rglob("*.dcm"))) == node_side
    rotated = radbank(data, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "2 project key(s) re-wrapped" in rotated.stdout
    # Same key after rotation: the same files de-identify to the same bytes.
    assert (
        "0 stored, 2 duplicate" in radbank(data, "import", str(folder), "--project", "site").stdout
    )
    assert "intact" in radbank(data, "audit", "verify").stdout


def test_project_settings_are_set_shown_and_validated(tmp_path: Path) -> None:
    import json

    data = tmp_path / "data"
    radbank(data, "project", "create", "cfg")
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            [
                {
                    "name": "US banner",
                    "manufacturer": "ACME",
                    "rows": 480,
                    "columns": 640,
                    "rectangles": [[0, 0, 640, 40]],
                }
            ]
        )
    )
    changed = radbank(
        data, "project", "set", "cfg", "--profile", "basic-dates",
        "--override", "PatientWeight=keep", "--override", "(0018,1000)=remove",
        "--pixel-rules", str(rules), "--ocr",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    shown = json.loads(radbank(data, "project", "show", "cfg", "--json").stdout)
    assert shown["profile"] == "basic-dates" and shown["ocr_check"] is True
    assert shown["overrides"] == {"PatientWeight": "keep", "(0018,1000)": "remove"}
    assert shown["pixel_rules"][0]["name"] == "US banner"
    assert shown["settings_version"] == 2 and shown["vault"] is None
    radbank(data, "project", "set", "cfg", "--clear-overrides", "--no-ocr")
    shown = json.loads(radbank(data, "project", "show", "cfg", "--json").stdout)
    assert shown["overrides"] == {} and shown["ocr_check"] is False

    bad = radbank(data, "project", "set", "cfg", "--override", "NoSuchThing=keep")
    assert bad.returncode == 2 and "NoSuchThing" in bad.stderr
    nothing = radbank(data, "project", "set", "cfg")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    text = " ".join(radbank(data, "project", "show", "cfg").stdout.split())
    assert "vault none: original identifiers are not kept, re-identification is impossible" in text


def test_vault_init_open_lookup_rotate_and_audit_verify(tmp_path: Path) -> None:
    import json
    import sqlite3

    data = tmp_path / "data"
    broker = tmp_path / "broker.key"
    radbank(data, "project", "create", "ct")
    init = radbank(data, "vault", "init", "--project", "ct", "--out", str(broker), "--name", "Dr B")
    assert init.returncode == 0, init.stderr
    assert stat.S_IMODE(broker.stat().st_mode) == 0o600
    twice = radbank(data, "vault", "init", "--project", "ct", "--out", str(broker))
    assert twice.returncode == 2 and "already has a vault" in twice.stderr

    assert (
        "2 stored"
        in radbank(data, "import", str(planted_folder(tmp_path)), "--project", "ct").stdout
    )
    # The key file alone is not enough: the one who opens must be the project's honest broker.
    refused = radbank(
        data, "vault", "open", "--project", "ct", "--key", str(broker), "--as", "dr-b",
    )  # fmt: skip
    assert refused.returncode == 1 and "not an honest broker" in refused.stderr
    assert radbank(data, "user", "create", "dr-b", "--no-password").returncode == 0
    assert radbank(data, "project", "grant", "ct", "dr-b", "honest_broker").returncode == 0
    opened = radbank(
        data, "vault", "open", "--project", "ct", "--key", str(broker),
        "--as", "dr-b", "--reason", "consent withdrawal", "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    entries = json.loads(opened.stdout)
    assert len(entries) == 2 and {e["IssuerOfPatientID"] for e in entries} == {"HQV-IPP"}
    first = entries[0]
    lookup = radbank(
        data, "vault", "lookup", "--project", "ct", "--patient-id", first["PatientID"],
        "--issuer", first["IssuerOfPatientID"], "--reason", "follow-up", "--as", "dr-b",
    )  # fmt: skip
    assert lookup.returncode == 0 and lookup.stdout.startswith(first["pseudonym"])
    assert "1 study" in lookup.stdout

    new = tmp_path / "new.key"
    rotated = radbank(
        data, "vault", "rotate", "--project", "ct", "--key", str(broker), "--out", str(new)
    )
    assert rotated.returncode == 0 and "2 vault entries" in rotated.stdout
    stale = radbank(data, "vault", "open", "--project", "ct", "--key", str(broker), "--as", "dr-b")
    assert stale.returncode == 1 and "sealed to key" in stale.stderr
    table = radbank(data, "vault", "open", "--project", "ct", "--key", str(new), "--as", "dr-b")
    assert first["pseudonym"] in table.stdout and "2 entries opened" in table.stdout

    verified = radbank(data, "audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout
    with sqlite3.connect(data / "index.sqlite3") as connection:
        opening = connection.execute(
            "SELECT id FROM audit_events WHERE action = 'vault.open' AND outcome = 'failure'"
        ).fetchone()[0]
        connection.execute("DELETE FROM audit_events WHERE id = ?", (opening,))
    broken = radbank(data, "audit", "verify")
    assert broken.returncode == 1
    assert f"audit record {opening} removed" in broken.stdout


def _ct(name: str = "CT_small.dcm") -> bytes:
    return Path(corpus.path(name)).read_bytes()


def test_import_reads_every_member_of_a_zip_even_of_the_same_name(tmp_path: Path) -> None:
    """Two members called a.dcm are two files: both are imported (each read by its own
    entry), not the last one twice; a DICOMDIR anywhere in the archive is skipped."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "z")
    archive = tmp_path / "same-names.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.dcm", _ct())
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("a.dcm", _ct("MR_small.dcm"))
        zf.writestr("DICOMDIR", Path(corpus.path("DICOMDIR")).read_bytes())
        zf.writestr("inner.zip", b"PK\x05\x06" + b"\0" * 18)
    result = radbank(data, "import", str(archive), "--project", "z")
    assert "2 stored, 0 duplicate, 0 quarantined, 1 rejected, 1 DICOMDIR skipped" in result.stdout
    assert "inner.zip: a zip archive inside the archive is not opened" in result.stdout
    assert result.returncode == 1


def test_a_dicom_file_ending_like_a_zip_is_imported_as_dicom(tmp_path: Path) -> None:
    """A file's last bytes may hold a zip's end record by chance (compressed pixel data):
    a DICOM file is read as DICOM, not opened as an archive and lost."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "e")
    ct = _ct()
    lookalike = tmp_path / "ct.dcm"
    lookalike.write_bytes(ct[:-22] + b"PK\x05\x06" + b"\xff" * 18)
    result = radbank(data, "import", str(lookalike), "--project", "e")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 stored" in result.stdout


def test_a_damaged_archive_is_a_rejection_not_a_crash(tmp_path: Path) -> None:
    """An archive whose central directory is damaged, or whose member's name does not
    decode, is named with its reason; the files around it are still imported and the
    summary is printed."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "d")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(_ct())
    archive = folder / "broken.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x.dcm", _ct("MR_small.dcm"))
    raw = bytearray(archive.read_bytes())
    directory = raw.rfind(b"PK\x01\x02")
    raw[directory : directory + 4] = b"XXXX"
    archive.write_bytes(bytes(raw))
    result = radbank(data, "import", str(folder), "--project", "d")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "1 stored, 0 duplicate, 0 quarantined, 1 rejected" in result.stdout
    assert "broken.zip: not a readable zip archive (BadZipFile" in result.stdout


# Root reads folders whatever their mode: as root, the import runs without the
# capabilities that let it (setpriv, util-linux), as an ordinary user would.
_AS_A_USER = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
     "--inh-caps=-dac_override,-dac_read_search", "--"]
    if os.geteuid() == 0 else []
)  # fmt: skip


@pytest.mark.skipif(
    bool(_AS_A_USER) and shutil.which("setpriv") is None, reason="root, and no setpriv"
)
def test_an_unreadable_folder_is_named_and_fails_the_import(tmp_path: Path) -> None:
    data = tmp_path / "data"
    radbank(data, "project", "create", "u")
    folder = tmp_path / "in"
    (folder / "locked").mkdir(parents=True)
    (folder / "ct.dcm").write_bytes(_ct())
    (folder / "locked" / "mr.dcm").write_bytes(_ct("MR_small.dcm"))
    (folder / "locked").chmod(0)
    try:
        result = subprocess.run(
            [*_AS_A_USER, sys.executable, "-m", "radbank", "import", str(folder),
             "--project", "u", "--data-dir", str(data)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        (folder / "locked").chmod(0o700)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 stored, 0 duplicate, 0 quarantined, 1 rejected" in result.stdout
    assert "locked: cannot read the folder (Permission denied)" in result.stdout


def test_links_to_folders_pipes_and_deep_folders_are_named_not_lost(tmp_path: Path) -> None:
    """Nothing under the folder is passed over without a word: a link to a folder (not
    followed) and a named pipe (not read, so nothing blocks) are rejected with their
    reasons; a folder nested 1,200 deep is read like any other."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "l")
    folder = tmp_path / "in"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mr.dcm").write_bytes(_ct("MR_small.dcm"))
    folder.mkdir()
    levels = [str(folder)]
    for _ in range(1200):  # deeper than Python's recursion limit; made and removed by hand
        levels.append(levels[-1] + "/d")
        os.mkdir(levels[-1])
    Path(levels[-1], "ct.dcm").write_bytes(_ct())
    (folder / "link").symlink_to(elsewhere, target_is_directory=True)
    os.mkfifo(folder / "pipe")
    try:
        result = radbank(data, "import", str(folder), "--project", "l")
    finally:
        os.unlink(levels[-1] + "/ct.dcm")
        for level in reversed(levels[1:]):
            os.rmdir(level)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "1 stored, 0 duplicate, 0 quarantined, 2 rejected" in result.stdout
    assert "link: a link to a folder, not followed" in result.stdout
    assert "pipe: not a file but a named pipe (FIFO)" in result.stdout


def test_file_names_cannot_drive_the_terminal_or_fake_the_summary(tmp_path: Path) -> None:
    """Control characters in a name are printed as escapes, and brackets as brackets (not
    as the markup of the terminal library), so the report names the files as they are."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "n")
    folder = tmp_path / "in [arterial phase]"
    folder.mkdir()
    (folder / "esc\x1b[2J\x1b[31mRED.txt").write_bytes(b"x" * 200)
    (folder / "nl\n9 stored, 0 duplicate, 0 quarantined, 0 rejected\nx.txt").write_bytes(b"y" * 200)
    (folder / "a[" / "b]").mkdir(parents=True)  # shown as .../a[/b]/notes.txt
    (folder / "a[" / "b]" / "notes.txt").write_bytes(b"z" * 200)
    result = radbank(data, "import", str(folder), "--project", "n")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "\x1b" not in result.stdout
    assert "esc\\x1b[2J\\x1b[31mRED.txt" in result.stdout
    assert "nl\\x0a9 stored" in result.stdout
    assert [line for line in result.stdout.splitlines() if " stored, " in line and not
            line.startswith("  ")] == ["0 stored, 0 duplicate, 0 quarantined, 3 rejected"]  # fmt: skip
    assert "in [arterial phase]/a[/b]/notes.txt" in result.stdout
    missing = radbank(data, "import", str(tmp_path / "gone[/]"), "--project", "n")
    assert missing.returncode == 2 and "gone[/] does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = radbank(data, "import", str(tmp_path / "empty"), "--project", "n")
    assert empty.returncode == 0 and "no files found under" in empty.stderr


def test_bytes_that_do_not_start_as_dicom_are_refused_at_once(tmp_path: Path) -> None:
    """Bytes without the Part 10 prefix that do not start with a DICOM element (a disk
    image's zeros) are refused without the forced parse, which takes pydicom about 0.3 s
    per MB of zeros; a data set without preamble is still read."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "t")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "zeros.img").write_bytes(b"\0" * 20_000_000)
    shutil.copy(corpus.path("ExplVR_LitEndNoMeta.dcm"), folder / "no-preamble.dcm")
    result = radbank(data, "import", str(folder), "--project", "t")
    assert result.returncode == 1, result.stdout
    assert "1 stored, 0 duplicate, 0 quarantined, 1 rejected" in result.stdout
    assert "zeros.img: not a DICOM file (no 'DICM' prefix" in result.stdout


def test_verify_says_which_orphans_an_unfinished_ingest_left_and_what_clears_them(
    tmp_path: Path,
) -> None:
    """An import killed between writing its blobs and indexing them leaves blobs that its
    journal entry names: verify still reports them, and says where they come from and
    what removes them (the next `serve`) or adopts them (importing the files again)."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "j")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(_ct())
    assert radbank(data, "import", str(folder), "--project", "j").returncode == 0
    stored = next((data / "blobs").rglob("*.dcm"))
    left = stored.parent / "left-behind.dcm"
    left.write_bytes(b"written, never indexed")
    key = left.relative_to(data / "blobs").as_posix()
    (data / "journal" / "killed-import.json").write_text(f'["{key}"]')
    result = radbank(data, "verify")
    assert result.returncode == 1
    assert f"orphan blob (no index row): {key} - written by an ingest that did not finish" in (
        result.stdout
    )
    assert "`radbank serve` removes it when it starts" in result.stdout


def test_an_interrupted_import_says_what_it_stored_and_a_second_run_finishes(
    tmp_path: Path,
) -> None:
    """Ctrl-C (SIGINT) in the middle: the summary of what is stored, how many inputs
    were not imported, exit code 130; the same import again stores the rest."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "c")
    folder = tmp_path / "in"
    folder.mkdir()
    dataset = pydicom.dcmread(corpus.path("CT_small.dcm"))
    for number in range(400):
        dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{number + 1}"
        dataset.save_as(folder / f"{number:03d}.dcm")
    process = subprocess.Popen(
        [sys.executable, "-m", "radbank", "import", str(folder), "--project", "c",
         "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    blobs = data / "blobs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if blobs.is_dir() and sum(1 for _ in blobs.rglob("*.dcm")) >= 64:
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.02)
    out, errors = process.communicate(timeout=120)
    assert process.returncode == 130, out + errors
    assert "Traceback" not in errors
    stored = int(out.split(" stored,")[0].split()[-1])
    assert 64 <= stored < 400
    assert "of 400 input(s) not imported; what is counted above is stored" in errors
    again = radbank(data, "import", str(folder), "--project", "c")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{400 - stored} stored, {stored} duplicate" in again.stdout


def test_files_the_operating_system_leaves_are_skipped_and_counted(tmp_path: Path) -> None:
    """Media copied on a Mac or shown in Windows Explorer carry .DS_Store, AppleDouble
    "._" files, Thumbs.db and, in Finder's zips, a __MACOSX folder: skipped and counted,
    so such a folder imports with exit code 0."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "m")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(_ct())
    for name in (".DS_Store", "._ct.dcm", "Thumbs.db"):
        (folder / name).write_bytes(b"\0\5\26\7 system data")
    with zipfile.ZipFile(folder / "mr.zip", "w") as zf:
        zf.writestr("mr/mr.dcm", _ct("MR_small.dcm"))
        zf.writestr("__MACOSX/mr/._mr.dcm", b"\0\5\26\7 resource fork")
    result = radbank(data, "import", str(folder), "--project", "m")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 stored, 0 duplicate, 0 quarantined, 0 rejected, 4 system files skipped" in (
        result.stdout
    )


def test_import_skips_a_dicomdir_whatever_its_file_name(tmp_path: Path) -> None:
    """A DICOMDIR is told by its SOP class, not only by its name: copies named
    DICOMDIR-implicit or DICOMDIR-empty.dcm are skipped, not rejected as objects without a
    SOP Instance UID, and the import succeeds."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "d")
    folder = tmp_path / "medium"
    folder.mkdir()
    for name in ("DICOMDIR-implicit", "DICOMDIR-empty.dcm", "DICOMDIR-bigEnd"):
        (folder / name).write_bytes(Path(corpus.path(name)).read_bytes())
    (folder / "ct.dcm").write_bytes(_ct())
    result = radbank(data, "import", str(folder), "--project", "d")
    assert "1 stored, 0 duplicate, 0 quarantined, 0 rejected, 3 DICOMDIR skipped" in result.stdout
    assert result.returncode == 0, result.stdout


def test_help_texts_read_as_sentences_and_name_the_environment(tmp_path: Path) -> None:
    """A command's help is wrapped by paragraph, not cut where its docstring's lines end,
    and serve names the environment variables that set what its flags set."""
    wide = {"COLUMNS": "250", "TERM": "dumb"}
    import_help = radbank(tmp_path, "import", "--help", env=wide)
    assert "(each is listed with its reason), 0 when everything was stored" in import_help.stdout
    serve_help = radbank(tmp_path, "serve", "--help", env=wide).stdout
    for variable in ("RADBANK_DATA_DIR", "RADBANK_HOST", "RADBANK_PORT", "RADBANK_WORKERS"):
        assert f"env var: {variable}" in serve_help
    deid_help = subprocess.run(
        [sys.executable, "-m", "radbank", "deid", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, **wide},
    ).stdout
    assert "the same command again resumes" in deid_help


def test_files_the_site_tool_wrote_are_stored_as_they_are(tmp_path: Path) -> None:
    """`radbank deid --manifest` lists what it writes in deid-manifest.txt, tagged under the
    project key: imported on the node, those files are stored as the site wrote them (one
    pseudonym per subject, whichever route the data took), not de-identified again. Under
    another project's key the tags do not match and the files are treated as originals."""
    data = tmp_path / "data"
    key = tmp_path / "site.key"
    assert radbank(data, "project", "create", "site", "--key-file", str(key)).returncode == 0
    folder = planted_folder(tmp_path)
    out = tmp_path / "site-output"
    site = subprocess.run(
        [sys.executable, "-m", "radbank", "deid", str(folder), str(out), "--key-file", str(key),
         "--profile", "basic", "--jobs", "1", "--quiet", "--manifest"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert site.returncode == 0, site.stdout + site.stderr
    # What the site sends: the UID folders and the manifest, not the report or run record.
    sent = tmp_path / "incoming"
    shutil.copytree(out, sent, ignore=shutil.ignore_patterns("deid-report.csv", "deid-run.json"))
    written = {hashlib.sha256(f.read_bytes()).hexdigest() for f in sent.rglob("*.dcm")}
    assert len(written) == 2

    imported = radbank(data, "import", str(sent), "--project", "site")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "2 stored, 0 duplicate, 0 quarantined, 0 rejected" in imported.stdout
    assert "2 file(s) de-identified at the site under this project's key" in imported.stdout
    stored = {hashlib.sha256(f.read_bytes()).hexdigest() for f in (data / "blobs").rglob("*.dcm")}
    assert stored == written
    # The originals, sent to the node directly, are the same objects: duplicates.
    originals = radbank(data, "import", str(folder), "--project", "site")
    assert "0 stored, 2 duplicate" in originals.stdout

    assert radbank(data, "project", "create", "other").returncode == 0
    foreign = radbank(data, "import", str(sent), "--project", "other")
    assert "2 stored" in foreign.stdout
    assert "none of the 2 file(s) it lists is under this project's key" in foreign.stdout
    assert "2 file(s) written by radbank (de-identified already)" in foreign.stdout


def test_pydicom_warnings_name_the_file_and_a_cut_file_is_refused_as_such(
    tmp_path: Path,
) -> None:
    """pydicom's warnings about a file's values name the file, in the summary, instead of
    pydicom's source line on stderr; a file cut inside its encapsulated pixel data (which
    pydicom reads as an empty data set) is refused as truncated, not for a missing UID."""
    data = tmp_path / "data"
    radbank(data, "project", "create", "w")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(corpus.path("badVR.dcm"), folder / "bad-value.dcm")  # IS of "1A"
    shutil.copy(corpus.path("emri_small_jpeg_2k_lossless_too_short.dcm"), folder / "cut.dcm")
    shutil.copy(corpus.path("CT_small.dcm"), folder / "good.dcm")
    result = radbank(data, "import", str(folder), "--project", "w")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 stored, 0 duplicate, 0 quarantined, 1 rejected" in result.stdout
    assert "UserWarning" not in result.stderr and "warn_and_log" not in result.stderr
    assert (
        f"warning: {folder / 'bad-value.dcm'}: Invalid value for VR IS: (value withheld)"
        in result.stdout
    )
    assert f"rejected: {folder / 'cut.dcm'}: truncated or damaged" in result.stdout
    assert f"warning: {folder / 'cut.dcm'}: End of file reached before delimiter" in result.stdout
    assert "<no filename>" not in result.stdout
    assert "good.dcm" not in result.stdout
