"""The SQL index: projects, the study/series/instance hierarchy with QIDO-RS matching
columns, and quarantine. One schema for SQLite and PostgreSQL, created by the alembic
migrations shipped in index/migrations; nothing outside this package writes SQL.

    index = Index("sqlite:///data/index.sqlite3")
    project = index.create_project("medirad", key_salt=os.urandom(16))
    index.add_instances(records)
    index.search(project.id, parse_qido("study", [("PatientID", "P1*")]))
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from radbank.dicom.query import QidoQuery
from radbank.index import _attributes as attrs
from radbank.index import _search
from radbank.index._engine import create_engine, migrate, write_transaction
from radbank.index._schema import instances, projects, quarantine, series, studies

__all__ = [
    "DuplicateInstance",
    "HierarchyConflict",
    "Index",
    "InstanceRecord",
    "Project",
    "ProjectExists",
    "UnknownProject",
]

# Stays below SQLite's bound-parameter limit on old builds (999).
_CHUNK = 500


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    title: str
    description: str
    profile: str
    key_salt: bytes
    created_at: datetime


@dataclass(frozen=True)
class InstanceRecord:
    project_id: int
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_key: str
    size_bytes: int
    sha256: str
    attributes: dict
    """DICOM JSON (PS3.18 F.2) of the instance's top-level elements, without bulk data."""
    received_at: datetime
    source: str


class ProjectExists(Exception):
    """create_project with a name already taken."""


class UnknownProject(LookupError):
    """A project id that the index does not hold."""


class DuplicateInstance(ValueError):
    """add_instances with SOP Instance UIDs the project already holds (or twice in a batch)."""

    def __init__(self, project_id: int, sop_instance_uids: Iterable[str]) -> None:
        self.project_id = project_id
        self.sop_instance_uids = sorted(set(sop_instance_uids))
        shown = ", ".join(self.sop_instance_uids[:5])
        more = len(self.sop_instance_uids) - 5
        super().__init__(
            f"project {project_id} already holds SOP Instance UID {shown}"
            + (f" and {more} more" if more > 0 else "")
            + "; nothing of this batch was indexed"
        )


class HierarchyConflict(ValueError):
    """A series UID that the project already holds under another study."""


class Index:
    def __init__(self, database_url: str) -> None:
        """Open (and create or migrate to the newest schema) the index at database_url."""
        self._engine = create_engine(database_url)
        self._dialect = self._engine.dialect.name
        migrate(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    # Projects

    def create_project(
        self,
        name: str,
        *,
        title: str = "",
        description: str = "",
        profile: str = "basic",
        key_salt: bytes,
    ) -> Project:
        if not name:
            raise ValueError("a project needs a name")
        created_at = datetime.now(UTC)
        try:
            with write_transaction(self._engine) as connection:
                project_id = connection.execute(
                    projects.insert().returning(projects.c.id),
                    {
                        "name": name,
                        "title": title,
                        "description": description,
                        "profile": profile,
                        "key_salt": key_salt,
                        "created_at": _stored_time(created_at),
                    },
                ).scalar_one()
        except sa.exc.IntegrityError:
            raise ProjectExists(f"a project named {name!r} already exists") from None
        return Project(project_id, name, title, description, profile, key_salt, created_at)

    def get_project(self, name: str) -> Project | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(projects).where(projects.c.name == name)
            ).one_or_none()
        return _project(row._mapping) if row else None

    def list_projects(self) -> list[Project]:
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(projects).order_by(projects.c.name))
            return [_project(row._mapping) for row in rows]

    # Instances

    def get_instances(
        self, project_id: int, sop_instance_uids: Iterable[str]
    ) -> dict[str, InstanceRecord]:
        """The instances of the project among sop_instance_uids, by SOP Instance UID."""
        found: dict[str, InstanceRecord] = {}
        uids = list(dict.fromkeys(sop_instance_uids))
        with self._engine.connect() as connection:
            for start in range(0, len(uids), _CHUNK):
                rows = connection.execute(
                    _records_select().where(
                        instances.c.project_id == project_id,
                        instances.c.sop_instance_uid.in_(uids[start : start + _CHUNK]),
                    )
                )
                for row in rows:
                    found[row.sop_instance_uid] = _record(row._mapping)
        return found

    def add_instances(self, records: Sequence[InstanceRecord]) -> None:
        """Index records in one transaction: all of them, or none.

        Creates or completes their series and study rows (attributes the existing rows lack
        are added from the records) and updates the counts and ModalitiesInStudy.
        Raises DuplicateInstance, HierarchyConflict or UnknownProject.
        """
        by_project: dict[int, list[InstanceRecord]] = defaultdict(list)
        for record in records:
            by_project[record.project_id].append(record)
        try:
            with write_transaction(self._engine) as connection:
                for project_id, group in by_project.items():
                    _Writer(connection, project_id).add(group)
        except sa.exc.IntegrityError as exc:
            if "uq_instances_uid" not in str(exc) and "sop_instance_uid" not in str(exc):
                raise
            # Lost a race with a concurrent writer on PostgreSQL: name what it stored first.
            for project_id, group in by_project.items():
                taken = self.get_instances(project_id, (r.sop_instance_uid for r in group))
                if taken:
                    raise DuplicateInstance(project_id, taken) from exc
            raise

    def find_instances(
        self,
        project_id: int,
        study_instance_uid: str,
        series_instance_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> list[InstanceRecord]:
        """Instances of a study (or of one series, or one instance), ordered by SeriesNumber,
        InstanceNumber and UIDs."""
        select = _records_select().where(
            instances.c.project_id == project_id,
            studies.c.study_instance_uid == study_instance_uid,
            studies.c.project_id == project_id,
        )
        if series_instance_uid is not None:
            select = select.where(series.c.series_instance_uid == series_instance_uid)
        if sop_instance_uid is not None:
            select = select.where(instances.c.sop_instance_uid == sop_instance_uid)
        select = select.order_by(
            series.c.series_number.nulls_first(),
            series.c.series_instance_uid,
            instances.c.instance_number.nulls_first(),
            instances.c.sop_instance_uid,
        )
        with self._engine.connect() as connection:
            return [_record(row._mapping) for row in connection.execute(select)]

    def search(self, project_id: int, query: QidoQuery) -> list[dict[str, Any]]:
        """QIDO-RS results as DICOM JSON objects (keys in tag order), without RetrieveURL."""
        select = _search.statement(project_id, query, self._dialect)
        with self._engine.connect() as connection:
            rows = [row._mapping for row in connection.execute(select)]
        return _search.results(rows, query)

    def iter_instances(self) -> Iterator[InstanceRecord]:
        """Every instance of every project, streamed (for `radbank verify`)."""
        select = _records_select().order_by(instances.c.id)
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(select)
            for row in result:
                yield _record(row._mapping)

    # Quarantine

    def add_quarantine(
        self,
        project_id: int,
        *,
        reason: str,
        source: str,
        blob_key: str,
        sop_instance_uid: str | None,
    ) -> None:
        with write_transaction(self._engine) as connection:
            _require_project(connection, project_id)
            connection.execute(
                quarantine.insert(),
                {
                    "project_id": project_id,
                    "reason": reason,
                    "source": source,
                    "blob_key": blob_key,
                    "sop_instance_uid": sop_instance_uid,
                    "received_at": _stored_time(datetime.now(UTC)),
                },
            )

    def list_quarantine(self, project_id: int) -> list[dict[str, Any]]:
        """Quarantined objects of the project, oldest first, as dicts of the table's columns."""
        select = (
            sa.select(quarantine)
            .where(quarantine.c.project_id == project_id)
            .order_by(quarantine.c.received_at, quarantine.c.id)
        )
        with self._engine.connect() as connection:
            return [
                {**row._mapping, "received_at": _loaded_time(row.received_at)}
                for row in connection.execute(select)
            ]

    def blob_key_exists(self, blob_key: str) -> bool:
        """Whether an instance or a quarantine entry refers to the blob (crash recovery)."""
        with self._engine.connect() as connection:
            for table in (instances, quarantine):
                select = sa.select(table.c.id).where(table.c.blob_key == blob_key).limit(1)
                if connection.execute(select).first() is not None:
                    return True
        return False

    def iter_quarantine_blob_keys(self) -> Iterator[str]:
        select = sa.select(quarantine.c.blob_key).order_by(quarantine.c.id)
        with self._engine.connect() as connection:
            yield from connection.execution_options(yield_per=1000).scalars(select)


class _Writer:
    """The statements of add_instances for one project, inside the caller's transaction."""

    def __init__(self, connection: sa.Connection, project_id: int) -> None:
        self.connection = connection
        self.project_id = project_id

    def add(self, records: list[InstanceRecord]) -> None:
        _require_project(self.connection, self.project_id)
        self._reject_duplicates(records)
        study_pks = self._upsert_studies(records)
        series_pks = self._upsert_series(records, study_pks)
        self.connection.execute(
            instances.insert(),
            [
                {
                    "project_id": self.project_id,
                    "study_pk": study_pks[r.study_instance_uid],
                    "series_pk": series_pks[r.series_instance_uid],
                    "sop_instance_uid": r.sop_instance_uid,
                    "sop_class_uid": r.sop_class_uid,
                    "transfer_syntax_uid": r.transfer_syntax_uid,
                    "blob_key": r.blob_key,
                    "size_bytes": r.size_bytes,
                    "sha256": r.sha256,
                    "attributes": r.attributes,
                    "received_at": _stored_time(r.received_at),
                    "source": r.source,
                    **attrs.instance_columns(r.attributes),
                }
                for r in records
            ],
        )
        self._update_aggregates(sorted(set(study_pks.values())), sorted(set(series_pks.values())))

    def _reject_duplicates(self, records: list[InstanceRecord]) -> None:
        counts = Counter(r.sop_instance_uid for r in records)
        twice = [uid for uid, count in counts.items() if count > 1]
        if twice:
            raise DuplicateInstance(self.project_id, twice)
        uids = list(counts)
        existing: list[str] = []
        for start in range(0, len(uids), _CHUNK):
            existing += self.connection.scalars(
                sa.select(instances.c.sop_instance_uid).where(
                    instances.c.project_id == self.project_id,
                    instances.c.sop_instance_uid.in_(uids[start : start + _CHUNK]),
                )
            )
        if existing:
            raise DuplicateInstance(self.project_id, existing)

    def _upsert_studies(self, records: list[InstanceRecord]) -> dict[str, int]:
        offered: dict[str, dict[str, Any]] = {}
        for r in records:
            subset = attrs.level_subset(r.attributes, attrs.STUDY_LEVEL)
            offered[r.study_instance_uid] = attrs.merge_missing(
                offered.get(r.study_instance_uid, {}), [subset]
            )
        rows = self._upsert(studies, studies.c.study_instance_uid, offered, attrs.study_columns)
        return {uid: pk for uid, (pk, _) in rows.items()}

    def _upsert_series(
        self, records: list[InstanceRecord], study_pks: dict[str, int]
    ) -> dict[str, int]:
        offered: dict[str, dict[str, Any]] = {}
        study_of: dict[str, str] = {}
        for r in records:
            known_study = study_of.setdefault(r.series_instance_uid, r.study_instance_uid)
            if known_study != r.study_instance_uid:
                raise HierarchyConflict(
                    f"series {r.series_instance_uid} is given under two studies, "
                    f"{known_study} and {r.study_instance_uid} (SOP Instance UID "
                    f"{r.sop_instance_uid}); a series belongs to one study"
                )
            subset = attrs.level_subset(r.attributes, attrs.SERIES_LEVEL)
            offered[r.series_instance_uid] = attrs.merge_missing(
                offered.get(r.series_instance_uid, {}), [subset]
            )
        rows = self._upsert(
            series,
            series.c.series_instance_uid,
            offered,
            attrs.series_columns,
            {uid: {"study_pk": study_pks[study_of[uid]]} for uid in offered},
        )
        for uid, (_, study_pk) in rows.items():
            if study_pk != study_pks[study_of[uid]]:
                raise HierarchyConflict(
                    f"series {uid} already belongs to another study than {study_of[uid]} in "
                    f"project {self.project_id}; a series belongs to one study"
                )
        return {uid: pk for uid, (pk, _) in rows.items()}

    def _upsert(
        self,
        table: sa.Table,
        uid_column: sa.Column,
        offered: dict[str, dict[str, Any]],
        columns_of: Any,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, tuple[int, int | None]]:
        """Insert missing rows, complete existing ones; {uid: (pk, study_pk or None)}.

        The rows are locked (FOR UPDATE, in pk order) so that concurrent writers on
        PostgreSQL update the counts one after the other.
        """
        counts = (
            {"number_of_series_related_instances": 0}
            if table is series
            else {"number_of_study_related_series": 0, "number_of_study_related_instances": 0}
        )
        insert = _insert(self.connection.dialect.name, table).on_conflict_do_nothing()
        self.connection.execute(
            insert,
            [
                {
                    "project_id": self.project_id,
                    uid_column.name: uid,
                    "attributes": attributes,
                    **columns_of(attributes),
                    **counts,
                    **(extra[uid] if extra else {}),
                }
                for uid, attributes in offered.items()
            ],
        )
        study_pk = table.c.study_pk if table is series else sa.null()
        rows = self.connection.execute(
            sa.select(table.c.id, uid_column, study_pk, table.c.attributes)
            .where(table.c.project_id == self.project_id, uid_column.in_(list(offered)))
            .order_by(table.c.id)
            .with_for_update()
        ).all()
        found: dict[str, tuple[int, int | None]] = {}
        for pk, uid, parent, stored in rows:
            found[uid] = (pk, parent)
            merged = attrs.merge_missing(stored, [offered[uid]])
            if len(merged) != len(stored):
                self.connection.execute(
                    table.update().where(table.c.id == pk),
                    {"attributes": merged, **columns_of(merged)},
                )
        return found

    def _update_aggregates(self, study_pks: list[int], series_pks: list[int]) -> None:
        in_series = sa.select(sa.func.count()).where(instances.c.series_pk == series.c.id)
        self.connection.execute(
            series.update()
            .where(series.c.id.in_(series_pks))
            .values(number_of_series_related_instances=in_series.scalar_subquery())
        )
        in_study = sa.select(sa.func.count()).where(instances.c.study_pk == studies.c.id)
        series_in_study = sa.select(sa.func.count()).where(series.c.study_pk == studies.c.id)
        self.connection.execute(
            studies.update()
            .where(studies.c.id.in_(study_pks))
            .values(
                number_of_study_related_instances=in_study.scalar_subquery(),
                number_of_study_related_series=series_in_study.scalar_subquery(),
            )
        )
        modalities: dict[int, set[str]] = {pk: set() for pk in study_pks}
        for study_pk, modality in self.connection.execute(
            sa.select(series.c.study_pk, series.c.modality)
            .distinct()
            .where(series.c.study_pk.in_(study_pks), series.c.modality.is_not(None))
        ):
            modalities[study_pk].add(modality)
        self.connection.execute(
            studies.update().where(studies.c.id == sa.bindparam("pk")),
            [
                {"pk": pk, "modalities_in_study": "\\".join(sorted(found)) or None}
                for pk, found in modalities.items()
            ],
        )


def _insert(dialect: str, table: sa.Table) -> Any:
    """INSERT that can skip rows a concurrent writer inserted first (ON CONFLICT DO NOTHING)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _require_project(connection: sa.Connection, project_id: int) -> None:
    found = connection.scalar(sa.select(projects.c.id).where(projects.c.id == project_id))
    if found is None:
        raise UnknownProject(f"no project with id {project_id} in the index")


def _records_select() -> sa.Select:
    return sa.select(
        instances, studies.c.study_instance_uid, series.c.series_instance_uid
    ).select_from(
        instances.join(series, instances.c.series_pk == series.c.id).join(
            studies, instances.c.study_pk == studies.c.id
        )
    )


def _record(row: Mapping[str, Any]) -> InstanceRecord:
    return InstanceRecord(
        project_id=row["project_id"],
        study_instance_uid=row["study_instance_uid"],
        series_instance_uid=row["series_instance_uid"],
        sop_instance_uid=row["sop_instance_uid"],
        sop_class_uid=row["sop_class_uid"],
        transfer_syntax_uid=row["transfer_syntax_uid"],
        blob_key=row["blob_key"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        attributes=row["attributes"],
        received_at=_loaded_time(row["received_at"]),
        source=row["source"],
    )


def _project(row: Mapping[str, Any]) -> Project:
    return Project(
        id=row["id"],
        name=row["name"],
        title=row["title"],
        description=row["description"],
        profile=row["profile"],
        key_salt=bytes(row["key_salt"]),
        created_at=_loaded_time(row["created_at"]),
    )


def _stored_time(moment: datetime) -> datetime:
    """UTC; a naive datetime is taken to be UTC already (SQLite keeps no offset)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _loaded_time(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
