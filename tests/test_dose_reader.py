"""The dose rows of CT image headers as ingest reads them: after a series' first slice,
the rows of its event are copied (with each slice's own SOP Instance UID) instead of read
again; what a slice gets must be what reading it gives."""

from __future__ import annotations

import io

import corpus
import pydicom
import pytest
from pydicom.uid import generate_uid

import radbank.ingest.dose
from radbank.ingest.dose import DoseReader, dose_rows


def _slices(ctdivols: list[float]) -> list[tuple[pydicom.Dataset, bytes]]:
    """Slices of one CT series read back from their Part 10 bytes (raw elements, as
    ingest holds them), with the CTDIvol of each."""
    series = generate_uid()
    slices = []
    for number, ctdivol in enumerate(ctdivols, start=1):
        dataset = pydicom.dcmread(corpus.path("CT_small.dcm"))
        dataset.SeriesInstanceUID = series
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.InstanceNumber = number
        dataset.CTDIvol = ctdivol
        dataset.KVP = "120"
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        blob = buffer.getvalue()
        slices.append((pydicom.dcmread(io.BytesIO(blob)), blob))
    return slices


def test_copied_rows_equal_the_rows_read(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = DoseReader()
    slices = _slices([12.5, 12.5, 12.5, 7.25, 12.5])
    read = []
    monkeypatch.setattr(
        radbank.ingest.dose,
        "extract_bytes",
        lambda blob, real=radbank.ingest.dose.extract_bytes: read.append(blob) or real(blob),
    )
    got = [reader.rows(dataset, blob) for dataset, blob in slices]
    assert len(read) == 2  # the first slice of each event is read, the others copied
    monkeypatch.undo()
    assert got == [dose_rows(dataset, blob) for dataset, blob in slices]
    assert [row["ctdivol_mGy"] for rows in got for row in rows] == [12.5, 12.5, 12.5, 7.25, 12.5]
    assert [rows[0]["sop_instance_uid"] for rows in got] == [
        str(dataset.SOPInstanceUID) for dataset, _ in slices
    ]


def test_a_value_set_after_reading_is_not_taken_for_the_bytes_read() -> None:
    """As de-identification sets values: a slice whose CTDIvol was set (not read) gets its
    own rows, not the first slice's."""
    reader = DoseReader()
    (first, first_blob), (second, _) = _slices([12.5, 12.5])
    reader.rows(first, first_blob)
    second.CTDIvol = 30.0
    buffer = io.BytesIO()
    second.save_as(buffer, enforce_file_format=True)
    rows = reader.rows(second, buffer.getvalue())
    assert [row["ctdivol_mGy"] for row in rows] == [30.0]
