"""Dose rows of the index: events written with their instances (same transaction), the
per-study summaries DRLs count, water-equivalent diameters for SSDE, searches with
filters, paging and sorting, and the reference DRLs users load.

An event offered twice (a cumulative or continued report repeats the events of the
earlier ones; image headers repeat their series' CTDIvol on every slice) is kept once per
study and source: the first stored wins (`event_key`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from radbank.dicom.dose import ssde_mgy
from radbank.dicom.dose.table import COLUMNS
from radbank.index import _attributes as attrs
from radbank.index._dose_columns import CachedColumns, ColumnCache, TextColumn, bump_versions
from radbank.index._engine import write_transaction
from radbank.index._rows import CHUNK, stored_time
from radbank.index._schema import (
    dose_events,
    dose_sizes,
    dose_studies,
    reference_drls,
    studies,
)

__all__ = [
    "DOSE_STUDY_COLUMNS",
    "DoseFilter",
    "DoseOffer",
    "DoseMethods",
    "InvalidDoseFilter",
    "ReferenceDrl",
    "delete_subject_dose",
    "write_dose",
]

EVENT_COLUMN_NAMES = {column.key: column.name for column in COLUMNS}
DOSE_STUDY_COLUMNS = tuple(
    column.name
    for column in dose_studies.columns
    if column.name not in ("id", "project_id", "study_pk")
)
_REAL_EVENT_COLUMNS = {column.key for column in COLUMNS if column.kind in ("real", "integer")}
_REAL_STUDY_COLUMNS = {
    column.name
    for column in dose_studies.columns
    if isinstance(column.type, sa.Float | sa.Integer) and column.name not in ("id", "project_id")
}

# The dose tables by the name callers use, with the columns that take ranges.
_TABLES: dict[str, tuple[sa.Table, set[str]]] = {
    "events": (dose_events, _REAL_EVENT_COLUMNS | {"ssde_mgy"}),
    "studies": (dose_studies, _REAL_STUDY_COLUMNS),
}


class InvalidDoseFilter(ValueError):
    """A filter, sort or paging value the dose search cannot use (the message says which)."""


@dataclass(frozen=True)
class DoseFilter:
    """What a dose search selects: equality on text columns (`*` and `?` wildcards),
    study date range (YYYYMMDD), patient age range in years, value ranges on numeric
    columns ({column: (low, high)}, either end None), the studies a caller may see (None
    for all), a sort column ("-" first for descending) and a page."""

    equal: Mapping[str, str] = field(default_factory=dict)
    date_from: str | None = None
    date_to: str | None = None
    age_min: float | None = None
    age_max: float | None = None
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    study_uids: Collection[str] | None = None
    above_notification: bool = False
    """Only CT events (or studies with events) above their dose-check notification value."""
    sort: str | None = None
    limit: int | None = 100
    offset: int = 0


@dataclass(frozen=True)
class ReferenceDrl:
    set_name: str
    examination: str
    quantity: str
    value: float
    age_band: str
    source: str


def _insert(connection: sa.Connection, table: sa.Table) -> Any:
    dialect = connection.dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing()


def _device_key(row: Mapping[str, Any]) -> str:
    if row.get("device_observer_uid"):
        return _bounded_key(str(row["device_observer_uid"]))
    parts = [row.get(name) or "" for name in ("manufacturer", "model_name", "station_name")]
    return _bounded_key("|".join(parts)) if any(parts) else "unknown"


def _bounded_key(key: str) -> str:
    """A key as a column holds it (`column_text`); a longer one (no valid UID or device
    name is) keeps its beginning and a digest of the whole, so that distinct keys stay
    distinct."""
    if len(key) <= attrs.COLUMN_TEXT_MAX and "\x00" not in key:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{attrs.column_text(key)[: attrs.COLUMN_TEXT_MAX - 65]}#{digest}"


def device_label(row: Mapping[str, Any]) -> str:
    name = " ".join(part for part in (row.get("manufacturer"), row.get("model_name")) if part)
    station = row.get("station_name")
    label = f"{name} ({station})" if name and station else name or station or ""
    return label or str(row.get("device_observer_uid") or "unknown device")


def _event_key(row: Mapping[str, Any]) -> str:
    if row.get("irradiation_event_uid"):
        return _bounded_key(str(row["irradiation_event_uid"]))
    if row["source"] == "header" and row.get("kind") == "CT" and row.get("series_instance_uid"):
        values = "/".join(f"{row.get(name)}" for name in ("ctdivol_mGy", "kvp", "protocol"))
        return _bounded_key(f"series:{row['series_instance_uid']}:{values}")
    return _bounded_key(f"object:{row.get('sop_instance_uid')}:{row.get('radionuclide') or ''}")


def _stored_value(value: Any, kind: str) -> Any:
    """A dose row's value as its column (of `kind`) holds it: None for what it cannot hold
    (a non-finite number, an integer no IS can be), text as `column_text` bounds it."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if kind == "integer" and isinstance(value, int) and value not in attrs.INTEGER_RANGE:
        return None
    if isinstance(value, str):
        return attrs.column_text(value)
    return value


@dataclass(frozen=True)
class DoseOffer:
    """The dose rows of one just indexed instance: its event rows (radbank.dicom.dose.table)
    and, for an axial CT image, its water-equivalent diameter."""

    study_pk: int
    sop_instance_uid: str
    pseudonym: str | None
    study_date: str | None
    rows: Sequence[Mapping[str, Any]]
    dw_cm: float | None


def write_dose(connection: sa.Connection, project_id: int, offered: Sequence[DoseOffer]) -> None:
    """Store the dose rows of just indexed instances and refresh their studies' summaries."""
    events: list[dict[str, Any]] = []
    sizes: list[dict[str, Any]] = []
    touched: set[int] = set()
    # The first row of an event wins (the insert skips a key stored before); rows of an
    # event already offered in this batch (every slice of a series repeats its CTDIvol)
    # are skipped before they are built.
    offered_keys: set[tuple[int, Any, str]] = set()
    for offer in offered:
        study_pk, rows, dw_cm = offer.study_pk, offer.rows, offer.dw_cm
        if dw_cm is not None:
            sizes.append(
                {
                    "project_id": project_id,
                    "study_pk": study_pk,
                    "sop_instance_uid": offer.sop_instance_uid,
                    "dw_cm": dw_cm,
                }
            )
            touched.add(study_pk)
        for row in rows:
            touched.add(study_pk)
            key = (study_pk, row.get("source"), _event_key(row))
            if key in offered_keys:
                continue
            offered_keys.add(key)
            events.append(
                {
                    "project_id": project_id,
                    "study_pk": study_pk,
                    "pseudonym": offer.pseudonym,
                    "study_date": offer.study_date,
                    "device_key": _device_key(row),
                    "event_key": key[2],
                    **{
                        column.key: _stored_value(row.get(column.name), column.kind)
                        for column in COLUMNS
                    },
                }
            )
    if events:
        connection.execute(_insert(connection, dose_events), events)
    if sizes:
        connection.execute(_insert(connection, dose_sizes), sizes)
    if touched:
        refresh_studies(connection, project_id, sorted(touched))


def refresh_studies(connection: sa.Connection, project_id: int, study_pks: list[int]) -> None:
    """Recompute the SSDE of the studies' CT events and the studies' dose summaries."""
    for start in range(0, len(study_pks), CHUNK):
        chunk = study_pks[start : start + CHUNK]
        by_study: dict[int, list[dict[str, Any]]] = {pk: [] for pk in chunk}
        for row in connection.execute(
            sa.select(dose_events)
            .where(dose_events.c.study_pk.in_(chunk))
            .order_by(dose_events.c.id)
        ):
            by_study[row.study_pk].append(dict(row._mapping))
        diameters: dict[int, list[float]] = {pk: [] for pk in chunk}
        for study_pk, dw_cm in connection.execute(
            sa.select(dose_sizes.c.study_pk, dose_sizes.c.dw_cm).where(
                dose_sizes.c.study_pk.in_(chunk)
            )
        ):
            diameters[study_pk].append(dw_cm)
        described = dict(
            connection.execute(
                sa.select(studies.c.id, studies.c.study_description).where(studies.c.id.in_(chunk))
            ).all()
        )
        deleted = connection.execute(
            dose_studies.delete().where(dose_studies.c.study_pk.in_(chunk))
        ).rowcount
        if deleted:
            bump_versions(connection, project_id, studies=True)
        summaries = []
        for study_pk in chunk:
            rows = by_study[study_pk]
            dw = (
                sum(diameters[study_pk]) / len(diameters[study_pk]) if diameters[study_pk] else None
            )
            _update_ssde(connection, rows, dw)
            if rows:
                summaries.append(_summary(project_id, study_pk, rows, dw, described.get(study_pk)))
        if summaries:
            connection.execute(dose_studies.insert(), summaries)


def _update_ssde(connection: sa.Connection, rows: list[dict[str, Any]], dw: float | None) -> None:
    changed = []
    for row in rows:
        ssde = None
        if dw is not None and row["kind"] == "CT" and row["ctdivol_mgy"] is not None:
            try:
                ssde = ssde_mgy(row["ctdivol_mgy"], dw, row["phantom"] or "32")
            except ValueError:
                ssde = None  # Dw outside the Report 204 fit, or an unknown phantom
        if ssde != row["ssde_mgy"]:
            row["ssde_mgy"] = ssde
            changed.append({"pk": row["id"], "ssde": ssde})
    if changed:
        connection.execute(
            dose_events.update()
            .where(dose_events.c.id == sa.bindparam("pk"))
            .values(ssde_mgy=sa.bindparam("ssde")),
            changed,
        )


def _first(rows: list[dict[str, Any]], column: str) -> Any:
    return next((row[column] for row in rows if row[column] is not None), None)


def _values(rows: list[dict[str, Any]], column: str) -> list[float]:
    return [row[column] for row in rows if row[column] is not None]


def _total(rows: list[dict[str, Any]], per_event: str, total: str) -> float | None:
    """The sum of the events' values, or the largest total a report states when the events
    have none (a report of totals only, or an image header)."""
    events = _values(rows, per_event)
    if events:
        return sum(events)
    totals = _values(rows, total)
    return max(totals) if totals else None


def _summary(
    project_id: int,
    study_pk: int,
    all_rows: list[dict[str, Any]],
    dw: float | None,
    study_description: str | None,
) -> dict[str, Any]:
    reports = [row for row in all_rows if row["source"] == "report"]
    rows = reports or all_rows
    modalities = [row["modality"] for row in rows if row["modality"]]
    ctdivol = [value for value in _values(rows, "ctdivol_mgy") if value > 0]
    ssde = _values(rows, "ssde_mgy")
    agd = _values(rows, "agd_mgy")
    fluoro = _values(rows, "fluoro_time_total_s")
    activity = _values(rows, "administered_activity_mbq")
    effective = _values(rows, "effective_dose_msv")
    above = any(
        (
            row["ctdivol_notification_mgy"] is not None
            and (row["ctdivol_mgy"] or 0) > row["ctdivol_notification_mgy"]
        )
        or (
            row["dlp_notification_mgycm"] is not None
            and (row["dlp_mgycm"] or 0) > row["dlp_notification_mgycm"]
        )
        for row in rows
    )
    first = rows[0]
    return {
        "project_id": project_id,
        "study_pk": study_pk,
        "study_instance_uid": first["study_instance_uid"],
        "pseudonym": _first(rows, "pseudonym"),
        "study_date": _first(rows, "study_date"),
        "source": first["source"],
        "modality": max(set(modalities), key=modalities.count) if modalities else None,
        "device_key": first["device_key"],
        "device": device_label(first),
        "study_description": study_description,
        "procedure": _first(rows, "procedure"),
        "protocols": "; ".join(dict.fromkeys(r["protocol"] for r in rows if r["protocol"])) or None,
        "events": len(rows),
        "ctdivol_mean_mgy": sum(ctdivol) / len(ctdivol) if ctdivol else None,
        "ctdivol_max_mgy": max(ctdivol) if ctdivol else None,
        "dlp_total_mgycm": _total(rows, "dlp_mgycm", "dlp_total_mgycm"),
        "dap_total_gym2": _total(rows, "dap_gym2", "dap_total_gym2"),
        "dose_rp_total_gy": _total(rows, "dose_rp_gy", "dose_rp_total_gy"),
        "fluoro_time_total_s": max(fluoro) if fluoro else None,
        "agd_mgy": sum(agd) / len(agd) if agd else None,
        "administered_activity_mbq": sum(activity) if activity else None,
        "effective_dose_msv": sum(effective) if effective else None,
        "dw_cm": dw,
        "ssde_mgy": sum(ssde) / len(ssde) if ssde else None,
        "patient_age_years": _first(rows, "patient_age_years"),
        "patient_sex": _first(rows, "patient_sex"),
        "patient_weight_kg": _first(rows, "patient_weight_kg"),
        "above_notification": above,
    }


def delete_subject_dose(connection: sa.Connection, project_id: int, pseudonym: str) -> None:
    """Erase the dose rows of a subject's studies (consent withdrawal)."""
    study_pks = sa.select(studies.c.id).where(
        studies.c.project_id == project_id, studies.c.patient_id == pseudonym
    )
    for table in (dose_events, dose_sizes, dose_studies):
        connection.execute(table.delete().where(table.c.study_pk.in_(study_pks)))
    for table in (dose_events, dose_studies):
        connection.execute(
            table.delete().where(table.c.project_id == project_id, table.c.pseudonym == pseudonym)
        )
    bump_versions(connection, project_id, events=True, studies=True)


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _where(table: sa.Table, project_id: int, query: DoseFilter, numeric: set[str]) -> list[Any]:
    clauses: list[Any] = [table.c.project_id == project_id]
    for name, value in query.equal.items():
        column = table.c.get(name.lower())
        if column is None or name.lower() in numeric:
            raise InvalidDoseFilter(f"cannot filter on {name!r}: not a text column of the table")
        if "*" in value or "?" in value:
            clauses.append(column.ilike(_like(value), escape="\\"))
        else:
            clauses.append(column == value)
    if query.date_from:
        clauses.append(table.c.study_date >= query.date_from)
    if query.date_to:
        clauses.append(table.c.study_date <= query.date_to)
    if query.age_min is not None:
        clauses.append(table.c.patient_age_years >= query.age_min)
    if query.age_max is not None:
        clauses.append(table.c.patient_age_years < query.age_max)
    for name, (low, high) in query.ranges.items():
        column = table.c.get(name.lower())
        if column is None or name.lower() not in numeric:
            raise InvalidDoseFilter(f"cannot give a range for {name!r}: not a numeric column")
        if low is not None:
            clauses.append(column >= low)
        if high is not None:
            clauses.append(column <= high)
    if query.above_notification:
        if table is dose_studies:
            clauses.append(table.c.above_notification.is_(True))
        else:
            clauses.append(
                sa.or_(
                    table.c.ctdivol_mgy > table.c.ctdivol_notification_mgy,
                    table.c.dlp_mgycm > table.c.dlp_notification_mgycm,
                )
            )
    if query.study_uids is not None:
        uids = list(query.study_uids)
        clauses.append(table.c.study_instance_uid.in_(uids) if uids else sa.false())
    return clauses


def _order(table: sa.Table, sort: str | None) -> list[Any]:
    if not sort:
        return [table.c.id]
    name = sort.removeprefix("-").lower()
    column = table.c.get(name)
    if column is None or name in ("project_id", "study_pk"):
        raise InvalidDoseFilter(f"cannot sort by {sort!r}: not a column of the table")
    ordered = column.desc() if sort.startswith("-") else column.asc()
    # Rows without the value last, whichever the direction, on SQLite and PostgreSQL alike.
    return [column.is_(None), ordered, table.c.id]


def _page(query: DoseFilter, select: sa.Select) -> sa.Select:
    if query.limit is not None:
        select = select.limit(query.limit)
    return select.offset(query.offset) if query.offset else select


class DoseMethods:
    """Index methods for dose rows."""

    _engine: sa.Engine
    _dose_cache: ColumnCache

    def dose_events(self, project_id: int, query: DoseFilter) -> tuple[list[dict[str, Any]], int]:
        """Events matching the filter (a page) and how many match in all."""
        return self._dose_search(*_TABLES["events"], project_id, query)

    def dose_studies(self, project_id: int, query: DoseFilter) -> tuple[list[dict[str, Any]], int]:
        return self._dose_search(*_TABLES["studies"], project_id, query)

    def _dose_search(
        self, table: sa.Table, numeric: set[str], project_id: int, query: DoseFilter
    ) -> tuple[list[dict[str, Any]], int]:
        clauses = _where(table, project_id, query, numeric)
        order = _order(table, query.sort)
        needed = _needed(table, query)
        with self._engine.connect() as connection, connection.begin():
            if query.study_uids is None and ColumnCache.cacheable(table, needed):
                cached = self._dose_cache.columns(connection, table, project_id, needed)
                ids, total = _select_ids(cached, table, query)
                rows = {
                    row.id: dict(row._mapping)
                    for start in range(0, len(ids), CHUNK)
                    for row in connection.execute(
                        sa.select(table).where(table.c.id.in_(ids[start : start + CHUNK]))
                    )
                }
                return [rows[pk] for pk in ids if pk in rows], total
            total = connection.execute(
                sa.select(sa.func.count()).select_from(table).where(*clauses)
            ).scalar_one()
            found = connection.execute(
                _page(query, sa.select(table).where(*clauses).order_by(*order))
            )
            return [dict(row._mapping) for row in found], total

    def iter_dose_rows(
        self, table_name: str, project_id: int, query: DoseFilter, batch: int = 20_000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Every matching row (no page), in batches of tuples in the table's column order,
        for streamed exports."""
        table, numeric = _TABLES[table_name]
        clauses = _where(table, project_id, query, numeric)
        order = _order(table, query.sort)
        with self._engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=batch).execute(
                sa.select(table).where(*clauses).order_by(*order)
            )
            for part in result.partitions(batch):
                yield [tuple(row) for row in part]

    def dose_values(
        self,
        table_name: str,
        project_id: int,
        group_column: str,
        value_column: str,
        query: DoseFilter,
    ) -> DoseValues:
        """The group, device, patient and value of every matching row that has a value and
        a group, coded, for DRL statistics."""
        table, numeric = _TABLES[table_name]
        group = table.c.get(group_column)
        value = table.c.get(value_column)
        if group is None or group_column in numeric or group_column in _INTERNAL:
            raise InvalidDoseFilter(f"cannot group by {group_column!r}")
        if value is None or value_column not in numeric:
            raise InvalidDoseFilter(f"{value_column!r} is not a dose quantity of the table")
        clauses = _where(table, project_id, query, numeric)
        labels = ("device",) if table is dose_studies else _DEVICE_PARTS
        needed = (
            _needed(table, query)
            | {group_column, value_column, "device_key", "pseudonym"}
            | set(labels)
        )
        with self._engine.connect() as connection, connection.begin():
            if query.study_uids is None and ColumnCache.cacheable(table, needed):
                cached = self._dose_cache.columns(connection, table, project_id, needed)
                mask = _mask(cached, table, query)
                return _coded(cached, mask, group_column, value_column, labels)
            rows = connection.execute(
                sa.select(
                    group, table.c.device_key, table.c.pseudonym, value,
                    *(table.c[name] for name in labels),
                ).where(*clauses, value.is_not(None), group.is_not(None))
            ).all()  # fmt: skip
        return _coded_rows(rows, len(labels))

    def warm_dose_columns(self, minimum_rows: int = 100_000) -> None:
        """Read into memory the columns that searches and DRLs use most, for the projects
        with at least `minimum_rows` dose events (so the first search after a start is as
        fast as the next ones)."""
        with self._engine.connect() as connection:
            counts = connection.execute(
                sa.select(dose_events.c.project_id, sa.func.count()).group_by(
                    dose_events.c.project_id
                )
            ).all()
        for project_id, count in counts:
            if count < minimum_rows:
                continue
            for table, names in (
                (dose_events, WARM_EVENT_COLUMNS),
                (dose_studies, WARM_STUDY_COLUMNS),
            ):
                with self._engine.connect() as connection, connection.begin():
                    self._dose_cache.columns(connection, table, project_id, names)

    def water_equivalent_diameters(self, project_id: int) -> dict[str, float]:
        """Dw in cm measured at ingest, by SOP Instance UID of the CT image."""
        with self._engine.connect() as connection:
            return {
                row.sop_instance_uid: row.dw_cm
                for row in connection.execute(
                    sa.select(dose_sizes.c.sop_instance_uid, dose_sizes.c.dw_cm).where(
                        dose_sizes.c.project_id == project_id
                    )
                )
            }

    def subject_dose(self, project_id: int, pseudonym: str) -> list[dict[str, Any]]:
        """The subject's studies with dose values, in date order."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(dose_studies)
                .where(
                    dose_studies.c.project_id == project_id, dose_studies.c.pseudonym == pseudonym
                )
                .order_by(dose_studies.c.study_date, dose_studies.c.id)
            )
            return [dict(row._mapping) for row in rows]

    def replace_reference_drls(
        self, set_name: str, rows: Sequence[ReferenceDrl], loaded_by: str
    ) -> int:
        """Replace the reference DRL set of that name with rows, in one transaction."""
        now = stored_time(datetime.now(UTC))
        with write_transaction(self._engine) as connection:
            connection.execute(reference_drls.delete().where(reference_drls.c.set_name == set_name))
            if rows:
                connection.execute(
                    reference_drls.insert(),
                    [
                        {
                            "set_name": row.set_name,
                            "examination": row.examination,
                            "quantity": row.quantity,
                            "value": row.value,
                            "age_band": row.age_band,
                            "source": row.source,
                            "loaded_by": loaded_by,
                            "loaded_at": now,
                        }
                        for row in rows
                    ],
                )
        return len(rows)

    def reference_drls(self, set_name: str | None = None) -> list[ReferenceDrl]:
        select = sa.select(reference_drls).order_by(
            reference_drls.c.set_name, reference_drls.c.examination, reference_drls.c.quantity
        )
        if set_name is not None:
            select = select.where(reference_drls.c.set_name == set_name)
        with self._engine.connect() as connection:
            return [
                ReferenceDrl(
                    row.set_name, row.examination, row.quantity, row.value, row.age_band, row.source
                )
                for row in connection.execute(select)
            ]


_UNIT_SUFFIXES = {
    "mgycm": "mGycm",
    "mgy": "mGy",
    "gym2": "Gym2",
    "gy": "Gy",
    "mbq": "MBq",
    "msv": "mSv",
    "mas": "mAs",
    "ma": "mA",
}


def display_name(key: str) -> str:
    """The column's name in answers and exports: its unit spelled as in the dose table
    (ctdivol_mean_mgy -> ctdivol_mean_mGy)."""
    if key in EVENT_COLUMN_NAMES:
        return EVENT_COLUMN_NAMES[key]
    stem, _, unit = key.rpartition("_")
    return f"{stem}_{_UNIT_SUFFIXES[unit]}" if stem and unit in _UNIT_SUFFIXES else key


def stored_name(name: str) -> str:
    return name.lower()


WARM_EVENT_COLUMNS = frozenset(
    {"modality", "protocol", "device_key", "pseudonym", "study_date", "ctdivol_mgy", "dlp_mgycm",
     "manufacturer", "model_name", "station_name"}
)  # fmt: skip
WARM_STUDY_COLUMNS = frozenset(
    {"modality", "study_description", "device_key", "device", "pseudonym", "study_date",
     "dlp_total_mgycm", "ctdivol_mean_mgy"}
)  # fmt: skip
_INTERNAL = frozenset({"id", "project_id", "study_pk", "event_key"})
_DEVICE_PARTS = ("manufacturer", "model_name", "station_name")
_NOTIFICATION = ("ctdivol_mgy", "ctdivol_notification_mgy", "dlp_mgycm", "dlp_notification_mgycm")


@dataclass(frozen=True)
class DoseValues:
    """Coded rows for statistics: per row a group code, a device code, a patient code (-1
    when unknown) and a value; the names (and device labels) of the codes."""

    groups: np.ndarray
    group_names: list[str]
    devices: np.ndarray
    device_names: list[str]
    device_labels: list[str]
    patients: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


def _needed(table: sa.Table, query: DoseFilter) -> set[str]:
    names = {name.lower() for name in query.equal} | {name.lower() for name in query.ranges}
    if query.date_from or query.date_to:
        names.add("study_date")
    if query.age_min is not None or query.age_max is not None:
        names.add("patient_age_years")
    if query.above_notification:
        names |= {"above_notification"} if table is dose_studies else set(_NOTIFICATION)
    if query.sort:
        names.add(query.sort.removeprefix("-").lower())
    return names


def _mask(cached: CachedColumns, table: sa.Table, query: DoseFilter) -> np.ndarray:
    """The rows the filter selects (the same rows as `_where` in SQL)."""
    mask = np.ones(cached.count, dtype=bool)
    for name, value in query.equal.items():
        column: TextColumn = cached.columns[name.lower()]
        if "*" in value or "?" in value:
            mask &= np.isin(column.codes, column.matching(value))
        else:
            code = column.code_of(value)
            mask &= column.codes == (code if code is not None else -2)
    if query.date_from or query.date_to:
        dates = cached.columns["study_date"]
        mask &= dates > 0
        if query.date_from:
            mask &= dates >= int(query.date_from)
        if query.date_to:
            mask &= dates <= int(query.date_to)
    ages = cached.columns.get("patient_age_years")
    if query.age_min is not None:
        mask &= ages >= query.age_min
    if query.age_max is not None:
        mask &= ages < query.age_max
    for name, (low, high) in query.ranges.items():
        values = cached.columns[name.lower()]
        if low is not None:
            mask &= values >= low
        if high is not None:
            mask &= values <= high
    if query.above_notification:
        c = cached.columns
        if table is dose_studies:
            mask &= c["above_notification"] == 1
        else:
            mask &= (c["ctdivol_mgy"] > c["ctdivol_notification_mgy"]) | (
                c["dlp_mgycm"] > c["dlp_notification_mgycm"]
            )
    return mask


def _select_ids(cached: CachedColumns, table: sa.Table, query: DoseFilter) -> tuple[list[int], int]:
    """The ids of the page, in the order `_order` gives in SQL, and the number matching."""
    mask = _mask(cached, table, query)
    selected = np.flatnonzero(mask)
    total = len(selected)
    if query.sort:
        name = query.sort.removeprefix("-").lower()
        column = cached.columns[name]
        if isinstance(column, TextColumn):
            codes = column.codes[selected]
            missing = codes < 0
            keys = _text_rank(column)[np.maximum(codes, 0)].astype(np.float64)
        else:
            keys = column[selected].astype(np.float64)
            missing = np.isnan(keys)
            keys = np.where(missing, 0.0, keys)
        if query.sort.startswith("-"):
            keys = -keys
        order = np.lexsort((cached.ids[selected], keys, missing))
        selected = selected[order]
    start = query.offset
    stop = None if query.limit is None else start + query.limit
    return cached.ids[selected[start:stop]].tolist(), total


def _text_rank(column: TextColumn) -> np.ndarray:
    """Per code, the position of its text in sorted order (so sorting ranks sorts text)."""
    if not column.values:
        return np.zeros(1, dtype=np.int64)
    rank = np.empty(len(column.values), dtype=np.int64)
    rank[np.argsort(np.array(column.values, dtype=object), kind="stable")] = np.arange(
        len(column.values)
    )
    return rank


def _labels_of(
    cached: CachedColumns, rows: np.ndarray, devices: np.ndarray, parts: tuple[str, ...]
) -> list[str]:
    """A label per device code: the device's first row's label."""
    _, first = np.unique(devices, return_index=True)
    labels = []
    for index in first:
        row = rows[index]
        fields = {}
        for name in parts:
            column: TextColumn = cached.columns[name]
            code = int(column.codes[row])
            fields[name] = column.values[code] if code >= 0 else None
        labels.append(fields["device"] if "device" in fields else device_label(fields))
    return labels


def _coded(
    cached: CachedColumns, mask: np.ndarray, group: str, value: str, labels: tuple[str, ...]
) -> DoseValues:
    groups_column: TextColumn = cached.columns[group]
    values_column = cached.columns[value]
    mask = mask & (groups_column.codes >= 0) & ~np.isnan(values_column)
    rows = np.flatnonzero(mask)
    group_codes, groups = np.unique(groups_column.codes[rows], return_inverse=True)
    devices_column: TextColumn = cached.columns["device_key"]
    device_codes, devices = np.unique(devices_column.codes[rows], return_inverse=True)
    return DoseValues(
        groups.astype(np.int32),
        [groups_column.values[code] for code in group_codes],
        devices.astype(np.int32),
        [devices_column.values[code] if code >= 0 else "unknown" for code in device_codes],
        _labels_of(cached, rows, devices, labels),
        cached.columns["pseudonym"].codes[rows],
        values_column[rows],
    )


def _codes(values: list[Any]) -> tuple[np.ndarray, list[str]]:
    lookup: dict[Any, int] = {}
    codes = np.fromiter(
        (lookup.setdefault(v, len(lookup)) if v is not None else -1 for v in values),
        dtype=np.int32,
        count=len(values),
    )
    return codes, [str(name) for name in lookup]


def _coded_rows(rows: list[Any], label_parts: int) -> DoseValues:
    groups, group_names = _codes([row[0] for row in rows])
    devices, device_names = _codes([row[1] for row in rows])
    patients, _ = _codes([row[2] for row in rows])
    labels: dict[int, str] = {}
    for row, device in zip(rows, devices.tolist(), strict=True):
        if device not in labels:
            parts = row[4 : 4 + label_parts]
            labels[device] = (
                str(parts[0] or device_names[device])
                if label_parts == 1
                else device_label(dict(zip(_DEVICE_PARTS, parts, strict=True)))
            )
    return DoseValues(
        groups,
        group_names,
        devices,
        device_names,
        [labels[code] for code in range(len(device_names))],
        patients,
        np.array([float(row[3]) for row in rows], dtype=np.float64),
    )
