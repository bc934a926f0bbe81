"""Synthetic IDENTIFIED X-Ray Radiation Dose SRs (SOP Class 1.2.840.10008.5.1.4.1.1.88.67),
CT and fluoroscopy, at volume, for the tests, the demo and the benchmarks.

What the reports hold (PS3.16 templates, concept codes from pydicom's copy of PS3.16):
- CT: TID 10011 with TID 10012 (accumulated: number of events, DLP total) and one
  TID 10013 CT Acquisition per irradiation event, each with TID 10014 (scanning length,
  collimation, pitch, the X-ray source's kVp and tube current) and TID 10015 (dose check
  alert and notification details) under its CT Dose. A study is a localizer (constant
  angle; its dose is reported tiny, as zero, or not at all, as vendors differ), sometimes
  a bolus-tracking acquisition (stationary), and 1-3 spiral or sequenced acquisitions.
- Fluoroscopy and interventional projection X-ray: TID 10001 with one TID 10002
  accumulated container per plane (TID 10004 fluoro and acquisition totals, TID 10007
  totals) and one TID 10003 event per pedal press or acquisition run: DAP, Dose (RP),
  fluoro mode, pulses, kVp, tube current, pulse width, exposure, copper filter, field size,
  geometry. The neuro rooms are biplane (Plane A and Plane B containers).
- Accumulated values are the exact decimal sums of the event values written.

Identity is planted as in `radbank.synthetic` (same sites, names, private block), so that
de-identification can be seen to remove it while the dose values stay: patient name, IDs,
birth date, sex, age, weight, height, address, telephone and comments; referring, reading
and performing physicians, operators (also as PNAME content items: the Person Observer,
the irradiation-administering technologist and the authorizing physician of each event);
institution, department, station name, device serial number, the device's location;
accession number, study and request IDs; a free-text Comment naming the patient.

Realism, and where the typical values come from (rough medians, not exact figures):
- CT: a study's median CTDIvol per acquisition for a 75 kg adult on a typical scanner is
  set a little under the UK national DRLs adopted in 2022 (UKHSA table of national DRLs,
  updated November 2024), since a DRL is the 75th percentile of facility medians: head
  (acute stroke) 47 mGy and 790 mGy.cm, chest (lung cancer) 8.5 mGy and 290 mGy.cm, CT
  pulmonary angiography 9.1 mGy and 310 mGy.cm, abdomen-pelvis 10 mGy and 530 mGy.cm,
  chest-abdomen-pelvis 660 mGy.cm; low-dose lung screening at about 1.5 mGy, under the
  ACR lung cancer screening limit of 3 mGy for a standard-size patient. DLP is CTDIvol x
  (scanning length + one total collimation of over-ranging) for spiral scans, CTDIvol x
  length for sequenced ones. Head protocols use the 16 cm phantom, body protocols the
  32 cm one; kVp, rotation time, pitch and collimation are those of the scanner and
  protocol, and the tube current is what gives the CTDIvol at them (CTDIw of about
  16 mGy per 100 mAs in the head phantom and 7.5 in the body phantom at 120 kV, scaled
  with kVp^2.5). Dose check notification values follow the AAPM Dose Check guidelines
  (2011): 80 mGy for an adult head, 50 mGy for an adult torso; the alert value 1000 mGy.
- Fluoroscopy: study DAP medians for a 75 kg adult on a typical room, from published
  reference levels: coronary angiography 22 Gy.cm2 (the Australian ARPANSA 2020 survey:
  median 24, DRL 30, Dose (RP) median 0.35 Gy; European DRL 35 Gy.cm2, Siiskonen et al.
  2018), PCI 60 Gy.cm2 (European DRL 85), cerebral angiography 80 Gy.cm2 on a biplane
  system (Swiss reference level 125, Aroua et al. 2007), ERCP 12 Gy.cm2; fluoroscopy
  times of about 4, 12, 8 and 5 minutes. DAP is written in Gy.m2 (1 Gy.cm2 =
  1e-4 Gy.m2). An event's DAP follows its technique (tube current x pulse width x pulses
  x kVp^2.5 x copper attenuation), scaled so that the study total and its fluoroscopy
  share are what the protocol draws; Dose (RP) is DAP divided by the field area at the
  reference point (15 cm toward the source from the isocenter, or 1 cm above the tabletop
  for the under-couch RF rooms).
- Patients: adults of 18-95 years, sex-specific weights (median 82 kg for men, 69 kg for
  women) and heights. Dose grows with weight: CT body CTDIvol as weight^1 (tube current
  modulation), head CTDIvol barely (weight^0.1), fluoroscopy DAP as weight^1.5, with
  log-normal patient-to-patient spread on top.
- Devices: each of the five sites of `radbank.synthetic` has two CT scanners and
  fluoroscopy rooms (a cath lab, an RF room, at three sites a biplane neuro room) of the
  site's vendors. Each room has a dose factor (0.75-1.35) and each room-protocol pair a
  small one of its own, so facility medians differ as in national surveys and a DRL
  analysis finds some rooms systematically higher.

Everything is deterministic given the seed (same seed, same bytes) and every object has
its own SOP Instance UID, Study Instance UID and Irradiation Event UIDs.

Speed: pydicom builds and writes a CT report of this size in ~30 ms. Here the Part 10
bytes are written directly (Explicit VR Little Endian, defined lengths: the bytes pydicom
writes for the same data set), the constant parts (concept codes, units) encoded once:
about 2,000 CT reports (~25 kB) or 400 fluoroscopy reports (~200 kB, 10-60 events) per
second, 1,000 of the default mix (75% CT).

Public API:
- `ct_rdsr`, `fluoro_rdsr`: one report as a pydicom Dataset (with file meta).
- `dose_reports`: many reports as Part 10 bytes.
- `expected_values`: what the generator wrote into a report, keyed by the field names of
  `radbank.dicom.dose` (values in the fields' units), to compare `extract` against.
- `DEVICES`, `CT_PROTOCOLS`, `FLUORO_PROTOCOLS` and their types `DoseDevice`,
  `CTProtocol`, `FluoroProtocol`: the rooms and protocols the reports are drawn from.
"""

from __future__ import annotations

import datetime
import io
import math
import random
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, Literal, NamedTuple

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset, validate_file_meta
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian

from radbank.synthetic import (
    _CHARSET,
    _FAMILY_NAMES,
    _GIVEN_NAMES,
    _SITES,
    _STAFF_NAMES,
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    SyntheticPatient,
    _age,
    _phone,
    _site,
    _uid,
)

__all__ = [
    "CT_PROTOCOLS",
    "DEVICES",
    "FLUORO_PROTOCOLS",
    "XRAY_RADIATION_DOSE_SR",
    "CTProtocol",
    "DoseDevice",
    "FluoroProtocol",
    "ct_rdsr",
    "dose_reports",
    "expected_values",
    "fluoro_rdsr",
]

XRAY_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
Kind = Literal["CT", "fluoroscopy"]


class Code(NamedTuple):
    value: str
    scheme: str
    meaning: str


def _code(concept: Any) -> Code:
    return Code(concept.value, concept.scheme_designator, concept.meaning)


_DCM, _SCT = codes.DCM, codes.SCT

# Document, observer context and scope (TID 10001, 10011, 1002)
XRAY_RADIATION_DOSE_REPORT = _code(_DCM.XRayRadiationDoseReport)
PROCEDURE_REPORTED = _code(_DCM.ProcedureReported)
CT_XRAY = Code("77477000", "SCT", "Computed Tomography X-Ray")  # the meaning TID 10011 gives
PROJECTION_XRAY = _code(_DCM.ProjectionXRay)
HAS_INTENT = Code("363703001", "SCT", "Has Intent")
DIAGNOSTIC_INTENT = _code(_SCT.DiagnosticIntent)
COMBINED_INTENT = _code(_SCT.CombinedDiagnosticAndTherapeuticIntent)
OBSERVER_TYPE = _code(_DCM.ObserverType)
PERSON = _code(_DCM.Person)
DEVICE = _code(_DCM.Device)
PERSON_OBSERVER_NAME = _code(_DCM.PersonObserverName)
PERSON_OBSERVER_ORGANIZATION = _code(_DCM.PersonObserverOrganizationName)
PERSON_OBSERVER_ROLE = _code(_DCM.PersonObserverRoleInTheOrganization)
DEVICE_OBSERVER_UID = _code(_DCM.DeviceObserverUID)
DEVICE_OBSERVER_NAME = _code(_DCM.DeviceObserverName)
DEVICE_OBSERVER_MANUFACTURER = _code(_DCM.DeviceObserverManufacturer)
DEVICE_OBSERVER_MODEL_NAME = _code(_DCM.DeviceObserverModelName)
DEVICE_OBSERVER_SERIAL_NUMBER = _code(_DCM.DeviceObserverSerialNumber)
DEVICE_OBSERVER_LOCATION = _code(_DCM.DeviceObserverPhysicalLocationDuringObservation)
START_OF_XRAY_IRRADIATION = _code(_DCM.StartOfXRayIrradiation)
END_OF_XRAY_IRRADIATION = _code(_DCM.EndOfXRayIrradiation)
SCOPE_OF_ACCUMULATION = _code(_DCM.ScopeOfAccumulation)
STUDY = _code(_DCM.Study)
STUDY_INSTANCE_UID = _code(_DCM.StudyInstanceUID)
SOURCE_OF_DOSE_INFORMATION = _code(_DCM.SourceOfDoseInformation)
AUTOMATED_DATA_COLLECTION = _code(_DCM.AutomatedDataCollection)
COMMENT = _code(_DCM.Comment)
# Person participant (TID 1020)
PERSON_NAME = _code(_DCM.PersonName)
PERSON_ROLE_IN_PROCEDURE = _code(_DCM.PersonRoleInProcedure)
PERSON_ID = _code(_DCM.PersonID)
ORGANIZATION_NAME = _code(_DCM.OrganizationName)
PERSON_ROLE_IN_ORGANIZATION = _code(_DCM.PersonRoleInOrganization)
IRRADIATION_ADMINISTERING = _code(_DCM.IrradiationAdministering)
IRRADIATION_AUTHORIZING = _code(_DCM.IrradiationAuthorizing)
TECHNOLOGIST = _code(_SCT.RadiologicTechnologist)
PHYSICIAN = _code(_SCT.Physician)
YES, NO = _code(_SCT.Yes), _code(_SCT.No)

# CT (TID 10012-10015)
CT_ACCUMULATED_DOSE_DATA = _code(_DCM.CTAccumulatedDoseData)
TOTAL_NUMBER_OF_IRRADIATION_EVENTS = _code(_DCM.TotalNumberOfIrradiationEvents)
CT_DOSE_LENGTH_PRODUCT_TOTAL = _code(_DCM.CTDoseLengthProductTotal)
CT_ACQUISITION = _code(_DCM.CTAcquisition)
ACQUISITION_PROTOCOL = _code(_DCM.AcquisitionProtocol)
TARGET_REGION = _code(_DCM.TargetRegion)
CT_ACQUISITION_TYPE = _code(_DCM.CTAcquisitionType)
SPIRAL_ACQUISITION = _code(_SCT.SpiralAcquisition)
SEQUENCED_ACQUISITION = _code(_DCM.SequencedAcquisition)
CONSTANT_ANGLE_ACQUISITION = _code(_DCM.ConstantAngleAcquisition)
STATIONARY_CT_ACQUISITION = _code(_DCM.StationaryAcquisitionCT)
IRRADIATION_EVENT_UID = _code(_DCM.IrradiationEventUID)
IRRADIATION_EVENT_LABEL = _code(_DCM.IrradiationEventLabel)
LABEL_TYPE = _code(_DCM.LabelType)
SERIES_NUMBER = _code(_DCM.SeriesNumber)
CT_ACQUISITION_PARAMETERS = _code(_DCM.CTAcquisitionParameters)
EXPOSURE_TIME = _code(_DCM.ExposureTime)
SCANNING_LENGTH = _code(_DCM.ScanningLength)
NOMINAL_SINGLE_COLLIMATION_WIDTH = _code(_DCM.NominalSingleCollimationWidth)
NOMINAL_TOTAL_COLLIMATION_WIDTH = _code(_DCM.NominalTotalCollimationWidth)
PITCH_FACTOR = _code(_DCM.PitchFactor)
NUMBER_OF_XRAY_SOURCES = _code(_DCM.NumberOfXRaySources)
CT_XRAY_SOURCE_PARAMETERS = _code(_DCM.CTXRaySourceParameters)
IDENTIFICATION_OF_THE_XRAY_SOURCE = _code(_DCM.IdentificationOfTheXRaySource)
KVP = _code(_DCM.KVP)
MAXIMUM_XRAY_TUBE_CURRENT = _code(_DCM.MaximumXRayTubeCurrent)
XRAY_TUBE_CURRENT = _code(_DCM.XRayTubeCurrent)
EXPOSURE_TIME_PER_ROTATION = _code(_DCM.ExposureTimePerRotation)
XRAY_MODULATION_TYPE = _code(_DCM.XRayModulationType)
CT_DOSE = _code(_DCM.CTDose)
MEAN_CTDIVOL = _code(_DCM.MeanCtdivol)
CTDIW_PHANTOM_TYPE = _code(_DCM.CtdiwPhantomType)
IEC_HEAD_PHANTOM = _code(_DCM.IECHeadDosimetryPhantom)
IEC_BODY_PHANTOM = _code(_DCM.IECBodyDosimetryPhantom)
DLP = _code(_DCM.DLP)
DOSE_CHECK_ALERT_DETAILS = _code(_DCM.DoseCheckAlertDetails)
DLP_ALERT_VALUE_CONFIGURED = _code(_DCM.DLPAlertValueConfigured)
CTDIVOL_ALERT_VALUE_CONFIGURED = _code(_DCM.CtdivolAlertValueConfigured)
DLP_ALERT_VALUE = _code(_DCM.DLPAlertValue)
CTDIVOL_ALERT_VALUE = _code(_DCM.CtdivolAlertValue)
ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE = _code(_DCM.AccumulatedCtdivolForwardEstimate)
DOSE_CHECK_NOTIFICATION_DETAILS = _code(_DCM.DoseCheckNotificationDetails)
DLP_NOTIFICATION_VALUE_CONFIGURED = _code(_DCM.DLPNotificationValueConfigured)
CTDIVOL_NOTIFICATION_VALUE_CONFIGURED = _code(_DCM.CtdivolNotificationValueConfigured)
DLP_NOTIFICATION_VALUE = _code(_DCM.DLPNotificationValue)
CTDIVOL_NOTIFICATION_VALUE = _code(_DCM.CtdivolNotificationValue)
DLP_FORWARD_ESTIMATE = _code(_DCM.DLPForwardEstimate)
CTDIVOL_FORWARD_ESTIMATE = _code(_DCM.CtdivolForwardEstimate)
REASON_FOR_PROCEEDING = _code(_DCM.ReasonForProceeding)

# Projection X-ray (TID 10002-10004, 10007)
ACCUMULATED_XRAY_DOSE_DATA = _code(_DCM.AccumulatedXRayDoseData)
ACQUISITION_PLANE = _code(_DCM.AcquisitionPlane)
SINGLE_PLANE = _code(_DCM.SinglePlane)
PLANE_A = _code(_DCM.PlaneA)
PLANE_B = _code(_DCM.PlaneB)
DOSE_AREA_PRODUCT_TOTAL = _code(_DCM.DoseAreaProductTotal)
DOSE_RP_TOTAL = _code(_DCM.DoseRPTotal)
FLUORO_DOSE_AREA_PRODUCT_TOTAL = _code(_DCM.FluoroDoseAreaProductTotal)
FLUORO_DOSE_RP_TOTAL = _code(_DCM.FluoroDoseRPTotal)
TOTAL_FLUORO_TIME = _code(_DCM.TotalFluoroTime)
ACQUISITION_DOSE_AREA_PRODUCT_TOTAL = _code(_DCM.AcquisitionDoseAreaProductTotal)
ACQUISITION_DOSE_RP_TOTAL = _code(_DCM.AcquisitionDoseRPTotal)
TOTAL_ACQUISITION_TIME = _code(_DCM.TotalAcquisitionTime)
TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES = _code(_DCM.TotalNumberOfRadiographicFrames)
REFERENCE_POINT_DEFINITION = _code(_DCM.ReferencePointDefinition)
INTERVENTIONAL_REFERENCE_POINT = _code(_DCM._15cmFromIsocenterTowardSource)
ABOVE_TABLETOP_REFERENCE_POINT = _code(_DCM._1cmAboveTabletop)
IRRADIATION_EVENT_XRAY_DATA = _code(_DCM.IrradiationEventXRayData)
DATETIME_STARTED = _code(_DCM.DatetimeStarted)
IRRADIATION_EVENT_TYPE = _code(_DCM.IrradiationEventType)
FLUOROSCOPY = _code(_SCT.Fluoroscopy)
STATIONARY_ACQUISITION = _code(_DCM.StationaryAcquisition)
ROTATIONAL_ACQUISITION = _code(_DCM.RotationalAcquisition)
DOSE_AREA_PRODUCT = _code(_DCM.DoseAreaProduct)
DOSE_RP = _code(_DCM.DoseRP)
POSITIONER_PRIMARY_ANGLE = _code(_DCM.PositionerPrimaryAngle)
POSITIONER_SECONDARY_ANGLE = _code(_DCM.PositionerSecondaryAngle)
XRAY_FILTERS = _code(_DCM.XRayFilters)
XRAY_FILTER_TYPE = _code(_DCM.XRayFilterType)
FLAT_FILTER = _code(_DCM.FlatFilter)
XRAY_FILTER_MATERIAL = _code(_DCM.XRayFilterMaterial)
COPPER = _code(_SCT.Copper)
XRAY_FILTER_THICKNESS_MINIMUM = _code(_DCM.XRayFilterThicknessMinimum)
XRAY_FILTER_THICKNESS_MAXIMUM = _code(_DCM.XRayFilterThicknessMaximum)
FLUORO_MODE = _code(_DCM.FluoroMode)
PULSED = _code(_DCM.Pulsed)
PULSE_RATE = _code(_DCM.PulseRate)
NUMBER_OF_PULSES = _code(_DCM.NumberOfPulses)
PULSE_WIDTH = _code(_DCM.PulseWidth)
EXPOSURE = _code(_DCM.Exposure)
IRRADIATION_DURATION = _code(_DCM.IrradiationDuration)
FOCAL_SPOT_SIZE = _code(_DCM.FocalSpotSize)
COLLIMATED_FIELD_AREA = _code(_DCM.CollimatedFieldArea)
COLLIMATED_FIELD_HEIGHT = _code(_DCM.CollimatedFieldHeight)
COLLIMATED_FIELD_WIDTH = _code(_DCM.CollimatedFieldWidth)
DISTANCE_SOURCE_TO_DETECTOR = _code(_DCM.DistanceSourceToDetector)
DISTANCE_SOURCE_TO_ISOCENTER = _code(_DCM.DistanceSourceToIsocenter)

# Target regions: CID 4030 for CT, CID 4031 for projection X-ray
HEAD = _code(_SCT.Head)
CHEST = _code(_SCT.Chest)
ABDOMEN = _code(_SCT.Abdomen)
ABDOMEN_AND_PELVIS = _code(_SCT.AbdomenAndPelvis)
CHEST_ABDOMEN_AND_PELVIS = _code(_SCT.ChestAbdomenAndPelvis)
HEART = _code(_SCT.Heart)


# --------------------------------------------------------------------------------------
# Devices and protocols
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoseDevice:
    """One X-ray room of a site: a CT scanner or a fluoroscopy / angiography system.

    `dose_factor` is the room's systematic dose relative to a typical one (its median over
    patients of the same size and protocol). `room` says what a fluoroscopy room does:
    "cath" (cardiology), "neuro" (biplane neuro-interventional) or "rf" (under-couch
    fluoroscopy). CT: `collimation_mm` is (single, total) in mm, `localizer_dose` how the
    scanner reports a localizer's dose ("reported": a small CTDIvol, "zero", or "absent":
    no CT Dose container), `dose_check` whether it writes TID 10015.
    """

    kind: Kind
    institution_name: str
    institution_address: str
    department: str
    manufacturer: str
    model_name: str
    station_name: str
    serial_number: str
    software_versions: str
    location: str
    dose_factor: float
    room: str = "CT"
    planes: int = 1
    collimation_mm: tuple[str, str] = ("0.6", "38.4")
    localizer_dose: Literal["reported", "zero", "absent"] = "reported"
    dose_check: bool = True
    modulation: str = ""

    @property
    def device_observer_uid(self) -> str:
        return str(_uid("dose-device", self.serial_number, self.station_name))


def _device(
    kind: Kind,
    site_index: int,
    manufacturer: str,
    model_name: str,
    station_name: str,
    serial_number: str,
    software_versions: str,
    location: str,
    dose_factor: float,
    **options: Any,
) -> DoseDevice:
    site = _site(site_index)
    return DoseDevice(
        kind,
        site.institution_name,
        site.institution_address,
        site.department,
        manufacturer,
        model_name,
        station_name,
        serial_number,
        software_versions,
        location,
        dose_factor,
        **options,
    )


_SIEMENS_CT = {"modulation": "XYZ_EC", "collimation_mm": ("0.6", "38.4")}
_GE_CT = {"modulation": "SmartmA", "collimation_mm": ("0.625", "40"), "localizer_dose": "zero"}
_PHILIPS_CT = {"modulation": "DoseRight ACS", "collimation_mm": ("0.625", "40")}
_CANON_CT = {"modulation": "SUREExposure 3D", "collimation_mm": ("0.5", "40")}

# The first CT of each of the first five sites is the scanner of radbank.synthetic's images.
DEVICES: tuple[DoseDevice, ...] = (
    _device("CT", 0, "SIEMENS", "SOMATOM Definition AS+", "QV-CT-SCAN1", "SN-73514",
            "syngo CT VA48A", "Imagerie, salle scanner 1", 1.0, **_SIEMENS_CT),
    _device("CT", 0, "SIEMENS", "SOMATOM go.Top", "QV-CT-URG", "SN-81022",
            "syngo CT VA30A", "Urgences, scanner", 0.85, **_SIEMENS_CT),
    _device("fluoroscopy", 0, "Siemens", "Artis zee", "QV-CATH1", "SN-140233", "VC21C",
            "Cardiologie, salle de cathétérisme 1", 1.1, room="cath"),
    _device("fluoroscopy", 0, "Siemens", "Artis Q biplane", "QV-NEURO", "SN-140871", "VD11B",
            "Neuroradiologie, salle biplan", 0.95, room="neuro", planes=2),
    _device("fluoroscopy", 0, "Siemens", "Luminos dRF Max", "QV-RF2", "SN-12877", "VF10F",
            "Imagerie, salle télécommandée 2", 1.0, room="rf"),
    _device("CT", 1, "GE MEDICAL SYSTEMS", "Revolution EVO", "KAF-CT02", "GE-880412",
            "gmp_vct.64", "Radiologie, CT 2", 1.25, **_GE_CT),
    _device("CT", 1, "GE MEDICAL SYSTEMS", "Revolution CT", "KAF-CT01", "GE-771090",
            "revo_ct_22", "Radiologie, CT 1", 0.9, **_GE_CT),
    _device("fluoroscopy", 1, "GE Healthcare", "Innova IGS 520", "KAF-HKL1", "GE-IGS-3307",
            "IGS_5.2", "Herzkatheterlabor 1", 1.3, room="cath"),
    _device("fluoroscopy", 1, "Philips", "CombiDiagnost R90", "KAF-DL1", "PH-CD-5521",
            "1.1.4", "Durchleuchtung 1", 0.8, room="rf"),
    _device("CT", 2, "Philips", "Brilliance 64", "OSC_CT_64", "PH-20931", "4.1.6",
            "Radiologia, TC 64", 1.35, dose_check=False, localizer_dose="absent",
            **{**_PHILIPS_CT, "modulation": "DoseRight"}),
    _device("CT", 2, "Philips", "IQon - Spectral CT", "OSC_CT_IQON", "PH-77310", "4.7.7",
            "Radiologia, TC spettrale", 0.95, localizer_dose="absent", **_PHILIPS_CT),
    _device("fluoroscopy", 2, "Philips", "Allura Xper FD10", "OSC_EMO1", "PH-AX-7102",
            "8.2.20", "Emodinamica, sala 1", 0.9, room="cath"),
    _device("fluoroscopy", 2, "Philips", "Azurion 7 B20/15", "OSC_NEURO", "PH-AZ-1190",
            "2.1.1", "Neuroradiologia, sala biplana", 0.8, room="neuro", planes=2),
    _device("fluoroscopy", 2, "Philips", "CombiDiagnost R90", "OSC_RF1", "PH-CD-6012",
            "1.1.4", "Radiologia, sala telecomandata", 1.05, room="rf"),
    _device("CT", 3, "TOSHIBA", "Aquilion ONE", "HCS-TC1", "TSB-4471", "V7.0",
            "Radiodiagnóstico, TC 1", 0.8, **_CANON_CT),
    _device("CT", 3, "Canon Medical Systems", "Aquilion Lightning", "HCS-TC2", "CN-31877",
            "V10.2", "Urgencias, TC 2", 1.05, **_CANON_CT),
    _device("fluoroscopy", 3, "Canon Medical Systems", "Alphenix Sky+", "HCS-HEMO",
            "CN-AX-2291", "V9.0", "Hemodinámica, sala 1", 1.0, room="cath"),
    _device("fluoroscopy", 3, "Canon Medical Systems", "Alphenix Biplane", "HCS-NEURO",
            "CN-AX-2370", "V9.0", "Neurorradiología, sala biplano", 1.15, room="neuro",
            planes=2),
    _device("fluoroscopy", 3, "Canon Medical Systems", "Ultimax-i", "HCS-RF1", "CN-UX-0413",
            "V6.1", "Radiodiagnóstico, telemando", 0.9, room="rf"),
    _device("CT", 4, "Canon Medical Systems", "Aquilion Prime SP", "SPB-TK-01", "CN-55102",
            "V10.8", "Pracownia TK 1", 1.15, **_CANON_CT),
    _device("CT", 4, "SIEMENS", "SOMATOM Force", "SPB-TK-02", "SN-75731", "syngo CT VB20A",
            "Pracownia TK 2", 0.75, **{**_SIEMENS_CT, "collimation_mm": ("0.6", "57.6")}),
    _device("fluoroscopy", 4, "Siemens", "Artis Q", "SPB-HEM1", "SN-141500", "VD11C",
            "Pracownia hemodynamiki", 1.2, room="cath"),
    _device("fluoroscopy", 4, "Siemens", "Luminos Agile Max", "SPB-RF1", "SN-13120", "VF12A",
            "Pracownia RTG, skopia", 1.1, room="rf"),
)  # fmt: skip
_DEVICES_BY_STATION = {device.station_name: device for device in DEVICES}


@dataclass(frozen=True)
class CTProtocol:
    """A CT protocol: `ctdivol_mgy` is the median CTDIvol of one diagnostic acquisition
    for a 75 kg adult on a typical scanner (dose factor 1), `spread` the log-normal
    sigma between patients, `size_exponent` how CTDIvol grows with weight."""

    key: str
    acquisition_protocol: str
    study_description: str
    body_part: str
    target_region: Code
    head: bool
    ctdivol_mgy: float
    spread: float
    size_exponent: float
    scan_length_mm: tuple[int, int]
    localizer_length_mm: tuple[int, int]
    kvp: tuple[int, ...]
    rotation_time_s: tuple[str, ...]
    pitch: tuple[str, ...]
    sequenced: float  # probability that an acquisition is sequenced (axial), not spiral
    acquisitions: tuple[int, ...]  # diagnostic acquisitions per study, drawn uniformly
    bolus_tracking: float  # probability of a bolus-tracking acquisition
    notification_ctdivol_mgy: int
    notification_dlp_mgycm: int
    frequency: float


CT_PROTOCOLS: tuple[CTProtocol, ...] = (
    CTProtocol(
        key="head",
        acquisition_protocol="Routine Head",
        study_description="CT HEAD WITHOUT CONTRAST",
        body_part="HEAD",
        target_region=HEAD,
        head=True,
        ctdivol_mgy=42.0,
        spread=0.12,
        size_exponent=0.1,
        scan_length_mm=(120, 170),
        localizer_length_mm=(230, 260),
        kvp=(120,),
        rotation_time_s=("1", "0.8"),
        pitch=("0.55", "0.6"),
        sequenced=0.3,
        acquisitions=(1, 1, 1, 1, 1, 1, 1, 1, 1, 2),  # a repeat after motion
        bolus_tracking=0.0,
        notification_ctdivol_mgy=80,
        notification_dlp_mgycm=1500,
        frequency=0.28,
    ),
    CTProtocol(
        key="chest",
        acquisition_protocol="Thorax CE",
        study_description="CT CHEST WITH CONTRAST",
        body_part="CHEST",
        target_region=CHEST,
        head=False,
        ctdivol_mgy=7.2,
        spread=0.25,
        size_exponent=1.0,
        scan_length_mm=(290, 370),
        localizer_length_mm=(400, 520),
        kvp=(100, 120),
        rotation_time_s=("0.5",),
        pitch=("0.9", "1", "1.2"),
        sequenced=0.0,
        acquisitions=(1,),
        bolus_tracking=0.0,
        notification_ctdivol_mgy=50,
        notification_dlp_mgycm=1000,
        frequency=0.2,
    ),
    CTProtocol(
        key="abdomen-pelvis",
        acquisition_protocol="Abdomen Pelvis PV",
        study_description="CT ABDOMEN PELVIS WITH CONTRAST",
        body_part="ABDOMENPELVIS",
        target_region=ABDOMEN_AND_PELVIS,
        head=False,
        ctdivol_mgy=8.8,
        spread=0.25,
        size_exponent=1.0,
        scan_length_mm=(400, 520),
        localizer_length_mm=(450, 600),
        kvp=(100, 120),
        rotation_time_s=("0.5",),
        pitch=("0.8", "1", "1.2"),
        sequenced=0.0,
        acquisitions=(1, 1, 1, 1, 1, 2),  # arterial and portal phases
        bolus_tracking=0.4,
        notification_ctdivol_mgy=50,
        notification_dlp_mgycm=1000,
        frequency=0.25,
    ),
    CTProtocol(
        key="chest-abdomen-pelvis",
        acquisition_protocol="Staging CAP",
        study_description="CT CHEST ABDOMEN PELVIS",
        body_part="CHESTABDPELVIS",
        target_region=CHEST_ABDOMEN_AND_PELVIS,
        head=False,
        ctdivol_mgy=8.0,
        spread=0.25,
        size_exponent=1.0,
        scan_length_mm=(600, 720),
        localizer_length_mm=(700, 900),
        kvp=(100, 120),
        rotation_time_s=("0.5",),
        pitch=("0.9", "1", "1.2"),
        sequenced=0.0,
        acquisitions=(1, 1, 1, 1, 1, 2),  # arterial and portal phases
        bolus_tracking=0.2,
        notification_ctdivol_mgy=50,
        notification_dlp_mgycm=1500,
        frequency=0.1,
    ),
    CTProtocol(
        key="ct-pulmonary-angiography",
        acquisition_protocol="CTPA",
        study_description="CT PULMONARY ANGIOGRAPHY",
        body_part="CHEST",
        target_region=CHEST,
        head=False,
        ctdivol_mgy=7.4,
        spread=0.3,
        size_exponent=1.0,
        scan_length_mm=(270, 340),
        localizer_length_mm=(400, 520),
        kvp=(80, 100, 100, 120),
        rotation_time_s=("0.28", "0.33", "0.5"),
        pitch=("1.2", "1.5"),
        sequenced=0.0,
        acquisitions=(1,),
        bolus_tracking=1.0,
        notification_ctdivol_mgy=50,
        notification_dlp_mgycm=1000,
        frequency=0.1,
    ),
    CTProtocol(
        key="low-dose-lung",
        acquisition_protocol="LD Lung Screening",
        study_description="CT LOW DOSE LUNG SCREENING",
        body_part="CHEST",
        target_region=CHEST,
        head=False,
        ctdivol_mgy=1.5,
        spread=0.3,
        size_exponent=1.0,
        scan_length_mm=(270, 330),
        localizer_length_mm=(400, 500),
        kvp=(100, 120),
        rotation_time_s=("0.5",),
        pitch=("1", "1.2", "1.5"),
        sequenced=0.0,
        acquisitions=(1,),
        bolus_tracking=0.0,
        notification_ctdivol_mgy=10,
        notification_dlp_mgycm=200,
        frequency=0.07,
    ),
)
_CT_PROTOCOLS = {protocol.key: protocol for protocol in CT_PROTOCOLS}


@dataclass(frozen=True)
class FluoroProtocol:
    """A fluoroscopy procedure: `dap_gym2` is the median study DAP (all planes) for a
    75 kg adult on a typical room, `fluoro_time_s` the median fluoroscopy time,
    `fluoro_fraction` the share of the DAP from fluoroscopy (the rest from acquisitions:
    cardiac cine runs, DSA runs or single spot images)."""

    key: str
    study_description: str
    room: str
    target_region: Code
    intent: Code
    dap_gym2: float
    spread: float
    size_exponent: float
    fluoro_time_s: float
    fluoro_fraction: float
    fluoro_events: tuple[int, int]
    acquisition_events: tuple[int, int]
    pulse_rates: tuple[str, ...]
    acquisition: Literal["cine", "dsa", "spot"]
    field_mm: tuple[int, ...]  # detector field sizes used
    rotational: float  # probability of one rotational (3D) acquisition
    frequency: float


FLUORO_PROTOCOLS: tuple[FluoroProtocol, ...] = (
    FluoroProtocol(
        key="coronary-angiography",
        study_description="CORONARY ANGIOGRAPHY",
        room="cath",
        target_region=HEART,
        intent=DIAGNOSTIC_INTENT,
        dap_gym2=22e-4,
        spread=0.55,
        size_exponent=1.5,
        fluoro_time_s=240,
        fluoro_fraction=0.4,
        fluoro_events=(8, 20),
        acquisition_events=(6, 12),
        pulse_rates=("15", "7.5", "10"),
        acquisition="cine",
        field_mm=(150, 170, 200),
        rotational=0.0,
        frequency=0.4,
    ),
    FluoroProtocol(
        key="pci",
        study_description="PCI",
        room="cath",
        target_region=HEART,
        intent=COMBINED_INTENT,
        dap_gym2=60e-4,
        spread=0.6,
        size_exponent=1.5,
        fluoro_time_s=720,
        fluoro_fraction=0.5,
        fluoro_events=(18, 40),
        acquisition_events=(10, 22),
        pulse_rates=("15", "7.5", "10"),
        acquisition="cine",
        field_mm=(150, 170, 200),
        rotational=0.0,
        frequency=0.25,
    ),
    FluoroProtocol(
        key="cerebral-angiography",
        study_description="CEREBRAL ANGIOGRAPHY",
        room="neuro",
        target_region=HEAD,
        intent=DIAGNOSTIC_INTENT,
        dap_gym2=80e-4,
        spread=0.5,
        size_exponent=1.0,
        fluoro_time_s=480,
        fluoro_fraction=0.25,
        fluoro_events=(10, 24),
        acquisition_events=(5, 10),
        pulse_rates=("7.5", "15"),
        acquisition="dsa",
        field_mm=(220, 270, 310),
        rotational=0.4,
        frequency=0.15,
    ),
    FluoroProtocol(
        key="ercp",
        study_description="ERCP",
        room="rf",
        target_region=ABDOMEN,
        intent=COMBINED_INTENT,
        dap_gym2=12e-4,
        spread=0.6,
        size_exponent=1.5,
        fluoro_time_s=300,
        fluoro_fraction=0.8,
        fluoro_events=(4, 12),
        acquisition_events=(1, 5),
        pulse_rates=("3", "4", "7.5"),
        acquisition="spot",
        field_mm=(250, 300, 350, 430),
        rotational=0.0,
        frequency=0.2,
    ),
)
_FLUORO_PROTOCOLS = {protocol.key: protocol for protocol in FLUORO_PROTOCOLS}

_ACQUISITION_NAMES = {"cine": "Cardiac 15 fps", "dsa": "DSA 3 F/s", "spot": "Single shot"}
_FLUORO_NAMES = {"cath": "Fluoro Cardiac", "neuro": "Fluoro Neuro", "rf": "Fluoro Abdomen"}
_SERIES_NUMBERS = {"SIEMENS": 501, "GE MEDICAL SYSTEMS": 997, "GE Healthcare": 997}


# --------------------------------------------------------------------------------------
# Explicit VR Little Endian, written directly
# --------------------------------------------------------------------------------------

_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT"})
_LENGTH_16 = struct.Struct("<H")
_LENGTH_32 = struct.Struct("<L")
_ITEM = struct.Struct("<HHL")


@cache
def _prefix(tag: int, vr: str) -> bytes:
    """Tag and VR (and the reserved bytes of a long VR), the bytes before the length."""
    if vr in _LONG_VRS:
        return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), 0)
    return struct.pack("<HH2s", tag >> 16, tag & 0xFFFF, vr.encode())


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return _prefix(tag, vr) + _LENGTH_32.pack(len(value)) + value
    return _prefix(tag, vr) + _LENGTH_16.pack(len(value)) + value


def _string(tag: int, vr: str, value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return _element(tag, vr, raw)


def _sequence(tag: int, items: Iterable[bytes]) -> bytes:
    body = b"".join([_ITEM.pack(0xFFFE, 0xE000, len(item)) + item for item in items])
    return _prefix(tag, "SQ") + _LENGTH_32.pack(len(body)) + body


_CODE_VALUE, _CODING_SCHEME, _CODE_MEANING = 0x00080100, 0x00080102, 0x00080104
_RELATIONSHIP_TYPE, _VALUE_TYPE, _CONCEPT_NAME = 0x0040A010, 0x0040A040, 0x0040A043
_CONTINUITY, _DATETIME, _PERSON_NAME, _UID = 0x0040A050, 0x0040A120, 0x0040A123, 0x0040A124
_TEXT_VALUE, _CONCEPT_CODE, _MEASURED_VALUE = 0x0040A160, 0x0040A168, 0x0040A300
_UNITS, _NUMERIC_VALUE, _CONTENT_SEQUENCE = 0x004008EA, 0x0040A30A, 0x0040A730


@cache
def _code_sequence(tag: int, code: Code) -> bytes:
    item = (
        _string(_CODE_VALUE, "SH", code.value)
        + _string(_CODING_SCHEME, "SH", code.scheme)
        + _string(_CODE_MEANING, "LO", code.meaning)
    )
    return _sequence(tag, [item])


@cache
def _head(relationship: str, value_type: str, concept: Code) -> bytes:
    """Relationship Type, Value Type and Concept Name Code Sequence of a content item."""
    return (
        (_string(_RELATIONSHIP_TYPE, "CS", relationship) if relationship else b"")
        + _string(_VALUE_TYPE, "CS", value_type)
        + _code_sequence(_CONCEPT_NAME, concept)
    )


_SEPARATE = _string(_CONTINUITY, "CS", "SEPARATE")
_NUMERIC_VALUE_PREFIX = _prefix(_NUMERIC_VALUE, "DS")


@cache
def _units(unit: str) -> bytes:
    meaning = "no units" if unit == "1" else unit.replace("{", "").replace("}", "")
    return _code_sequence(_UNITS, Code(unit, "UCUM", meaning))


def _children(items: Sequence[bytes]) -> bytes:
    return _sequence(_CONTENT_SEQUENCE, items) if items else b""


def _container(relationship: str, concept: Code, items: Sequence[bytes]) -> bytes:
    return _head(relationship, "CONTAINER", concept) + _SEPARATE + _children(items)


@cache
def _num_parts(concept: Code, unit: str) -> tuple[bytes, bytes]:
    """The constant parts of a NUM item: up to its Measured Value Sequence's length, and
    its Measurement Units Code Sequence."""
    return _head("CONTAINS", "NUM", concept) + _prefix(_MEASURED_VALUE, "SQ"), _units(unit)


_NUM_LENGTHS = struct.Struct("<LHHL")  # sequence length, item tag, item length


@lru_cache(maxsize=1 << 16)  # most values recur: kVp, distances, filters, units
def _num(concept: Code, value: Decimal, unit: str) -> bytes:
    head, units = _num_parts(concept, unit)
    raw = _ds(value).encode()
    if len(raw) % 2:
        raw += b" "
    item_length = len(units) + 8 + len(raw)
    return b"".join(
        (
            head,
            _NUM_LENGTHS.pack(item_length + 8, 0xFFFE, 0xE000, item_length),
            units,
            _NUMERIC_VALUE_PREFIX,
            _LENGTH_16.pack(len(raw)),
            raw,
        )
    )


def _coded(relationship: str, concept: Code, value: Code, items: Sequence[bytes] = ()) -> bytes:
    return (
        _head(relationship, "CODE", concept)
        + _code_sequence(_CONCEPT_CODE, value)
        + _children(items)
    )


def _text(relationship: str, concept: Code, value: str, items: Sequence[bytes] = ()) -> bytes:
    return (
        _head(relationship, "TEXT", concept) + _string(_TEXT_VALUE, "UT", value) + _children(items)
    )


def _uidref(relationship: str, concept: Code, uid: str) -> bytes:
    return _head(relationship, "UIDREF", concept) + _string(_UID, "UI", uid)


def _pname(relationship: str, concept: Code, name: str, items: Sequence[bytes] = ()) -> bytes:
    return (
        _head(relationship, "PNAME", concept) + _string(_PERSON_NAME, "PN", name) + _children(items)
    )


def _datetime(relationship: str, concept: Code, value: datetime.datetime) -> bytes:
    return _head(relationship, "DATETIME", concept) + _string(
        _DATETIME, "DT", value.strftime("%Y%m%d%H%M%S")
    )


def _ds(value: Decimal) -> str:
    """A decimal string of at most 16 characters, without exponent or trailing zeros."""
    text = "0" if value == 0 else format(value.normalize(), "f")
    if len(text) > 16:
        raise ValueError(f"{text} does not fit a DS value (16 characters)")
    return text


def _dec(value: float, places: int) -> Decimal:
    """`value` rounded to `places` decimals, as the decimal written in the report."""
    return Decimal(f"{value:.{places}f}")


@cache
def _tag_vr(keyword: str) -> tuple[int, str]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag, dictionary_VR(tag)


class _Header:
    """The data set's attributes outside the content tree, encoded, by tag."""

    def __init__(self) -> None:
        self.elements: dict[int, bytes] = {}

    def put(self, keyword: str, value: str | Sequence[str]) -> None:
        tag, vr = _tag_vr(keyword)
        text = value if isinstance(value, str) else "\\".join(value)
        self.elements[tag] = _string(tag, vr, text)

    def sequence(self, keyword: str, items: Sequence[bytes]) -> None:
        tag, _ = _tag_vr(keyword)
        self.elements[tag] = _sequence(tag, items)

    def raw(self, tag: int, encoded: bytes) -> None:
        self.elements[tag] = encoded

    def encode(self) -> bytes:
        return b"".join(self.elements[tag] for tag in sorted(self.elements))


def _item(**keywords: str) -> bytes:
    header = _Header()
    for keyword, value in keywords.items():
        header.put(keyword, value)
    return header.encode()


@cache
def _file_meta_parts() -> tuple[bytes, bytes]:
    """File meta elements before and after Media Storage SOP Instance UID, as pydicom
    completes them (implementation UID and version name)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XRAY_RADIATION_DOSE_SR
    meta.MediaStorageSOPInstanceUID = "1.2"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    validate_file_meta(meta, enforce_standard=True)
    head = _element(0x00020001, "OB", meta.FileMetaInformationVersion) + _string(
        0x00020002, "UI", XRAY_RADIATION_DOSE_SR
    )
    tail = (
        _string(0x00020010, "UI", ExplicitVRLittleEndian)
        + _string(0x00020012, "UI", meta.ImplementationClassUID)
        + _string(0x00020013, "SH", meta.ImplementationVersionName)
    )
    return head, tail


def _part10(sop_instance_uid: str, dataset: bytes) -> bytes:
    head, tail = _file_meta_parts()
    meta = head + _string(0x00020003, "UI", sop_instance_uid) + tail
    return b"".join(
        (
            b"\0" * 128,
            b"DICM",
            _element(0x00020000, "UL", _LENGTH_32.pack(len(meta))),
            meta,
            dataset,
        )
    )


# --------------------------------------------------------------------------------------
# Patients and visits
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Visit:
    """Who was examined, where, when and by whom: the identity a report carries."""

    patient: SyntheticPatient
    weight_kg: int
    height_m: str
    study_instance_uid: str
    accession_number: str
    study_id: str
    requested_procedure_id: str
    start: datetime.datetime
    study_description: str
    referring_physician: str
    reading_physician: str
    performing_physician: str
    operator: str
    operator_staff_id: str


def _draw_patient(rng: random.Random, site_index: int, patient_id: str | None) -> SyntheticPatient:
    site = _site(site_index)
    sex = rng.choice("FM")
    name = f"{rng.choice(_FAMILY_NAMES)}^{rng.choice(_GIVEN_NAMES[sex])}"
    age_years = min(95.0, max(18.0, rng.gauss(60, 17)))
    birth = datetime.date(2024, 7, 1) - datetime.timedelta(days=int(age_years * 365.25))
    return SyntheticPatient(
        patient_id=patient_id or f"{site.id_prefix}{rng.randint(1_000_000, 9_999_999)}",
        issuer=site.issuer,
        name=name,
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        site=site.institution_name,
        address=f"{rng.randint(1, 180)} {rng.choice(site.street_names)}, {site.city}",
        telephone=_phone(rng, site),
        national_id=f"NHI-{rng.randint(10**11, 10**12 - 1)}",
    )


@lru_cache(maxsize=1 << 16)
def _body(patient: SyntheticPatient) -> tuple[int, str]:
    """Weight (kg) and height (m) of a patient, the same in every study of theirs."""
    rng = random.Random(f"radbank.synthetic_dose.body:{patient.patient_id}:{patient.birth_date}")
    sex = patient.sex if patient.sex in ("F", "M") else rng.choice("FM")
    median_kg, sigma, height_m, height_sd = (
        (82.0, 0.19, 1.76, 0.07) if sex == "M" else (69.0, 0.21, 1.63, 0.065)
    )
    weight = min(160.0, max(40.0, median_kg * math.exp(rng.gauss(0, sigma))))
    height = min(2.05, max(1.45, rng.gauss(height_m, height_sd)))
    return round(weight), f"{height:.2f}"


def _visit(
    rng: random.Random,
    key: tuple[object, ...],
    patient: SyntheticPatient,
    study_instance_uid: str | None,
    description: str,
) -> _Visit:
    weight, height = _body(patient)
    day = datetime.date(2019, 1, 2) + datetime.timedelta(days=rng.randint(0, 5 * 365))
    born = datetime.datetime.strptime(patient.birth_date, "%Y%m%d").date()
    day = max(day, born + datetime.timedelta(days=18 * 366))
    start = datetime.datetime.combine(day, datetime.time(rng.randint(7, 18), rng.randint(0, 59)))
    return _Visit(
        patient=patient,
        weight_kg=weight,
        height_m=height,
        study_instance_uid=study_instance_uid or str(_uid(*key, "study")),
        accession_number=f"ACC{rng.randint(10**8, 10**9 - 1)}",
        study_id=f"S{patient.patient_id[-4:]}{rng.randint(1000, 9999)}",
        requested_procedure_id=f"RP{rng.randint(10**7, 10**8 - 1)}",
        start=start.replace(second=rng.randint(0, 59)),
        study_description=description,
        referring_physician=rng.choice(_STAFF_NAMES),
        reading_physician=rng.choice(_STAFF_NAMES),
        performing_physician=rng.choice(_STAFF_NAMES),
        operator=rng.choice(_STAFF_NAMES),
        operator_staff_id=f"STAFF-{rng.randint(10_000, 99_999)}",
    )


def _choose(rng: random.Random, options: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(options, weights)[0]


def _pick_device(
    rng: random.Random, kind: Kind, patient: SyntheticPatient | None, room: str | None = None
) -> DoseDevice:
    candidates = [d for d in DEVICES if d.kind == kind and (room is None or d.room == room)]
    if patient is not None:
        local = [d for d in candidates if d.institution_name == patient.site]
        candidates = local or candidates
    return rng.choice(candidates)


@cache
def _protocol_factor(station_name: str, protocol: str) -> float:
    """How a room's protocol sits around the room's own dose factor: the protocols of one
    scanner are not all optimised alike."""
    return random.Random(f"radbank.synthetic_dose.protocol:{station_name}:{protocol}").uniform(
        0.88, 1.12
    )


# --------------------------------------------------------------------------------------
# The data set around the content tree
# --------------------------------------------------------------------------------------


def _header(
    visit: _Visit,
    device: DoseDevice,
    *,
    sop_instance_uid: str,
    series_instance_uid: str,
    content: datetime.datetime,
    template: str,
) -> _Header:
    patient = visit.patient
    study_date, study_time = visit.start.strftime("%Y%m%d"), visit.start.strftime("%H%M%S")
    content_date, content_time = content.strftime("%Y%m%d"), content.strftime("%H%M%S")
    header = _Header()
    # SOP Common
    header.put("SpecificCharacterSet", _CHARSET)
    header.put("InstanceCreationDate", content_date)
    header.put("InstanceCreationTime", content_time)
    header.put("SOPClassUID", XRAY_RADIATION_DOSE_SR)
    header.put("SOPInstanceUID", sop_instance_uid)
    # Patient, Patient Study
    header.put("PatientName", patient.name)
    header.put("PatientID", patient.patient_id)
    header.put("IssuerOfPatientID", patient.issuer)
    header.put("PatientBirthDate", patient.birth_date)
    header.put("PatientSex", patient.sex)
    header.sequence(
        "OtherPatientIDsSequence",
        [
            _item(
                PatientID=patient.national_id,
                IssuerOfPatientID="NATIONAL-HEALTH-ID",
                TypeOfPatientID="TEXT",
            )
        ],
    )
    header.put("PatientAge", _age(patient.birth_date, visit.start.date()))
    header.put("PatientSize", visit.height_m)
    header.put("PatientWeight", str(visit.weight_kg))
    header.put("PatientAddress", patient.address)
    header.put("PatientTelephoneNumbers", patient.telephone)
    given = patient.name.split("^")[1]
    header.put(
        "PatientComments",
        f"{given} prefers a call on {patient.telephone} before appointments; "
        f"referred by {visit.referring_physician.replace('^', ' ')}",
    )
    # General Study
    header.put("StudyInstanceUID", visit.study_instance_uid)
    header.put("StudyDate", study_date)
    header.put("StudyTime", study_time)
    header.put("ReferringPhysicianName", visit.referring_physician)
    header.put("StudyID", visit.study_id)
    header.put("AccessionNumber", visit.accession_number)
    issuer_of_accession_number = [_item(LocalNamespaceEntityID=f"{patient.issuer}-RIS")]
    header.sequence("IssuerOfAccessionNumberSequence", issuer_of_accession_number)
    header.put("StudyDescription", visit.study_description)
    header.put("NameOfPhysiciansReadingStudy", visit.reading_physician)
    # General Series as vendors fill it, though the SR Document Series does not list them
    header.put("PerformingPhysicianName", visit.performing_physician)
    header.put("OperatorsName", visit.operator)
    operator = _Header()
    operator.sequence(
        "PersonIdentificationCodeSequence",
        [
            _item(
                CodeValue=visit.operator_staff_id,
                CodingSchemeDesignator="99STAFF",
                CodeMeaning=visit.operator.replace("^", " "),
            )
        ],
    )
    operator.put("InstitutionName", device.institution_name)
    operator.put("InstitutionAddress", device.institution_address)
    header.sequence("OperatorIdentificationSequence", [operator.encode()])
    # SR Document Series
    header.put("Modality", "SR")
    header.put("SeriesInstanceUID", series_instance_uid)
    header.put("SeriesNumber", str(_SERIES_NUMBERS.get(device.manufacturer, 990)))
    header.put("SeriesDate", content_date)
    header.put("SeriesTime", content_time)
    header.put("SeriesDescription", "Dose Report")
    header.sequence("ReferencedPerformedProcedureStepSequence", [])
    # General Equipment, Enhanced General Equipment
    header.put("Manufacturer", device.manufacturer)
    header.put("InstitutionName", device.institution_name)
    header.put("InstitutionAddress", device.institution_address)
    header.put("StationName", device.station_name)
    header.put("InstitutionalDepartmentName", device.department)
    header.put("ManufacturerModelName", device.model_name)
    header.put("DeviceSerialNumber", device.serial_number)
    header.put("SoftwareVersions", device.software_versions)
    # SR Document General
    header.put("InstanceNumber", "1")
    header.put("ContentDate", content_date)
    header.put("ContentTime", content_time)
    header.put("CompletionFlag", "COMPLETE")
    header.put("VerificationFlag", "UNVERIFIED")
    header.sequence("PerformedProcedureCodeSequence", [])
    request = _Header()
    request.put("StudyInstanceUID", visit.study_instance_uid)
    request.sequence("ReferencedStudySequence", [])
    request.put("AccessionNumber", visit.accession_number)
    request.sequence("IssuerOfAccessionNumberSequence", issuer_of_accession_number)
    request.put("PlacerOrderNumberImagingServiceRequest", f"PO{visit.accession_number[3:]}")
    request.put("FillerOrderNumberImagingServiceRequest", f"FO{visit.accession_number[3:]}")
    request.put("RequestedProcedureID", visit.requested_procedure_id)
    request.put("RequestedProcedureDescription", visit.study_description)
    request.sequence("RequestedProcedureCodeSequence", [])
    header.sequence("ReferencedRequestSequence", [request.encode()])
    # SR Document Content: the root container (its Content Sequence is added by the caller)
    header.put("ValueType", "CONTAINER")
    header.raw(_CONCEPT_NAME, _code_sequence(_CONCEPT_NAME, XRAY_RADIATION_DOSE_REPORT))
    header.raw(_CONTINUITY, _SEPARATE)
    header.sequence(
        "ContentTemplateSequence", [_item(MappingResource="DCMR", TemplateIdentifier=template)]
    )
    _plant_private_identity(header, visit)
    return header


def _plant_private_identity(header: _Header, visit: _Visit) -> None:
    """The vendor-style private block of radbank.synthetic's images, same content."""
    patient = visit.patient
    family, given = patient.name.split("^")
    born = patient.birth_date
    group = PRIVATE_GROUP << 16
    header.raw(group | 0x0010, _string(group | 0x0010, "LO", PRIVATE_CREATOR))
    header.raw(group | 0x1010, _string(group | 0x1010, "LO", patient.name))
    header.raw(group | 0x1011, _string(group | 0x1011, "LO", f"MRN {patient.patient_id}"))
    note = (
        f"Pt {given} {family}, born {born[6:]}/{born[4:6]}/{born[:4]}, "
        f"tel {patient.telephone}, ref. {visit.referring_physician.replace('^', ' ')}"
    )
    header.raw(group | 0x1012, _string(group | 0x1012, "LT", note))
    nested = _item(
        PatientName=patient.name,
        PatientID=patient.patient_id,
        AccessionNumber=visit.accession_number,
    )
    header.raw(group | 0x1013, _sequence(group | 0x1013, [nested]))


def _observer_context(visit: _Visit, device: DoseDevice) -> list[bytes]:
    """TID 1002: the operator as Person Observer, then the device (TID 1004)."""
    context = "HAS OBS CONTEXT"
    return [
        _coded(context, OBSERVER_TYPE, PERSON),
        _pname(context, PERSON_OBSERVER_NAME, visit.operator),
        _text(context, PERSON_OBSERVER_ORGANIZATION, device.institution_name),
        _coded(context, PERSON_OBSERVER_ROLE, TECHNOLOGIST),
        _coded(context, OBSERVER_TYPE, DEVICE),
        _uidref(context, DEVICE_OBSERVER_UID, device.device_observer_uid),
        _text(context, DEVICE_OBSERVER_NAME, device.station_name),
        _text(context, DEVICE_OBSERVER_MANUFACTURER, device.manufacturer),
        _text(context, DEVICE_OBSERVER_MODEL_NAME, device.model_name),
        _text(context, DEVICE_OBSERVER_SERIAL_NUMBER, device.serial_number),
        _text(context, DEVICE_OBSERVER_LOCATION, device.location),
    ]


def _scope(visit: _Visit) -> bytes:
    return _coded(
        "HAS OBS CONTEXT",
        SCOPE_OF_ACCUMULATION,
        STUDY,
        [_uidref("HAS PROPERTIES", STUDY_INSTANCE_UID, visit.study_instance_uid)],
    )


def _participants(visit: _Visit, device: DoseDevice) -> list[bytes]:
    """TID 1020: who administered the irradiation and who authorized it."""
    properties = "HAS PROPERTIES"
    return [
        _pname(
            "CONTAINS",
            PERSON_NAME,
            visit.operator,
            [
                _coded(properties, PERSON_ROLE_IN_PROCEDURE, IRRADIATION_ADMINISTERING),
                _text(properties, PERSON_ID, visit.operator_staff_id),
                _text(properties, ORGANIZATION_NAME, device.institution_name),
                _coded(properties, PERSON_ROLE_IN_ORGANIZATION, TECHNOLOGIST),
            ],
        ),
        _pname(
            "CONTAINS",
            PERSON_NAME,
            visit.performing_physician,
            [
                _coded(properties, PERSON_ROLE_IN_PROCEDURE, IRRADIATION_AUTHORIZING),
                _text(properties, ORGANIZATION_NAME, device.institution_name),
                _coded(properties, PERSON_ROLE_IN_ORGANIZATION, PHYSICIAN),
            ],
        ),
    ]


def _comment(visit: _Visit, what: str) -> bytes:
    family, given = visit.patient.name.split("^")
    born = visit.patient.birth_date
    return _text(
        "CONTAINS",
        COMMENT,
        f"{what} for {given} {family} (born {born[6:]}.{born[4:6]}.{born[:4]}, "
        f"{visit.weight_kg} kg); performed by {visit.operator.replace('^', ' ')}",
    )


def _report(
    visit: _Visit,
    device: DoseDevice,
    key: tuple[object, ...],
    template: str,
    content_items: list[bytes],
    end: datetime.datetime,
    rng: random.Random,
) -> bytes:
    sop_instance_uid = str(_uid(*key, "dose-report"))
    header = _header(
        visit,
        device,
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=str(_uid(*key, "dose-series")),
        content=end + datetime.timedelta(seconds=rng.randint(20, 180)),
        template=template,
    )
    header.raw(_CONTENT_SEQUENCE, _sequence(_CONTENT_SEQUENCE, content_items))
    return _part10(sop_instance_uid, header.encode())


# --------------------------------------------------------------------------------------
# CT (TID 10011)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    """What an image series' header says of its acquisition (the demo's CT images)."""

    number: int
    irradiation_event_uid: str
    protocol_name: str
    ctdivol_mgy: Decimal
    kvp: Decimal
    tube_current_ma: Decimal
    rotation_time_s: Decimal
    pitch: Decimal
    single_collimation_mm: Decimal
    total_collimation_mm: Decimal


@dataclass(frozen=True)
class _CTEvent:
    uid: str
    label: int | None  # the Series Number of its images (none for the demo's localizer)
    protocol_name: str
    acquisition_type: Code
    target_region: Code
    exposure_time_s: Decimal
    scanning_length_mm: Decimal
    single_collimation_mm: Decimal
    total_collimation_mm: Decimal
    pitch: Decimal | None
    kvp: Decimal
    maximum_tube_current_ma: Decimal
    tube_current_ma: Decimal
    rotation_time_s: Decimal
    ctdivol_mgy: Decimal | None  # None: no CT Dose container (a localizer, some vendors)
    dlp_mgycm: Decimal | None
    modulation: str


def _mgy_per_mas(kvp: float, head: bool) -> float:
    """CTDIw per mAs in the IEC phantom at this kVp, of a typical scanner."""
    return (0.16 if head else 0.075) * (kvp / 120) ** 2.5


def _ct_acquisition(
    rng: random.Random,
    uid: str,
    label: int | None,
    protocol: CTProtocol,
    device: DoseDevice,
    weight_kg: int,
    series: _Series | None = None,
) -> _CTEvent:
    """A diagnostic acquisition: its CTDIvol, then the technique that gives it."""
    single, total = (Decimal(value) for value in device.collimation_mm)
    if series is not None:
        ctdivol, kvp, rotation = series.ctdivol_mgy, series.kvp, series.rotation_time_s
        pitch: Decimal | None = series.pitch
        single, total = series.single_collimation_mm, series.total_collimation_mm
        tube_current = series.tube_current_ma
        name = series.protocol_name
    else:
        typical = (
            protocol.ctdivol_mgy
            * device.dose_factor
            * _protocol_factor(device.station_name, protocol.key)
            * (weight_kg / 75) ** protocol.size_exponent
        )
        ctdivol = _dec(typical * math.exp(rng.gauss(0, protocol.spread)), 2)
        heavy = weight_kg > 95
        kvp = Decimal(max(protocol.kvp) if heavy else rng.choice(protocol.kvp))
        rotation = Decimal(rng.choice(protocol.rotation_time_s))
        sequenced = rng.random() < protocol.sequenced
        pitch = None if sequenced else Decimal(rng.choice(protocol.pitch))
        mas = float(ctdivol) * float(pitch or 1) / _mgy_per_mas(float(kvp), protocol.head)
        tube_current = Decimal(max(10, min(800, round(mas / float(rotation)))))
        name = protocol.acquisition_protocol
    length = rng.uniform(*protocol.scan_length_mm)
    if pitch is None:
        rotations = math.ceil(length / float(total))
        scanning_length = total * rotations
        exposure_time = rotation * rotations
        irradiated_mm = scanning_length
        acquisition_type = SEQUENCED_ACQUISITION
    else:
        scanning_length = _dec(length, 1)
        irradiated_mm = scanning_length + total  # over-ranging of about one collimation
        exposure_time = _dec(float(irradiated_mm / (pitch * total) * rotation), 2)
        acquisition_type = SPIRAL_ACQUISITION
    modulation_range = 1.05 if protocol.head else 1.6
    return _CTEvent(
        uid=uid,
        label=label,
        protocol_name=name,
        acquisition_type=acquisition_type,
        target_region=protocol.target_region,
        exposure_time_s=exposure_time,
        scanning_length_mm=scanning_length,
        single_collimation_mm=single,
        total_collimation_mm=total,
        pitch=pitch,
        kvp=kvp,
        maximum_tube_current_ma=Decimal(
            round(float(tube_current) * rng.uniform(1.0, modulation_range))
        ),
        tube_current_ma=tube_current,
        rotation_time_s=rotation,
        ctdivol_mgy=ctdivol,
        dlp_mgycm=_dec(float(ctdivol * irradiated_mm / 10), 2),
        modulation=device.modulation or "NONE",
    )


def _ct_localizer(
    rng: random.Random, uid: str, label: int | None, protocol: CTProtocol, device: DoseDevice
) -> _CTEvent:
    length = _dec(rng.uniform(*protocol.localizer_length_mm), 1)
    tube_current = Decimal(rng.choice((20, 25, 30, 35, 40, 50)))
    ctdivol: Decimal | None = None
    dlp: Decimal | None = None
    if device.localizer_dose == "reported":
        ctdivol = _dec(rng.uniform(0.05, 0.35) * device.dose_factor, 2)
        dlp = _dec(float(ctdivol * length / 10), 2)
    elif device.localizer_dose == "zero":
        ctdivol = dlp = Decimal(0)
    return _CTEvent(
        uid=uid,
        label=label,
        protocol_name="Topogram" if device.manufacturer == "SIEMENS" else "Scout",
        acquisition_type=CONSTANT_ANGLE_ACQUISITION,
        target_region=protocol.target_region,
        exposure_time_s=_dec(float(length) / 100, 2),  # table at 100 mm/s
        scanning_length_mm=length,
        single_collimation_mm=Decimal(device.collimation_mm[0]),
        total_collimation_mm=Decimal(device.collimation_mm[0]) * 6,
        pitch=None,
        kvp=Decimal(120),
        maximum_tube_current_ma=tube_current,
        tube_current_ma=tube_current,
        rotation_time_s=Decimal("0.5"),
        ctdivol_mgy=ctdivol,
        dlp_mgycm=dlp,
        modulation="NONE",
    )


def _ct_bolus_tracking(
    rng: random.Random,
    uid: str,
    label: int,
    protocol: CTProtocol,
    device: DoseDevice,
) -> _CTEvent:
    rotations = rng.randint(6, 18)
    tube_current = Decimal(rng.choice((20, 30, 40)))
    kvp = Decimal(100 if 100 in protocol.kvp else 120)
    rotation = Decimal("0.5")
    per_rotation = _mgy_per_mas(float(kvp), protocol.head) * float(tube_current * rotation)
    ctdivol = _dec(per_rotation * rotations * device.dose_factor, 2)
    total = Decimal(10)
    return _CTEvent(
        uid=uid,
        label=label,
        protocol_name="Bolus tracking",
        acquisition_type=STATIONARY_CT_ACQUISITION,
        target_region=protocol.target_region,
        exposure_time_s=rotation * rotations,
        scanning_length_mm=total,
        single_collimation_mm=Decimal(5),
        total_collimation_mm=total,
        pitch=None,
        kvp=kvp,
        maximum_tube_current_ma=tube_current,
        tube_current_ma=tube_current,
        rotation_time_s=rotation,
        ctdivol_mgy=ctdivol,
        dlp_mgycm=_dec(float(ctdivol * total / 10), 2),
        modulation="NONE",
    )


def _ct_events(
    rng: random.Random,
    key: tuple[object, ...],
    protocol: CTProtocol,
    device: DoseDevice,
    weight_kg: int,
    n_events: int | None,
    series: Sequence[_Series] = (),
) -> list[_CTEvent]:
    def uid(index: int) -> str:
        return str(_uid(*key, "irradiation", index))

    if series:
        events = [_ct_localizer(rng, uid(0), None, protocol, device)]
        events += [
            _ct_acquisition(rng, s.irradiation_event_uid, s.number, protocol, device, weight_kg, s)
            for s in series
        ]
        return events
    if n_events is None:
        acquisitions = rng.choice(protocol.acquisitions)
        bolus = rng.random() < protocol.bolus_tracking
    else:
        if n_events < 1:
            raise ValueError(f"n_events must be at least 1, not {n_events}")
        if n_events == 1:
            return [_ct_acquisition(rng, uid(1), 1, protocol, device, weight_kg)]
        bolus = protocol.bolus_tracking > 0 and n_events >= 3
        acquisitions = n_events - 1 - bolus
    events = [_ct_localizer(rng, uid(0), 1, protocol, device)]
    if bolus:
        events.append(_ct_bolus_tracking(rng, uid(len(events)), 2, protocol, device))
    for _ in range(acquisitions):
        label = len(events) + 1
        events.append(_ct_acquisition(rng, uid(len(events)), label, protocol, device, weight_kg))
    return events


def _ct_dose_check(
    event: _CTEvent, protocol: CTProtocol, accumulated: tuple[Decimal, Decimal]
) -> list[bytes]:
    """TID 10015: the alert (per examination, 1000 mGy CTDIvol) and the protocol's
    notification values; localizers have none configured."""
    accumulated_dlp, accumulated_ctdivol = accumulated
    diagnostic = event.acquisition_type != CONSTANT_ANGLE_ACQUISITION
    alert = [
        _coded("CONTAINS", DLP_ALERT_VALUE_CONFIGURED, NO),
        _coded("CONTAINS", CTDIVOL_ALERT_VALUE_CONFIGURED, YES),
        _num(CTDIVOL_ALERT_VALUE, Decimal(1000), "mGy"),
        _num(ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE, accumulated_ctdivol, "mGy"),
    ]
    if not diagnostic:
        notification = [
            _coded("CONTAINS", DLP_NOTIFICATION_VALUE_CONFIGURED, NO),
            _coded("CONTAINS", CTDIVOL_NOTIFICATION_VALUE_CONFIGURED, NO),
        ]
    else:
        ctdivol, dlp = event.ctdivol_mgy or Decimal(0), event.dlp_mgycm or Decimal(0)
        notification = [
            _coded("CONTAINS", DLP_NOTIFICATION_VALUE_CONFIGURED, YES),
            _coded("CONTAINS", CTDIVOL_NOTIFICATION_VALUE_CONFIGURED, YES),
            _num(DLP_NOTIFICATION_VALUE, Decimal(protocol.notification_dlp_mgycm), "mGy.cm"),
            _num(CTDIVOL_NOTIFICATION_VALUE, Decimal(protocol.notification_ctdivol_mgy), "mGy"),
            _num(DLP_FORWARD_ESTIMATE, dlp, "mGy.cm"),
            _num(CTDIVOL_FORWARD_ESTIMATE, ctdivol, "mGy"),
        ]
        if ctdivol > protocol.notification_ctdivol_mgy or dlp > protocol.notification_dlp_mgycm:
            notification.append(
                _text("CONTAINS", REASON_FOR_PROCEEDING, "Large patient, protocol confirmed")
            )
    return [
        _container("CONTAINS", DOSE_CHECK_ALERT_DETAILS, alert),
        _container("CONTAINS", DOSE_CHECK_NOTIFICATION_DETAILS, notification),
    ]


def _ct_event_item(
    event: _CTEvent,
    protocol: CTProtocol,
    device: DoseDevice,
    participants: list[bytes],
    accumulated: tuple[Decimal, Decimal],
) -> bytes:
    phantom = IEC_HEAD_PHANTOM if protocol.head else IEC_BODY_PHANTOM
    parameters = [
        _num(EXPOSURE_TIME, event.exposure_time_s, "s"),
        _num(SCANNING_LENGTH, event.scanning_length_mm, "mm"),
        _num(NOMINAL_SINGLE_COLLIMATION_WIDTH, event.single_collimation_mm, "mm"),
        _num(NOMINAL_TOTAL_COLLIMATION_WIDTH, event.total_collimation_mm, "mm"),
    ]
    if event.pitch is not None:
        parameters.append(_num(PITCH_FACTOR, event.pitch, "{ratio}"))
    parameters += [
        _num(NUMBER_OF_XRAY_SOURCES, Decimal(1), "{X-Ray sources}"),
        _container(
            "CONTAINS",
            CT_XRAY_SOURCE_PARAMETERS,
            [
                _text("CONTAINS", IDENTIFICATION_OF_THE_XRAY_SOURCE, "A"),
                _num(KVP, event.kvp, "kV"),
                _num(MAXIMUM_XRAY_TUBE_CURRENT, event.maximum_tube_current_ma, "mA"),
                _num(XRAY_TUBE_CURRENT, event.tube_current_ma, "mA"),
                _num(EXPOSURE_TIME_PER_ROTATION, event.rotation_time_s, "s"),
            ],
        ),
    ]
    items = [
        _text("CONTAINS", ACQUISITION_PROTOCOL, event.protocol_name),
        _coded("CONTAINS", TARGET_REGION, event.target_region),
        _coded("CONTAINS", CT_ACQUISITION_TYPE, event.acquisition_type),
        _uidref("CONTAINS", IRRADIATION_EVENT_UID, event.uid),
    ]
    if event.label is not None:
        items.append(
            _text(
                "CONTAINS",
                IRRADIATION_EVENT_LABEL,
                str(event.label),
                [_coded("HAS CONCEPT MOD", LABEL_TYPE, SERIES_NUMBER)],
            )
        )
    items.append(_container("CONTAINS", CT_ACQUISITION_PARAMETERS, parameters))
    if event.ctdivol_mgy is not None and event.dlp_mgycm is not None:
        dose = [
            _num(MEAN_CTDIVOL, event.ctdivol_mgy, "mGy"),
            _coded("CONTAINS", CTDIW_PHANTOM_TYPE, phantom),
            _num(DLP, event.dlp_mgycm, "mGy.cm"),
        ]
        if device.dose_check:
            dose += _ct_dose_check(event, protocol, accumulated)
        items.append(_container("CONTAINS", CT_DOSE, dose))
    items.append(_text("CONTAINS", XRAY_MODULATION_TYPE, event.modulation))
    items += participants
    return _container("CONTAINS", CT_ACQUISITION, items)


def _ct_report_bytes(
    rng: random.Random,
    key: tuple[object, ...],
    visit: _Visit,
    device: DoseDevice,
    protocol: CTProtocol,
    n_events: int | None,
    series: Sequence[_Series] = (),
) -> bytes:
    events = _ct_events(rng, key, protocol, device, visit.weight_kg, n_events, series)
    start = visit.start + datetime.timedelta(minutes=rng.randint(2, 6))
    clock = start
    event_items = []
    participants = _participants(visit, device)
    accumulated_dlp = accumulated_ctdivol = Decimal(0)
    for event in events:
        accumulated_dlp += event.dlp_mgycm or 0
        accumulated_ctdivol += event.ctdivol_mgy or 0
        event_items.append(
            _ct_event_item(
                event, protocol, device, participants, (accumulated_dlp, accumulated_ctdivol)
            )
        )
        clock += datetime.timedelta(seconds=float(event.exposure_time_s) + rng.randint(20, 120))
    end = clock
    items = [
        _coded(
            "HAS CONCEPT MOD",
            PROCEDURE_REPORTED,
            CT_XRAY,
            [_coded("HAS CONCEPT MOD", HAS_INTENT, DIAGNOSTIC_INTENT)],
        ),
        *_observer_context(visit, device),
        _datetime("HAS OBS CONTEXT", START_OF_XRAY_IRRADIATION, start),
        _datetime("HAS OBS CONTEXT", END_OF_XRAY_IRRADIATION, end),
        _scope(visit),
        _container(
            "CONTAINS",
            CT_ACCUMULATED_DOSE_DATA,
            [
                _num(TOTAL_NUMBER_OF_IRRADIATION_EVENTS, Decimal(len(events)), "{events}"),
                _num(CT_DOSE_LENGTH_PRODUCT_TOTAL, accumulated_dlp, "mGy.cm"),
            ],
        ),
        *event_items,
        _coded("CONTAINS", SOURCE_OF_DOSE_INFORMATION, AUTOMATED_DATA_COLLECTION),
        _comment(visit, f"{protocol.acquisition_protocol}, contrast as ordered,"),
    ]
    return _report(visit, device, key, "10011", items, end, rng)


# --------------------------------------------------------------------------------------
# Fluoroscopy and interventional projection X-ray (TID 10001)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _XRayEvent:
    uid: str
    plane: Code
    started: datetime.datetime
    fluoroscopy: bool
    event_type: Code
    protocol_name: str
    dap_gym2: Decimal
    dose_rp_gy: Decimal
    primary_angle_deg: Decimal
    secondary_angle_deg: Decimal
    copper_mm: Decimal
    pulse_rate: Decimal | None
    pulses: int
    kvp: Decimal
    tube_current_ma: Decimal
    pulse_width_ms: Decimal
    exposure_time_ms: Decimal
    exposure_uas: Decimal
    irradiation_duration_s: Decimal
    focal_spot_mm: Decimal
    field_height_mm: int
    field_width_mm: int
    sid_mm: int
    sod_mm: int | None  # C-arms only


@dataclass(frozen=True)
class _Technique:
    """An event before its dose is scaled: what the room did, and its relative output."""

    plane: Code
    fluoroscopy: bool
    event_type: Code
    protocol_name: str
    pulse_rate: Decimal | None
    pulses: int
    duration_s: Decimal
    kvp: int
    tube_current_ma: Decimal
    pulse_width_ms: Decimal
    copper_mm: Decimal
    field_mm: tuple[int, int]
    sid_mm: int
    primary_angle_deg: Decimal
    secondary_angle_deg: Decimal

    @property
    def output(self) -> float:
        attenuation = math.exp(-1.2 * float(self.copper_mm))
        charge = float(self.tube_current_ma * self.pulse_width_ms) * self.pulses
        return charge * (self.kvp / 80) ** 2.5 * attenuation


def _planes(device: DoseDevice, protocol: FluoroProtocol) -> tuple[Code, ...]:
    return (
        (PLANE_A, PLANE_B) if device.planes == 2 and protocol.room == "neuro" else (SINGLE_PLANE,)
    )


def _angles(rng: random.Random, plane: Code) -> tuple[Decimal, Decimal]:
    if plane == PLANE_B:
        return _dec(rng.choice((-90, 90)) + rng.uniform(-10, 10), 1), _dec(rng.uniform(-5, 5), 1)
    return _dec(rng.uniform(-45, 45), 1), _dec(rng.uniform(-30, 30), 1)


def _field(rng: random.Random, protocol: FluoroProtocol) -> tuple[int, int]:
    """Collimated field (height, width) in mm at the detector: a detector format, collimated
    in a little."""
    size = rng.choice(protocol.field_mm)
    return size - rng.randint(0, 30), size - rng.randint(0, 30)


def _fluoro_run(
    rng: random.Random,
    protocol: FluoroProtocol,
    plane: Code,
    seconds: float,
    kvp_shift: int,
    size: float,
) -> _Technique:
    rate = Decimal(rng.choice(protocol.pulse_rates))
    pulses = max(1, round(seconds * float(rate)))
    primary, secondary = _angles(rng, plane)
    return _Technique(
        plane=plane,
        fluoroscopy=True,
        event_type=FLUOROSCOPY,
        protocol_name=_FLUORO_NAMES[protocol.room],
        pulse_rate=rate,
        pulses=pulses,
        duration_s=_dec(pulses / float(rate), 1),
        kvp=max(65, min(110, rng.randint(70, 85) + kvp_shift)),
        tube_current_ma=_dec(rng.uniform(20, 70) * size, 1),
        pulse_width_ms=_dec(rng.uniform(4, 8), 1),
        copper_mm=Decimal(rng.choice(("0.3", "0.6", "0.9"))),
        field_mm=_field(rng, protocol),
        sid_mm=rng.randint(950, 1200),
        primary_angle_deg=primary,
        secondary_angle_deg=secondary,
    )


class _Run(NamedTuple):
    """An acquisition run's technique: ranges drawn from, or choices."""

    frame_rates: tuple[int, ...]
    seconds: tuple[float, float]
    pulse_width_ms: tuple[float, float]
    tube_current_ma: tuple[int, int]
    kvp: tuple[int, int]


_RUNS = {
    "cine": _Run((15,), (3, 6), (5, 8), (500, 900), (75, 90)),
    "dsa": _Run((2, 3), (6, 12), (60, 120), (250, 500), (70, 80)),
    "spot": _Run((1,), (0, 0), (20, 60), (300, 600), (70, 85)),  # one frame
    "rotational": _Run((30,), (4.4, 4.4), (5, 7), (200, 400), (70, 80)),  # a 3D DSA spin
}


def _acquisition_run(
    rng: random.Random,
    protocol: FluoroProtocol,
    plane: Code,
    kind: str,
    kvp_shift: int,
    size: float,
) -> _Technique:
    run = _RUNS[kind]
    rate = rng.choice(run.frame_rates)
    pulse_width = _dec(rng.uniform(*run.pulse_width_ms), 1)
    pulses = max(1, round(rate * rng.uniform(*run.seconds)))
    duration = pulse_width / 1000 if kind == "spot" else _dec(pulses / rate, 1)
    primary, secondary = _angles(rng, plane)
    rotational = kind == "rotational"
    return _Technique(
        plane=plane,
        fluoroscopy=False,
        event_type=ROTATIONAL_ACQUISITION if rotational else STATIONARY_ACQUISITION,
        protocol_name="3D DSA 5s" if rotational else _ACQUISITION_NAMES[protocol.acquisition],
        pulse_rate=None,
        pulses=pulses,
        duration_s=duration,
        kvp=max(65, min(110, rng.randint(*run.kvp) + kvp_shift)),
        tube_current_ma=_dec(rng.uniform(*run.tube_current_ma) * size, 1),
        pulse_width_ms=pulse_width,
        copper_mm=Decimal(rng.choice(("0.1", "0.2"))),
        field_mm=_field(rng, protocol),
        sid_mm=rng.randint(950, 1200),
        primary_angle_deg=primary,
        secondary_angle_deg=secondary,
    )


def _fluoro_runs(
    rng: random.Random,
    protocol: FluoroProtocol,
    device: DoseDevice,
    weight_kg: int,
    n_events: int | None,
) -> list[list[_Technique]]:
    """The study's runs in order: a fluoroscopy run (one pedal press) is one event, an
    acquisition run on a biplane system one event per plane."""
    planes = _planes(device, protocol)
    rotational = False
    if n_events is None:
        n_fluoro = rng.randint(*protocol.fluoro_events)
        n_runs = rng.randint(*protocol.acquisition_events)
        rotational = rng.random() < protocol.rotational
    else:
        if n_events < 1:
            raise ValueError(f"n_events must be at least 1, not {n_events}")
        n_runs = round(n_events * 0.35) // len(planes)
        n_fluoro = n_events - n_runs * len(planes)
    size = (weight_kg / 75) ** 0.5
    kvp_shift = round((weight_kg - 75) * 0.25)
    fluoro_time = protocol.fluoro_time_s * math.exp(rng.gauss(0, 0.45)) * size
    shares = [rng.expovariate(1) for _ in range(n_fluoro)]
    fluoro = [
        [
            _fluoro_run(
                rng,
                protocol,
                planes[0] if len(planes) == 1 or rng.random() < 0.7 else planes[1],
                fluoro_time * share / sum(shares),
                kvp_shift,
                size,
            )
        ]
        for share in shares
    ]
    runs = [
        [
            _acquisition_run(rng, protocol, plane, protocol.acquisition, kvp_shift, size)
            for plane in planes
        ]
        for _ in range(n_runs)
    ]
    if rotational:
        runs.append([_acquisition_run(rng, protocol, planes[0], "rotational", kvp_shift, size)])
    rest = fluoro[1:] + runs
    rng.shuffle(rest)
    return fluoro[:1] + rest  # a procedure starts under fluoroscopy


def _fluoro_events(
    rng: random.Random,
    key: tuple[object, ...],
    protocol: FluoroProtocol,
    device: DoseDevice,
    weight_kg: int,
    n_events: int | None,
    start: datetime.datetime,
) -> tuple[list[_XRayEvent], datetime.datetime]:
    """The events, their DAP scaled to the study total the protocol draws for this patient
    and room; and the end of the last irradiation."""
    runs = _fluoro_runs(rng, protocol, device, weight_kg, n_events)
    techniques = [technique for run in runs for technique in run]
    total = (
        protocol.dap_gym2
        * device.dose_factor
        * _protocol_factor(device.station_name, protocol.key)
        * (weight_kg / 75) ** protocol.size_exponent
        * math.exp(rng.gauss(0, protocol.spread))
    )
    fluoro_output = sum(t.output for t in techniques if t.fluoroscopy)
    acquisition_output = sum(t.output for t in techniques if not t.fluoroscopy)
    fraction = min(0.95, max(0.05, protocol.fluoro_fraction * math.exp(rng.gauss(0, 0.2))))
    if not acquisition_output:
        fraction = 1.0
    elif not fluoro_output:
        fraction = 0.0
    interventional = protocol.room != "rf"
    events = []
    clock = start
    for run in runs:
        for technique in run:
            output, share = (
                (fluoro_output, fraction)
                if technique.fluoroscopy
                else (acquisition_output, 1 - fraction)
            )
            dap = max(Decimal("1E-8"), _dec(total * share * technique.output / output, 8))
            # Dose (RP) is the DAP over the field's area at the reference point
            rp_mm = 635 if interventional else 610
            height, width = technique.field_mm
            area_rp = height * width / 1e6 * (rp_mm / technique.sid_mm) ** 2
            exposure_time = technique.pulse_width_ms * technique.pulses
            events.append(
                _XRayEvent(
                    uid=str(_uid(*key, "irradiation", len(events))),
                    plane=technique.plane,
                    started=clock,
                    fluoroscopy=technique.fluoroscopy,
                    event_type=technique.event_type,
                    protocol_name=technique.protocol_name,
                    dap_gym2=dap,
                    dose_rp_gy=max(Decimal("1E-6"), _dec(float(dap) / area_rp, 6)),
                    primary_angle_deg=technique.primary_angle_deg,
                    secondary_angle_deg=technique.secondary_angle_deg,
                    copper_mm=technique.copper_mm,
                    pulse_rate=technique.pulse_rate,
                    pulses=technique.pulses,
                    kvp=Decimal(technique.kvp),
                    tube_current_ma=technique.tube_current_ma,
                    pulse_width_ms=technique.pulse_width_ms,
                    exposure_time_ms=exposure_time,
                    exposure_uas=_dec(float(exposure_time * technique.tube_current_ma), 0),
                    irradiation_duration_s=technique.duration_s,
                    focal_spot_mm=Decimal("0.4" if technique.fluoroscopy else "0.7"),
                    field_height_mm=height,
                    field_width_mm=width,
                    sid_mm=technique.sid_mm,
                    sod_mm=785 if interventional else None,
                )
            )
        clock += datetime.timedelta(
            seconds=float(max(t.duration_s for t in run)) + rng.randint(5, 120)
        )
    return events, clock


def _reference_point(protocol: FluoroProtocol) -> Code:
    return (
        ABOVE_TABLETOP_REFERENCE_POINT if protocol.room == "rf" else INTERVENTIONAL_REFERENCE_POINT
    )


def _xray_event_item(
    event: _XRayEvent, protocol: FluoroProtocol, participants: list[bytes]
) -> bytes:
    items = [
        _coded("HAS CONCEPT MOD", ACQUISITION_PLANE, event.plane),
        _datetime("CONTAINS", DATETIME_STARTED, event.started),
        _coded("CONTAINS", IRRADIATION_EVENT_TYPE, event.event_type),
        _text("CONTAINS", ACQUISITION_PROTOCOL, event.protocol_name),
        _coded("CONTAINS", REFERENCE_POINT_DEFINITION, _reference_point(protocol)),
        _uidref("CONTAINS", IRRADIATION_EVENT_UID, event.uid),
        _num(DOSE_AREA_PRODUCT, event.dap_gym2, "Gy.m2"),
        _num(DOSE_RP, event.dose_rp_gy, "Gy"),
        _num(POSITIONER_PRIMARY_ANGLE, event.primary_angle_deg, "deg"),
        _num(POSITIONER_SECONDARY_ANGLE, event.secondary_angle_deg, "deg"),
        _container(
            "CONTAINS",
            XRAY_FILTERS,
            [
                _coded("CONTAINS", XRAY_FILTER_TYPE, FLAT_FILTER),
                _coded("CONTAINS", XRAY_FILTER_MATERIAL, COPPER),
                _num(XRAY_FILTER_THICKNESS_MINIMUM, event.copper_mm, "mm"),
                _num(XRAY_FILTER_THICKNESS_MAXIMUM, event.copper_mm, "mm"),
            ],
        ),
    ]
    if event.fluoroscopy and event.pulse_rate is not None:
        items += [
            _coded("CONTAINS", FLUORO_MODE, PULSED),
            _num(PULSE_RATE, event.pulse_rate, "{pulse}/s"),
        ]
    items += [
        _num(NUMBER_OF_PULSES, Decimal(event.pulses), "{pulses}"),
        _num(KVP, event.kvp, "kV"),
        _num(XRAY_TUBE_CURRENT, event.tube_current_ma, "mA"),
        _num(EXPOSURE_TIME, event.exposure_time_ms, "ms"),
        _num(PULSE_WIDTH, event.pulse_width_ms, "ms"),
        _num(EXPOSURE, event.exposure_uas, "uA.s"),
        _num(IRRADIATION_DURATION, event.irradiation_duration_s, "s"),
        _num(FOCAL_SPOT_SIZE, event.focal_spot_mm, "mm"),
        _num(
            COLLIMATED_FIELD_AREA,
            Decimal(event.field_height_mm * event.field_width_mm).scaleb(-6),
            "m2",
        ),
        _num(COLLIMATED_FIELD_HEIGHT, Decimal(event.field_height_mm), "mm"),
        _num(COLLIMATED_FIELD_WIDTH, Decimal(event.field_width_mm), "mm"),
        _num(DISTANCE_SOURCE_TO_DETECTOR, Decimal(event.sid_mm), "mm"),
    ]
    if event.sod_mm is not None:
        items.append(_num(DISTANCE_SOURCE_TO_ISOCENTER, Decimal(event.sod_mm), "mm"))
    items.append(_coded("CONTAINS", TARGET_REGION, protocol.target_region))
    items += participants
    return _container("CONTAINS", IRRADIATION_EVENT_XRAY_DATA, items)


def _accumulated_item(plane: Code, events: list[_XRayEvent], protocol: FluoroProtocol) -> bytes:
    """TID 10002 for one plane: the exact sums of its events' values."""
    fluoro = [event for event in events if event.fluoroscopy]
    acquisition = [event for event in events if not event.fluoroscopy]

    def total(selected: list[_XRayEvent], field: str) -> Decimal:
        return sum((getattr(event, field) for event in selected), Decimal(0))

    return _container(
        "CONTAINS",
        ACCUMULATED_XRAY_DOSE_DATA,
        [
            _coded("HAS CONCEPT MOD", ACQUISITION_PLANE, plane),
            _num(DOSE_AREA_PRODUCT_TOTAL, total(events, "dap_gym2"), "Gy.m2"),
            _num(DOSE_RP_TOTAL, total(events, "dose_rp_gy"), "Gy"),
            _num(FLUORO_DOSE_AREA_PRODUCT_TOTAL, total(fluoro, "dap_gym2"), "Gy.m2"),
            _num(FLUORO_DOSE_RP_TOTAL, total(fluoro, "dose_rp_gy"), "Gy"),
            _num(TOTAL_FLUORO_TIME, total(fluoro, "irradiation_duration_s"), "s"),
            _num(ACQUISITION_DOSE_AREA_PRODUCT_TOTAL, total(acquisition, "dap_gym2"), "Gy.m2"),
            _num(ACQUISITION_DOSE_RP_TOTAL, total(acquisition, "dose_rp_gy"), "Gy"),
            _num(TOTAL_ACQUISITION_TIME, total(acquisition, "irradiation_duration_s"), "s"),
            _num(
                TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES,
                Decimal(sum(event.pulses for event in acquisition)),
                "{frames}",
            ),
            _coded("CONTAINS", REFERENCE_POINT_DEFINITION, _reference_point(protocol)),
        ],
    )


def _fluoro_report_bytes(
    rng: random.Random,
    key: tuple[object, ...],
    visit: _Visit,
    device: DoseDevice,
    protocol: FluoroProtocol,
    n_events: int | None,
) -> bytes:
    start = visit.start + datetime.timedelta(minutes=rng.randint(5, 20))
    events, end = _fluoro_events(rng, key, protocol, device, visit.weight_kg, n_events, start)
    planes = _planes(device, protocol)
    participants = _participants(visit, device)
    items = [
        _coded(
            "HAS CONCEPT MOD",
            PROCEDURE_REPORTED,
            PROJECTION_XRAY,
            [_coded("HAS CONCEPT MOD", HAS_INTENT, protocol.intent)],
        ),
        *_observer_context(visit, device),
        _datetime("HAS OBS CONTEXT", START_OF_XRAY_IRRADIATION, start),
        _datetime("HAS OBS CONTEXT", END_OF_XRAY_IRRADIATION, end),
        _scope(visit),
        *(
            _accumulated_item(plane, [e for e in events if e.plane == plane], protocol)
            for plane in planes
        ),
        *(_xray_event_item(event, protocol, participants) for event in events),
        _coded("CONTAINS", SOURCE_OF_DOSE_INFORMATION, AUTOMATED_DATA_COLLECTION),
        _comment(visit, f"{protocol.study_description.capitalize()}, access right radial,"),
    ]
    return _report(visit, device, key, "10001", items, end, rng)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _ct_protocol(protocol: CTProtocol | str | None, rng: random.Random) -> CTProtocol:
    if isinstance(protocol, CTProtocol):
        return protocol
    if protocol is None:
        return _choose(rng, CT_PROTOCOLS, [p.frequency for p in CT_PROTOCOLS])
    try:
        return _CT_PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(
            f"unknown CT protocol {protocol!r}; known: {', '.join(_CT_PROTOCOLS)}"
        ) from None


def _fluoro_protocol(
    protocol: FluoroProtocol | str | None, rng: random.Random, rooms: set[str]
) -> FluoroProtocol:
    """The protocol given, else one done in `rooms`, drawn by frequency."""
    if isinstance(protocol, FluoroProtocol):
        return protocol
    if protocol is None:
        candidates = [p for p in FLUORO_PROTOCOLS if p.room in rooms] or list(FLUORO_PROTOCOLS)
        return _choose(rng, candidates, [p.frequency for p in candidates])
    try:
        return _FLUORO_PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(
            f"unknown fluoroscopy protocol {protocol!r}; known: {', '.join(_FLUORO_PROTOCOLS)}"
        ) from None


def _named_device(device: DoseDevice | str | None, kind: Kind) -> DoseDevice | None:
    if device is None or isinstance(device, DoseDevice):
        found = device
    elif device in _DEVICES_BY_STATION:
        found = _DEVICES_BY_STATION[device]
    else:
        raise ValueError(
            f"unknown device {device!r}: give a DoseDevice or the station name of one of "
            "radbank.synthetic_dose.DEVICES"
        )
    if found is not None and found.kind != kind:
        raise ValueError(f"device {found.station_name} is a {found.kind} device, not {kind}")
    return found


def _patient_for(
    rng: random.Random, patient: SyntheticPatient | None, device: DoseDevice | None
) -> SyntheticPatient:
    """The patient given, else a new one of the device's site (of any site, without one)."""
    if patient is not None:
        return patient
    sites = range(len(_SITES))
    if device is None:
        return _draw_patient(rng, rng.choice(sites), None)
    site = next((i for i in sites if _site(i).institution_name == device.institution_name), 0)
    return _draw_patient(rng, site, None)


def _ct_report(
    rng: random.Random,
    key: tuple[object, ...],
    patient: SyntheticPatient | None,
    study_instance_uid: str | None,
    device: DoseDevice | str | None,
    protocol: CTProtocol | str | None,
    n_events: int | None,
) -> bytes:
    chosen = _named_device(device, "CT")
    chosen_protocol = _ct_protocol(protocol, rng)
    patient = _patient_for(rng, patient, chosen)
    chosen = chosen or _pick_device(rng, "CT", patient)
    visit = _visit(rng, key, patient, study_instance_uid, chosen_protocol.study_description)
    return _ct_report_bytes(rng, key, visit, chosen, chosen_protocol, n_events)


def _fluoro_report(
    rng: random.Random,
    key: tuple[object, ...],
    patient: SyntheticPatient | None,
    study_instance_uid: str | None,
    device: DoseDevice | str | None,
    protocol: FluoroProtocol | str | None,
    n_events: int | None,
) -> bytes:
    chosen = _named_device(device, "fluoroscopy")
    patient = _patient_for(rng, patient, chosen)
    if chosen is None:
        # a procedure the patient's site does, in one of its rooms
        rooms = {d.room for d in DEVICES if d.institution_name == patient.site}
        chosen_protocol = _fluoro_protocol(protocol, rng, rooms or {"cath", "rf"})
        chosen = _pick_device(rng, "fluoroscopy", patient, chosen_protocol.room)
    else:
        chosen_protocol = _fluoro_protocol(protocol, rng, {chosen.room})
    visit = _visit(rng, key, patient, study_instance_uid, chosen_protocol.study_description)
    return _fluoro_report_bytes(rng, key, visit, chosen, chosen_protocol, n_events)


def _dataset(raw: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(raw))


def ct_rdsr(
    seed: int = 0,
    *,
    patient: SyntheticPatient | None = None,
    study_instance_uid: str | None = None,
    device: DoseDevice | str | None = None,
    protocol: CTProtocol | str | None = None,
    n_events: int | None = None,
    images: Sequence[Dataset] | None = None,
) -> Dataset:
    """One identified CT dose report (TID 10011), deterministic given its arguments.

    `device` is a `DoseDevice` or the station name of one of `DEVICES` (default: a CT of
    the patient's site), `protocol` a `CTProtocol` or the key of one of `CT_PROTOCOLS`
    ("head", "chest", ...; default: drawn by frequency), `patient` a
    `radbank.synthetic.SyntheticPatient` (default: a new one; weight and height follow
    from the patient, the same in every study). `n_events` is the number of irradiation
    events: 1 is a lone acquisition, more are a localizer, a bolus-tracking acquisition
    when the protocol uses one and there are at least 3, and acquisitions.

    `images`: the CT images of one study (one or more per series; radbank.synthetic's or
    any with the same header attributes). The report is then theirs: same patient, study,
    institution and scanner, a localizer, and one acquisition per series with the series'
    Irradiation Event UID, protocol name, CTDIvol, kVp, tube current, rotation time,
    pitch and collimation. The other arguments are then ignored.
    """
    if images:
        return _dataset(_report_for_images(seed, images))
    rng = random.Random(f"radbank.synthetic_dose.ct:{seed}")
    key = ("dose", "ct", seed)
    return _dataset(_ct_report(rng, key, patient, study_instance_uid, device, protocol, n_events))


def fluoro_rdsr(
    seed: int = 0,
    *,
    patient: SyntheticPatient | None = None,
    study_instance_uid: str | None = None,
    device: DoseDevice | str | None = None,
    protocol: FluoroProtocol | str | None = None,
    n_events: int | None = None,
) -> Dataset:
    """One identified fluoroscopy / interventional dose report (TID 10001).

    As `ct_rdsr`: `device` a fluoroscopy `DoseDevice` or station name (default: a room of
    the patient's site that does the protocol), `protocol` a `FluoroProtocol` or one of
    "coronary-angiography", "pci", "cerebral-angiography" (biplane), "ercp" (default: one
    the device does, by frequency). `n_events` is the total number of irradiation events
    over all planes (about a third acquisitions, the rest fluoroscopy runs).
    """
    rng = random.Random(f"radbank.synthetic_dose.fluoroscopy:{seed}")
    key = ("dose", "fluoroscopy", seed)
    return _dataset(
        _fluoro_report(rng, key, patient, study_instance_uid, device, protocol, n_events)
    )


_KINDS: tuple[Kind, ...] = ("CT", "fluoroscopy")
# Of every 100 studies with a dose report, about this many are CT (the rest fluoroscopy).
_CT_SHARE = 0.75
_STUDIES_PER_PATIENT = 2.5


def dose_reports(
    count: int, seed: int = 0, *, kinds: Sequence[Kind] = ("CT", "fluoroscopy")
) -> Iterator[bytes]:
    """`count` identified dose reports as Part 10 bytes (Explicit VR Little Endian).

    The patients (about one for every 2.5 reports, so many have several studies) belong to
    the five sites and are examined on their site's rooms; with both kinds, about 75% of
    the reports are CT. Report `i` depends only on `seed`, `i` and `kinds`.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    unknown = set(kinds) - set(_KINDS)
    if unknown or not kinds:
        raise ValueError(f"kinds must be some of {_KINDS}, not {tuple(kinds)!r}")
    n_patients = max(1, round(count / _STUDIES_PER_PATIENT))
    patients: dict[int, SyntheticPatient] = {}
    for index in range(count):
        rng = random.Random(f"radbank.synthetic_dose.reports:{seed}:{index}")
        number = rng.randrange(n_patients)
        patient = patients.get(number)
        if patient is None:
            site = number % len(_SITES)
            # a bijection of 0..8,999,999 (7,919,113 is prime to 9,000,000): IDs are unique
            patient_id = (
                f"{_site(site).id_prefix}{1_000_000 + (number * 7_919_113 + seed) % 9_000_000}"
            )
            patient = _draw_patient(
                random.Random(f"radbank.synthetic_dose.patient:{seed}:{number}"), site, patient_id
            )
            patients[number] = patient
        kind = kinds[0] if len(kinds) == 1 else "CT" if rng.random() < _CT_SHARE else "fluoroscopy"
        key = ("dose", "reports", seed, index)
        if kind == "CT":
            yield _ct_report(rng, key, patient, None, None, None, None)
        else:
            yield _fluoro_report(rng, key, patient, None, None, None, None)


# --------------------------------------------------------------------------------------
# Reports for the images of radbank.synthetic (the demo)
# --------------------------------------------------------------------------------------


def _text_of(dataset: Dataset, keyword: str, default: str = "") -> str:
    value = dataset.get(keyword)
    return default if value is None or value == "" else str(value)


def _report_for_images(seed: int, images: Sequence[Dataset]) -> bytes:
    first = images[0]
    study_instance_uid = _text_of(first, "StudyInstanceUID")
    rng = random.Random(f"radbank.synthetic_dose.images:{seed}:{study_instance_uid}")
    others = first.get("OtherPatientIDsSequence") or [Dataset()]
    institution = _text_of(first, "InstitutionName")
    patient = SyntheticPatient(
        patient_id=_text_of(first, "PatientID"),
        issuer=_text_of(first, "IssuerOfPatientID"),
        name=_text_of(first, "PatientName", "Unknown^Unknown"),
        birth_date=_text_of(first, "PatientBirthDate", "19700101"),
        sex=_text_of(first, "PatientSex", "O"),
        site=institution,
        address=_text_of(first, "PatientAddress"),
        telephone=_text_of(first, "PatientTelephoneNumbers"),
        national_id=_text_of(others[0], "PatientID"),
    )
    operator_ids = first.get("OperatorIdentificationSequence") or [Dataset()]
    codes_ = operator_ids[0].get("PersonIdentificationCodeSequence") or [Dataset()]
    requests = first.get("RequestAttributesSequence") or [Dataset()]
    study_date = _text_of(first, "StudyDate", "20200101")
    study_time = _text_of(first, "StudyTime", "120000")[:6].ljust(6, "0")
    visit = _Visit(
        patient=patient,
        weight_kg=round(float(first.get("PatientWeight") or _body(patient)[0])),
        height_m=f"{float(first.get('PatientSize') or _body(patient)[1]):.2f}",
        study_instance_uid=study_instance_uid,
        accession_number=_text_of(first, "AccessionNumber"),
        study_id=_text_of(first, "StudyID"),
        requested_procedure_id=_text_of(requests[0], "RequestedProcedureID"),
        start=datetime.datetime.strptime(study_date + study_time, "%Y%m%d%H%M%S"),
        study_description=_text_of(first, "StudyDescription"),
        referring_physician=_text_of(first, "ReferringPhysicianName"),
        reading_physician=_text_of(first, "NameOfPhysiciansReadingStudy"),
        performing_physician=_text_of(first, "PerformingPhysicianName"),
        operator=_text_of(first, "OperatorsName"),
        operator_staff_id=_text_of(codes_[0], "CodeValue"),
    )
    device = _DEVICES_BY_STATION.get(_text_of(first, "StationName")) or DoseDevice(
        "CT",
        institution,
        _text_of(first, "InstitutionAddress"),
        _text_of(first, "InstitutionalDepartmentName"),
        _text_of(first, "Manufacturer", "Unknown"),
        _text_of(first, "ManufacturerModelName", "Unknown"),
        _text_of(first, "StationName"),
        _text_of(first, "DeviceSerialNumber", "0"),
        _text_of(first, "SoftwareVersions", "0"),
        "CT",
        1.0,
    )
    body_part = _text_of(first, "BodyPartExamined").upper()
    protocol = next((p for p in CT_PROTOCOLS if p.body_part == body_part), _CT_PROTOCOLS["chest"])
    by_series: dict[str, _Series] = {}
    for image in images:
        number = int(image.get("SeriesNumber") or len(by_series) + 1)
        by_series.setdefault(
            _text_of(image, "SeriesInstanceUID"),
            _Series(
                number=number,
                irradiation_event_uid=_text_of(image, "IrradiationEventUID")
                or str(_uid("dose", "images", seed, study_instance_uid, number)),
                protocol_name=_text_of(image, "ProtocolName", protocol.acquisition_protocol),
                ctdivol_mgy=_dec(float(image.get("CTDIvol") or protocol.ctdivol_mgy), 2),
                kvp=_dec(float(image.get("KVP") or 120), 0),
                tube_current_ma=_dec(float(image.get("XRayTubeCurrent") or 200), 0),
                rotation_time_s=Decimal(f"{float(image.get('RevolutionTime') or 0.5):g}"),
                pitch=Decimal(f"{float(image.get('SpiralPitchFactor') or 1):g}"),
                single_collimation_mm=Decimal(
                    f"{float(image.get('SingleCollimationWidth') or 0.6):g}"
                ),
                total_collimation_mm=Decimal(
                    f"{float(image.get('TotalCollimationWidth') or 38.4):g}"
                ),
            ),
        )
    series = sorted(by_series.values(), key=lambda s: s.number)
    key = ("dose", "images", seed, study_instance_uid)
    return _ct_report_bytes(rng, key, visit, device, protocol, None, series)


# --------------------------------------------------------------------------------------
# What the generator wrote
# --------------------------------------------------------------------------------------

_ONE, _MILLI, _KILO = Decimal(1), Decimal("0.001"), Decimal(1000)
# concept code value (DCM) -> (field of radbank.dicom.dose's model, its unit, the factor
# from the unit the generator writes the row in)
_CT_EVENT_FIELDS = {
    MEAN_CTDIVOL.value: ("ctdivol_mgy", "mGy", _ONE),
    DLP.value: ("dlp_mgycm", "mGy.cm", _ONE),
    EXPOSURE_TIME.value: ("exposure_time_s", "s", _ONE),
    SCANNING_LENGTH.value: ("scanning_length_mm", "mm", _ONE),
    NOMINAL_SINGLE_COLLIMATION_WIDTH.value: ("nominal_single_collimation_width_mm", "mm", _ONE),
    NOMINAL_TOTAL_COLLIMATION_WIDTH.value: ("nominal_total_collimation_width_mm", "mm", _ONE),
    PITCH_FACTOR.value: ("pitch_factor", "{ratio}", _ONE),
    KVP.value: ("kvp", "kV", _ONE),
    XRAY_TUBE_CURRENT.value: ("tube_current_ma", "mA", _ONE),
    MAXIMUM_XRAY_TUBE_CURRENT.value: ("maximum_tube_current_ma", "mA", _ONE),
    EXPOSURE_TIME_PER_ROTATION.value: ("exposure_time_per_rotation_s", "s", _ONE),
    CTDIVOL_ALERT_VALUE.value: ("ctdivol_alert_value_mgy", "mGy", _ONE),
    DLP_ALERT_VALUE.value: ("dlp_alert_value_mgycm", "mGy.cm", _ONE),
    CTDIVOL_NOTIFICATION_VALUE.value: ("ctdivol_notification_value_mgy", "mGy", _ONE),
    DLP_NOTIFICATION_VALUE.value: ("dlp_notification_value_mgycm", "mGy.cm", _ONE),
}
_XRAY_EVENT_FIELDS = {
    DOSE_AREA_PRODUCT.value: ("dap_gym2", "Gy.m2", _ONE),
    DOSE_RP.value: ("dose_rp_mgy", "mGy", _KILO),
    KVP.value: ("kvp", "kV", _ONE),
    XRAY_TUBE_CURRENT.value: ("tube_current_ma", "mA", _ONE),
    EXPOSURE_TIME.value: ("exposure_time_s", "s", _MILLI),
    EXPOSURE.value: ("exposure_mas", "mA.s", _MILLI),
    IRRADIATION_DURATION.value: ("irradiation_duration_s", "s", _ONE),
    NUMBER_OF_PULSES.value: ("number_of_pulses", "1", _ONE),
    COLLIMATED_FIELD_AREA.value: ("collimated_field_area_m2", "m2", _ONE),
    COLLIMATED_FIELD_HEIGHT.value: ("collimated_field_height_mm", "mm", _ONE),
    COLLIMATED_FIELD_WIDTH.value: ("collimated_field_width_mm", "mm", _ONE),
}
_FILTER_FIELDS = {
    XRAY_FILTER_THICKNESS_MINIMUM.value: ("thickness_minimum_mm", "mm", _ONE),
    XRAY_FILTER_THICKNESS_MAXIMUM.value: ("thickness_maximum_mm", "mm", _ONE),
}
_PLANE_FIELDS = {
    DOSE_AREA_PRODUCT_TOTAL.value: ("dap_total_gym2", "Gy.m2", _ONE),
    DOSE_RP_TOTAL.value: ("dose_rp_total_mgy", "mGy", _KILO),
    FLUORO_DOSE_AREA_PRODUCT_TOTAL.value: ("fluoro_dap_total_gym2", "Gy.m2", _ONE),
    FLUORO_DOSE_RP_TOTAL.value: ("fluoro_dose_rp_total_mgy", "mGy", _KILO),
    TOTAL_FLUORO_TIME.value: ("total_fluoro_time_s", "s", _ONE),
    ACQUISITION_DOSE_AREA_PRODUCT_TOTAL.value: ("acquisition_dap_total_gym2", "Gy.m2", _ONE),
    ACQUISITION_DOSE_RP_TOTAL.value: ("acquisition_dose_rp_total_mgy", "mGy", _KILO),
    TOTAL_ACQUISITION_TIME.value: ("total_acquisition_time_s", "s", _ONE),
    TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES.value: (
        "total_number_of_radiographic_frames",
        "1",
        _ONE,
    ),
}
_CT_TOTAL_FIELDS = {
    TOTAL_NUMBER_OF_IRRADIATION_EVENTS.value: (
        "total_number_of_irradiation_events",
        "{events}",
        _ONE,
    ),
    CT_DOSE_LENGTH_PRODUCT_TOTAL.value: ("ct_dlp_total_mgycm", "mGy.cm", _ONE),
}

Value = tuple[float, str]


def _concept_value(item: Dataset) -> str:
    return str(item.ConceptNameCodeSequence[0].CodeValue)


def _numbers(
    item: Dataset, fields: dict[str, tuple[str, str, Decimal]], stop: frozenset[str] = frozenset()
) -> dict[str, Value]:
    """The NUM rows below `item` that `fields` names, converted exactly, not descending
    into containers whose concept is in `stop`."""
    found: dict[str, Value] = {}
    for child in item.get("ContentSequence") or []:
        concept = _concept_value(child)
        if child.ValueType == "NUM" and concept in fields:
            name, unit, factor = fields[concept]
            written = Decimal(str(child.MeasuredValueSequence[0].NumericValue))
            found.setdefault(name, (float(written * factor), unit))
        elif child.ValueType == "CONTAINER" and concept not in stop:
            for name, value in _numbers(child, fields, stop).items():
                found.setdefault(name, value)
    return found


def _child(item: Dataset, concept: Code) -> Dataset | None:
    return next(
        (c for c in item.get("ContentSequence") or [] if _concept_value(c) == concept.value),
        None,
    )


def _row(item: Dataset, concept: Code) -> Dataset:
    """A row the generator always writes."""
    found = _child(item, concept)
    if found is None:
        raise ValueError(
            f"no {concept.meaning} row in {_concept_value(item)}: not a report of "
            "radbank.synthetic_dose"
        )
    return found


def _meaning(item: Dataset | None) -> str | None:
    return None if item is None else str(item.ConceptCodeSequence[0].CodeMeaning)


def expected_values(dataset: Dataset) -> dict[str, Any]:
    """What the generator wrote into one of its reports, as `radbank.dicom.dose` models it.

    Read back from the generator's own layout (its rows and units, not through
    `radbank.dicom.dose`), each number converted exactly (decimal arithmetic) to the unit
    of the model field of the same name: `{"kind", "template", "sop_instance_uid",
    "study_instance_uid", "device_observer_uid", "totals", "planes", "events"}`, where
    `totals`, each plane and each event map field names to (value, unit); events also
    carry "irradiation_event_uid" and the meanings of their coded rows, projection events
    their "filters". `totals` is what `DoseReport` gives: for CT the DLP total and the
    number of events; for projection X-ray the single plane's totals, or with two planes
    the DAP totals summed over them.
    """
    root = dataset
    template = str(root.ContentTemplateSequence[0].TemplateIdentifier)
    device_uid = _child(root, DEVICE_OBSERVER_UID)
    result: dict[str, Any] = {
        "kind": "CT" if template == "10011" else "fluoroscopy",
        "template": f"TID {template}",
        "sop_instance_uid": str(dataset.SOPInstanceUID),
        "study_instance_uid": str(dataset.StudyInstanceUID),
        "device_observer_uid": None if device_uid is None else str(device_uid.UID),
        "totals": {},
        "planes": [],
        "events": [],
    }
    for item in root.ContentSequence:
        concept = _concept_value(item)
        if concept == CT_ACCUMULATED_DOSE_DATA.value:
            result["totals"] = _numbers(item, _CT_TOTAL_FIELDS)
        elif concept == CT_ACQUISITION.value:
            event: dict[str, Any] = {
                "irradiation_event_uid": str(_row(item, IRRADIATION_EVENT_UID).UID),
                "acquisition_type": _meaning(_child(item, CT_ACQUISITION_TYPE)),
                "target_region": _meaning(_child(item, TARGET_REGION)),
                "acquisition_protocol": str(_row(item, ACQUISITION_PROTOCOL).TextValue),
            }
            dose = _child(item, CT_DOSE)
            event["ctdiw_phantom_type"] = (
                None if dose is None else _meaning(_child(dose, CTDIW_PHANTOM_TYPE))
            )
            event.update(_numbers(item, _CT_EVENT_FIELDS))
            result["events"].append(event)
        elif concept == ACCUMULATED_XRAY_DOSE_DATA.value:
            plane = {"acquisition_plane": _meaning(_child(item, ACQUISITION_PLANE))}
            plane.update(_numbers(item, _PLANE_FIELDS))
            result["planes"].append(plane)
        elif concept == IRRADIATION_EVENT_XRAY_DATA.value:
            event = {
                "irradiation_event_uid": str(_row(item, IRRADIATION_EVENT_UID).UID),
                "acquisition_type": _meaning(_child(item, IRRADIATION_EVENT_TYPE)),
                "acquisition_plane": _meaning(_child(item, ACQUISITION_PLANE)),
                "target_region": _meaning(_child(item, TARGET_REGION)),
                "fluoro_mode": _meaning(_child(item, FLUORO_MODE)),
                "acquisition_protocol": str(_row(item, ACQUISITION_PROTOCOL).TextValue),
            }
            event.update(_numbers(item, _XRAY_EVENT_FIELDS, frozenset({XRAY_FILTERS.value})))
            event["filters"] = [
                {
                    "material": _meaning(_child(child, XRAY_FILTER_MATERIAL)),
                    **_numbers(child, _FILTER_FIELDS),
                }
                for child in item.ContentSequence
                if _concept_value(child) == XRAY_FILTERS.value
            ]
            result["events"].append(event)
    planes = result["planes"]
    if len(planes) == 1:
        result["totals"] = {
            name: planes[0][name]
            for name in (
                "dap_total_gym2",
                "fluoro_dap_total_gym2",
                "acquisition_dap_total_gym2",
                "dose_rp_total_mgy",
                "total_fluoro_time_s",
            )
        }
    elif planes:
        for name in ("dap_total_gym2", "fluoro_dap_total_gym2", "acquisition_dap_total_gym2"):
            summed = sum(Decimal(str(plane[name][0])) for plane in planes)
            result["totals"][name] = (float(summed), planes[0][name][1])
    return result
