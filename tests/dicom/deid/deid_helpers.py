"""Helpers of the de-identification tests: project keys and a small CT instance."""

from __future__ import annotations

import io

import pydicom
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

PROJECT_KEY = b"radbank-test-project-key-0123456789"
OTHER_KEY = b"radbank-other-project-key-9876543210"


def write_bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def make_ct(
    *,
    patient_id: str = "PAT-0001",
    sop_instance_uid: str = "1.2.826.0.1.3680043.8.498.1001",
    study_date: str = "20240305",
) -> Dataset:
    """A minimal CT image header (no pixel data) of a fictitious patient."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2001"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3001"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.4001"
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC123456"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.InstitutionName = "St Example Hospital"
    ds.ReferringPhysicianName = "Doctor^Who"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = "HOSP-A"
    ds.PatientBirthDate = "19600214"
    ds.PatientSex = "F"
    ds.KVP = "120"
    ds.StudyID = "S1"
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    return ds
