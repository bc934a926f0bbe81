"""Dose analyses over the index, shared by REST and the CLI: DRLs with reference
comparison, examinations above a DRL or a notification value, a subject's cumulative
dose over time, and streamed exports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from radbank.analytics import drl
from radbank.analytics.export import csv_chunks, parquet_chunks
from radbank.index import DoseFilter, Index, Project
from radbank.index._dose import display_name
from radbank.index._schema import dose_events, dose_studies

__all__ = ["DoseAnalytics", "EXPORT_FORMATS"]

EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def _kind(column: sa.Column) -> str:
    if isinstance(column.type, sa.Boolean):
        return "bool"
    if isinstance(column.type, sa.Integer):
        return "integer"
    if isinstance(column.type, sa.Float):
        return "real"
    return "text"


_HIDDEN = ("id", "project_id", "study_pk")


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A dose row as answers show it: unit-named columns, no internal keys."""
    return {display_name(key): value for key, value in row.items() if key not in _HIDDEN}


class DoseAnalytics:
    def __init__(self, index: Index) -> None:
        self.index = index

    def quantity(self, name: str) -> drl.Quantity:
        quantity = drl.QUANTITIES.get(name)
        if quantity is None:
            raise drl.DrlError(f"unknown quantity {name!r}; use one of {', '.join(drl.QUANTITIES)}")
        return quantity

    def drls(
        self,
        project: Project,
        quantity_name: str,
        query: DoseFilter,
        *,
        group: str | None = None,
        min_patients: int = drl.DEFAULT_MIN_PATIENTS,
        reference_set: str | None = None,
    ) -> list[drl.ExaminationDrl]:
        quantity = self.quantity(quantity_name)
        group = group or quantity.default_group
        if group not in drl.GROUPS[quantity.table]:
            raise drl.DrlError(
                f"{quantity.name} is grouped by one of {', '.join(drl.GROUPS[quantity.table])}, "
                f"not {group!r}"
            )
        references = []
        if reference_set is not None:
            references = self.index.reference_drls(reference_set)
            if not references:
                raise drl.DrlError(f"no reference DRL set named {reference_set!r} is loaded")
        rows = self.index.dose_values(quantity.table, project.id, group, quantity.column, query)
        return drl.compute(
            rows,
            quantity,
            min_patients=min_patients,
            references=references,
        )

    def above(
        self,
        project: Project,
        quantity_name: str,
        query: DoseFilter,
        *,
        against: str = "local",
        group: str | None = None,
        min_patients: int = drl.DEFAULT_MIN_PATIENTS,
        reference_set: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Examinations (or events) whose value is above their examination's local DRL
        (against="local") or the loaded reference DRL (against="reference"), or CT events
        above their dose-check notification value (against="notification")."""
        if against == "notification":
            rows, _ = self.index.dose_events(
                project.id, replace(query, limit=limit, offset=0, above_notification=True)
            )
            return [public_row(row) for row in rows]
        quantity = self.quantity(quantity_name)
        group = group or quantity.default_group
        levels = self.drls(
            project,
            quantity_name,
            replace(query, limit=None, offset=0),
            group=group,
            min_patients=min_patients,
            reference_set=reference_set if against == "reference" else None,
        )
        thresholds: dict[str, float] = {}
        for level in levels:
            if against == "reference":
                values = [r["value"] for r in level.references]
                if values:
                    thresholds[level.examination] = float(min(values))  # type: ignore[arg-type]
            elif level.local_drl is not None:
                thresholds[level.examination] = level.local_drl
        search = self.index.dose_events if quantity.table == "events" else self.index.dose_studies
        found: list[dict[str, Any]] = []
        for examination, threshold in sorted(thresholds.items()):
            rows, _ = search(
                project.id,
                replace(
                    query,
                    equal={**query.equal, group: examination},
                    ranges={**query.ranges, quantity.column: (threshold, None)},
                    sort=f"-{quantity.column}",
                    limit=limit - len(found),
                    offset=0,
                ),
            )
            for row in rows:
                if row[quantity.column] > threshold:
                    found.append({**public_row(row), "drl": threshold, "examination": examination})
            if len(found) >= limit:
                break
        return found

    def subject(self, project: Project, pseudonym: str) -> dict[str, Any]:
        """The subject's studies with dose values in date order, with running totals of
        DLP, effective dose (estimate) and administered activity."""
        studies = self.index.subject_dose(project.id, pseudonym)
        totals = {
            "dlp_total_mgycm": 0.0,
            "effective_dose_msv": 0.0,
            "administered_activity_mbq": 0.0,
        }
        history = []
        for study in studies:
            for name in totals:
                totals[name] += study[name] or 0.0
            history.append(
                {
                    **public_row(study),
                    "cumulative_dlp_mGycm": totals["dlp_total_mgycm"],
                    "cumulative_effective_dose_mSv": totals["effective_dose_msv"],
                    "cumulative_administered_activity_MBq": totals["administered_activity_mbq"],
                }
            )
        return {
            "pseudonym": pseudonym,
            "studies": history,
            "totals": {
                "studies": len(history),
                "dlp_mGycm": totals["dlp_total_mgycm"],
                "effective_dose_mSv": totals["effective_dose_msv"],
                "administered_activity_MBq": totals["administered_activity_mbq"],
            },
        }

    def export(
        self, project: Project, table_name: str, query: DoseFilter, fmt: str
    ) -> Iterator[bytes]:
        table = dose_events if table_name == "events" else dose_studies
        columns = list(table.columns)
        kept = [i for i, column in enumerate(columns) if column.name not in _HIDDEN]
        names = [display_name(columns[i].name) for i in kept]
        kinds = [_kind(columns[i]) for i in kept]
        batches = (
            [tuple(row[i] for i in kept) for row in batch]
            for batch in self.index.iter_dose_rows(
                table_name, project.id, replace(query, limit=None)
            )
        )
        if fmt == "parquet":
            return parquet_chunks(names, kinds, batches)
        return csv_chunks(names, batches)
