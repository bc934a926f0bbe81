"""QIDO-RS matching (PS3.4 C.2.2.2) as SQL over the index tables, and the result attributes.

Values are always bound parameters; the literal parts of wildcard patterns are escaped, so
`%`, `_`, `[` or quotes in a query match themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from pydicom.datadict import tag_for_keyword

from radbank.dicom.query import AttributeFilter, QidoQuery
from radbank.index import _attributes as attrs
from radbank.index._schema import instances, series, studies

# Sorts after every character of DA, TM and DT values: "<= upper + HIGH" matches all values
# that start with upper, so "-1500" includes 15:00:59 and a single TM "14" the whole hour.
_HIGH = "~"
_LOWEST = "0"

_PN = "pn"
_INT = "int"
_TEXT = "text"
_DATETIME = "dt"

_COLUMNS: dict[str, tuple[sa.Column, str]] = {
    "PatientName": (studies.c.patient_name_ci, _PN),
    "PatientID": (studies.c.patient_id, _TEXT),
    "PatientBirthDate": (studies.c.patient_birth_date, _TEXT),
    "PatientSex": (studies.c.patient_sex, _TEXT),
    "StudyInstanceUID": (studies.c.study_instance_uid, _TEXT),
    "StudyDate": (studies.c.study_date, _TEXT),
    "StudyTime": (studies.c.study_time, _TEXT),
    "AccessionNumber": (studies.c.accession_number, _TEXT),
    "StudyID": (studies.c.study_id, _TEXT),
    "ReferringPhysicianName": (studies.c.referring_physician_name_ci, _PN),
    "StudyDescription": (studies.c.study_description, _TEXT),
    "ModalitiesInStudy": (series.c.modality, _TEXT),
    "SeriesInstanceUID": (series.c.series_instance_uid, _TEXT),
    "Modality": (series.c.modality, _TEXT),
    "SeriesNumber": (series.c.series_number, _INT),
    "SeriesDescription": (series.c.series_description, _TEXT),
    "SeriesDate": (series.c.series_date, _TEXT),
    "SeriesTime": (series.c.series_time, _TEXT),
    "PerformedProcedureStepStartDate": (series.c.performed_procedure_step_start_date, _TEXT),
    "PerformedProcedureStepStartTime": (series.c.performed_procedure_step_start_time, _TEXT),
    "SOPInstanceUID": (instances.c.sop_instance_uid, _TEXT),
    "SOPClassUID": (instances.c.sop_class_uid, _TEXT),
    "InstanceNumber": (instances.c.instance_number, _INT),
    "Rows": (instances.c.rows, _INT),
    "Columns": (instances.c.columns, _INT),
    "BitsAllocated": (instances.c.bits_allocated, _INT),
    "NumberOfFrames": (instances.c.number_of_frames, _INT),
    "AcquisitionDateTime": (instances.c.acquisition_date_time, _DATETIME),
}


def statement(
    project_id: int,
    query: QidoQuery,
    dialect: str,
    visible_studies: Collection[str] | None = None,
) -> sa.Select:
    """The SELECT answering query, ordered deterministically, with limit and offset; of
    the visible studies only, when given."""
    if query.level == "study":
        columns: list[Any] = [studies]
        source: Any = studies
        conditions = [studies.c.project_id == project_id]
        order = [studies.c.study_date, studies.c.study_time, studies.c.study_instance_uid]
    elif query.level == "series":
        columns = [series, *_study_summary()]
        source = series.join(studies, series.c.study_pk == studies.c.id)
        conditions = [series.c.project_id == project_id]
        order = [
            series.c.study_pk,
            series.c.series_number.nulls_first(),
            series.c.series_instance_uid,
        ]
    else:
        columns = [
            instances,
            series.c.number_of_series_related_instances,
            series.c.attributes.label("series_attributes"),
            *_study_summary(),
        ]
        source = instances.join(series, instances.c.series_pk == series.c.id).join(
            studies, instances.c.study_pk == studies.c.id
        )
        conditions = [instances.c.project_id == project_id]
        order = [
            instances.c.series_pk,
            instances.c.instance_number.nulls_first(),
            instances.c.sop_instance_uid,
        ]
    if query.study_instance_uid is not None:
        conditions += [
            studies.c.project_id == project_id,
            studies.c.study_instance_uid == query.study_instance_uid,
        ]
    if query.series_instance_uid is not None:
        conditions += [
            series.c.project_id == project_id,
            series.c.series_instance_uid == query.series_instance_uid,
        ]
    if visible_studies is not None:
        conditions.append(
            studies.c.study_instance_uid.in_(
                sa.bindparam("visible", list(visible_studies), expanding=True)
            )
        )
    for attribute_filter in query.filters:
        condition = _condition(attribute_filter, dialect)
        if condition is None:
            continue
        if attribute_filter.keyword == "ModalitiesInStudy":
            condition = _modalities_exists(attribute_filter, dialect)
        conditions.append(condition)
    select = sa.select(*columns).select_from(source).where(*conditions).order_by(*order)
    if query.limit is not None:
        select = select.limit(query.limit)
    if query.offset:
        select = select.offset(query.offset)
    return select


def _study_summary() -> list[Any]:
    return [
        studies.c.study_instance_uid,
        studies.c.modalities_in_study,
        studies.c.number_of_study_related_series,
        studies.c.number_of_study_related_instances,
        studies.c.attributes.label("study_attributes"),
    ]


def _modalities_exists(attribute_filter: AttributeFilter, dialect: str) -> sa.ColumnElement:
    """A study matches ModalitiesInStudy when any of its series matches as Modality would."""
    other = series.alias("other_series")
    condition = _condition(attribute_filter, dialect, column=other.c.modality)
    return (
        sa.select(sa.literal(1))
        .select_from(other)
        .where(other.c.study_pk == studies.c.id, condition)
        .correlate(studies)
        .exists()
    )


def _condition(
    attribute_filter: AttributeFilter, dialect: str, column: Any = None
) -> sa.ColumnElement | None:
    mapped, kind = _COLUMNS[attribute_filter.keyword]
    column = mapped if column is None else column
    match attribute_filter.kind:
        case "universal":
            return None
        case "range":
            return _range(
                column, kind, attribute_filter.lower, attribute_filter.upper, attribute_filter.vr
            )
        case "list":
            return column.in_(_values(attribute_filter.values, kind))
        case "wildcard":
            pattern = _values(attribute_filter.values, kind)[0]
            return _wildcard(column, pattern, dialect)
    if attribute_filter.vr in ("TM", "DT"):
        return _range(
            column, kind, attribute_filter.lower, attribute_filter.upper, attribute_filter.vr
        )
    return column == _values(attribute_filter.values, kind)[0]


def _values(values: tuple[str, ...], kind: str) -> list[Any]:
    if kind == _INT:
        return [int(value) for value in values]
    if kind == _PN:
        return [attrs.folded(value.rstrip()) for value in values]
    return [value.rstrip() for value in values]


def _range(
    column: Any, kind: str, lower: str | None, upper: str | None, vr: str
) -> sa.ColumnElement:
    if kind == _DATETIME:
        lower, upper = attrs.comparable_datetime(lower), attrs.comparable_datetime(upper)
    # Always there: empty values ('' in the study order columns) never match.
    conditions = [column >= _LOWEST]
    if lower is not None:
        conditions.append(_completed(column, vr) >= lower)
    if upper is not None:
        conditions.append(column <= upper + _HIGH)
    return sa.and_(*conditions)


def _completed(column: Any, vr: str) -> Any:
    """A stored TM or DT with the parts it leaves out at their lowest: "1430" is 14:30:00
    and "2020" the first moment of 2020 (PS3.5 6.2), so it is not before a lower bound of
    "143000" or "20200101". A DA is always whole."""
    lowest = _LOWEST_PARTS.get(vr)
    if lowest is None:
        return column
    return column.concat(sa.func.substr(sa.literal(lowest), sa.func.length(column) + 1))


_LOWEST_PARTS = {"TM": "000000.000000", "DT": "00000101000000.000000"}


def _wildcard(column: Any, pattern: str, dialect: str) -> sa.ColumnElement:
    if dialect == "sqlite":
        # GLOB is case-sensitive (LIKE is not in SQLite) and uses * and ? as DICOM does.
        return column.op("GLOB")(pattern.replace("[", "[[]"))
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")


def results(rows: list[Mapping[str, Any]], query: QidoQuery) -> list[dict[str, Any]]:
    """DICOM JSON results: required return attributes, matching keys, includefield ones."""
    wanted = [f.tag for f in query.filters]
    wanted += [_tag(field) for field in query.include_fields]
    if query.level == "study":
        required = attrs.STUDY_RETURN + wanted
        if_known = attrs.RETURN_IF_KNOWN
    elif query.level == "series":
        required = attrs.SERIES_RETURN + wanted
        if query.study_instance_uid is None:
            required += attrs.STUDY_RETURN
        if_known = attrs.RETURN_IF_KNOWN + attrs.SERIES_RETURN_IF_KNOWN
    else:
        required = attrs.INSTANCE_RETURN + wanted
        if query.study_instance_uid is None:
            required += attrs.STUDY_RETURN
        if query.series_instance_uid is None:
            required += attrs.SERIES_RETURN
        if_known = attrs.RETURN_IF_KNOWN
    return [
        attrs.result(_sources(row, query.level), required, if_known, query.include_all)
        for row in rows
    ]


def _sources(row: Mapping[str, Any], level: str) -> list[Mapping[str, Any]]:
    computed: dict[str, Any] = {
        _TAGS["InstanceAvailability"]: {"vr": "CS", "Value": ["ONLINE"]},
        _TAGS["StudyInstanceUID"]: _uid(row["study_instance_uid"]),
        _TAGS["ModalitiesInStudy"]: _codes(row["modalities_in_study"]),
        _TAGS["NumberOfStudyRelatedSeries"]: _number(row["number_of_study_related_series"]),
        _TAGS["NumberOfStudyRelatedInstances"]: _number(row["number_of_study_related_instances"]),
    }
    if level == "study":
        return [computed, row["attributes"]]
    computed[_TAGS["NumberOfSeriesRelatedInstances"]] = _number(
        row["number_of_series_related_instances"]
    )
    if level == "series":
        computed[_TAGS["SeriesInstanceUID"]] = _uid(row["series_instance_uid"])
        return [computed, row["attributes"], row["study_attributes"]]
    computed[_TAGS["SOPInstanceUID"]] = _uid(row["sop_instance_uid"])
    computed[_TAGS["SOPClassUID"]] = _uid(row["sop_class_uid"])
    return [computed, row["attributes"], row["series_attributes"], row["study_attributes"]]


_TAGS = {
    keyword: attrs.tag_of(keyword)
    for keyword in (
        "InstanceAvailability",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "NumberOfSeriesRelatedInstances",
    )
}


def _tag(field: str) -> str:
    """includefield entries are keywords, or hex tags for elements without a keyword."""
    tag = tag_for_keyword(field)
    return field if tag is None else f"{tag:08X}"


def _uid(value: str | None) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _codes(value: str | None) -> dict[str, Any]:
    return {"vr": "CS", "Value": value.split("\\")} if value else {"vr": "CS"}


def _number(value: int | None) -> dict[str, Any]:
    return {"vr": "IS", "Value": [value]} if value is not None else {"vr": "IS"}
