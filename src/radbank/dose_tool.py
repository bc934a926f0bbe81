"""`radbank dose FILES...`: the dose table of DICOM files, printed or written as CSV or
Parquet, without storing anything (for physicists checking a device's reports, and for
tests). Folders are searched recursively and zip archives opened, as `radbank import` does;
a file that is not DICOM or has no dose value is named on stderr. The columns are those
of `radbank.dicom.dose.table.COLUMNS` (docs/dose.md).

Exit status: 0 when every file was read, 1 when a file could not be read as DICOM, 2 for
bad arguments. Files are read as they are, identified or not: the table stays on this
machine unless you send it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from radbank.analytics.export import csv_chunks, parquet_chunks
from radbank.dicom.dose import extract_bytes
from radbank.dicom.dose.table import COLUMNS, Patient, column_names, event_rows
from radbank.dicom.instance import Unreadable, read_instance
from radbank.inputs import Inputs, NotAFile, Unread, is_dicomdir

__all__ = ["dose_command", "dose_table"]

err = Console(stderr=True, soft_wrap=True)
_KINDS = {"text": "text", "datetime": "text", "real": "real", "integer": "integer"}


def dose_table(paths: list[Path]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(rows, files without dose, files that could not be read with the reason).

    Inputs are listed as `radbank import` lists them (radbank.inputs): folders walked,
    zip archives opened, DICOMDIRs and the files operating systems leave skipped."""
    rows: list[dict[str, Any]] = []
    without: list[str] = []
    unreadable: list[str] = []
    for path in paths:
        with Inputs(path) as inputs:
            for source in inputs:
                if isinstance(source, Unread):
                    if not source.skipped:
                        unreadable.append(f"{source.name}: {source.reason}")
                    continue
                try:
                    data = source.read()
                except NotAFile as exc:
                    unreadable.append(f"{source.name}: not a file but {exc}; not read")
                    continue
                except OSError as exc:
                    unreadable.append(f"{source.name}: cannot read it ({exc.strerror or exc})")
                    continue
                if is_dicomdir(data):
                    continue
                try:
                    dataset = read_instance(source.name, data)
                except Unreadable as exc:
                    reason = str(exc).removeprefix(f"{source.name}: ")
                    unreadable.append(f"{source.name}: not readable as DICOM ({reason})")
                    continue
                report = extract_bytes(data)
                if report is None:
                    without.append(source.name)
                    continue
                modality = str(dataset.get("Modality", "") or "").upper() or None
                rows.extend(event_rows(report, Patient.of(dataset), modality))
    return rows, without, unreadable


def _cells(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    names = column_names()
    return [
        tuple(
            value.isoformat() if hasattr(value, "isoformat") else value
            for value in (row.get(name) for name in names)
        )
        for row in rows
    ]


def dose_command(
    files: Annotated[
        list[Path],
        typer.Argument(help="DICOM files, folders (searched recursively) or .zip archives"),
    ],
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write the table to this CSV file")
    ] = None,
    parquet_out: Annotated[
        Path | None, typer.Option("--parquet", help="Write the table to this Parquet file")
    ] = None,
) -> None:
    """Print (as CSV) or write the dose table of DICOM files, one row per irradiation event."""
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        err.print(f"[red]error:[/red] not found: {', '.join(missing)}", highlight=False)
        raise typer.Exit(2)
    rows, without, unreadable = dose_table(files)
    cells = _cells(rows)
    names = column_names()
    if parquet_out is not None:
        kinds = [_KINDS[column.kind] for column in COLUMNS]
        with parquet_out.open("wb") as handle:
            for chunk in parquet_chunks(names, kinds, [cells]):
                handle.write(chunk)
    if csv_out is not None:
        with csv_out.open("wb") as handle:
            for chunk in csv_chunks(names, [cells]):
                handle.write(chunk)
    if csv_out is None and parquet_out is None:
        for chunk in csv_chunks(names, [cells]):
            sys.stdout.write(chunk.decode())
        sys.stdout.flush()
    for name in without:
        err.print(
            f"{name}: no dose value (neither a dose report nor dose in the header)",
            highlight=False,
            markup=False,
        )
    for reason in unreadable:
        err.print(reason, style="red", highlight=False, markup=False)
    written = [str(p) for p in (csv_out, parquet_out) if p is not None]
    if written:
        err.print(
            f"{len(rows)} rows from {len(rows) and len({r['sop_instance_uid'] for r in rows})} "
            f"objects written to {', '.join(written)}"
        )
    if unreadable:
        raise typer.Exit(1)
