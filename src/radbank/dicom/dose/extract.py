"""`extract(dataset)`: the dose report of one DICOM object, or None when it has no dose;
`extract_bytes(data)`: the same from the object's file bytes, without pydicom where it can.

A structured report holding a dose template (X-Ray Radiation Dose SR, Radiopharmaceutical
Radiation Dose SR, or an Enhanced, Comprehensive or other SR carrying TID 10001, 10011 or
10021) is read by `radbank.dicom.dose.sr`; an image whose header holds dose or exposure
values by `radbank.dicom.dose.header`. `extract` never raises on odd input: a value that
cannot be read is left out and said in a `Finding`; an object that cannot be read at all
gives a report with no values and one `unreadable-object` finding.

Finding codes, each with a message naming the item and what was done:
- `sr-class`: the dose template is in an SR class other than the dose SR classes, or
  under another document title; it was read the same way.
- `missing-mandatory`: an item the template requires is absent (named, with its event).
- `unit-not-ucum`: a unit code that is not UCUM ("mGycm", "Gym2", "uAs"), read as the
  UCUM unit it spells.
- `unit-converted`: a unit other than the template's (DAP in dGy.cm2), converted.
- `unit-missing`, `unit-misplaced`, `unit-scheme`, `unit-unknown`: no unit (the
  template's assumed when it has only one), a unit outside the Measured Value Sequence or
  written in the number, a unit coded outside UCUM, a unit that cannot be converted (the
  value is then not kept).
- `unit-assumed`: a header value read in the other unit its module family uses.
- `value-missing`, `value-misplaced`, `value-unreadable`: a NUM item without a value, with
  its value outside the Measured Value Sequence, or with no readable number.
- `multi-value`, `multi-value-separator`, `decimal-comma`: several values where one is
  expected (the first kept), values separated by a character other than the backslash,
  a decimal comma.
- `retired-code`: a retired concept code read as its replacement.
- `private-container`: a standard row found inside a vendor's private container.
- `multiple-sources`, `multiple-planes`: dual-source CT, biplane projection X-ray.
- `total-mismatch`: the accumulated values disagree with the events.
- `study-uid-mismatch`: the report's scope names another study than the object's.
- `no-structured-dose`: a dose screen captured as pixels (secondary capture).
- `free-text-dose`: dose values only in free text, not extracted.
- `filter-values`, `per-frame-mean`, `time-without-date`, `header-value-not-kept`:
  header values paired, averaged over frames, completed or left out, as said.
- `unreadable-item`, `unreadable-object`: a content item or the object could not be read.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset

from radbank.dicom.dose import _part10, _values
from radbank.dicom.dose._read import Findings
from radbank.dicom.dose._view import DataSetView, PydicomView
from radbank.dicom.dose.header import has_header_dose, report_from_header
from radbank.dicom.dose.model import DoseReport, Finding
from radbank.dicom.dose.sr import dose_content, report_from_sr

__all__ = ["extract", "extract_bytes"]


def extract(dataset: Dataset) -> DoseReport | None:
    """The dose report of one object: from its dose template, else from its header.

    Returns None when the object carries neither (an MR image, a text report).
    """
    return extract_from(PydicomView(dataset))


def extract_bytes(data: bytes | memoryview) -> DoseReport | None:
    """`extract` of the object a DICOM file holds (Part 10, or a data set without
    preamble and file meta information), read from its bytes.

    The result is the one `extract(pydicom.dcmread(file, force=True))` gives, read here
    without pydicom where `_part10` can (most files, about 30 times faster), else with
    pydicom. A file pydicom cannot read gives a report with one `unreadable-object`
    finding; nothing raises.
    """
    if _values.pydicom_at_defaults():
        try:
            return extract_from(_part10.read(data))
        except _values.Declined:
            pass
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as error:
        return DoseReport(
            study_instance_uid=None,
            template="unreadable",
            sop_instance_uids=(),
            findings=(Finding("unreadable-object", _unreadable("the file", error), ""),),
        )
    return extract(dataset)


def extract_from(dataset: DataSetView) -> DoseReport | None:
    """`extract` on any view of the object's data set."""
    sop_instance_uid = ""
    findings = Findings(sop_instance_uid)
    try:
        sop_instance_uid = dataset.text("SOPInstanceUID") or ""
        findings = Findings(sop_instance_uid)
        if not sop_instance_uid:
            findings.add(
                "missing-mandatory",
                "SOP Instance UID is missing in the object; its values cannot be traced back to it",
            )
        tree = dose_content(dataset, findings)
        if tree is not None:
            return report_from_sr(dataset, tree, sop_instance_uid, findings)
        if has_header_dose(dataset):
            return report_from_header(dataset, sop_instance_uid, findings)
    except Exception as error:
        # Robustness is the contract: ingest must go on with the next object, and the
        # finding says what to look at.
        findings.add("unreadable-object", _unreadable("the object", error))
        study = None
        try:
            study = dataset.text("StudyInstanceUID")
        except Exception:
            study = None
        return DoseReport(
            study_instance_uid=study,
            template="unreadable",
            sop_instance_uids=(sop_instance_uid,) if sop_instance_uid else (),
            findings=findings.all(),
        )
    return None


def _unreadable(what: str, error: Exception) -> str:
    return (
        f"{what} could not be read as a dose report ({type(error).__name__}: {error}); no "
        "value was extracted. Check it with a DICOM validator such as dciodvfy"
    )
