"""The SQL index: projects (with their de-identification settings, dataset description and
key material), the study/series/instance hierarchy with QIDO-RS matching columns,
quarantine, the pseudonym vault's sealed entries and the hash-chained audit trail; users,
tokens and project roles (methods in _identity.py); consents, withdrawals and erasure,
access requests and saved cohorts (methods in _consent.py). One schema for SQLite and
PostgreSQL, created by the alembic migrations shipped in index/migrations; nothing outside
this package writes SQL.

    index = Index("sqlite:///data/index.sqlite3")
    project = index.create_project("medirad", key_salt=os.urandom(16))
    index.add_instances(records)
    index.search(project.id, parse_qido("study", [("PatientID", "P1*")]))
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from radbank.dicom.query import QidoQuery
from radbank.index import _attributes as attrs
from radbank.index import _audit, _search, _vault
from radbank.index._audit import GENESIS_HASH, AuditRecord, PendingAudit
from radbank.index._consent import AccessRequest, ConsentMethods, ConsentRecord, Withdrawal
from radbank.index._dose import (
    DoseFilter,
    DoseMethods,
    DoseOffer,
    DoseValues,
    InvalidDoseFilter,
    ReferenceDrl,
    write_dose,
)
from radbank.index._dose_columns import ColumnCache
from radbank.index._engine import KEYS_LOCK, create_engine, migrate, serialise, write_transaction
from radbank.index._identity import (
    Access,
    ApiToken,
    IdentityMethods,
    Membership,
    User,
    UserExists,
)
from radbank.index._rows import (
    CHUNK,
    Cohort,
    SubjectWithdrawn,
    UnknownProject,
    loaded_time,
    refuse_withdrawn,
    require_project,
    stored_time,
)
from radbank.index._schema import (
    dose_events,
    instances,
    projects,
    quarantine,
    series,
    studies,
    submission_parts,
    vault_entries,
)
from radbank.index._submissions import (
    SubmissionExists,
    SubmissionMethods,
    SubmissionPart,
    SubmissionRecord,
)
from radbank.index._vault import VaultEntry, VaultKeyChanged, VaultWrite

__all__ = [
    "GENESIS_HASH",
    "Access",
    "AccessRequest",
    "Cohort",
    "ConsentRecord",
    "Withdrawal",
    "ApiToken",
    "AuditRecord",
    "DoseFilter",
    "DoseValues",
    "DuplicateInstance",
    "InvalidDoseFilter",
    "out_of_space",
    "ReferenceDrl",
    "HierarchyConflict",
    "SubjectWithdrawn",
    "SubmissionExists",
    "SubmissionPart",
    "SubmissionRecord",
    "Index",
    "InstanceRecord",
    "Membership",
    "PendingAudit",
    "Project",
    "ProjectExists",
    "UnknownProject",
    "User",
    "UserExists",
    "VaultEntry",
    "VaultKeyChanged",
    "VaultWrite",
]


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    title: str
    description: str
    profile: str
    key_salt: bytes
    created_at: datetime
    overrides: Mapping[str, str] = field(default_factory=dict)
    """De-identification overrides: keyword or tag -> action ("keep", "remove", ...)."""
    pixel_rules: Sequence[Mapping[str, Any]] = ()
    """Burned-in annotation rules as stored (JSON objects; see dicom.deid.pixels)."""
    ocr_check: bool = False
    settings_version: int = 1
    """Grows with every settings change: what is built from the settings can be cached."""
    key_id: str | None = None
    """Id of the master key that wraps (or derives) the project key; None: the oldest one."""
    wrapped_key: bytes | None = None
    """The project key wrapped under master key key_id; None: derived from key_salt."""
    vault_public_key: bytes | None = None
    vault_key_id: str | None = None
    vault_broker: str | None = None
    licence: str = ""
    """SPDX or Creative Commons licence id of the de-identified data."""
    ip_statement: str = ""
    """Intellectual-property statement, where the licence is not an open one."""
    data_use: Sequence[str] = ()
    """Data-use conditions as GA4GH DUO codes."""
    consent_required: bool = False
    open_access: bool = False
    """Anonymous readers may read the de-identified data (read-only, audited)."""


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
    dose_rows: tuple[Mapping[str, Any], ...] = ()
    """The instance's rows of the dose table (radbank.dicom.dose.table), indexed with it."""
    dw_cm: float | None = None
    """Water-equivalent diameter of an axial CT image (AAPM Report 220), for SSDE."""


class ProjectExists(Exception):
    """create_project with a name already taken."""


_SQLITE_FULL = 13


def out_of_space(exc: BaseException) -> bool:
    """Whether a failed index write failed for want of space: SQLite's "database or disk
    is full", PostgreSQL's insufficient resources (SQLSTATE class 53)."""
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    cause = exc.orig
    return getattr(cause, "sqlite_errorcode", None) == _SQLITE_FULL or str(
        getattr(cause, "sqlstate", "") or ""
    ).startswith("53")


def unstorable_value(exc: BaseException) -> bool:
    """Whether a failed index write failed on a value the database cannot hold (a number out
    of range, text it refuses, an index entry too large): the object's fault, not the
    database's. The column values are bounded (`_attributes.column_text`, INTEGER_RANGE),
    so this is what a value that slips through them raises."""
    if isinstance(exc, OverflowError | sa.exc.DataError):
        return True
    if isinstance(exc, sa.exc.StatementError) and isinstance(exc.orig, OverflowError):
        return True
    # PostgreSQL's program limits (SQLSTATE class 54), such as an index row too large
    return isinstance(exc, sa.exc.OperationalError) and str(
        getattr(exc.orig, "sqlstate", "") or ""
    ).startswith("54")


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
    """A series UID that the project already holds under another study, or a study UID it
    holds for another patient."""


class Index(IdentityMethods, ConsentMethods, DoseMethods, SubmissionMethods):
    def __init__(self, database_url: str) -> None:
        """Open (and create or migrate to the newest schema) the index at database_url."""
        self._engine = create_engine(database_url)
        self._dialect = self._engine.dialect.name
        self._dose_cache = ColumnCache()
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
        key_id: str | None = None,
        wrapped_key: bytes | None = None,
        key_material: Callable[[], tuple[str | None, bytes | None]] | None = None,
        overrides: Mapping[str, str] | None = None,
        pixel_rules: Sequence[Mapping[str, Any]] = (),
        ocr_check: bool = False,
        audit: PendingAudit | None = None,
    ) -> Project:
        """Create a project (and append `audit` in the same transaction).

        The project key is wrapped_key (wrapped under master key key_id) or, without one,
        derived from key_salt with master key key_id. key_material, when given, returns
        (key_id, wrapped_key) instead; it is called inside the transaction, once no master
        key rotation is re-wrapping keys, so it sees the master key that will stay.
        Raises ProjectExists.
        """
        if not name:
            raise ValueError("a project needs a name")
        values = {
            "name": name,
            "title": title,
            "description": description,
            "profile": profile,
            "key_salt": key_salt,
            "created_at": stored_time(datetime.now(UTC)),
            "overrides": dict(overrides or {}),
            "pixel_rules": [dict(rule) for rule in pixel_rules],
            "ocr_check": ocr_check,
            "settings_version": 1,
            "key_id": key_id,
            "wrapped_key": wrapped_key,
        }
        try:
            with write_transaction(self._engine) as connection:
                # Taken by master key rotation too: a project is created entirely before or
                # entirely after a rotation re-wraps the keys.
                serialise(connection, KEYS_LOCK)
                if key_material is not None:
                    values["key_id"], values["wrapped_key"] = key_material()
                row = connection.execute(
                    projects.insert().values(values).returning(*projects.c)
                ).one()
                if audit is not None:
                    _audit.append(connection, audit)
        except sa.exc.IntegrityError:
            raise ProjectExists(f"a project named {name!r} already exists") from None
        return _project(row._mapping)

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

    def update_project_settings(
        self,
        project_id: int,
        *,
        profile: str | None = None,
        overrides: Mapping[str, str] | None = None,
        pixel_rules: Sequence[Mapping[str, Any]] | None = None,
        ocr_check: bool | None = None,
        audit: PendingAudit | None = None,
    ) -> Project:
        """Replace the settings given (None: unchanged) and bump settings_version."""
        values: dict[str, Any] = {"settings_version": projects.c.settings_version + 1}
        if profile is not None:
            values["profile"] = profile
        if overrides is not None:
            values["overrides"] = dict(overrides)
        if pixel_rules is not None:
            values["pixel_rules"] = [dict(rule) for rule in pixel_rules]
        if ocr_check is not None:
            values["ocr_check"] = ocr_check
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                projects.update()
                .where(projects.c.id == project_id)
                .values(values)
                .returning(*projects.c)
            ).one_or_none()
            if row is None:
                raise UnknownProject(f"no project with id {project_id} in the index")
            if audit is not None:
                _audit.append(connection, audit)
        return _project(row._mapping)

    def rewrap_project_keys(
        self,
        rewrap: Callable[[Project], tuple[bytes, str] | None],
        audit: Callable[[list[str]], PendingAudit | None] | None = None,
    ) -> list[str]:
        """Re-wrap project keys in one transaction; returns the names of the changed projects.

        rewrap(project) returns (wrapped_key, key_id) to store, or None to leave the project
        as it is; audit(changed names) the record to append with the change.
        """
        changed: list[str] = []
        with write_transaction(self._engine) as connection:
            serialise(connection, KEYS_LOCK)
            rows = connection.execute(
                sa.select(projects).order_by(projects.c.id).with_for_update()
            ).all()
            for row in rows:
                project = _project(row._mapping)
                update = rewrap(project)
                if update is None:
                    continue
                wrapped_key, key_id = update
                connection.execute(
                    projects.update()
                    .where(projects.c.id == project.id)
                    .values(wrapped_key=wrapped_key, key_id=key_id)
                )
                changed.append(project.name)
            pending = audit(changed) if audit is not None else None
            if pending is not None:
                _audit.append(connection, pending)
        return changed

    def update_project_dataset(
        self, project_id: int, changes: Mapping[str, Any], audit: PendingAudit | None = None
    ) -> Project:
        """Change the dataset description (title, description, licence, ip_statement,
        data_use, consent_required, open_access) given in `changes`."""
        allowed = {
            "title",
            "description",
            "licence",
            "ip_statement",
            "data_use",
            "consent_required",
            "open_access",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"not a dataset field: {', '.join(sorted(unknown))}")
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                projects.update()
                .where(projects.c.id == project_id)
                .values(dict(changes))
                .returning(*projects.c)
            ).one_or_none()
            if row is None:
                raise UnknownProject(f"no project with id {project_id} in the index")
            if audit is not None:
                _audit.append(connection, audit)
        return _project(row._mapping)

    # Pseudonym vault

    def set_vault_key(
        self,
        project_id: int,
        *,
        public_key: bytes,
        key_id: str,
        broker: str,
        expected_key_id: str | None,
        reseal: Callable[[VaultEntry], bytes] | None = None,
        audit: PendingAudit | None = None,
    ) -> int:
        """Give the project a vault key, re-sealing its entries with reseal(entry) in the
        same transaction; returns how many entries were re-sealed.

        Raises VaultKeyChanged when the project's vault key is not expected_key_id (another
        init or rotation came first), and ValueError when entries exist but reseal is None.
        """
        resealed = 0
        with write_transaction(self._engine) as connection:
            current = connection.execute(
                sa.select(projects.c.vault_key_id)
                .where(projects.c.id == project_id)
                # Ingest holds the row FOR SHARE while it writes entries (see _vault.write).
                .with_for_update()
            ).one_or_none()
            if current is None:
                raise UnknownProject(f"no project with id {project_id} in the index")
            if current.vault_key_id != expected_key_id:
                raise VaultKeyChanged(project_id, expected_key_id, current.vault_key_id)
            rows = connection.execute(_vault.select(project_id)).all()
            if rows and reseal is None:
                raise ValueError(
                    f"project {project_id} has {len(rows)} vault entries; they must be "
                    "re-sealed to the new key"
                )
            for row in rows:
                sealed = reseal(_vault.entry(row._mapping)) if reseal else b""
                connection.execute(
                    vault_entries.update()
                    .where(vault_entries.c.id == row.id)
                    .values(sealed=sealed, key_id=key_id)
                )
                resealed += 1
            connection.execute(
                projects.update()
                .where(projects.c.id == project_id)
                .values(vault_public_key=public_key, vault_key_id=key_id, vault_broker=broker)
            )
            if audit is not None:
                _audit.append(connection, audit)
        return resealed

    def vault_entries(
        self, project_id: int, pseudonyms: Iterable[str] | None = None
    ) -> list[VaultEntry]:
        """The project's sealed entries (of the given pseudonyms only), by pseudonym."""
        with self._engine.connect() as connection:
            return [
                _vault.entry(row._mapping)
                for row in connection.execute(_vault.select(project_id, pseudonyms))
            ]

    def add_vault_entries(self, vault: VaultWrite) -> None:
        """Record entries that are not there yet (e.g. of re-sent instances). Raises
        VaultKeyChanged."""
        with write_transaction(self._engine) as connection:
            _vault.write(connection, vault)

    # Audit trail

    def append_audit(self, pending: PendingAudit) -> AuditRecord:
        with write_transaction(self._engine) as connection:
            return _audit.append(connection, pending)

    def audit_head(self) -> AuditRecord | None:
        """The newest audit record, or None while the trail is empty."""
        with self._engine.connect() as connection:
            return _audit.head(connection)

    def iter_audit(self, after_id: int = 0) -> Iterator[AuditRecord]:
        """The audit records in chain order (id order), streamed."""
        with self._engine.connect() as connection:
            yield from _audit.records(connection, after_id)

    # Instances

    def get_instances(
        self, project_id: int, sop_instance_uids: Iterable[str]
    ) -> dict[str, InstanceRecord]:
        """The instances of the project among sop_instance_uids, by SOP Instance UID."""
        found: dict[str, InstanceRecord] = {}
        uids = list(dict.fromkeys(sop_instance_uids))
        with self._engine.connect() as connection:
            for start in range(0, len(uids), CHUNK):
                rows = connection.execute(
                    _records_select().where(
                        instances.c.project_id == project_id,
                        instances.c.sop_instance_uid.in_(uids[start : start + CHUNK]),
                    )
                )
                for row in rows:
                    found[row.sop_instance_uid] = _record(row._mapping)
        return found

    def add_instances(
        self, records: Sequence[InstanceRecord], vault: VaultWrite | None = None
    ) -> None:
        """Index records, and the vault entries of their identifiers, in one transaction:
        all of them, or none.

        Creates or completes their series and study rows (attributes the existing rows lack
        are added from the records) and updates the counts and ModalitiesInStudy.
        Raises DuplicateInstance, HierarchyConflict, UnknownProject or VaultKeyChanged.
        """
        by_project: dict[int, list[InstanceRecord]] = defaultdict(list)
        for record in records:
            by_project[record.project_id].append(record)
        try:
            with write_transaction(self._engine) as connection:
                for project_id, group in by_project.items():
                    _Writer(connection, project_id).add(group)
                if vault is not None:
                    _vault.write(connection, vault)
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

    def search(
        self, project_id: int, query: QidoQuery, visible_studies: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """QIDO-RS results as DICOM JSON objects (keys in tag order), without RetrieveURL;
        of the visible studies only, when given (a cohort-limited grant)."""
        select = _search.statement(project_id, query, self._dialect, visible_studies)
        with self._engine.connect() as connection:
            rows = [row._mapping for row in connection.execute(select)]
        return _search.results(rows, query)

    def iter_instances(self, project_id: int | None = None) -> Iterator[InstanceRecord]:
        """Every instance of the project, or of every project, streamed (for `radbank
        verify` and RDF rebuilds)."""
        select = _records_select().order_by(instances.c.id)
        if project_id is not None:
            select = select.where(instances.c.project_id == project_id)
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(select)
            for row in result:
                yield _record(row._mapping)

    def count_instances(self, project_id: int) -> int:
        with self._engine.connect() as connection:
            return connection.scalar(
                sa.select(sa.func.count()).where(instances.c.project_id == project_id)
            )

    def project_statistics(self, project_id: int) -> dict[str, Any]:
        """What a dataset description states of the project's holdings: subjects, studies,
        instances, modalities, earliest and latest study date (DICOM DA), dose reports."""
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(
                    sa.func.count(sa.distinct(studies.c.patient_id)),
                    sa.func.count(),
                    sa.func.min(studies.c.study_date),
                    sa.func.max(studies.c.study_date),
                ).where(studies.c.project_id == project_id)
            ).one()
            modalities = sorted(
                m
                for m in connection.scalars(
                    sa.select(series.c.modality).where(series.c.project_id == project_id).distinct()
                )
                if m
            )
            instance_count = connection.scalar(
                sa.select(sa.func.count()).where(instances.c.project_id == project_id)
            )
            reports = connection.scalar(
                sa.select(sa.func.count(sa.distinct(dose_events.c.sop_instance_uid))).where(
                    dose_events.c.project_id == project_id, dose_events.c.source == "report"
                )
            )
        return {
            "subjects": row[0],
            "studies": row[1],
            "instances": instance_count or 0,
            "modalities": modalities,
            "earliest": _study_date(row[2]),
            "latest": _study_date(row[3]),
            "dose_reports": reports or 0,
        }

    def count_patient_studies(self, project_id: int, patient_id: str) -> int:
        """How many studies of the project carry Patient ID `patient_id` (a pseudonym)."""
        with self._engine.connect() as connection:
            return connection.scalar(
                sa.select(sa.func.count()).where(
                    studies.c.project_id == project_id, studies.c.patient_id == patient_id
                )
            )

    # Quarantine

    def add_quarantine(
        self,
        project_id: int,
        *,
        reason: str,
        source: str,
        blob_key: str,
        sop_instance_uid: str | None,
        pseudonym: str | None = None,
        vault: VaultWrite | None = None,
    ) -> bool:
        """Hold a de-identified object for review (with its vault entries, if any). False
        when the project holds the same content already (its blob key is content-addressed):
        a re-sent object is held once, so releasing it cannot leave a copy without a file."""
        with write_transaction(self._engine) as connection:
            require_project(connection, project_id)
            if pseudonym is not None:
                refuse_withdrawn(connection, project_id, {pseudonym})
            if vault is not None:
                _vault.write(connection, vault)
            held = connection.execute(
                sa.select(quarantine.c.id)
                .where(quarantine.c.project_id == project_id, quarantine.c.blob_key == blob_key)
                .limit(1)
            ).first()
            if held is not None:
                return False
            connection.execute(
                quarantine.insert(),
                {
                    "project_id": project_id,
                    "reason": reason,
                    "source": source,
                    "blob_key": blob_key,
                    "sop_instance_uid": sop_instance_uid,
                    "pseudonym": pseudonym,
                    "received_at": stored_time(datetime.now(UTC)),
                },
            )
        return True

    def release_quarantine(
        self, quarantine_id: int, record: InstanceRecord, audit: PendingAudit | None = None
    ) -> None:
        """Index a quarantined object (record, with its blob already stored under
        record.blob_key) and drop its quarantine row, in one transaction. Raises
        DuplicateInstance, HierarchyConflict, SubjectWithdrawn, or LookupError when the row
        is gone (released or erased meanwhile)."""
        with write_transaction(self._engine) as connection:
            removed = connection.execute(
                quarantine.delete().where(
                    quarantine.c.id == quarantine_id,
                    quarantine.c.project_id == record.project_id,
                )
            ).rowcount
            if not removed:
                raise LookupError(f"no quarantined object {quarantine_id} in the project")
            _Writer(connection, record.project_id).add([record])
            if audit is not None:
                _audit.append(connection, audit)

    def list_quarantine(self, project_id: int) -> list[dict[str, Any]]:
        """Quarantined objects of the project, oldest first, as dicts of the table's columns."""
        select = (
            sa.select(quarantine)
            .where(quarantine.c.project_id == project_id)
            .order_by(quarantine.c.received_at, quarantine.c.id)
        )
        with self._engine.connect() as connection:
            return [
                {**row._mapping, "received_at": loaded_time(row.received_at)}
                for row in connection.execute(select)
            ]

    def blob_key_exists(self, blob_key: str) -> bool:
        """Whether an instance, a quarantine entry or a submission part refers to the blob
        (crash recovery)."""
        with self._engine.connect() as connection:
            for table in (instances, quarantine, submission_parts):
                select = sa.select(table.c.id).where(table.c.blob_key == blob_key).limit(1)
                if connection.execute(select).first() is not None:
                    return True
        return False


class _Writer:
    """The statements of add_instances for one project, inside the caller's transaction."""

    def __init__(self, connection: sa.Connection, project_id: int) -> None:
        self.connection = connection
        self.project_id = project_id

    def add(self, records: list[InstanceRecord]) -> None:
        require_project(self.connection, self.project_id)
        refuse_withdrawn(
            self.connection,
            self.project_id,
            {attrs.text(r.attributes, "PatientID") for r in records},
        )
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
                    "received_at": stored_time(r.received_at),
                    "source": r.source,
                    **attrs.instance_columns(r.attributes),
                }
                for r in records
            ],
        )
        self._update_aggregates(sorted(set(study_pks.values())), sorted(set(series_pks.values())))
        offers = [
            DoseOffer(
                study_pks[r.study_instance_uid],
                r.sop_instance_uid,
                attrs.text(r.attributes, "PatientID"),
                attrs.text(r.attributes, "StudyDate"),
                r.dose_rows,
                r.dw_cm,
            )
            for r in records
            if r.dose_rows or r.dw_cm is not None
        ]
        if offers:
            write_dose(self.connection, self.project_id, offers)

    def _reject_duplicates(self, records: list[InstanceRecord]) -> None:
        counts = Counter(r.sop_instance_uid for r in records)
        twice = [uid for uid, count in counts.items() if count > 1]
        if twice:
            raise DuplicateInstance(self.project_id, twice)
        uids = list(counts)
        existing: list[str] = []
        for start in range(0, len(uids), CHUNK):
            existing += self.connection.scalars(
                sa.select(instances.c.sop_instance_uid).where(
                    instances.c.project_id == self.project_id,
                    instances.c.sop_instance_uid.in_(uids[start : start + CHUNK]),
                )
            )
        if existing:
            raise DuplicateInstance(self.project_id, existing)

    def _upsert_studies(self, records: list[InstanceRecord]) -> dict[str, int]:
        offered: dict[str, dict[str, Any]] = {}
        patient_of: dict[str, str] = {}
        for r in records:
            patient = attrs.text(r.attributes, "PatientID")
            if patient:
                known = patient_of.setdefault(r.study_instance_uid, patient)
                if known != patient:
                    raise HierarchyConflict(
                        f"study {r.study_instance_uid} is given for two patients, {known} and "
                        f"{patient} (SOP Instance UID {r.sop_instance_uid}); a study belongs "
                        "to one patient"
                    )
            subset = attrs.level_subset(r.attributes, attrs.STUDY_LEVEL)
            offered[r.study_instance_uid] = attrs.merge_missing(
                offered.get(r.study_instance_uid, {}), [subset]
            )
        rows = self._upsert(studies, studies.c.study_instance_uid, offered, attrs.study_columns)
        if patient_of:
            held = self.connection.execute(
                sa.select(studies.c.study_instance_uid, studies.c.patient_id).where(
                    studies.c.id.in_([rows[uid][0] for uid in patient_of])
                )
            )
            for uid, patient in held:
                if patient and patient != patient_of[uid]:
                    raise HierarchyConflict(
                        f"study {uid} already belongs to patient {patient} in this project, "
                        f"not to {patient_of[uid]}; a study belongs to one "
                        "patient (the sender reused a Study Instance UID, or gave the "
                        "patient another ID or issuer)"
                    )
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
                    "this project; a series belongs to one study"
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
        received_at=loaded_time(row["received_at"]),
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
        created_at=loaded_time(row["created_at"]),
        overrides=dict(row["overrides"]),
        pixel_rules=tuple(row["pixel_rules"]),
        ocr_check=bool(row["ocr_check"]),
        settings_version=row["settings_version"],
        key_id=row["key_id"],
        wrapped_key=_bytes(row["wrapped_key"]),
        vault_public_key=_bytes(row["vault_public_key"]),
        vault_key_id=row["vault_key_id"],
        vault_broker=row["vault_broker"],
        licence=row["licence"],
        ip_statement=row["ip_statement"],
        data_use=tuple(row["data_use"]),
        consent_required=bool(row["consent_required"]),
        open_access=bool(row["open_access"]),
    )


def _bytes(value: bytes | memoryview | None) -> bytes | None:
    return None if value is None else bytes(value)


def _study_date(value: str | None) -> date | None:
    """A DICOM DA (YYYYMMDD) as a date; None when absent or not one."""
    try:
        return datetime.strptime(value or "", "%Y%m%d").date()
    except ValueError:
        return None
