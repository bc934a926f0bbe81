"""`merge(reports)`: one study's dose from several reports of it.

Vendors send one report per exposure, a cumulative report that grows through the study
(Siemens sends each new report with all earlier events), or a dose report next to images
whose headers carry values too. Merging:
- orders the reports by content date and time (undated ones first, in the order given);
- keeps each irradiation event once, by Irradiation Event UID. Where several reports hold
  the same event, the most complete version wins (the one with the most values), and among
  equally complete ones the newest report's; a finding says which report won when the
  versions differ. Header events without a UID are kept, except that CT images of one
  series repeating the same values count once;
- takes the accumulated values (CT total DLP and number of events, projection DAP totals,
  dose RP, fluoro time, per-breast AGD) from the most complete report, the one covering
  the most events (newest on ties), when it covers every merged event; otherwise they are
  recomputed from the merged events where that is possible (DLP, DAP, dose RP, AGD) and
  left out where it is not (fluoro time), with a finding;
- keeps radiopharmaceutical administrations once by Administration Event UID, and those
  of image headers (one per PET or NM image, without UID) once by radionuclide, activity
  and start;
- joins the findings and the SOP Instance UIDs of all reports.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable

from radbank.dicom.dose._read import Findings
from radbank.dicom.dose.model import (
    CT,
    PROJECTION,
    BreastDose,
    DoseReport,
    DoseValue,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Side,
    breast_side,
)

__all__ = ["merge"]

_EPOCH = datetime.datetime(1, 1, 1)


def _naive(moment: datetime.datetime) -> datetime.datetime:
    """Comparable whether or not the vendor gave a UTC offset (local times assumed)."""
    return moment.replace(tzinfo=None)


def _sort_key(report: DoseReport) -> datetime.datetime:
    return _EPOCH if report.content_datetime is None else _naive(report.content_datetime)


def _completeness(event: IrradiationEvent) -> int:
    return len(event.dose_values()) + len(event.filters)


def _comparable(event: IrradiationEvent) -> tuple[object, ...]:
    """The event's content without its provenance, to compare two versions of it."""
    return tuple(
        (name, value.value, value.unit) for name, value in sorted(event.dose_values().items())
    ) + (event.acquisition_type, event.acquisition_protocol, event.target_region)


def merge(reports: Iterable[DoseReport]) -> DoseReport:
    """The dose of one study from several reports of it; see the module docstring.

    Raises ValueError when given no report, or reports of different studies (merging
    those would mix patients' doses: group the reports by Study Instance UID first).
    """
    ordered = sorted(reports, key=_sort_key)
    if not ordered:
        raise ValueError("merge needs at least one dose report")
    studies = {report.study_instance_uid for report in ordered} - {None}
    if len(studies) > 1:
        raise ValueError(
            "the reports belong to different studies "
            f"({', '.join(sorted(s for s in studies if s))}); merge the reports of one "
            "study at a time"
        )
    if len(ordered) == 1:
        return ordered[0]
    newest = ordered[-1]
    findings = Findings(newest.sop_instance_uids[0] if newest.sop_instance_uids else "")
    for report in ordered:
        findings.extend(report.findings)

    events = _merge_events(ordered, findings)
    administrations = _merge_administrations(ordered, findings)
    sop_instance_uids = tuple(
        dict.fromkeys(uid for report in ordered for uid in report.sop_instance_uids)
    )
    devices = {report.device for report in ordered if report.device.manufacturer}
    if len(devices) > 1:
        findings.add(
            "merge-device-differs",
            f"the {len(ordered)} reports name {len(devices)} different devices; the newest "
            "report's device was kept",
        )
    templates = " + ".join(dict.fromkeys(report.template for report in ordered))
    ct_totals = _ct_totals(ordered, events, findings)
    projection_totals = _projection_totals(ordered, events, findings)
    starts = [r.start_of_xray_irradiation for r in ordered if r.start_of_xray_irradiation]
    ends = [r.end_of_xray_irradiation for r in ordered if r.end_of_xray_irradiation]
    return DoseReport(
        study_instance_uid=next(iter(studies), None),
        template=templates,
        sop_instance_uids=sop_instance_uids,
        content_datetime=newest.content_datetime,
        procedure_reported=next(
            (r.procedure_reported for r in reversed(ordered) if r.procedure_reported), None
        ),
        device=next((r.device for r in reversed(ordered) if r.device.manufacturer), newest.device),
        source_of_dose_information=newest.source_of_dose_information,
        start_of_xray_irradiation=min(starts, default=None, key=_naive),
        end_of_xray_irradiation=max(ends, default=None, key=_naive),
        events=tuple(events),
        radiopharmaceutical_administrations=administrations,
        findings=findings.all(),
        **ct_totals,
        **projection_totals,
    )


def _merge_events(ordered: list[DoseReport], findings: Findings) -> list[IrradiationEvent]:
    chosen: dict[str, IrradiationEvent] = {}
    versions: dict[str, list[IrradiationEvent]] = {}
    order: list[str | IrradiationEvent] = []
    header_seen: set[tuple[object, ...]] = set()
    collapsed = 0
    for report in ordered:
        for event in report.events:
            uid = event.irradiation_event_uid
            if uid is None:
                if event.kind == CT and event.series_instance_uid is not None:
                    key = (event.series_instance_uid, _comparable(event))
                    if key in header_seen:
                        collapsed += 1
                        continue
                    header_seen.add(key)
                order.append(event)
                continue
            versions.setdefault(uid, []).append(event)
            if uid not in chosen:
                chosen[uid] = event
                order.append(uid)
            elif _completeness(event) >= _completeness(chosen[uid]):
                # later reports come later in `ordered`: on a tie the newest wins
                chosen[uid] = event
    if collapsed:
        findings.add(
            "merge-header-events",
            f"{collapsed} CT image header(s) repeated the values of another image of the "
            "same series without an Irradiation Event UID; each series counts once",
        )
    repeated = {uid: found for uid, found in versions.items() if len(found) > 1}
    identical = 0
    for uid, found in repeated.items():
        if len({_comparable(event) for event in found}) == 1:
            identical += 1
            continue
        winner = chosen[uid]
        findings.add(
            "merge-duplicate-event",
            f"irradiation event {uid} is in {len(found)} reports with different values; "
            f"kept the version of {winner.sop_instance_uid} ({_completeness(winner)} "
            "values, the most complete, the newest on ties)",
        )
    if identical:
        findings.add(
            "merge-duplicate-event",
            f"{identical} irradiation event(s) were repeated identically in cumulative "
            "reports; each counts once, as the newest report holding it gives it",
        )
    return [chosen[item] if isinstance(item, str) else item for item in order]


def _merge_administrations(
    ordered: list[DoseReport], findings: Findings
) -> tuple[RadiopharmaceuticalAdministration, ...]:
    """Each administration once: by its event UID, and those read from image headers
    (which have none) by radionuclide, activity and start, unless a report has it."""

    def content(administration: RadiopharmaceuticalAdministration) -> tuple[object, ...]:
        activity = administration.administered_activity_mbq
        return (
            administration.radionuclide.key if administration.radionuclide else None,
            activity.value if activity else None,
            administration.start_datetime,
        )

    kept: dict[object, RadiopharmaceuticalAdministration] = {}
    for report in ordered:
        for administration in report.radiopharmaceutical_administrations:
            if administration.administration_event_uid is not None:
                kept[administration.administration_event_uid] = administration
    described = {content(administration) for administration in kept.values()}
    repeated = 0
    for report in ordered:
        for administration in report.radiopharmaceutical_administrations:
            if administration.administration_event_uid is not None:
                continue
            if content(administration) in described:
                repeated += 1
                continue
            described.add(content(administration))
            kept[(administration.sop_instance_uid, content(administration))] = administration
    if repeated:
        findings.add(
            "merge-duplicate-administration",
            f"{repeated} radiopharmaceutical administration(s) read from image headers "
            "repeat one already known (same radionuclide, activity and start); each counts "
            "once",
        )
    return tuple(kept.values())


def _covering(ordered: list[DoseReport], kind: str) -> DoseReport | None:
    """The newest of the reports holding the most events of a kind."""
    candidates = [
        report for report in ordered if any(event.kind == kind for event in report.events)
    ]
    if not candidates:
        return None
    return max(reversed(candidates), key=lambda r: sum(event.kind == kind for event in r.events))


def _summed(values: list[DoseValue], source: str) -> DoseValue | None:
    if not values:
        return None
    return DoseValue(
        float(f"{math.fsum(value.value for value in values):.12g}"),
        values[0].unit,
        values[0].concept,
        source,
        values[0].sop_instance_uid,
    )


def _uids(events: Iterable[IrradiationEvent]) -> set[object]:
    return {event.irradiation_event_uid or id(event) for event in events}


def _ct_totals(
    ordered: list[DoseReport], events: list[IrradiationEvent], findings: Findings
) -> dict[str, DoseValue | None]:
    ct_events = [event for event in events if event.kind == CT]
    if not ct_events:
        return {}
    best = _covering(ordered, CT)
    if (
        best is not None
        and best.ct_dlp_total_mgycm is not None
        and _uids(e for e in best.events if e.kind == CT) >= _uids(ct_events)
    ):
        return {
            "ct_dlp_total_mgycm": best.ct_dlp_total_mgycm,
            "total_number_of_irradiation_events": best.total_number_of_irradiation_events,
        }
    dlps = [event.dlp_mgycm for event in ct_events if event.dlp_mgycm is not None]
    findings.add(
        "merge-recomputed-total",
        f"no single report covers all {len(ct_events)} CT events; the total DLP is the sum "
        f"of the {len(dlps)} event DLPs and the number of events is counted",
    )
    count_source = ct_events[0]
    return {
        "ct_dlp_total_mgycm": _summed(dlps, f"sum of {len(dlps)} event DLPs after merge"),
        "total_number_of_irradiation_events": DoseValue(
            float(len(ct_events)),
            "{events}",
            "DCM:113812",
            "count of events after merge",
            count_source.sop_instance_uid,
        ),
    }


def _projection_totals(
    ordered: list[DoseReport], events: list[IrradiationEvent], findings: Findings
) -> dict[str, object]:
    xray_events = [event for event in events if event.kind == PROJECTION]
    if not xray_events:
        return {}
    best = _covering(ordered, PROJECTION)
    if best is not None and _uids(e for e in best.events if e.kind == PROJECTION) >= _uids(
        xray_events
    ):
        return {
            "planes": best.planes,
            "dap_total_gym2": best.dap_total_gym2,
            "fluoro_dap_total_gym2": best.fluoro_dap_total_gym2,
            "acquisition_dap_total_gym2": best.acquisition_dap_total_gym2,
            "dose_rp_total_mgy": best.dose_rp_total_mgy,
            "total_fluoro_time_s": best.total_fluoro_time_s,
            "accumulated_average_glandular_dose": best.accumulated_average_glandular_dose,
        }
    findings.add(
        "merge-recomputed-total",
        f"no single report covers all {len(xray_events)} projection events; DAP, dose RP "
        "and AGD totals are sums over the merged events, the fluoro time is not known",
    )

    def total(name: str, chosen: list[IrradiationEvent], label: str) -> DoseValue | None:
        values = [getattr(event, name) for event in chosen if getattr(event, name) is not None]
        return _summed(values, f"sum of {len(values)} event {label} after merge")

    fluoro = [event for event in xray_events if event.is_fluoroscopy]
    acquisition = [event for event in xray_events if not event.is_fluoroscopy]
    breasts: dict[Side, list[IrradiationEvent]] = {}
    for event in xray_events:
        if event.average_glandular_dose_mgy is not None:
            breasts.setdefault(breast_side(event.laterality), []).append(event)
    accumulated_agd = []
    for side, side_events in breasts.items():
        agd = total("average_glandular_dose_mgy", side_events, "AGDs")
        if agd is not None:
            accumulated_agd.append(BreastDose(side, side_events[0].laterality, agd))
    return {
        "dap_total_gym2": total("dap_gym2", xray_events, "DAPs"),
        "fluoro_dap_total_gym2": total("dap_gym2", fluoro, "fluoro DAPs"),
        "acquisition_dap_total_gym2": total("dap_gym2", acquisition, "acquisition DAPs"),
        "dose_rp_total_mgy": total("dose_rp_mgy", xray_events, "doses (RP)"),
        "accumulated_average_glandular_dose": tuple(accumulated_agd),
    }
