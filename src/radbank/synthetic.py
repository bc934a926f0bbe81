"""Synthetic IDENTIFIED CT data, with patient identity deliberately planted in it.

The demo (`radbank demo`), the tests and the benchmarks need DICOM that looks like what a
hospital sends: names, IDs, addresses, phone numbers, physicians, institutions, accession
numbers, identity hidden in nested sequences and in a private group. De-identification can
then be seen to work: `canary_values` lists the planted strings, and a test scans the
de-identified bytes for them.

Everything here is built from pydicom's own test images (package pydicom-data), needs no
network and is deterministic given a seed: same seed, same bytes. All people, institutions
and numbers are invented. Text is encoded as UTF-8 (Specific Character Set ISO_IR 192), so
`value.encode()` is the byte form to look for.

Public API:
- `demo_patients` / `demo_studies`: a small multi-site CT dataset as pydicom Datasets,
  with a CT dose report (RDSR) per study.
- `planted_ct_instances`: many 512x512 CT Part 10 files as bytes, fast, for ingest benchmarks.
- `write_files`: write Datasets as Part 10 files under a folder.
- `canary_values`: the identifying strings planted in a dataset.
- `PRIVATE_GROUP` / `PRIVATE_CREATOR`: where the planted private identity block lives.
"""

from __future__ import annotations

import datetime
import random
import re
import struct
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pydicom
from pydicom.charset import convert_encodings
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset, validate_file_meta
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

__all__ = [
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "SyntheticPatient",
    "canary_values",
    "demo_patients",
    "demo_studies",
    "planted_ct_instances",
    "write_files",
]

PRIVATE_CREATOR = "RADBANK SYNTHETIC IDENTITY"
PRIVATE_GROUP = 0x0033
# Retired Detached Patient Management SOP Class: what old RIS/PACS put in
# ReferencedPatientSequence, and the item still carries a patient-specific UID.
_DETACHED_PATIENT_MANAGEMENT = "1.2.840.10008.3.1.2.1.1"
_CHARSET = "ISO_IR 192"


@dataclass(frozen=True)
class SyntheticPatient:
    """One invented patient, as registered at one site."""

    patient_id: str
    issuer: str
    name: str  # DICOM PN: Family^Given
    birth_date: str  # DICOM DA: YYYYMMDD
    sex: str
    site: str  # the site's InstitutionName
    address: str
    telephone: str
    national_id: str  # second identifier, in OtherPatientIDsSequence


@dataclass(frozen=True)
class _Site:
    institution_name: str
    institution_address: str
    department: str
    station_name: str
    manufacturer: str
    model_name: str
    device_serial_number: str
    issuer: str
    id_prefix: str
    city: str
    country_phone: str
    street_names: tuple[str, ...]


_SITES = (
    _Site(
        "Hôpital des Quatre Vents",
        "14 rue des Tilleuls, 69003 Lyon, France",
        "Service d'imagerie médicale",
        "QV-CT-SCAN1",
        "SIEMENS",
        "SOMATOM Definition AS+",
        "SN-73514",
        "HQV-IPP",
        "QV",
        "69003 Lyon",
        "+33 4",
        ("rue Pasteur", "avenue Berthelot", "rue Garibaldi", "cours Gambetta"),
    ),
    _Site(
        "Klinikum Ahornfeld",
        "Ahornfeldstraße 40, 80339 München, Germany",
        "Institut für Radiologie",
        "KAF-CT02",
        "GE MEDICAL SYSTEMS",
        "Revolution EVO",
        "GE-880412",
        "KAF-PATNR",
        "KA",
        "80339 München",
        "+49 89",
        ("Lindwurmstraße", "Schwanthalerstraße", "Bergmannstraße", "Westendstraße"),
    ),
    _Site(
        "Ospedale Santa Clelia",
        "Via Giuseppe Verdi 88, 20121 Milano, Italy",
        "Radiologia Diagnostica",
        "OSC_CT_64",
        "Philips",
        "Brilliance 64",
        "PH-20931",
        "OSC-NOSOLOGICO",
        "SC",
        "20121 Milano",
        "+39 02",
        ("Via Solferino", "Corso Magenta", "Via Torino", "Viale Monza"),
    ),
    _Site(
        "Hospital Costa Serena",
        "Calle del Almendro 15, 46001 Valencia, Spain",
        "Servicio de Radiodiagnóstico",
        "HCS-TC1",
        "TOSHIBA",
        "Aquilion ONE",
        "TSB-4471",
        "HCS-NHC",
        "CS",
        "46001 Valencia",
        "+34 96",
        ("Calle de Colón", "Avenida del Puerto", "Calle de la Paz", "Gran Vía"),
    ),
    _Site(
        "Szpital pod Brzozami",
        "ul. Brzozowa 3, 30-001 Kraków, Poland",
        "Zakład Radiologii",
        "SPB-TK-01",
        "Canon Medical Systems",
        "Aquilion Prime SP",
        "CN-55102",
        "SPB-NRKART",
        "PB",
        "30-001 Kraków",
        "+48 12",
        ("ul. Długa", "ul. Lubicz", "ul. Karmelicka", "ul. Starowiślna"),
    ),
)

_FAMILY_NAMES = (
    "Müller",
    "Lefèvre",
    "Rossignoli",
    "García-Olmedo",
    "Kowalczyk",
    "Van Aerde",
    "Andersson",
    "Papadakis",
    "Dubreuil",
    "Schäfermeyer",
    "Bianchetti",
    "Nowakowski",
    "Fernández",
    "Hartmann",
    "Moreau-Lenoir",
    "Castellani",
    "Wiśniewska",
    "O'Callaghan",
    "Lindqvist",
    "Petrović",
    "Fontaine",
    "Zimmermann",
    "Esposito",
    "Jankowski",
    "Delacroix",
    "Marchetti",
    "Ødegård",
    "Kovačević",
    "Rodríguez",
    "Brandstätter",
)
_GIVEN_NAMES = {
    "F": (
        "Amélie",
        "Sabine",
        "Giulia",
        "Lucía",
        "Zofia",
        "Ingrid",
        "Eleni",
        "Margaux",
        "Franziska",
        "Chiara",
        "Agnieszka",
        "Carmen",
        "Siobhan",
        "Astrid",
        "Milena",
    ),
    "M": (
        "Jürgen",
        "Étienne",
        "Alessandro",
        "Joaquín",
        "Tomasz",
        "Henrik",
        "Dimitrios",
        "Laurent",
        "Wolfgang",
        "Matteo",
        "Krzysztof",
        "Álvaro",
        "Declan",
        "Bjørn",
        "Dragan",
    ),
}
_STAFF_NAMES = (
    "Berger^Claire",
    "Rinaldi^Paolo",
    "Krüger^Anja",
    "Navarro^Iñigo",
    "Zieliński^Marek",
    "Girard^Sophie",
    "Hoffmann^Stefan",
    "Conti^Federica",
    "Sánchez^Elena",
    "Wójcik^Ewa",
    "Lambert^Hugo",
    "Vogel^Martina",
    "Greco^Lorenzo",
    "Romero^Pablo",
    "Mazur^Anna",
)


@dataclass(frozen=True)
class _Protocol:
    study_description: str
    body_part: str
    protocol_name: str
    phantom: tuple[str, str]  # CTDI phantom: (code value, code meaning), DCM
    kvp: int
    tube_current_ma: tuple[int, int]
    ctdivol_mgy: tuple[float, float]
    series: tuple[tuple[str, str, str], ...]  # (SeriesDescription, SliceThickness, kernel)


_HEAD_PHANTOM = ("113690", "IEC Head Dosimetry Phantom")
_BODY_PHANTOM = ("113691", "IEC Body Dosimetry Phantom")
_PROTOCOLS = (
    _Protocol(
        "CT HEAD WITHOUT CONTRAST",
        "HEAD",
        "Routine Head",
        _HEAD_PHANTOM,
        120,
        (250, 350),
        (42.0, 62.0),
        (("Head 5mm", "5", "H30s"), ("Head 0.75mm bone", "0.75", "H70h")),
    ),
    _Protocol(
        "CT CHEST WITH CONTRAST",
        "CHEST",
        "Thorax CE",
        _BODY_PHANTOM,
        120,
        (110, 240),
        (5.5, 13.0),
        (("Thorax 5mm", "5", "B31f"), ("Lung 1mm", "1", "B70f")),
    ),
    _Protocol(
        "CT ABDOMEN PELVIS WITH CONTRAST",
        "ABDOMENPELVIS",
        "Abdomen Pelvis PV",
        _BODY_PHANTOM,
        100,
        (150, 300),
        (7.0, 16.0),
        (("AbdPelvis 5mm", "5", "B30f"), ("AbdPelvis 2mm", "2", "B30f")),
    ),
    _Protocol(
        "CT CHEST ABDOMEN PELVIS",
        "CHESTABDPELVIS",
        "Staging CAP",
        _BODY_PHANTOM,
        120,
        (140, 280),
        (8.0, 18.0),
        (("CAP 5mm", "5", "B31f"), ("CAP 1.5mm", "1.5", "B31f")),
    ),
)


@dataclass(frozen=True)
class _Study:
    key: tuple[object, ...]  # entropy for the study's UIDs
    date: datetime.date
    time: str
    accession_number: str
    study_id: str
    requested_procedure_id: str
    scheduled_procedure_step_id: str
    referring_physician: str
    reading_physician: str
    protocol: _Protocol
    tube_current_ma: int
    ctdivol_mgy: float


@dataclass(frozen=True)
class _Series:
    number: int
    description: str
    slice_thickness: str
    kernel: str
    time: str
    operator: str
    operator_staff_id: str
    performing_physician: str


@dataclass(frozen=True)
class _PixelModule:
    """What a source test image lends to every synthetic instance."""

    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    pixel_representation: int
    pixel_spacing: tuple[str, str]
    origin_xy: tuple[float, float]
    rescale_intercept: str
    rescale_slope: str
    pixel_padding_value: int | None
    pixel_data: bytes


@cache
def _pixel_module(filename: str) -> _PixelModule:
    path = get_testdata_file(filename)
    if path is None:
        raise FileNotFoundError(
            f"pydicom test file {filename} not found: install the pydicom-data package"
        )
    source = pydicom.dcmread(path)
    padding = source.get("PixelPaddingValue")
    return _PixelModule(
        rows=source.Rows,
        columns=source.Columns,
        bits_allocated=source.BitsAllocated,
        bits_stored=source.BitsStored,
        high_bit=source.HighBit,
        pixel_representation=source.PixelRepresentation,
        pixel_spacing=tuple(f"{float(v):g}" for v in source.PixelSpacing),
        origin_xy=(float(source.ImagePositionPatient[0]), float(source.ImagePositionPatient[1])),
        rescale_intercept=f"{float(source.RescaleIntercept):g}",
        rescale_slope=f"{float(source.RescaleSlope):g}",
        pixel_padding_value=None if padding is None else int(padding),
        pixel_data=bytes(source.PixelData),
    )


def _uid(*parts: object) -> UID:
    """A 2.25 UID that depends only on `parts` (which always include the seed).

    Not pydicom's generate_uid: with prefix=None it ignores entropy_srcs and returns a
    random UUID. A name-based UUID (PS3.5 B.2) gives the same form, reproducibly.
    """
    name = "|".join(["radbank.synthetic", *map(str, parts)])
    return UID(f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}")


def _site(index: int) -> _Site:
    site = _SITES[index % len(_SITES)]
    cycle = index // len(_SITES)
    if cycle == 0:
        return site
    # More sites than the table holds: same look, distinct identity.
    return _Site(
        f"{site.institution_name} {cycle + 1}",
        site.institution_address,
        site.department,
        f"{site.station_name}-{cycle + 1}",
        site.manufacturer,
        site.model_name,
        f"{site.device_serial_number}-{cycle + 1}",
        f"{site.issuer}-{cycle + 1}",
        f"{site.id_prefix}{cycle + 1}",
        site.city,
        site.country_phone,
        site.street_names,
    )


def _phone(rng: random.Random, site: _Site) -> str:
    return f"{site.country_phone} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"


def demo_patients(
    *, sites: int = 3, patients_per_site: int = 4, seed: int = 1
) -> list[SyntheticPatient]:
    """The invented patients of `demo_studies`: distinct people, one issuer per site."""
    if sites < 1 or patients_per_site < 1:
        raise ValueError("sites and patients_per_site must be at least 1")
    rng = random.Random(f"radbank.synthetic.patients:{seed}")
    capacity = len(_FAMILY_NAMES) * len(_GIVEN_NAMES["M"])
    if sites * patients_per_site > capacity:
        raise ValueError(
            f"at most {capacity} distinct synthetic patients can be made, "
            f"{sites * patients_per_site} were asked for"
        )
    used_names: set[str] = set()
    used_ids: set[str] = set()
    patients = []
    for site_index in range(sites):
        site = _site(site_index)
        for _ in range(patients_per_site):
            sex = "O" if rng.random() < 0.05 else rng.choice("FM")
            while True:
                given_pool = _GIVEN_NAMES["M" if sex == "O" else sex]
                name = f"{rng.choice(_FAMILY_NAMES)}^{rng.choice(given_pool)}"
                if name not in used_names:
                    break
            used_names.add(name)
            while True:
                patient_id = f"{site.id_prefix}{rng.randint(1_000_000, 9_999_999)}"
                if patient_id not in used_ids:
                    break
            used_ids.add(patient_id)
            birth = datetime.date(1935, 1, 1) + datetime.timedelta(days=rng.randint(0, 25_500))
            address = f"{rng.randint(1, 180)} {rng.choice(site.street_names)}, {site.city}"
            patients.append(
                SyntheticPatient(
                    patient_id=patient_id,
                    issuer=site.issuer,
                    name=name,
                    birth_date=birth.strftime("%Y%m%d"),
                    sex=sex,
                    site=site.institution_name,
                    address=address,
                    telephone=_phone(rng, site),
                    national_id=f"NHI-{rng.randint(10**11, 10**12 - 1)}",
                )
            )
    return patients


def _make_study(
    rng: random.Random, key: tuple[object, ...], number: int, patient: SyntheticPatient
) -> _Study:
    protocol = rng.choice(_PROTOCOLS)
    date = datetime.date(2019, 1, 2) + datetime.timedelta(days=rng.randint(0, 5 * 365))
    lo_ma, hi_ma = protocol.tube_current_ma
    lo_ctdi, hi_ctdi = protocol.ctdivol_mgy
    return _Study(
        key=key,
        date=date,
        time=f"{rng.randint(7, 18):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}",
        accession_number=f"ACC{rng.randint(10**8, 10**9 - 1)}",
        study_id=f"S{patient.patient_id[-4:]}{number:02d}{rng.randint(100, 999)}",
        requested_procedure_id=f"RP{rng.randint(10**7, 10**8 - 1)}",
        scheduled_procedure_step_id=f"SPS{rng.randint(10**7, 10**8 - 1)}",
        referring_physician=rng.choice(_STAFF_NAMES),
        reading_physician=rng.choice(_STAFF_NAMES),
        protocol=protocol,
        tube_current_ma=rng.randint(lo_ma, hi_ma),
        ctdivol_mgy=round(rng.uniform(lo_ctdi, hi_ctdi), 2),
    )


def _make_series(rng: random.Random, study: _Study, number: int) -> _Series:
    description, thickness, kernel = study.protocol.series[
        (number - 1) % len(study.protocol.series)
    ]
    minutes = int(study.time[:2]) * 60 + int(study.time[2:4]) + 2 + number
    return _Series(
        number=number,
        description=description,
        slice_thickness=thickness,
        kernel=kernel,
        time=f"{minutes // 60 % 24:02d}{minutes % 60:02d}{study.time[4:6]}",
        operator=rng.choice(_STAFF_NAMES),
        operator_staff_id=f"STAFF-{rng.randint(10_000, 99_999)}",
        performing_physician=rng.choice(_STAFF_NAMES),
    )


def _age(birth_date: str, on: datetime.date) -> str:
    born = datetime.datetime.strptime(birth_date, "%Y%m%d").date()
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return f"{years:03d}Y"


def _ct_instance(
    site: _Site,
    patient: SyntheticPatient,
    study: _Study,
    series: _Series,
    instance_number: int,
    pixels: _PixelModule,
) -> Dataset:
    """One CT Image Storage instance with identity planted at every level."""
    ds = Dataset()
    study_date = study.date.strftime("%Y%m%d")
    sop_instance_uid = _uid(*study.key, "instance", series.number, instance_number)

    # SOP Common
    ds.SpecificCharacterSet = _CHARSET
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = study_date
    ds.InstanceCreationTime = series.time
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_instance_uid

    # General Study, Patient Study, Patient
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.AcquisitionDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = study.time
    ds.SeriesTime = series.time
    ds.AcquisitionTime = series.time
    ds.ContentTime = series.time
    ds.AccessionNumber = study.accession_number
    ds.IssuerOfAccessionNumberSequence = Sequence(
        [_item(LocalNamespaceEntityID=f"{site.issuer}-RIS")]
    )
    ds.Modality = "CT"
    ds.Manufacturer = site.manufacturer
    ds.InstitutionName = site.institution_name
    ds.InstitutionAddress = site.institution_address
    ds.ReferringPhysicianName = study.referring_physician
    ds.StationName = site.station_name
    ds.StudyDescription = study.protocol.study_description
    ds.SeriesDescription = series.description
    ds.InstitutionalDepartmentName = site.department
    ds.PerformingPhysicianName = series.performing_physician
    ds.NameOfPhysiciansReadingStudy = study.reading_physician
    ds.OperatorsName = series.operator
    ds.OperatorIdentificationSequence = Sequence(
        [_person_identification(series.operator, series.operator_staff_id, site)]
    )
    ds.ManufacturerModelName = site.model_name
    ds.ReferencedPatientSequence = Sequence([_referenced_patient(patient, study)])
    ds.IrradiationEventUID = _uid(*study.key, "irradiation", series.number)
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = patient.issuer
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.OtherPatientIDsSequence = Sequence([_other_patient_id(patient)])
    ds.PatientAge = _age(patient.birth_date, study.date)
    ds.PatientSize = "1.72" if patient.sex == "M" else "1.64"
    ds.PatientWeight = "78" if patient.sex == "M" else "63"
    ds.PatientAddress = patient.address
    ds.PatientTelephoneNumbers = patient.telephone
    _plant_private_identity(ds, patient, study)

    # CT acquisition and dose header attributes (General Series, CT Image, CT Acquisition)
    protocol = study.protocol
    exposure_time_ms = 1000
    ds.BodyPartExamined = protocol.body_part
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = series.slice_thickness
    ds.KVP = str(protocol.kvp)
    ds.SpacingBetweenSlices = series.slice_thickness
    ds.DataCollectionDiameter = "500"
    ds.DeviceSerialNumber = site.device_serial_number
    ds.SoftwareVersions = "synthetic 1.0"
    ds.ProtocolName = protocol.protocol_name
    ds.ReconstructionDiameter = f"{float(pixels.pixel_spacing[0]) * pixels.columns:.1f}"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.RotationDirection = "CW"
    ds.ExposureTime = str(exposure_time_ms)
    ds.XRayTubeCurrent = str(study.tube_current_ma)
    ds.Exposure = str(study.tube_current_ma * exposure_time_ms // 1000)
    ds.FilterType = "BODY FILTER" if protocol.body_part != "HEAD" else "HEAD FILTER"
    ds.ConvolutionKernel = series.kernel
    ds.PatientPosition = "HFS"
    ds.RevolutionTime = 0.5
    ds.SingleCollimationWidth = 0.6
    ds.TotalCollimationWidth = 38.4
    ds.TableSpeed = 46.1
    ds.SpiralPitchFactor = 1.2
    ds.CTDIvol = study.ctdivol_mgy
    ds.CTDIPhantomTypeCodeSequence = Sequence(
        [
            _item(
                CodeValue=protocol.phantom[0],
                CodingSchemeDesignator="DCM",
                CodeMeaning=protocol.phantom[1],
            )
        ]
    )

    # Frame of Reference, General Series, General Image, Image Plane
    ds.StudyInstanceUID = _uid(*study.key, "study")
    ds.SeriesInstanceUID = _uid(*study.key, "series", series.number)
    ds.StudyID = study.study_id
    ds.SeriesNumber = str(series.number)
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = str(instance_number)
    z_mm = float(series.slice_thickness) * (instance_number - 1)
    ds.ImagePositionPatient = [
        f"{pixels.origin_xy[0]:.3f}",
        f"{pixels.origin_xy[1]:.3f}",
        f"{z_mm:.3f}",
    ]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = _uid(*study.key, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{z_mm:.3f}"

    # Image Pixel, CT Image
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = pixels.rows
    ds.Columns = pixels.columns
    ds.PixelSpacing = list(pixels.pixel_spacing)
    ds.BitsAllocated = pixels.bits_allocated
    ds.BitsStored = pixels.bits_stored
    ds.HighBit = pixels.high_bit
    ds.PixelRepresentation = pixels.pixel_representation
    if pixels.pixel_padding_value is not None:
        ds.add_new(
            0x00280120,
            "SS" if pixels.pixel_representation else "US",
            pixels.pixel_padding_value,
        )
    ds.WindowCenter = "40" if protocol.body_part == "HEAD" else "50"
    ds.WindowWidth = "80" if protocol.body_part == "HEAD" else "400"
    ds.RescaleIntercept = pixels.rescale_intercept
    ds.RescaleSlope = pixels.rescale_slope
    ds.RescaleType = "HU"

    # Request Attributes and Performed Procedure Step: identity nested in a sequence.
    ds.RequestingPhysician = study.referring_physician
    ds.PerformedProcedureStepStartDate = study_date
    ds.PerformedProcedureStepStartTime = study.time
    ds.PerformedProcedureStepID = f"PPS{study.scheduled_procedure_step_id[3:]}"
    ds.PerformedProcedureStepDescription = protocol.study_description
    ds.RequestAttributesSequence = Sequence(
        [
            _item(
                AccessionNumber=study.accession_number,
                StudyInstanceUID=ds.StudyInstanceUID,
                RequestedProcedureDescription=protocol.study_description,
                ScheduledProcedureStepID=study.scheduled_procedure_step_id,
                RequestedProcedureID=study.requested_procedure_id,
            )
        ]
    )

    ds.PixelData = pixels.pixel_data
    ds["PixelData"].VR = "OW"

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    validate_file_meta(ds.file_meta, enforce_standard=True)
    return ds


def _item(**keywords: object) -> Dataset:
    item = Dataset()
    for keyword, value in keywords.items():
        setattr(item, keyword, value)
    return item


def _person_identification(name: str, staff_id: str, site: _Site) -> Dataset:
    code = _item(
        CodeValue=staff_id, CodingSchemeDesignator="99STAFF", CodeMeaning=name.replace("^", " ")
    )
    return _item(
        PersonIdentificationCodeSequence=Sequence([code]),
        PersonTelephoneNumbers=f"{site.country_phone} 00 {staff_id[-4:-2]} {staff_id[-2:]}",
        InstitutionName=site.institution_name,
        InstitutionAddress=site.institution_address,
    )


def _referenced_patient(patient: SyntheticPatient, study: _Study) -> Dataset:
    # Keyed by seed and patient only, so every study of the patient references the same UID.
    return _item(
        ReferencedSOPClassUID=_DETACHED_PATIENT_MANAGEMENT,
        ReferencedSOPInstanceUID=_uid(*study.key[:2], "patient", patient.patient_id),
    )


def _other_patient_id(patient: SyntheticPatient) -> Dataset:
    return _item(
        PatientID=patient.national_id,
        IssuerOfPatientID="NATIONAL-HEALTH-ID",
        TypeOfPatientID="TEXT",
    )


def _plant_private_identity(ds: Dataset, patient: SyntheticPatient, study: _Study) -> None:
    """A vendor-style private group copying identity, as real modalities do."""
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    family, given = patient.name.split("^")
    born = patient.birth_date
    block.add_new(0x10, "LO", patient.name)
    block.add_new(0x11, "LO", f"MRN {patient.patient_id}")
    block.add_new(
        0x12,
        "LT",
        (
            f"Pt {given} {family}, born {born[6:]}/{born[4:6]}/{born[:4]}, "
            f"tel {patient.telephone}, ref. {study.referring_physician.replace('^', ' ')}"
        ),
    )
    nested = Dataset()
    nested.PatientName = patient.name
    nested.PatientID = patient.patient_id
    nested.AccessionNumber = study.accession_number
    block.add_new(0x13, "SQ", Sequence([nested]))


def demo_studies(
    *,
    sites: int = 3,
    patients_per_site: int = 4,
    studies_per_patient: int = 2,
    series_per_study: int = 2,
    instances_per_series: int = 3,
    seed: int = 1,
    dose_reports: bool = True,
) -> Iterator[Dataset]:
    """A multi-site identified CT dataset, instance by instance (pixels from CT_small.dcm).

    Yields sites x patients_per_site x studies_per_patient x series_per_study x
    instances_per_series Datasets, each with file_meta (Explicit VR Little Endian). With
    `dose_reports`, each study's images are followed by its CT dose report (an X-Ray
    Radiation Dose SR from `radbank.synthetic_dose`: same patient, study and scanner, a
    localizer and one irradiation event per series, with the series' Irradiation Event
    UID and CTDIvol), one more Dataset per study.
    """
    # imported here: radbank.synthetic_dose builds on this module
    from radbank.synthetic_dose import ct_rdsr

    if min(studies_per_patient, series_per_study, instances_per_series) < 1:
        raise ValueError("studies, series and instances per parent must be at least 1")
    pixels = _pixel_module("CT_small.dcm")
    patients = demo_patients(sites=sites, patients_per_site=patients_per_site, seed=seed)
    rng = random.Random(f"radbank.synthetic.demo:{seed}")
    for index, patient in enumerate(patients):
        site = _site(index // patients_per_site)
        for study_number in range(1, studies_per_patient + 1):
            key = ("demo", seed, patient.patient_id, study_number)
            study = _make_study(rng, key, study_number, patient)
            study_series = [_make_series(rng, study, n) for n in range(1, series_per_study + 1)]
            for series in study_series:
                for instance_number in range(1, instances_per_series + 1):
                    yield _ct_instance(site, patient, study, series, instance_number, pixels)
            if dose_reports:
                # from fresh images: the caller may have changed the ones yielded
                images = [_ct_instance(site, patient, study, s, 1, pixels) for s in study_series]
                yield ct_rdsr(seed, images=images)


def planted_ct_instances(
    n_instances: int = 2000, n_studies: int = 40, *, seed: int = 1
) -> Iterator[bytes]:
    """Identified 512x512 CT Part 10 files (from 693_UNCR.dcm, ~0.5 MB each), as bytes.

    The instances are spread evenly over `n_studies` one-series studies of several patients
    (about four studies each) at two sites. Each study's header is encoded once; per instance
    only the SOP Instance UID, Instance Number and slice position are re-encoded, so
    generation runs at thousands of instances per second.
    """
    if n_instances < 0 or n_studies < 1:
        raise ValueError("n_instances must be >= 0 and n_studies >= 1")
    pixels = _pixel_module("693_UNCR.dcm")
    n_patients = max(1, (n_studies + 3) // 4)
    n_sites = min(2, n_patients)
    patients = demo_patients(
        sites=n_sites, patients_per_site=(n_patients + n_sites - 1) // n_sites, seed=seed
    )
    patients_per_site = len(patients) // n_sites
    rng = random.Random(f"radbank.synthetic.planted:{seed}")
    base, extra = divmod(n_instances, n_studies)
    for study_index in range(n_studies):
        count = base + (1 if study_index < extra else 0)
        if count == 0:
            continue
        patient_index = study_index % len(patients)
        patient = patients[patient_index]
        site = _site(patient_index // patients_per_site)
        key = ("planted", seed, study_index)
        study = _make_study(rng, key, study_index + 1, patient)
        series = _make_series(rng, study, 1)
        template = _PartTenTemplate(_ct_instance(site, patient, study, series, 1, pixels))
        x_mm, y_mm = (f"{v:.3f}" for v in pixels.origin_xy)
        thickness_mm = float(series.slice_thickness)
        for instance_number in range(1, count + 1):
            z_mm = f"{thickness_mm * (instance_number - 1):.3f}"
            yield template.render(
                sop_instance_uid=_uid(*key, "instance", series.number, instance_number),
                instance_number=str(instance_number),
                image_position=[x_mm, y_mm, z_mm],
                slice_location=z_mm,
            )


_MEDIA_STORAGE_SOP_INSTANCE_UID = Tag(0x00020003)
_SOP_INSTANCE_UID = Tag(0x00080018)
_INSTANCE_NUMBER = Tag(0x00200013)
_IMAGE_POSITION_PATIENT = Tag(0x00200032)
_SLICE_LOCATION = Tag(0x00201041)


def _encode(elem: DataElement, encodings: list[str] | None = None) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


class _PartTenTemplate:
    """A Part 10 file pre-encoded in fixed byte runs around the per-instance elements.

    Encoding every element with pydicom costs ~1.5 ms per 512x512 instance; re-encoding
    only the few that change keeps the benchmark's data generation far from its bottleneck.
    The result is byte-identical to pydicom's own dcmwrite(enforce_file_format=True).
    """

    _VARIABLE = (_SOP_INSTANCE_UID, _INSTANCE_NUMBER, _IMAGE_POSITION_PATIENT, _SLICE_LOCATION)

    def __init__(self, ds: Dataset) -> None:
        meta = [elem for elem in ds.file_meta if elem.tag.element != 0]  # not group length
        self._meta_head = b"".join(
            _encode(elem) for elem in meta if elem.tag < _MEDIA_STORAGE_SOP_INSTANCE_UID
        )
        self._meta_tail = b"".join(
            _encode(elem) for elem in meta if elem.tag > _MEDIA_STORAGE_SOP_INSTANCE_UID
        )
        encodings = convert_encodings(ds.SpecificCharacterSet)
        runs: list[bytes] = []
        current: list[bytes] = []
        for elem in ds:
            if elem.tag in self._VARIABLE:
                runs.append(b"".join(current))
                current = []
            else:
                current.append(_encode(elem, encodings))
        runs.append(b"".join(current))
        self._runs = runs

    def render(
        self,
        *,
        sop_instance_uid: str,
        instance_number: str,
        image_position: list[str],
        slice_location: str,
    ) -> bytes:
        meta_uid = _encode(DataElement(_MEDIA_STORAGE_SOP_INSTANCE_UID, "UI", sop_instance_uid))
        meta_length = len(self._meta_head) + len(meta_uid) + len(self._meta_tail)
        runs = self._runs
        return b"".join(
            (
                b"\0" * 128,
                b"DICM",
                struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, meta_length),
                self._meta_head,
                meta_uid,
                self._meta_tail,
                runs[0],
                _encode(DataElement(_SOP_INSTANCE_UID, "UI", sop_instance_uid)),
                runs[1],
                _encode(DataElement(_INSTANCE_NUMBER, "IS", instance_number)),
                runs[2],
                _encode(DataElement(_IMAGE_POSITION_PATIENT, "DS", image_position)),
                runs[3],
                _encode(DataElement(_SLICE_LOCATION, "DS", slice_location)),
                runs[4],
            )
        )


def _path_part(value: object, fallback: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", str(value or "")).encode("ascii", "ignore")
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text.decode()).strip("._")
    return text or fallback


def write_files(datasets: Iterable[Dataset], folder: Path) -> list[Path]:
    """Write each Dataset as a Part 10 file: folder/site/patient/study/series/NNNN.dcm.

    site is the InstitutionName, patient the PatientID, study the AccessionNumber (else the
    Study Instance UID), series the Series Number. Two datasets landing on the same path is
    an error rather than a silent overwrite.
    """
    folder = Path(folder)
    written: list[Path] = []
    seen: set[Path] = set()
    for ds in datasets:
        path = (
            folder
            / _path_part(ds.get("InstitutionName"), "site")
            / _path_part(ds.get("PatientID"), "patient")
            / _path_part(ds.get("AccessionNumber") or ds.get("StudyInstanceUID"), "study")
            / f"series-{_path_part(ds.get('SeriesNumber'), '0')}"
            / f"{_path_part(ds.get('InstanceNumber'), '0').zfill(4)}.dcm"
        )
        if path in seen:
            raise ValueError(
                f"two datasets map to {path} (second one: SOP Instance UID "
                f"{ds.get('SOPInstanceUID', 'unknown')}); give them distinct Instance Numbers"
            )
        seen.add(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


# Attributes that carry identity in the synthetic data and that the PS3.15 Basic
# Application Level Confidentiality Profile removes or replaces.
_IDENTITY_KEYWORDS = frozenset(
    {
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "PatientBirthDate",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "PatientBirthName",
        "OtherPatientIDs",
        "MedicalRecordLocator",
        "ReferringPhysicianName",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "PhysiciansOfRecord",
        "PerformingPhysicianName",
        "NameOfPhysiciansReadingStudy",
        "OperatorsName",
        "RequestingPhysician",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "StationName",
        "DeviceSerialNumber",
        "AccessionNumber",
        "StudyID",
        "RequestedProcedureID",
        "ScheduledProcedureStepID",
        "PerformedProcedureStepID",
        "LocalNamespaceEntityID",
        "PersonTelephoneNumbers",
        "PersonAddress",
    }
)
# Inside a Person Identification Code Sequence, the code itself is the person.
_PERSON_CODE_KEYWORDS = frozenset({"CodeValue", "CodeMeaning"})
# Shorter strings turn up by chance in pixel data and would make byte scans flaky.
_MIN_CANARY_LENGTH = 4


def canary_values(dataset: Dataset) -> list[str]:
    """The identifying strings planted in `dataset`, to scan de-identified output for.

    Looks at the identity attributes above at any depth of nesting, the codes of Person
    Identification Code Sequences, and every text value of the radbank synthetic private
    group. For person names it adds the family name alone. Values shorter than 4
    characters are left out. Encode with UTF-8 to scan bytes. UIDs are not included: check
    them by comparing UID attributes directly.
    """
    return list(canary_attributes(dataset))


def canary_attributes(dataset: Dataset) -> dict[str, set[str]]:
    """`canary_values` with, for each value, the paths of the attributes that hold it
    ("StationName", "RequestAttributesSequence/RequestedProcedureID"; "" for the synthetic
    private group): a profile that keeps such an attribute on purpose (device identity,
    say) is expected to leave that value."""
    found: dict[str, set[str]] = {}
    _collect(dataset, found, in_person_code=False)
    return found


def _collect(
    ds: Dataset, found: dict[str, set[str]], *, in_person_code: bool, path: str = ""
) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            nested = elem.keyword == "PersonIdentificationCodeSequence"
            for item in elem.value:
                _collect(item, found, in_person_code=nested, path=f"{path}{elem.keyword}/")
            continue
        if elem.tag.is_private:
            if not _in_synthetic_private_block(ds, elem.tag):
                continue
        elif not (
            elem.keyword in _IDENTITY_KEYWORDS
            or (in_person_code and elem.keyword in _PERSON_CODE_KEYWORDS)
        ):
            continue
        if elem.VR in ("OB", "OW", "UN") or elem.value is None:
            continue
        values = elem.value if elem.VM > 1 else [elem.value]
        for value in values:
            text = str(value).strip()
            candidates = [text]
            if elem.VR == "PN":
                candidates.append(str(value.family_name))
            for candidate in candidates:
                if len(candidate) >= _MIN_CANARY_LENGTH:
                    found.setdefault(candidate, set()).add(
                        f"{path}{elem.keyword}" if elem.keyword else ""
                    )


def _in_synthetic_private_block(ds: Dataset, tag: BaseTag) -> bool:
    if tag.group != PRIVATE_GROUP or tag.element < 0x1000:
        return False
    creator = ds.get(Tag(tag.group, tag.element >> 8))
    return creator is not None and creator.value == PRIVATE_CREATOR
