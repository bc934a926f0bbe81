"""Dose values from structured reports: TID 10011 (CT), TID 10001 (projection X-ray and
mammography) and TID 10021 (radiopharmaceutical), in whichever SR class carries them.

The tree is read by concept codes, not by position: a row is looked for in its template
container and, inside one irradiation event, at any depth, because vendors nest some rows
one level off (a kVp outside its X-ray source container) without changing their meaning.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from radbank.dicom.dose import codes as c
from radbank.dicom.dose._read import Findings, code, date_and_time, parse_datetime
from radbank.dicom.dose._tree import Node, Row, build, dose_value
from radbank.dicom.dose._view import DataSetView
from radbank.dicom.dose.model import (
    CT,
    PROJECTION,
    AccumulatedXRayDose,
    BreastDose,
    CodedValue,
    Device,
    DoseReport,
    DoseValue,
    IrradiationEvent,
    OrganDose,
    RadiopharmaceuticalAdministration,
    XRayFilter,
    breast_side,
)

__all__ = ["DOSE_CONTAINERS", "dose_content", "report_from_sr"]

XRAY_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
RADIOPHARMACEUTICAL_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.68"
_SR_CLASS_NAMES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
}

# Containers that only dose templates use: a tree holding one is read as a dose report.
DOSE_CONTAINERS = frozenset(
    {
        c.CT_ACCUMULATED_DOSE_DATA,
        c.CT_ACQUISITION,
        c.ACCUMULATED_XRAY_DOSE_DATA,
        c.IRRADIATION_EVENT_XRAY_DATA,
        c.RADIOPHARMACEUTICAL_ADMINISTRATION,
    }
)

# The template rows read, with the unit of the field and the units PS3.16 gives the row.
_MGY = ("mGy",)
_MM = ("mm",)
_S = ("s",)
CT_TOTAL_EVENTS = Row("{events}", ("{events}",), "TID 10012 Total Number of Irradiation Events")
CT_DLP_TOTAL = Row("mGy.cm", ("mGy.cm",), "TID 10012 CT Dose Length Product Total")
MEAN_CTDIVOL = Row("mGy", _MGY, "TID 10013 Mean CTDIvol")
DLP = Row("mGy.cm", ("mGy.cm",), "TID 10013 DLP")
CT_EXPOSURE_TIME = Row("s", _S, "TID 10013 Exposure Time")
SCANNING_LENGTH = Row("mm", _MM, "TID 10014 Scanning Length")
SINGLE_COLLIMATION = Row("mm", _MM, "TID 10013 Nominal Single Collimation Width")
TOTAL_COLLIMATION = Row("mm", _MM, "TID 10013 Nominal Total Collimation Width")
PITCH_FACTOR = Row("{ratio}", ("{ratio}",), "TID 10013 Pitch Factor")
CT_KVP = Row("kV", ("kV",), "TID 10013 KVP")
CT_TUBE_CURRENT = Row("mA", ("mA",), "TID 10013 X-Ray Tube Current")
CT_MAXIMUM_TUBE_CURRENT = Row("mA", ("mA",), "TID 10013 Maximum X-Ray Tube Current")
EXPOSURE_TIME_PER_ROTATION = Row("s", _S, "TID 10013 Exposure Time per Rotation")
CTDIVOL_ALERT = Row("mGy", _MGY, "TID 10015 CTDIvol Alert Value")
DLP_ALERT = Row("mGy.cm", ("mGy.cm",), "TID 10015 DLP Alert Value")
CTDIVOL_NOTIFICATION = Row("mGy", _MGY, "TID 10015 CTDIvol Notification Value")
DLP_NOTIFICATION = Row("mGy.cm", ("mGy.cm",), "TID 10015 DLP Notification Value")

DAP_TOTAL = Row("Gy.m2", ("Gy.m2",), "TID 10007 Dose Area Product Total")
DOSE_RP_TOTAL = Row("mGy", ("Gy",), "TID 10007 Dose (RP) Total")
FLUORO_DAP_TOTAL = Row("Gy.m2", ("Gy.m2",), "TID 10004 Fluoro Dose Area Product Total")
FLUORO_DOSE_RP_TOTAL = Row("mGy", ("Gy",), "TID 10004 Fluoro Dose (RP) Total")
TOTAL_FLUORO_TIME = Row("s", _S, "TID 10004 Total Fluoro Time")
ACQUISITION_DAP_TOTAL = Row("Gy.m2", ("Gy.m2",), "TID 10004 Acquisition Dose Area Product Total")
ACQUISITION_DOSE_RP_TOTAL = Row("mGy", ("Gy",), "TID 10004 Acquisition Dose (RP) Total")
TOTAL_ACQUISITION_TIME = Row("s", _S, "TID 10004 Total Acquisition Time")
TOTAL_FRAMES = Row("1", ("1", "{frames}"), "TID 10007 Total Number of Radiographic Frames")
ACCUMULATED_AGD = Row("mGy", _MGY, "TID 10005 Accumulated Average Glandular Dose")
DAP = Row("Gy.m2", ("Gy.m2",), "TID 10003 Dose Area Product")
DOSE_RP = Row("mGy", ("Gy",), "TID 10003 Dose (RP)")
XRAY_KVP = Row("kV", ("kV",), "TID 10003B KVP")
XRAY_TUBE_CURRENT = Row("mA", ("mA",), "TID 10003B X-Ray Tube Current")
XRAY_EXPOSURE_TIME = Row("s", ("ms", "s"), "TID 10003B Exposure Time")
XRAY_EXPOSURE = Row("mA.s", ("uA.s",), "TID 10003B Exposure")
IRRADIATION_DURATION = Row("s", _S, "TID 10003B Irradiation Duration")
NUMBER_OF_PULSES = Row("1", ("1", "{pulses}"), "TID 10003B Number of Pulses")
FILTER_THICKNESS_MINIMUM = Row("mm", _MM, "TID 10003B X-Ray Filter Thickness Minimum")
FILTER_THICKNESS_MAXIMUM = Row("mm", _MM, "TID 10003B X-Ray Filter Thickness Maximum")
COLLIMATED_FIELD_AREA = Row("m2", ("m2",), "TID 10003B Collimated Field Area")
COLLIMATED_FIELD_HEIGHT = Row("mm", _MM, "TID 10003B Collimated Field Height")
COLLIMATED_FIELD_WIDTH = Row("mm", _MM, "TID 10003B Collimated Field Width")
AVERAGE_GLANDULAR_DOSE = Row("mGy", _MGY, "TID 10003 Average Glandular Dose")
ENTRANCE_EXPOSURE_AT_RP = Row("mGy", _MGY, "TID 10003 Entrance Exposure at RP")
HALF_VALUE_LAYER = Row("mm", _MM, "TID 10003B Half Value Layer")
COMPRESSION_THICKNESS = Row("mm", _MM, "TID 10003C Compression Thickness")

ADMINISTERED_ACTIVITY = Row("MBq", ("MBq",), "TID 10022 Administered activity")
HALF_LIFE = Row("s", _S, "TID 10022 Radionuclide Half Life")
ORGAN_DOSE = Row("mGy", _MGY, "TID 10022 Organ Dose")
EFFECTIVE_DOSE = Row("mSv", ("mSv",), "TID 10022 Effective Dose")


@dataclass
class _Context:
    sop_instance_uid: str
    findings: Findings

    def value(self, node: Node | None, row: Row) -> DoseValue | None:
        return dose_value(node, row, self.sop_instance_uid, self.findings)

    def missing(self, what: str, where: str) -> None:
        self.findings.add("missing-mandatory", f"{what} is missing in {where}")


def dose_content(dataset: DataSetView, findings: Findings) -> Node | None:
    """The content tree when it is a dose report or holds dose containers, else None.

    The findings of reading the tree are added only when it is returned."""
    root = _root_concept(dataset)
    if root in {c.XRAY_RADIATION_DOSE_REPORT, c.RADIOPHARMACEUTICAL_RADIATION_DOSE_REPORT}:
        return build(dataset, findings)
    if dataset.text("SOPClassUID") in {
        XRAY_RADIATION_DOSE_SR,
        RADIOPHARMACEUTICAL_RADIATION_DOSE_SR,
    }:
        return build(dataset, findings)
    if not dataset.has("ContentSequence"):
        return None
    tree_findings = Findings(findings.sop_instance_uid)
    tree = build(dataset, tree_findings)
    if not any(node.concept in DOSE_CONTAINERS for node in tree.walk()):
        return None
    findings.extend(tree_findings.all())
    return tree


def _root_concept(dataset: DataSetView) -> str | None:
    concept = code(dataset, "ConceptNameCodeSequence")
    return concept.key if concept else None


def report_from_sr(
    dataset: DataSetView, tree: Node, sop_instance_uid: str, findings: Findings
) -> DoseReport:
    """The dose report of a structured report holding a dose template (its `dose_content`)."""
    ctx = _Context(sop_instance_uid, findings)
    _note_sr_class(dataset, tree, findings)

    procedure = _procedure_reported(tree)
    study_uid = _study_instance_uid(dataset, tree, findings)
    ct_events = [_ct_event(node, ctx) for node in _all(tree, c.CT_ACQUISITION)]
    xray_events = [
        _projection_event(node, ctx, procedure)
        for node in _all(tree, c.IRRADIATION_EVENT_XRAY_DATA)
    ]
    planes = tuple(
        _accumulated_xray(node, ctx) for node in _all(tree, c.ACCUMULATED_XRAY_DOSE_DATA)
    )
    administrations = tuple(
        _administration(node, ctx) for node in _all(tree, c.RADIOPHARMACEUTICAL_ADMINISTRATION)
    )

    ct_totals = _all(tree, c.CT_ACCUMULATED_DOSE_DATA)
    dlp_total = events_total = None
    if ct_totals:
        accumulated = ct_totals[0]
        events_total = ctx.value(
            accumulated.find(c.TOTAL_NUMBER_OF_IRRADIATION_EVENTS), CT_TOTAL_EVENTS
        )
        dlp_total = ctx.value(accumulated.find(c.CT_DOSE_LENGTH_PRODUCT_TOTAL), CT_DLP_TOTAL)
        if events_total is None:
            ctx.missing("Total Number of Irradiation Events", "CT Accumulated Dose Data")
        if dlp_total is None:
            ctx.missing("CT Dose Length Product Total", "CT Accumulated Dose Data")
    elif ct_events:
        ctx.missing("CT Accumulated Dose Data (TID 10012)", "the CT dose report")
    if ct_events:
        _check_ct_totals(dlp_total, events_total, ct_events, findings)
    if xray_events and not planes:
        ctx.missing("Accumulated X-Ray Dose Data (TID 10002)", "the projection X-ray dose report")
    totals = _study_totals(planes, ctx)
    if not (ct_events or xray_events or planes or administrations or ct_totals):
        ctx.missing(
            "every accumulated dose container and irradiation event",
            "the dose report (no value could be extracted)",
        )

    template = _template(dataset, tree, ct_events, xray_events, administrations)
    start = _datetime_of(tree.child(c.START_OF_XRAY_IRRADIATION), ctx)
    end = _datetime_of(tree.child(c.END_OF_XRAY_IRRADIATION), ctx)
    return DoseReport(
        study_instance_uid=study_uid,
        template=template,
        sop_instance_uids=(sop_instance_uid,),
        content_datetime=date_and_time(dataset, "ContentDate", "ContentTime"),
        procedure_reported=procedure,
        device=_device(dataset, tree),
        source_of_dose_information=_code_of(tree.child(c.SOURCE_OF_DOSE_INFORMATION)),
        start_of_xray_irradiation=start,
        end_of_xray_irradiation=end,
        ct_dlp_total_mgycm=dlp_total,
        total_number_of_irradiation_events=events_total,
        planes=planes,
        accumulated_average_glandular_dose=tuple(
            breast for plane in planes for breast in plane.average_glandular_dose
        ),
        events=(*ct_events, *xray_events),
        radiopharmaceutical_administrations=administrations,
        findings=findings.all(),
        **totals,
    )


def _all(tree: Node, concept: str) -> list[Node]:
    """Containers of a kind, wherever the report put them (root children normally)."""
    return tree.find_all(concept)


def _template(
    dataset: DataSetView,
    tree: Node,
    ct_events: list[IrradiationEvent],
    xray_events: list[IrradiationEvent],
    administrations: tuple[RadiopharmaceuticalAdministration, ...],
) -> str:
    try:
        identifiers = [
            item.text("TemplateIdentifier") for item in dataset.items("ContentTemplateSequence")
        ]
    except Exception:
        identifiers = []
    for identifier in identifiers:
        if identifier in {"10001", "10011", "10021"}:
            return f"TID {identifier}"
    if (
        administrations
        or tree.concept == c.RADIOPHARMACEUTICAL_RADIATION_DOSE_REPORT
        or dataset.text("SOPClassUID") == RADIOPHARMACEUTICAL_RADIATION_DOSE_SR
    ):
        return "TID 10021"
    if ct_events or tree.find(c.CT_ACCUMULATED_DOSE_DATA):
        return "TID 10011"
    if xray_events or tree.find(c.ACCUMULATED_XRAY_DOSE_DATA):
        return "TID 10001"
    return "TID 10011" if _procedure_key(tree) == c.CT_PROCEDURE else "TID 10001"


def _note_sr_class(dataset: DataSetView, tree: Node, findings: Findings) -> None:
    sop_class = dataset.text("SOPClassUID") or ""
    if sop_class in {XRAY_RADIATION_DOSE_SR, RADIOPHARMACEUTICAL_RADIATION_DOSE_SR}:
        return
    name = _SR_CLASS_NAMES.get(sop_class, f"SOP class {sop_class or '(none)'}")
    expected = (
        "Radiopharmaceutical Radiation Dose SR"
        if tree.concept == c.RADIOPHARMACEUTICAL_RADIATION_DOSE_REPORT
        or tree.find(c.RADIOPHARMACEUTICAL_ADMINISTRATION)
        else "X-Ray Radiation Dose SR"
    )
    findings.add(
        "sr-class",
        f"the dose report is stored as {name}, not {expected}; its dose template was read "
        "the same way",
    )
    if tree.concept not in {
        c.XRAY_RADIATION_DOSE_REPORT,
        c.RADIOPHARMACEUTICAL_RADIATION_DOSE_REPORT,
    }:
        findings.add(
            "sr-class",
            f"the document title is {tree.meaning or tree.concept or '(none)'}, not a dose "
            "report; the dose containers inside it were read",
        )


def _procedure_reported(tree: Node) -> CodedValue | None:
    return _code_of(tree.child(c.PROCEDURE_REPORTED))


def _procedure_key(tree: Node) -> str | None:
    procedure = _procedure_reported(tree)
    return procedure.key if procedure else None


def _code_of(node: Node | None) -> CodedValue | None:
    return node.code_value() if node is not None else None


def _datetime_of(node: Node | None, ctx: _Context) -> datetime.datetime | None:
    if node is None:
        return None
    raw = node.datetime_text()
    parsed = parse_datetime(raw)
    if raw and parsed is None:
        ctx.findings.add(
            "value-unreadable", f"{node.meaning} (item {node.path}): {raw!r} is not a DICOM DT"
        )
    return parsed


def _study_instance_uid(dataset: DataSetView, tree: Node, findings: Findings) -> str | None:
    header = dataset.text("StudyInstanceUID")
    scope = tree.child(c.SCOPE_OF_ACCUMULATION)
    reported = None
    if scope is not None:
        uid_node = scope.find(c.STUDY_INSTANCE_UID)
        reported = uid_node.uid() if uid_node is not None else None
    if header and reported and header != reported:
        findings.add(
            "study-uid-mismatch",
            f"the Scope of Accumulation names study {reported} but the object belongs to "
            f"study {header}; the object's Study Instance UID was kept",
        )
    return header or reported


def _device(dataset: DataSetView, tree: Node) -> Device:
    """The General Equipment attributes, completed from the Device Observer context."""

    def observed(concept: str) -> str | None:
        node = tree.child(concept)
        return node.text_value() if node is not None else None

    uid_node = tree.child(c.DEVICE_OBSERVER_UID)
    return Device(
        manufacturer=dataset.text("Manufacturer") or observed(c.DEVICE_OBSERVER_MANUFACTURER),
        model_name=dataset.text("ManufacturerModelName") or observed(c.DEVICE_OBSERVER_MODEL_NAME),
        station_name=dataset.text("StationName") or observed(c.DEVICE_OBSERVER_NAME),
        serial_number=dataset.text("DeviceSerialNumber")
        or observed(c.DEVICE_OBSERVER_SERIAL_NUMBER),
        device_observer_uid=uid_node.uid() if uid_node is not None else None,
    )


def _ct_event(node: Node, ctx: _Context) -> IrradiationEvent:
    where = f"CT Acquisition (item {node.path})"
    uid_node = node.child(c.IRRADIATION_EVENT_UID)
    uid = uid_node.uid() if uid_node is not None else None
    if uid is None:
        ctx.missing("Irradiation Event UID", where)
    else:
        where = f"CT Acquisition {uid}"
    acquisition_type = _code_of(node.child(c.CT_ACQUISITION_TYPE))
    if acquisition_type is None:
        ctx.missing("CT Acquisition Type", where)
    target_region = _code_of(node.child(c.TARGET_REGION))
    if target_region is None:
        ctx.missing("Target Region (a coded value)", where)
    sources = node.find_all(c.CT_XRAY_SOURCE_PARAMETERS)
    if len(sources) > 1:
        ctx.findings.add(
            "multiple-sources",
            f"{where} has {len(sources)} X-ray sources; kVp and tube current are those of "
            "the first source",
        )
    ct_dose = node.find(c.CT_DOSE)
    constant_angle = acquisition_type is not None and acquisition_type.key == (
        c.CONSTANT_ANGLE_ACQUISITION
    )
    ctdivol = ctx.value(node.find(c.MEAN_CTDIVOL), MEAN_CTDIVOL)
    dlp = ctx.value(node.find(c.DLP), DLP)
    if ct_dose is None and not constant_angle:
        ctx.missing("CT Dose (required unless the acquisition is a constant angle one)", where)
    elif ct_dose is not None:
        if ctdivol is None:
            ctx.missing("Mean CTDIvol", where)
        if dlp is None:
            ctx.missing("DLP", where)
    phantom = _code_of(node.find(c.CTDIW_PHANTOM_TYPE))
    if ctdivol is not None and phantom is None:
        ctx.missing("CTDIw Phantom Type", where)
    protocol = node.child(c.ACQUISITION_PROTOCOL)
    return IrradiationEvent(
        kind=CT,
        sop_instance_uid=ctx.sop_instance_uid,
        irradiation_event_uid=uid,
        datetime_started=_datetime_of(node.find(c.DATETIME_STARTED), ctx),
        acquisition_type=acquisition_type,
        acquisition_protocol=protocol.text_value() if protocol is not None else None,
        target_region=target_region,
        kvp=ctx.value(node.find(c.KVP), CT_KVP),
        tube_current_ma=ctx.value(node.find(c.XRAY_TUBE_CURRENT), CT_TUBE_CURRENT),
        maximum_tube_current_ma=ctx.value(
            node.find(c.MAXIMUM_XRAY_TUBE_CURRENT), CT_MAXIMUM_TUBE_CURRENT
        ),
        exposure_time_s=ctx.value(node.find(c.EXPOSURE_TIME), CT_EXPOSURE_TIME),
        ctdivol_mgy=ctdivol,
        ctdiw_phantom_type=phantom,
        dlp_mgycm=dlp,
        scanning_length_mm=ctx.value(node.find(c.SCANNING_LENGTH), SCANNING_LENGTH),
        exposure_time_per_rotation_s=ctx.value(
            node.find(c.EXPOSURE_TIME_PER_ROTATION), EXPOSURE_TIME_PER_ROTATION
        ),
        nominal_single_collimation_width_mm=ctx.value(
            node.find(c.NOMINAL_SINGLE_COLLIMATION_WIDTH), SINGLE_COLLIMATION
        ),
        nominal_total_collimation_width_mm=ctx.value(
            node.find(c.NOMINAL_TOTAL_COLLIMATION_WIDTH), TOTAL_COLLIMATION
        ),
        pitch_factor=ctx.value(node.find(c.PITCH_FACTOR), PITCH_FACTOR),
        ctdivol_alert_value_mgy=ctx.value(node.find(c.CTDIVOL_ALERT_VALUE), CTDIVOL_ALERT),
        dlp_alert_value_mgycm=ctx.value(node.find(c.DLP_ALERT_VALUE), DLP_ALERT),
        ctdivol_notification_value_mgy=ctx.value(
            node.find(c.CTDIVOL_NOTIFICATION_VALUE), CTDIVOL_NOTIFICATION
        ),
        dlp_notification_value_mgycm=ctx.value(
            node.find(c.DLP_NOTIFICATION_VALUE), DLP_NOTIFICATION
        ),
    )


def _check_ct_totals(
    dlp_total: DoseValue | None,
    events_total: DoseValue | None,
    events: list[IrradiationEvent],
    findings: Findings,
) -> None:
    if events_total is not None and int(events_total.value) != len(events):
        findings.add(
            "total-mismatch",
            f"the report counts {events_total.value:g} irradiation events but holds "
            f"{len(events)} CT Acquisition containers",
        )
    dlps = [event.dlp_mgycm.value for event in events if event.dlp_mgycm is not None]
    if dlp_total is None or not dlps:
        return
    summed = sum(dlps)
    # vendors round each DLP to 2 decimals: allow half a unit of the last place per event
    tolerance = max(0.005 * len(dlps), 1e-6 * abs(dlp_total.value))
    if abs(summed - dlp_total.value) > tolerance + 0.01:
        findings.add(
            "total-mismatch",
            f"CT Dose Length Product Total is {dlp_total.value:g} mGy.cm but the "
            f"{len(dlps)} event DLPs add up to {summed:.2f} mGy.cm",
        )


def _laterality(node: Node | None) -> CodedValue | None:
    if node is None:
        return None
    laterality = node.child(c.LATERALITY)
    return _code_of(laterality)


def _projection_event(node: Node, ctx: _Context, procedure: CodedValue | None) -> IrradiationEvent:
    where = f"Irradiation Event X-Ray Data (item {node.path})"
    uid_node = node.child(c.IRRADIATION_EVENT_UID)
    uid = uid_node.uid() if uid_node is not None else None
    if uid is None:
        ctx.missing("Irradiation Event UID", where)
    else:
        where = f"Irradiation Event X-Ray Data {uid}"
    target_node = node.child(c.TARGET_REGION)
    anatomy_node = node.child(c.ANATOMICAL_STRUCTURE)
    laterality = (
        _laterality(target_node) or _laterality(anatomy_node) or _code_of(node.child(c.LATERALITY))
    )
    exposure_time_node = node.find(c.EXPOSURE_TIME)
    if exposure_time_node is None:
        exposure_time_node = node.find(c.EXPOSURE_TIME_RETIRED)
        if exposure_time_node is not None:
            ctx.findings.add(
                "retired-code",
                "Exposure Time is coded with the retired code (113735, DCM); read as "
                "Exposure Time (113824, DCM)",
            )
    dap = ctx.value(node.find(c.DOSE_AREA_PRODUCT), DAP)
    mammography = procedure is not None and procedure.key == c.MAMMOGRAPHY
    if dap is None and not mammography:
        ctx.missing("Dose Area Product", where)
    event_type = _code_of(node.child(c.IRRADIATION_EVENT_TYPE))
    if event_type is None:
        ctx.missing("Irradiation Event Type", where)
    protocol = node.child(c.ACQUISITION_PROTOCOL)
    reference_point = node.child(c.REFERENCE_POINT_DEFINITION)
    return IrradiationEvent(
        kind=PROJECTION,
        sop_instance_uid=ctx.sop_instance_uid,
        irradiation_event_uid=uid,
        datetime_started=_datetime_of(node.child(c.DATETIME_STARTED), ctx),
        acquisition_type=event_type,
        acquisition_protocol=protocol.text_value() if protocol is not None else None,
        target_region=_code_of(target_node) or _code_of(anatomy_node),
        laterality=laterality,
        acquisition_plane=_code_of(node.child(c.ACQUISITION_PLANE)),
        kvp=ctx.value(node.find(c.KVP), XRAY_KVP),
        tube_current_ma=ctx.value(node.find(c.XRAY_TUBE_CURRENT), XRAY_TUBE_CURRENT),
        exposure_time_s=ctx.value(exposure_time_node, XRAY_EXPOSURE_TIME),
        dap_gym2=dap,
        dose_rp_mgy=ctx.value(node.find(c.DOSE_RP), DOSE_RP),
        reference_point_definition=(
            reference_point.code_or_text() if reference_point is not None else None
        ),
        exposure_mas=ctx.value(node.find(c.EXPOSURE), XRAY_EXPOSURE),
        irradiation_duration_s=ctx.value(node.find(c.IRRADIATION_DURATION), IRRADIATION_DURATION),
        number_of_pulses=ctx.value(node.find(c.NUMBER_OF_PULSES), NUMBER_OF_PULSES),
        fluoro_mode=_code_of(node.find(c.FLUORO_MODE)),
        filters=tuple(_filter(item, ctx) for item in node.find_all(c.XRAY_FILTERS)),
        collimated_field_area_m2=ctx.value(
            node.find(c.COLLIMATED_FIELD_AREA), COLLIMATED_FIELD_AREA
        ),
        collimated_field_height_mm=ctx.value(
            node.find(c.COLLIMATED_FIELD_HEIGHT), COLLIMATED_FIELD_HEIGHT
        ),
        collimated_field_width_mm=ctx.value(
            node.find(c.COLLIMATED_FIELD_WIDTH), COLLIMATED_FIELD_WIDTH
        ),
        average_glandular_dose_mgy=ctx.value(
            node.find(c.AVERAGE_GLANDULAR_DOSE), AVERAGE_GLANDULAR_DOSE
        ),
        entrance_exposure_at_rp_mgy=ctx.value(
            node.find(c.ENTRANCE_EXPOSURE_AT_RP), ENTRANCE_EXPOSURE_AT_RP
        ),
        half_value_layer_mm=ctx.value(node.find(c.HALF_VALUE_LAYER), HALF_VALUE_LAYER),
        compression_thickness_mm=ctx.value(
            node.find(c.COMPRESSION_THICKNESS), COMPRESSION_THICKNESS
        ),
    )


def _filter(node: Node, ctx: _Context) -> XRayFilter:
    filter_type = _code_of(node.child(c.XRAY_FILTER_TYPE))
    material = _code_of(node.child(c.XRAY_FILTER_MATERIAL))
    return XRayFilter(
        filter_type=filter_type.code_meaning if filter_type else None,
        material=material.code_meaning if material else None,
        material_code=material,
        thickness_minimum_mm=ctx.value(
            node.child(c.XRAY_FILTER_THICKNESS_MINIMUM), FILTER_THICKNESS_MINIMUM
        ),
        thickness_maximum_mm=ctx.value(
            node.child(c.XRAY_FILTER_THICKNESS_MAXIMUM), FILTER_THICKNESS_MAXIMUM
        ),
    )


def _accumulated_xray(node: Node, ctx: _Context) -> AccumulatedXRayDose:
    def child_value(concept: str, row: Row) -> DoseValue | None:
        return ctx.value(node.find(concept), row)

    breasts = []
    for agd_node in node.find_all(c.ACCUMULATED_AVERAGE_GLANDULAR_DOSE):
        value = ctx.value(agd_node, ACCUMULATED_AGD)
        if value is None:
            continue
        laterality = _laterality(agd_node)
        breasts.append(BreastDose(breast_side(laterality), laterality, value))
    reference_point = node.find(c.REFERENCE_POINT_DEFINITION)
    return AccumulatedXRayDose(
        acquisition_plane=_code_of(node.child(c.ACQUISITION_PLANE)),
        dap_total_gym2=child_value(c.DOSE_AREA_PRODUCT_TOTAL, DAP_TOTAL),
        dose_rp_total_mgy=child_value(c.DOSE_RP_TOTAL, DOSE_RP_TOTAL),
        fluoro_dap_total_gym2=child_value(c.FLUORO_DOSE_AREA_PRODUCT_TOTAL, FLUORO_DAP_TOTAL),
        fluoro_dose_rp_total_mgy=child_value(c.FLUORO_DOSE_RP_TOTAL, FLUORO_DOSE_RP_TOTAL),
        total_fluoro_time_s=child_value(c.TOTAL_FLUORO_TIME, TOTAL_FLUORO_TIME),
        acquisition_dap_total_gym2=child_value(
            c.ACQUISITION_DOSE_AREA_PRODUCT_TOTAL, ACQUISITION_DAP_TOTAL
        ),
        acquisition_dose_rp_total_mgy=child_value(
            c.ACQUISITION_DOSE_RP_TOTAL, ACQUISITION_DOSE_RP_TOTAL
        ),
        total_acquisition_time_s=child_value(c.TOTAL_ACQUISITION_TIME, TOTAL_ACQUISITION_TIME),
        total_number_of_radiographic_frames=child_value(
            c.TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES, TOTAL_FRAMES
        ),
        reference_point_definition=(
            reference_point.code_or_text() if reference_point is not None else None
        ),
        average_glandular_dose=tuple(breasts),
    )


def _summed(values: list[DoseValue], source: str) -> DoseValue:
    first = values[0]
    return DoseValue(
        float(f"{sum(value.value for value in values):.12g}"),
        first.unit,
        first.concept,
        source,
        first.sop_instance_uid,
    )


def _study_totals(
    planes: tuple[AccumulatedXRayDose, ...], ctx: _Context
) -> dict[str, DoseValue | None]:
    names = (
        "dap_total_gym2",
        "fluoro_dap_total_gym2",
        "acquisition_dap_total_gym2",
        "dose_rp_total_mgy",
        "total_fluoro_time_s",
    )
    if not planes:
        return {}
    if len(planes) == 1:
        return {name: getattr(planes[0], name) for name in names}
    totals: dict[str, DoseValue | None] = {}
    for name in ("dap_total_gym2", "fluoro_dap_total_gym2", "acquisition_dap_total_gym2"):
        values = [getattr(plane, name) for plane in planes]
        present = [value for value in values if value is not None]
        totals[name] = (
            _summed(present, f"sum over {len(present)} acquisition planes of {present[0].source}")
            if present and len(present) == len(values)
            else None
        )
    ctx.findings.add(
        "multiple-planes",
        f"the report has {len(planes)} acquisition planes: the study DAP totals are their "
        "sums; Dose (RP) and fluoro time are given per plane only (the reference points "
        "differ and the planes may run at the same time)",
    )
    return totals


def _administration(node: Node, ctx: _Context) -> RadiopharmaceuticalAdministration:
    where = f"Radiopharmaceutical Administration (item {node.path})"
    agent_node = node.find(c.RADIOPHARMACEUTICAL_AGENT)
    radionuclide = _code_of(node.find(c.RADIONUCLIDE))
    uid_node = node.find(c.RADIOPHARMACEUTICAL_ADMINISTRATION_EVENT_UID)
    activity = ctx.value(node.find(c.ADMINISTERED_ACTIVITY), ADMINISTERED_ACTIVITY)
    if activity is None:
        ctx.missing("Administered activity", where)
    if radionuclide is None:
        ctx.missing("Radionuclide", where)
    organ_doses = []
    for organ_node in node.find_all(c.ORGAN_DOSE_INFORMATION):
        dose = ctx.value(organ_node.find(c.ORGAN_DOSE), ORGAN_DOSE)
        if dose is None:
            continue
        authority = organ_node.find(c.REFERENCE_AUTHORITY)
        organ_doses.append(
            OrganDose(
                finding_site=_code_of(organ_node.child(c.FINDING_SITE)),
                laterality=_code_of(organ_node.child(c.LATERALITY)),
                dose_mgy=dose,
                reference_authority=authority.code_or_text() if authority is not None else None,
            )
        )
    effective = None
    effective_node = node.find(c.EFFECTIVE_DOSE)
    if effective_node is not None:
        effective = ctx.value(effective_node, EFFECTIVE_DOSE)
        parent = _parent(node, effective_node)
        if parent is not None and parent.concept and parent.concept.split(":")[0].startswith("99"):
            ctx.findings.add(
                "private-container",
                f"Effective Dose (113839, DCM) is inside the private container "
                f"{parent.meaning or parent.concept} ({parent.concept}); it was read",
            )
    route_node = node.find(c.ROUTE_OF_ADMINISTRATION)
    return RadiopharmaceuticalAdministration(
        sop_instance_uid=ctx.sop_instance_uid,
        administration_event_uid=uid_node.uid() if uid_node is not None else None,
        radionuclide=radionuclide,
        radiopharmaceutical=_code_of(agent_node),
        administered_activity_mbq=activity,
        radionuclide_half_life_s=ctx.value(node.find(c.RADIONUCLIDE_HALF_LIFE), HALF_LIFE),
        route=_code_of(route_node),
        start_datetime=_datetime_of(node.find(c.RADIOPHARMACEUTICAL_START_DATETIME), ctx),
        end_datetime=_datetime_of(node.find(c.RADIOPHARMACEUTICAL_STOP_DATETIME), ctx),
        organ_doses=tuple(organ_doses),
        effective_dose_msv=effective,
    )


def _parent(root: Node, target: Node) -> Node | None:
    for node in (root, *root.walk()):
        if any(child is target for child in node.children):
            return node
    return None
