"""The dose tables of a project as in-memory columns, for searches and DRLs over millions
of events in well under a second.

Reading a million rows through a database driver costs seconds in Python whatever the
query; numpy filters, sorts and groups the same million values in milliseconds. So each
process keeps, per project and dose table, the columns its searches have needed: text
columns dictionary-coded (int32 codes, -1 for none), dates as int32 YYYYMMDD (0 for none),
numbers as float64 (NaN for none), in id order.

The columns stay exact: rows are only ever appended to a project's dose tables, except
when they are deleted or changed (erasure, study summaries recomputed), which bumps the
project's version in `dose_versions` in the same transaction. Before every use the cache
compares the version and reads the rows added since (ids above the highest it holds); a
moved version or a count that does not add up makes it read the table again. Columns
whose values change in place (ssde_mgy of events) are never cached: a search on them goes
to the database.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from radbank.index._schema import dose_events, dose_versions

__all__ = ["CachedColumns", "ColumnCache", "TextColumn", "bump_versions"]

_BATCH = 50_000
MUTABLE = frozenset({"ssde_mgy"})


def bump_versions(
    connection: sa.Connection, project_id: int, *, events: bool = False, studies: bool = False
) -> None:
    """Say, inside the writing transaction, that dose rows of the project were deleted or
    changed."""
    if not (events or studies):
        return
    updated = connection.execute(
        dose_versions.update()
        .where(dose_versions.c.project_id == project_id)
        .values(
            events_version=dose_versions.c.events_version + (1 if events else 0),
            studies_version=dose_versions.c.studies_version + (1 if studies else 0),
        )
    ).rowcount
    if not updated:
        connection.execute(
            dose_versions.insert().values(
                project_id=project_id,
                events_version=1 if events else 0,
                studies_version=1 if studies else 0,
            )
        )


@dataclass
class TextColumn:
    codes: np.ndarray
    values: list[str]
    lookup: dict[str, int]

    def code_of(self, value: str) -> int | None:
        return self.lookup.get(value)

    def matching(self, pattern: str) -> np.ndarray:
        """Codes whose value matches a * ? pattern, case-blind."""
        regex = re.compile(
            "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern),
            re.IGNORECASE | re.DOTALL,
        )
        return np.array(
            [code for code, value in enumerate(self.values) if regex.fullmatch(value)],
            dtype=np.int32,
        )


@dataclass
class CachedColumns:
    """One project's dose table in memory: ids and the columns loaded so far."""

    version: int
    max_id: int
    ids: np.ndarray
    columns: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.ids)


def _kind(column: sa.Column) -> str:
    if column.name == "study_date":
        return "date"
    if isinstance(column.type, sa.Float | sa.Integer | sa.Boolean):
        return "number"
    return "text"


def _date(value: Any) -> int:
    text = str(value or "")
    return int(text) if len(text) == 8 and text.isdigit() else 0


def _convert(kind: str, values: list[Any], existing: Any = None) -> Any:
    if kind == "number":
        return np.array(
            [np.nan if value is None else float(value) for value in values], dtype=np.float64
        )
    if kind == "date":
        return np.fromiter((_date(value) for value in values), dtype=np.int32, count=len(values))
    lookup: dict[str, int] = existing.lookup if existing is not None else {}
    names: list[str] = existing.values if existing is not None else []

    def code(value: Any) -> int:
        if value is None:
            return -1
        found = lookup.get(value)
        if found is None:
            found = lookup[value] = len(names)
            names.append(value)
        return found

    codes = np.fromiter((code(value) for value in values), dtype=np.int32, count=len(values))
    return TextColumn(codes, names, lookup)


def _append(kind: str, old: Any, new: Any) -> Any:
    if kind == "text":
        return TextColumn(np.concatenate([old.codes, new.codes]), new.values, new.lookup)
    return np.concatenate([old, new])


class ColumnCache:
    """Per process: {(table, project): CachedColumns}, refreshed before every use."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], CachedColumns] = {}
        self._lock = threading.Lock()

    @staticmethod
    def cacheable(table: sa.Table, names: Iterable[str]) -> bool:
        return all(name in table.c and name not in MUTABLE for name in names)

    def columns(
        self, connection: sa.Connection, table: sa.Table, project_id: int, names: Collection[str]
    ) -> CachedColumns:
        """The project's rows of `table` with at least the columns `names`, current as of
        this connection's snapshot (use one transaction for this and what follows)."""
        with self._lock:
            version_column = (
                dose_versions.c.events_version
                if table is dose_events
                else dose_versions.c.studies_version
            )
            version = (
                connection.execute(
                    sa.select(version_column).where(dose_versions.c.project_id == project_id)
                ).scalar_one_or_none()
                or 0
            )
            count, max_id = connection.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(table.c.id), 0)).where(
                    table.c.project_id == project_id
                )
            ).one()
            key = (table.name, project_id)
            entry = self._entries.get(key)
            if entry is not None and (entry.version != version or max_id < entry.max_id):
                entry = None
            if entry is None:
                entry = CachedColumns(version, 0, np.zeros(0, dtype=np.int64))
                entry = self._read(connection, table, project_id, entry, list(names), 0)
            else:
                missing = [name for name in names if name not in entry.columns]
                if missing:
                    entry = self._read_columns(connection, table, project_id, entry, missing)
                if max_id > entry.max_id:
                    entry = self._read(
                        connection, table, project_id, entry, list(entry.columns), entry.max_id
                    )
            if entry.count != count:
                # Rows came and went without a version change: read everything again.
                fresh = CachedColumns(version, 0, np.zeros(0, dtype=np.int64))
                entry = self._read(
                    connection, table, project_id, fresh, list(entry.columns | set(names)), 0
                )
            self._entries[key] = entry
            return entry

    def _select(self, table: sa.Table, project_id: int, names: list[str]) -> sa.Select:
        return (
            sa.select(table.c.id, *(table.c[name] for name in names))
            .where(table.c.project_id == project_id)
            .order_by(table.c.id)
        )

    def _read(
        self,
        connection: sa.Connection,
        table: sa.Table,
        project_id: int,
        entry: CachedColumns,
        names: list[str],
        after: int,
    ) -> CachedColumns:
        """Append the rows with id > after (all columns in `names`)."""
        result = connection.execute(
            self._select(table, project_id, names).where(table.c.id > after)
        ).all()
        if not result:
            if not entry.columns and names:
                entry.columns = {name: _convert(_kind(table.c[name]), []) for name in names}
            return entry
        transposed = list(zip(*result, strict=True))
        ids = np.array(transposed[0], dtype=np.int64)
        columns = dict(entry.columns)
        for position, name in enumerate(names, start=1):
            kind = _kind(table.c[name])
            new = _convert(kind, list(transposed[position]), entry.columns.get(name))
            columns[name] = (
                _append(kind, entry.columns[name], new) if name in entry.columns else new
            )
        return CachedColumns(entry.version, int(ids[-1]), np.concatenate([entry.ids, ids]), columns)

    def _read_columns(
        self,
        connection: sa.Connection,
        table: sa.Table,
        project_id: int,
        entry: CachedColumns,
        names: list[str],
    ) -> CachedColumns:
        """Add columns for the rows already held (ids up to entry.max_id)."""
        result = connection.execute(
            self._select(table, project_id, names).where(table.c.id <= entry.max_id)
        ).all()
        ids = np.array([row[0] for row in result], dtype=np.int64)
        if len(ids) != entry.count or not np.array_equal(ids, entry.ids):
            fresh = CachedColumns(entry.version, 0, np.zeros(0, dtype=np.int64))
            return self._read(connection, table, project_id, fresh, list(entry.columns) + names, 0)
        columns = dict(entry.columns)
        for position, name in enumerate(names, start=1):
            columns[name] = _convert(_kind(table.c[name]), [row[position] for row in result])
        return CachedColumns(entry.version, entry.max_id, entry.ids, columns)

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()
