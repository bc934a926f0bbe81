"""What the node says in RDF about each stored DICOM object and each dose value: pure
functions from index records (radbank.index.InstanceRecord and its dose table rows) to quads
in the project's named graph, with the terms of the radbank ontology (docs/ontology.md).

    quads = instance_quads("ct-trial", record)            # one object
    quads = batch_quads("ct-trial", records)              # an ingest batch, shared nodes once
    quads = project_quads(project, base_url="https://node.example")

The output depends only on the project name, the record and its dose rows: no clock, no
random. Ingest (right after a batch is indexed) and `radbank rdf rebuild` (records read back
from the index, dose rows and water-equivalent diameter recomputed from the blob) therefore
give the same quads. `batch_quads` states what several objects share (the study, the series,
the subject, the event the slices of a CT series describe, the devices, the processing
steps) once; its quads are, as a set, the union of `instance_quads` of each record.

What a CT image adds is a handful of quads (the instance, its place in the series, its
provenance and one prov:wasDerivedFrom per value of its acquisition); a dose report adds
its events with their quantities. Every node minted for a subject's data carries
radbank:subject, so erasure deletes by node; devices, processing steps, the software agent
and the project carry no personal data and no radbank:subject.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from pyoxigraph import Literal, NamedNode, Quad

from radbank import __version__
from radbank.semantic.dcat import (
    ProjectLike,
    access_rights_iri,
    data_use_terms,
    licence_iri,
    service_triples,
)
from radbank.semantic.vocabulary import (
    DCAT,
    DCM,
    DCT,
    PROV,
    QUDT,
    RB,
    RDF,
    RDFS,
    XSD,
    concept_iri,
    graph_iri,
    project_iri,
    qudt_unit,
    subject_iri,
    uid_iri,
)

if TYPE_CHECKING:
    from radbank.index import InstanceRecord

__all__ = [
    "EVENT_QUANTITIES",
    "REPORT_QUANTITIES",
    "MAPPING_VERSION",
    "SOFTWARE_AGENT",
    "batch_quads",
    "consent_iri",
    "consent_quads",
    "graph_version_quad",
    "instance_quads",
    "project_quads",
]

SOFTWARE_AGENT = f"urn:radbank:software:{__version__}"
"""The prov:SoftwareAgent of every processing step: this radbank version."""

MAPPING_VERSION = "3"
"""The version of what this module says of an object: raised whenever the quads of an object
change, so that a node rebuilds the graphs an older version wrote (`graph_version_quad`).
2: events state their CTDIvol and DLP as plain numbers too (radbank:meanCTDIvolInmGy,
radbank:dlpInmGycm). 3: each subject's current consent is a radbank:Consent."""

# Dose table columns (radbank.dicom.dose.table.COLUMNS) -> (DCM concept, UCUM unit): each
# value becomes a radbank:DoseQuantity. The concept is the one the column's template row
# (or image attribute, radbank.dicom.dose.header) reads; the unit is the column's.
EVENT_QUANTITIES: dict[str, tuple[str, str]] = {
    "ctdivol_mGy": ("113830", "mGy"),
    "dlp_mGycm": ("113838", "mGy.cm"),
    "scan_length_mm": ("113825", "mm"),
    "kvp": ("113733", "kV"),
    "tube_current_mA": ("113734", "mA"),
    "max_tube_current_mA": ("113833", "mA"),
    "exposure_time_s": ("113824", "s"),
    "rotation_time_s": ("113834", "s"),
    "single_collimation_mm": ("113826", "mm"),
    "total_collimation_mm": ("113827", "mm"),
    "pitch": ("113828", "{ratio}"),
    "ctdivol_alert_mGy": ("113904", "mGy"),
    "dlp_alert_mGycm": ("113903", "mGy.cm"),
    "ctdivol_notification_mGy": ("113912", "mGy"),
    "dlp_notification_mGycm": ("113911", "mGy.cm"),
    "dap_Gym2": ("122130", "Gy.m2"),
    "dose_rp_Gy": ("113738", "Gy"),
    "exposure_mAs": ("113736", "mA.s"),
    "irradiation_duration_s": ("113742", "s"),
    "pulses": ("113768", "1"),
    "field_area_m2": ("113790", "m2"),
    "agd_mGy": ("111631", "mGy"),
    "entrance_exposure_rp_mGy": ("111636", "mGy"),
    "hvl_mm": ("111634", "mm"),
    "compression_thickness_mm": ("111633", "mm"),
    "administered_activity_MBq": ("113507", "MBq"),
    "effective_dose_mSv": ("113839", "mSv"),
}
"""Values of one irradiation event or administration."""

REPORT_QUANTITIES: dict[str, tuple[str, str]] = {
    "dlp_total_mGycm": ("113813", "mGy.cm"),
    "events_total": ("113812", "{events}"),
    "dap_total_Gym2": ("113722", "Gy.m2"),
    "fluoro_dap_total_Gym2": ("113726", "Gy.m2"),
    "acquisition_dap_total_Gym2": ("113727", "Gy.m2"),
    "dose_rp_total_Gy": ("113725", "Gy"),
    "fluoro_time_total_s": ("113730", "s"),
}
"""Accumulated values: they belong to the object that states them (every row of a report
repeats them), not to an event."""

# The slices of a CT series each state their own tube current and exposure (modulated along
# the scan) and acquisition time; the event they share keeps only what its identity fixes and
# what is constant over the acquisition. (Ingest copies the first slice's row to the others
# of an event, radbank.ingest.dose.DoseReader, a rebuild reads every slice: these values would
# differ between the two.)
_PER_SLICE = frozenset(
    {"tube_current_mA", "max_tube_current_mA", "exposure_time_s", "exposure_mAs"}
)
_PHANTOMS = {"32": DCM + "113691", "16": DCM + "113690"}
_PHANTOM_COLUMNS = frozenset({"ctdivol_mGy", "dlp_mGycm"})
_ORGAN_DOSE = re.compile(r"\s*(.+?)=([-+0-9.eE]+) (\S+)\s*(?:;|$)")
_AGE = re.compile(r"(\d{1,3})([DWMY])")
_AGE_YEARS = {"D": Decimal(1) / Decimal("365.25"), "W": Decimal(7) / Decimal("365.25")}
_TZ = re.compile(r"([+-])(\d{2})(\d{2})")
_MILLI = Decimal("0.001")

# DICOM JSON tags read from the record's attributes
_PATIENT_ID, _PATIENT_AGE, _PATIENT_SEX, _PATIENT_WEIGHT = (
    "00100020",
    "00101010",
    "00100040",
    "00101030",
)
_STUDY_DATE, _MODALITY, _BODY_PART, _SERIAL = "00080020", "00080060", "00180015", "00181000"
_TZ_OFFSET, _DEID_METHODS, _PROCEDURE_CODES = "00080201", "00120064", "00081032"
_EXPOSURE_DOSE_SEQUENCE, _PER_FRAME_GROUPS = "0040030E", "52009230"


class _Namespace:
    """The NamedNodes of a vocabulary's terms, each made once: rb.ImagingStudy."""

    def __init__(self, base: str) -> None:
        self._base = base

    def __getattr__(self, name: str) -> NamedNode:
        node = NamedNode(self._base + name)
        setattr(self, name, node)
        return node


rb, dcterms, prov, qudt = _Namespace(RB), _Namespace(DCT), _Namespace(PROV), _Namespace(QUDT)
TYPE, LABEL = NamedNode(RDF + "type"), NamedNode(RDFS + "label")
XSD_DECIMAL, XSD_DATE, XSD_DATETIME = (NamedNode(XSD + n) for n in ("decimal", "date", "dateTime"))
_DCAT_DATASET = NamedNode(DCAT + "Dataset")
AGENT = NamedNode(SOFTWARE_AGENT)
_DW_CONCEPT = NamedNode(DCM + "113980")
_ORGAN_DOSE_CONCEPT = NamedNode(DCM + "113518")

_EVENT_CLASSES = {
    "CT": (rb.CTAcquisition, rb.IrradiationEvent),
    "projection": (rb.ProjectionXRayEvent, rb.IrradiationEvent),
    "NM": (rb.RadiopharmaceuticalAdministration,),
}
# Event quantities the event also states as a plain number (besides the DoseQuantity node):
# the two that statistics over many events ask for, read in one step.
_ON_EVENT = {"ctdivol_mGy": rb.meanCTDIvolInmGy, "dlp_mGycm": rb.dlpInmGycm}


@lru_cache(maxsize=256)
def _dcm(code: str) -> NamedNode:
    return NamedNode(DCM + code)


@lru_cache(maxsize=256)
def _unit(ucum: str) -> NamedNode | None:
    unit = qudt_unit(ucum)
    return None if unit is None else NamedNode(unit)


@lru_cache(maxsize=4096)
def _concept(key: str) -> NamedNode | None:
    """The IRI of a "SCHEME:VALUE" code where its scheme has one (DCM, SCT)."""
    try:
        return NamedNode(concept_iri(key))
    except ValueError:
        return None


def _digest(*parts: object) -> str:
    """16 hex digits of the SHA-256 of the parts (their str, NUL-separated)."""
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]


@lru_cache(maxsize=1024)
def _activity_key(received_at: datetime, source: str) -> str:
    return _digest(_utc(received_at).isoformat(), source)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _uid_iri(value: Any) -> str | None:
    """urn:oid:<value> when the value is a UID (an OID), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return uid_iri(value)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- DICOM JSON --------------------------------------------------------------------------


def _first(attributes: Mapping[str, Any], tag: str) -> Any:
    element = attributes.get(tag)
    if not element:
        return None
    values = element.get("Value")
    return values[0] if values else None


def _text(attributes: Mapping[str, Any], tag: str) -> str | None:
    value = _first(attributes, tag)
    if value is None or isinstance(value, dict):
        return None
    text = str(value).strip()
    return text or None


def _codes(attributes: Mapping[str, Any], tag: str) -> list[tuple[str, str, str]]:
    """(scheme, value, meaning) of the items of a code sequence."""
    element = attributes.get(tag) or {}
    codes = []
    for item in element.get("Value") or ():
        if not isinstance(item, dict):
            continue
        value = _text(item, "00080100") or _text(item, "00080119") or ""
        scheme = _text(item, "00080102") or ""
        if value and scheme:
            codes.append((scheme, value, _text(item, "00080104") or ""))
    return codes


def _decimal(text: Decimal) -> str:
    """Canonical xsd:decimal text (no exponent, no trailing zeros)."""
    return format(text.normalize(), "f")


def _age_years(value: str | None) -> str | None:
    """Patient's Age (AS: "045Y", "006M", "010W", "003D") in years, to three decimals."""
    match = _AGE.fullmatch((value or "").strip().upper())
    if match is None:
        return None
    number, unit = Decimal(match.group(1)), match.group(2)
    years = number if unit == "Y" else number / 12 if unit == "M" else number * _AGE_YEARS[unit]
    return _decimal(years.quantize(_MILLI))


def _weight_kg(value: Any) -> str | None:
    if value is None:
        return None
    try:
        weight = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return _decimal(weight) if weight.is_finite() and 0 < weight < 1000 else None


def _date(value: str | None) -> str | None:
    if value is None or len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _timezone(offset: str | None) -> timezone | None:
    """Timezone Offset From UTC (0008,0201), "+0100": the zone of the object's local times."""
    match = _TZ.fullmatch(offset or "")
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    if minutes > 14 * 60:
        return None
    return timezone(sign * timedelta(minutes=minutes))


def _datetime(moment: Any, zone: timezone | None) -> str | None:
    """xsd:dateTime text: with the object's offset when it states one; a DICOM time without
    offset is local time of unknown zone, and stays without one."""
    if not isinstance(moment, datetime):
        return None
    if moment.tzinfo is None and zone is not None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def _organ_doses(text: str | None) -> list[tuple[str, float, str]]:
    """(organ, value, unit) of the organ_doses column, "Liver=8.27 mGy; Lung=7.88 mGy"."""
    doses = []
    for organ, value, unit in _ORGAN_DOSE.findall(text or ""):
        number = _number(value)
        if number is not None:
            doses.append((organ.strip(), number, unit))
    return doses


class _Object(NamedTuple):
    """What the quads of one stored object refer to."""

    record: InstanceRecord
    instance: NamedNode
    study: NamedNode
    subject: NamedNode | None
    zone: timezone | None
    """The object's Timezone Offset From UTC, for its local date-times."""
    serial: str | None
    """Device Serial Number, part of the key of a device without Device Observer UID."""
    stated: set[str]
    """The quantities the object stated already (a report's rows repeat its totals)."""


# --- the mapper ----------------------------------------------------------------------------


class _Mapper:
    """Collects the quads of records; a block of quads shared by several records (a study, an
    event...) is written once, keyed by everything its quads depend on."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.graph = NamedNode(graph_iri(project))
        self.project_node = NamedNode(project_iri(project))
        self.quads: list[Quad] = []
        self._done: set[Hashable] = set()
        self._nodes: dict[str, NamedNode] = {}

    def once(self, key: Hashable) -> bool:
        if key in self._done:
            return False
        self._done.add(key)
        return True

    def add(self, subject: NamedNode, predicate: NamedNode, obj: NamedNode | Literal) -> None:
        self.quads.append(Quad(subject, predicate, obj, self.graph))

    def node(self, iri: str) -> NamedNode:
        node = self._nodes.get(iri)
        if node is None:
            node = self._nodes[iri] = NamedNode(iri)
        return node

    def uid_node(self, uid: str) -> NamedNode:
        """urn:oid:<uid>; a UID that is not an OID (a kept vendor UID such as "1.2.03") gets
        urn:radbank:uid:<project>:<uid, percent-encoded> so it still names one object."""
        iri = _uid_iri(uid)
        return self.node(iri or f"urn:radbank:uid:{self.project}:{quote(uid, safe='.')}")

    # -- records ----------------------------------------------------------------------------

    def instance(self, record: InstanceRecord, rows: Sequence[Mapping[str, Any]]) -> None:
        attributes = record.attributes
        subject = self.subject(_text(attributes, _PATIENT_ID))
        study = self.study(record, attributes, subject)
        series = self.series(record, attributes, study, subject)
        instance = self.uid_node(record.sop_instance_uid)
        ingest = self.provenance(record, attributes, bool(rows) or record.dw_cm is not None)
        add = self.add
        add(instance, TYPE, rb.Instance)
        if any(row.get("source") == "report" for row in rows):
            add(instance, TYPE, rb.RadiationDoseReport)
        add(instance, dcterms.isPartOf, series)
        add(instance, rb.sopInstanceUID, Literal(record.sop_instance_uid))
        add(instance, rb.sopClassUID, Literal(record.sop_class_uid))
        add(instance, prov.wasGeneratedBy, ingest)
        if subject is not None:
            add(instance, rb.subject, subject)
        self.procedure(record, attributes, rows, study, subject)
        context = _Object(
            record,
            instance,
            study,
            subject,
            _timezone(_text(attributes, _TZ_OFFSET)),
            _text(attributes, _SERIAL),
            set(),
        )
        dw_cm = _number(record.dw_cm)
        if dw_cm is not None:
            self.quantity(
                context, instance, record.sop_instance_uid, "dw_cm", dw_cm, _DW_CONCEPT, "cm",
                predicate=rb.waterEquivalentDiameter, kind=qudt.QuantityValue,
            )  # fmt: skip
        if rows:
            self.dose(context, rows)

    def subject(self, pseudonym: str | None) -> NamedNode | None:
        try:
            node = self.node(subject_iri(self.project, pseudonym or ""))
        except ValueError:  # not a radbank pseudonym: the object is described without one
            return None
        if self.once(node):
            self.add(node, TYPE, rb.Subject)
            self.add(node, rb.pseudonym, Literal(pseudonym))
            self.add(node, rb.project, self.project_node)
        return node

    def study(
        self, record: InstanceRecord, attributes: Mapping[str, Any], subject: NamedNode | None
    ) -> NamedNode:
        uid = record.study_instance_uid
        node = self.uid_node(uid)
        day = _date(_text(attributes, _STUDY_DATE))
        age = _age_years(_text(attributes, _PATIENT_AGE))
        sex = (_text(attributes, _PATIENT_SEX) or "").upper()[:1]
        weight = _weight_kg(_first(attributes, _PATIENT_WEIGHT))
        modality = _text(attributes, _MODALITY)
        add = self.add
        if modality is not None and self.once(("modality", node, modality)):
            add(node, rb.modality, Literal(modality))
        if not self.once(("study", uid, subject, day, age, sex, weight)):
            return node
        add(node, TYPE, rb.ImagingStudy)
        add(node, rb.studyInstanceUID, Literal(uid))
        add(node, rb.project, self.project_node)
        if subject is not None:
            add(node, rb.subject, subject)
        if day is not None:
            add(node, dcterms.date, Literal(day, datatype=XSD_DATE))
        if age is not None:
            add(node, rb.patientAge, Literal(age, datatype=XSD_DECIMAL))
        if sex in ("M", "F", "O"):
            add(node, rb.patientSex, Literal(sex))
        if weight is not None:
            add(node, rb.patientWeight, Literal(weight, datatype=XSD_DECIMAL))
        return node

    def series(
        self,
        record: InstanceRecord,
        attributes: Mapping[str, Any],
        study: NamedNode,
        subject: NamedNode | None,
    ) -> NamedNode:
        uid = record.series_instance_uid
        node = self.uid_node(uid)
        modality = _text(attributes, _MODALITY)
        body_part = _text(attributes, _BODY_PART)
        if not self.once(("series", uid, study, subject, modality, body_part)):
            return node
        add = self.add
        add(node, TYPE, rb.Series)
        add(node, rb.seriesInstanceUID, Literal(uid))
        add(node, dcterms.isPartOf, study)
        if subject is not None:
            add(node, rb.subject, subject)
        if modality is not None:
            add(node, rb.modality, Literal(modality))
        if body_part is not None:
            add(node, rb.bodyPartExamined, Literal(body_part))
        return node

    def procedure(
        self,
        record: InstanceRecord,
        attributes: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        study: NamedNode,
        subject: NamedNode | None,
    ) -> None:
        """The procedure the study documents, where something names it: the codes of the
        Procedure Code Sequence, the procedure a dose report reports (in words)."""
        codes = tuple(
            sorted(
                key
                for scheme, value, _ in _codes(attributes, _PROCEDURE_CODES)
                if _concept(key := f"{scheme}:{value}") is not None
            )
        )
        names = tuple(sorted({str(row["procedure"]) for row in rows if row.get("procedure")}))
        if not codes and not names:
            return
        if not self.once(("procedure", record.study_instance_uid, subject, codes, names)):
            return
        uid = quote(record.study_instance_uid, safe=".")
        node = self.node(f"urn:radbank:procedure:{self.project}:{uid}")
        add = self.add
        add(study, rb.procedure, node)
        add(node, TYPE, rb.Procedure)
        if subject is not None:
            add(node, rb.subject, subject)
        for key in codes:
            concept = _concept(key)
            if concept is not None:
                add(node, rb.code, concept)
        for name in names:
            add(node, LABEL, Literal(name))

    def provenance(
        self, record: InstanceRecord, attributes: Mapping[str, Any], has_dose: bool
    ) -> NamedNode:
        """The batch's ingest (and its de-identification and dose extraction steps)."""
        key = _activity_key(record.received_at, record.source)
        prefix = f"urn:radbank:activity:{self.project}:"
        ingest = self.node(f"{prefix}ingest:{key}")
        add = self.add
        if self.once(ingest):
            started = Literal(_utc(record.received_at).isoformat(), datatype=XSD_DATETIME)
            add(ingest, TYPE, rb.Ingest)
            add(ingest, prov.startedAtTime, started)
            add(ingest, prov.wasAssociatedWith, AGENT)
            add(ingest, rb.receivedVia, Literal(record.source))
            if self.once(AGENT):
                add(AGENT, TYPE, prov.SoftwareAgent)
                add(AGENT, LABEL, Literal(f"radbank {__version__}"))
        methods = tuple(
            sorted(f"{scheme}:{value}" for scheme, value, _ in _codes(attributes, _DEID_METHODS))
        )
        if methods and self.once(("deid", ingest, methods)):
            deid = self.node(f"{prefix}deidentification:{_digest(key, *methods)}")
            add(ingest, dcterms.hasPart, deid)
            add(deid, TYPE, rb.Deidentification)
            add(deid, prov.wasAssociatedWith, AGENT)
            for method in methods:
                concept = _concept(method)
                if concept is not None:
                    add(deid, rb.deidentificationMethod, concept)
        if has_dose and self.once(("dose", ingest)):
            extraction = self.node(f"{prefix}dose-extraction:{key}")
            add(ingest, dcterms.hasPart, extraction)
            add(extraction, TYPE, rb.DoseExtraction)
            add(extraction, prov.wasAssociatedWith, AGENT)
        return ingest

    # -- dose -------------------------------------------------------------------------------

    def dose(self, context: _Object, rows: Sequence[Mapping[str, Any]]) -> None:
        attributes = context.record.attributes
        # A CT image of a series whose header gives its acquisition's values (not an image
        # listing several exposures): the slices share one event, as in the index.
        series_image = _EXPOSURE_DOSE_SEQUENCE not in attributes and (
            _PER_FRAME_GROUPS not in attributes
        )
        sop = context.record.sop_instance_uid
        templates = sorted({str(row["template"]) for row in rows if row.get("source") == "report"})
        for template in templates:
            self.add(context.instance, rb.doseTemplate, Literal(template))
        for position, row in enumerate(rows):
            for column, (code, ucum) in REPORT_QUANTITIES.items():
                value = _number(row.get(column))
                if value is not None:
                    self.quantity(context, context.instance, sop, column, value, _dcm(code), ucum)
            if _has_event(row):
                per_slice = (
                    series_image and row.get("source") == "header" and row.get("kind") == "CT"
                )
                self.event(context, row, position, per_slice)

    def event(
        self, context: _Object, row: Mapping[str, Any], position: int, per_slice: bool
    ) -> None:
        record = context.record
        kind = row.get("kind")
        nm = kind == "NM"
        uid = row.get("irradiation_event_uid")
        iri = _uid_iri(uid)
        if iri is not None:
            key = uid
            node = self.node(iri)
        else:
            uid = None
            if per_slice:
                parts: tuple[Any, ...] = (
                    "series", record.series_instance_uid,
                    row.get("ctdivol_mGy"), row.get("kvp"), row.get("protocol"),
                )  # fmt: skip
            elif nm and row.get("source") == "header":
                parts = (
                    "administration", record.series_instance_uid, row.get("radionuclide"),
                    row.get("radiopharmaceutical"), row.get("administered_activity_MBq"),
                    row.get("administration_datetime"),
                )  # fmt: skip
            else:
                parts = ("object", record.sop_instance_uid, position)
            key = _digest(*parts)
            node = self.node(f"urn:radbank:event:{self.project}:{key}")
        device = self.device(row, context.serial)
        started = None
        if not per_slice:  # each slice has its own acquisition time
            moment = row.get("administration_datetime") if nm else None
            started = _datetime(moment or row.get("event_datetime"), context.zone)
        target = row.get("target_region_code")
        target_node = _concept(str(target)) if target else None
        entrance_dose = _number(row.get("entrance_dose_mGy"))
        texts = (
            (rb.doseTemplate, row.get("template")),
            (rb.acquisitionProtocol, row.get("protocol")),
            (rb.acquisitionType, None if nm else row.get("acquisition_type")),
            (rb.fluoroMode, row.get("fluoro_mode")),
            (rb.radionuclideName, row.get("radionuclide")),
            (rb.radiopharmaceuticalName, row.get("radiopharmaceutical")),
            (rb.routeOfAdministration, row.get("route")),
        )
        subject = context.subject
        block = ("event", node, kind, uid, subject, context.study, device, started,
                 target_node, entrance_dose, texts)  # fmt: skip
        add = self.add
        if self.once(block):
            for cls in _EVENT_CLASSES.get(kind or "", (rb.IrradiationEvent,)):
                add(node, TYPE, cls)
            if uid is not None:
                add(node, rb.administrationEventUID if nm else rb.irradiationEventUID, Literal(uid))
            if subject is not None:
                add(node, rb.subject, subject)
            add(node, rb.study, context.study)
            if device is not None:
                add(node, prov.wasAssociatedWith, device)
            if started is not None:
                add(node, prov.startedAtTime, Literal(started, datatype=XSD_DATETIME))
            if target_node is not None:
                add(node, rb.targetRegion, target_node)
            if entrance_dose is not None:
                add(node, rb.entranceDoseInmGy, Literal(entrance_dose))
            for predicate, text in texts:
                if text:
                    add(node, predicate, Literal(str(text)))
        add(node, rb.doseReport, context.instance)
        phantom = _PHANTOMS.get(str(row.get("phantom") or ""))
        estimate = row.get("effective_dose_source")
        if not (isinstance(estimate, str) and estimate.startswith("estimate")):
            estimate = None
        for column, (code, ucum) in EVENT_QUANTITIES.items():
            value = _number(row.get(column))
            if value is None or (per_slice and column in _PER_SLICE):
                continue
            self.quantity(
                context, node, key, column, value, _dcm(code), ucum,
                phantom=phantom if column in _PHANTOM_COLUMNS else None,
                estimate=estimate if column == "effective_dose_mSv" else None,
                on_owner=_ON_EVENT.get(column),
            )  # fmt: skip
        for organ, value, unit in _organ_doses(row.get("organ_doses")):
            column = "organ_dose:" + quote(organ, safe="")
            self.quantity(
                context, node, key, column, value, _ORGAN_DOSE_CONCEPT, unit, region=organ
            )

    def device(self, row: Mapping[str, Any], serial: str | None) -> NamedNode | None:
        observer = row.get("device_observer_uid")
        manufacturer, model, station = (
            row.get("manufacturer"),
            row.get("model_name"),
            row.get("station_name"),
        )
        iri = _uid_iri(observer)
        if iri is not None:
            node = self.node(iri)
        elif manufacturer or model or station or serial:
            key = _digest(manufacturer or "", model or "", station or "", serial or "")
            node = self.node(f"urn:radbank:device:{self.project}:{key}")
            observer = None
        else:
            return None
        if self.once(("device", node, manufacturer, model, station, observer)):
            add = self.add
            add(node, TYPE, rb.Device)
            if observer:
                add(node, rb.deviceObserverUID, Literal(observer))
            for predicate, text in (
                (rb.manufacturer, manufacturer),
                (rb.manufacturerModelName, model),
                (rb.stationName, station),
            ):
                if text:
                    add(node, predicate, Literal(str(text)))
        return node

    def quantity(
        self,
        context: _Object,
        owner: NamedNode,
        owner_key: str,
        column: str,
        value: float,
        concept: NamedNode,
        ucum: str,
        *,
        predicate: NamedNode = rb.doseQuantity,
        kind: NamedNode = rb.DoseQuantity,
        phantom: str | None = None,
        estimate: str | None = None,
        region: str | None = None,
        on_owner: NamedNode | None = None,
    ) -> None:
        """A value the object states for `owner` (an event, an administration, the object
        itself): one node per owner, column and value, derived from every object stating it;
        with `on_owner`, the owner states the value with that property too."""
        iri = f"urn:radbank:quantity:{self.project}:{owner_key}:{column}={value!r}"
        if iri in context.stated:
            return
        context.stated.add(iri)
        node = self.node(iri)
        subject = context.subject
        add = self.add
        if self.once(("quantity", iri, subject, phantom, estimate, region)):
            add(owner, predicate, node)
            if on_owner is not None:
                add(owner, on_owner, Literal(value))
            add(node, TYPE, kind)
            if estimate is not None:
                add(node, TYPE, rb.DoseEstimate)
                add(node, rb.estimateSource, Literal(estimate))
            add(node, rb.quantityConcept, concept)
            add(node, qudt.numericValue, Literal(value))
            add(node, qudt.ucumCode, Literal(ucum))
            unit = _unit(ucum)
            if unit is not None:
                add(node, qudt.hasUnit, unit)
            if subject is not None:
                add(node, rb.subject, subject)
            if phantom is not None:
                add(node, rb.ctdiwPhantomType, self.node(phantom))
            if region is not None:
                add(node, rb.regionName, Literal(region))
        add(node, prov.wasDerivedFrom, context.instance)


_EVENT_TEXT_COLUMNS = ("protocol", "target_region_code", "acquisition_type", "radionuclide")


def _has_event(row: Mapping[str, Any]) -> bool:
    """Whether a row describes an event or administration, or only a report's totals."""
    if row.get("irradiation_event_uid") or row.get("organ_doses"):
        return True
    if any(row.get(column) for column in _EVENT_TEXT_COLUMNS):
        return True
    return any(_number(row.get(column)) is not None for column in EVENT_QUANTITIES)


# --- public functions ----------------------------------------------------------------------


def instance_quads(
    project: str, record: InstanceRecord, dose_rows: Sequence[Mapping[str, Any]] | None = None
) -> list[Quad]:
    """The quads that describe one stored object of `project`: its subject, study, series,
    the object itself and its provenance, and the events and dose values of its dose rows
    (`dose_rows`, by default `record.dose_rows`). In the graph urn:radbank:graph:<project>."""
    mapper = _Mapper(project)
    mapper.instance(record, record.dose_rows if dose_rows is None else dose_rows)
    return mapper.quads


def batch_quads(
    project: str,
    records: Iterable[InstanceRecord],
    dose_rows: Sequence[Sequence[Mapping[str, Any]]] | None = None,
) -> list[Quad]:
    """The quads of several objects of `project` (an ingest batch, a chunk of a rebuild):
    as a set the union of `instance_quads` of each, with what they share written once.
    `dose_rows`, when given, holds each record's rows in the order of `records`."""
    mapper = _Mapper(project)
    for position, record in enumerate(records):
        rows = record.dose_rows if dose_rows is None else dose_rows[position]
        mapper.instance(record, rows)
    return mapper.quads


def consent_iri(project: str, pseudonym: str) -> str:
    """urn:radbank:consent:<project>:<pseudonym>: the subject's current consent."""
    return "urn:radbank:consent:" + subject_iri(project, pseudonym).removeprefix(
        "urn:radbank:subject:"
    )


def consent_quads(
    project: str, pseudonym: str, scope: Iterable[str], decided_on: date
) -> list[Quad]:
    """The subject's current consent (the newest decision recorded, which is "given": a
    withdrawal erases the subject, this node with the rest): the GA4GH DUO conditions
    consented to and the date of the decision. The form reference stays in the index (it
    is the site's free text)."""
    graph = NamedNode(graph_iri(project))
    node = NamedNode(consent_iri(project, pseudonym))
    triples: list[tuple[NamedNode, NamedNode, NamedNode | Literal]] = [
        (node, TYPE, rb.Consent),
        (node, rb.subject, NamedNode(subject_iri(project, pseudonym))),
        (node, rb.project, NamedNode(project_iri(project))),
        (node, rb.consentStatus, Literal("given")),
        (node, dcterms.date, Literal(decided_on.isoformat(), datatype=XSD_DATE)),
    ]
    triples += _data_use_triples(node, scope)
    return [Quad(s, p, o, graph) for s, p, o in triples]


def _data_use_triples(
    node: NamedNode, codes: Iterable[str]
) -> list[tuple[NamedNode, NamedNode, NamedNode | Literal]]:
    """The DUO conditions (and their diseases) a project declares or a subject consented to."""
    triples: list[tuple[NamedNode, NamedNode, NamedNode | Literal]] = []
    for condition, disease in data_use_terms(codes):
        triples.append((node, rb.dataUseCondition, NamedNode(condition)))
        if disease is not None:
            is_iri = disease.startswith("http")
            triples.append(
                (node, rb.dataUseDisease, NamedNode(disease) if is_iri else Literal(disease))
            )
    return triples


def graph_version_quad(project: str) -> Quad:
    """What a project's graph says of itself: the MAPPING_VERSION its quads were written with
    (by a rebuild, or by the first write into the empty graph)."""
    graph = NamedNode(graph_iri(project))
    return Quad(graph, rb.mappingVersion, Literal(MAPPING_VERSION), graph)


def project_quads(project: ProjectLike, *, base_url: str | None) -> list[Quad]:
    """The project node urn:radbank:project:<name> in its own graph: a radbank:Project and
    dcat:Dataset with its title, description, licence, access rights and GA4GH DUO data-use
    conditions, and, given the node's URL, its DICOMweb and SPARQL services."""
    graph = NamedNode(graph_iri(project.name))
    node = NamedNode(project_iri(project.name))
    triples: list[tuple[NamedNode, NamedNode, NamedNode | Literal]] = [
        (node, TYPE, rb.Project),
        (node, TYPE, _DCAT_DATASET),
        (node, dcterms.identifier, Literal(project.name)),
        (node, dcterms.accessRights, NamedNode(access_rights_iri(project.open_access))),
    ]
    if project.title:
        triples.append((node, dcterms.title, Literal(project.title)))
    if project.description:
        triples.append((node, dcterms.description, Literal(project.description)))
    licence = licence_iri(project.licence or "")
    if licence is not None:
        triples.append((node, dcterms.license, NamedNode(licence)))
    if (project.ip_statement or "").strip():
        triples.append((node, dcterms.rights, Literal(project.ip_statement.strip())))
    triples += _data_use_triples(node, project.data_use)
    quads = [Quad(s, p, o, graph) for s, p, o in triples]
    if base_url:
        quads += [
            Quad(t.subject, t.predicate, t.object, graph)
            for t in service_triples(node, project.name, base_url, licence)
        ]
    return quads
