"""`radbank dose FILES`, `radbank drl` and `radbank export` as a user runs them (real
processes): the dose table of vendor files, with unit-named columns and one row per
event; a file without dose or not DICOM is named; Parquet and CSV agree; a project's DRLs
and exports from the command line."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pydicom
import pytest
from liveserver import SHARED_DATA

from radbank.dicom.dose import extract

RDSR_DIR = SHARED_DATA / "rdsr"
pytestmark = pytest.mark.skipif(not RDSR_DIR.is_dir(), reason=f"{RDSR_DIR} not found")


def radbank(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    return subprocess.run(
        [sys.executable, "-m", "radbank", *args, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dose_table_of_files_has_one_row_per_event_with_units(tmp_path: Path) -> None:
    files = sorted(RDSR_DIR.glob("*.dcm"))
    done = radbank("dose", str(RDSR_DIR))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    header = set(rows[0])
    for column in ("ctdivol_mGy", "dlp_mGycm", "dlp_total_mGycm", "dap_Gym2", "dose_rp_Gy",
                   "agd_mGy", "administered_activity_MBq", "kvp", "exposure_time_s",
                   "scan_length_mm"):  # fmt: skip
        assert column in header
    # One row per irradiation event (or administration, or one for header-only objects).
    expected = 0
    for path in files:
        report = extract(pydicom.dcmread(path))
        if report is not None:
            expected += max(1, len(report.events) + len(report.radiopharmaceutical_administrations))
    assert len(rows) == expected
    flash = [r for r in rows if r["sop_instance_uid"] == str(
        pydicom.dcmread(RDSR_DIR / "CT-RDSR-Siemens_Flash-TAP-SS.dcm").SOPInstanceUID
    )]  # fmt: skip
    report = extract(pydicom.dcmread(RDSR_DIR / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"))
    assert [float(r["ctdivol_mGy"] or 0) for r in flash] == [
        e.ctdivol_mgy.value if e.ctdivol_mgy else 0 for e in report.events
    ]
    assert all(float(r["dlp_total_mGycm"]) == report.ct_dlp_total_mgycm.value for r in flash)
    # Dose at the reference point is in Gy in the table (the model keeps mGy).
    zee = RDSR_DIR / "RF-RDSR-Siemens-Zee.dcm"
    zee_report = extract(pydicom.dcmread(zee))
    zee_rows = [r for r in rows if r["sop_instance_uid"] == zee_report.sop_instance_uids[0]]
    assert float(zee_rows[0]["dose_rp_total_Gy"]) == pytest.approx(
        zee_report.dose_rp_total_mgy.value / 1000
    )


def test_csv_and_parquet_outputs_agree(tmp_path: Path) -> None:
    done = radbank(
        "dose",
        str(RDSR_DIR / "CT-RDSR-Siemens-Multi-3.dcm"),
        str(RDSR_DIR / "MG-RDSR-Hologic_2D.dcm"),
        "--csv",
        str(tmp_path / "d.csv"),
        "--parquet",
        str(tmp_path / "d.parquet"),
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    table = pq.read_table(tmp_path / "d.parquet").to_pylist()
    assert len(rows) == len(table) > 0
    for text_row, typed in zip(rows, table, strict=True):
        for name in ("ctdivol_mGy", "agd_mGy", "kvp"):
            assert (float(text_row[name]) if text_row[name] else None) == (
                pytest.approx(typed[name]) if typed[name] is not None else None
            )


def test_files_without_dose_and_broken_files_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"this is not DICOM")
    mr = Path(pydicom.data.get_testdata_file("MR_small.dcm"))
    done = radbank("dose", str(mr), str(broken))
    assert done.returncode == 1
    assert "MR_small.dcm: no dose value" in done.stderr
    assert "broken.dcm: not readable as DICOM" in done.stderr
    missing = radbank("dose", str(tmp_path / "absent.dcm"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_folders_and_zips_are_read_as_import_reads_them(tmp_path: Path) -> None:
    """A zip is opened, a DICOMDIR and the files an operating system leaves are skipped
    (exit 0 when nothing else is wrong), and a file pydicom cannot read is named with
    radbank's reason, not pydicom's advice to its programmers."""
    folder = tmp_path / "medium"
    folder.mkdir()
    report = next(RDSR_DIR.glob("CT-RDSR-*.dcm"))
    with zipfile.ZipFile(folder / "reports.zip", "w") as archive:
        archive.write(report, "a/report.dcm")
        archive.writestr("__MACOSX/a/._report.dcm", b"\0\5\26\7")
    (folder / "DICOMDIR-copy").write_bytes(
        Path(pydicom.data.get_testdata_file("DICOMDIR-implicit")).read_bytes()
    )
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    done = radbank("dose", str(folder))
    assert done.returncode == 0, done.stderr
    assert "report.dcm" not in done.stderr and "DICOMDIR" not in done.stderr
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) > 0
    (folder / "nope.dcm").write_bytes(b"\0" * 200)
    broken = radbank("dose", str(folder))
    assert broken.returncode == 1
    assert "nope.dcm: not readable as DICOM (" in broken.stderr
    assert "force=True" not in broken.stderr


def test_drl_and_export_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert (
        radbank("project", "create", "dose", "--profile", "research-dose", data_dir=data).returncode
        == 0
    )
    imported = radbank("import", str(RDSR_DIR), "--project", "dose", data_dir=data)
    assert imported.returncode in (0, 1), imported.stderr  # the secondary capture may be held
    reference = tmp_path / "reference.csv"
    reference.write_text("examination,quantity,value,unit\nChest,ctdivol,10,mGy\n")
    loaded = radbank("drl", "load", str(reference), "--name", "test", data_dir=data)
    assert loaded.returncode == 0, loaded.stderr
    shown = radbank(
        "drl", "show", "dose", "--quantity", "ctdivol", "--min-patients", "1", "--json",
        "--reference", "test", data_dir=data,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert '"quantity": "ctdivol"' in shown.stdout
    out = tmp_path / "events.parquet"
    exported = radbank("export", "dose", "--parquet", str(out), data_dir=data)
    assert exported.returncode == 0, exported.stderr
    assert pq.read_table(out).num_rows > 20
    again = radbank("export", "dose", "--parquet", str(out), data_dir=data)
    assert again.returncode != 0 and "exists" in again.stderr
    bad = radbank("drl", "show", "dose", "--quantity", "volume", data_dir=data)
    assert bad.returncode != 0 and "unknown quantity" in bad.stderr
