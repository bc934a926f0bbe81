"""The SQL index: projects (with their de-identification settings and key material), the
study/series/instance hierarchy with QIDO-RS matching columns, quarantine, the pseudonym
vault's sealed entries and the hash-chained audit trail. One schema for SQLite and
PostgreSQL, created by the alembic migrations shipped in index/migrations; nothing outside
this package writes SQL.

    index = Index("sqlite:///data/index.sqlite3")
    project = index.create_project("medirad", key_salt=os.urandom(16))
    index.add_instances(records)
    index.search(project.id, parse_qido("study", [("PatientID", "P1*")]))
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from radbank.dicom.query import QidoQuery
from radbank.index import _attributes as attrs
from radbank.index import _audit, _consent, _identity, _search, _vault
from radbank.index._audit import GENESIS_HASH, AuditRecord, PendingAudit
from radbank.index._consent import AccessRequest, ConsentRecord, Withdrawal
from radbank.index._engine import (
    KEYS_LOCK,
    create_engine,
    lock_subjects,
    migrate,
    serialise,
    write_transaction,
)
from radbank.index._identity import Access, ApiToken, Membership, User, UserExists
from radbank.index._schema import (
    access_requests,
    api_tokens,
    cohorts,
    consents,
    instances,
    login_failures,
    project_members,
    projects,
    quarantine,
    series,
    studies,
    users,
    vault_entries,
    withdrawals,
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
    "DuplicateInstance",
    "HierarchyConflict",
    "SubjectWithdrawn",
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


class SubjectWithdrawn(ValueError):
    """Instances of subjects who withdrew their consent from the project."""

    def __init__(self, pseudonyms: Iterable[str]) -> None:
        self.pseudonyms = sorted(set(pseudonyms))
        super().__init__(
            f"subject {', '.join(self.pseudonyms)} withdrew consent from the project: their "
            "data is not accepted"
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
            "created_at": _stored_time(datetime.now(UTC)),
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

    # Users, tokens, project roles

    def create_user(
        self,
        name: str,
        *,
        source: str,
        display_name: str = "",
        password_hash: str | None = None,
        node_roles: Iterable[str] = (),
        oidc_subject: str | None = None,
        audit: PendingAudit | None = None,
    ) -> User:
        """Raises UserExists (the name, or the OpenID Connect account, has a user)."""
        values = {
            "name": name,
            "display_name": display_name,
            "source": source,
            "oidc_subject": oidc_subject,
            "password_hash": password_hash,
            "node_roles": sorted(node_roles),
            "disabled": False,
            "created_at": _stored_time(datetime.now(UTC)),
        }
        try:
            with write_transaction(self._engine) as connection:
                row = connection.execute(users.insert().values(values).returning(*users.c)).one()
                if audit is not None:
                    _audit.append(connection, audit)
        except sa.exc.IntegrityError:
            raise UserExists(f"a user named {name!r} already exists") from None
        return _identity.user(row._mapping)

    def get_user(self, name: str) -> User | None:
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(users).where(users.c.name == name)).one_or_none()
        return _identity.user(row._mapping) if row else None

    def get_user_by_id(self, user_id: int) -> User | None:
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(users).where(users.c.id == user_id)).one_or_none()
        return _identity.user(row._mapping) if row else None

    def list_users(self) -> list[User]:
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(users).order_by(users.c.name))
            return [_identity.user(row._mapping) for row in rows]

    def update_user(
        self, user_id: int, changes: Mapping[str, Any], audit: PendingAudit | None = None
    ) -> User:
        """Change display_name, password_hash, node_roles or disabled."""
        unknown = set(changes) - {
            "display_name",
            "password_hash",
            "node_roles",
            "disabled",
            "oidc_subject",
        }
        if unknown:
            raise ValueError(f"not a user field: {', '.join(sorted(unknown))}")
        values = dict(changes)
        if "node_roles" in values:
            values["node_roles"] = sorted(values["node_roles"])
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                users.update().where(users.c.id == user_id).values(values).returning(*users.c)
            ).one_or_none()
            if row is None:
                raise LookupError(f"no user with id {user_id}")
            if audit is not None:
                _audit.append(connection, audit)
        return _identity.user(row._mapping)

    def add_token(
        self,
        *,
        user_id: int,
        token_id: str,
        name: str,
        secret_sha256: str,
        scopes: Iterable[str],
        expires_at: datetime,
        audit: PendingAudit | None = None,
    ) -> ApiToken:
        values = {
            "token_id": token_id,
            "user_id": user_id,
            "name": name,
            "secret_sha256": secret_sha256,
            "scopes": sorted(scopes),
            "created_at": _stored_time(datetime.now(UTC)),
            "expires_at": _stored_time(expires_at),
        }
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                api_tokens.insert().values(values).returning(*api_tokens.c)
            ).one()
            if audit is not None:
                _audit.append(connection, audit)
        return _identity.token(row._mapping)

    def get_token(self, token_id: str) -> ApiToken | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            ).one_or_none()
        return _identity.token(row._mapping) if row else None

    def list_tokens(self, user_id: int) -> list[ApiToken]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(api_tokens)
                .where(api_tokens.c.user_id == user_id)
                .order_by(api_tokens.c.created_at, api_tokens.c.id)
            )
            return [_identity.token(row._mapping) for row in rows]

    def revoke_token(self, token_id: str, audit: PendingAudit | None = None) -> ApiToken | None:
        """Mark the token revoked (kept, for the record); None when there is no such token."""
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                api_tokens.update()
                .where(api_tokens.c.token_id == token_id)
                .values(
                    revoked_at=sa.func.coalesce(
                        api_tokens.c.revoked_at, _stored_time(datetime.now(UTC))
                    )
                )
                .returning(*api_tokens.c)
            ).one_or_none()
            if row is not None and audit is not None:
                _audit.append(connection, audit)
        return _identity.token(row._mapping) if row else None

    def touch_token(self, token_id: str, moment: datetime) -> None:
        with write_transaction(self._engine) as connection:
            connection.execute(
                api_tokens.update()
                .where(api_tokens.c.token_id == token_id)
                .values(last_used_at=_stored_time(moment))
            )

    def user_roles(self, user_id: int, now: datetime | None = None) -> dict[str, set[str]]:
        """Project name -> the user's roles there that have not expired."""
        return self.user_access(user_id, now).roles

    def user_access(self, user_id: int, now: datetime | None = None) -> Access:
        """The user's unexpired roles, and the cohorts their reading is limited to."""
        with self._engine.connect() as connection:
            return _identity.active_access(
                connection, user_id, _stored_time(now or datetime.now(UTC))
            )

    def add_cohort(
        self,
        project_id: int,
        *,
        name: str,
        description: str,
        study_uids: Sequence[str],
        created_by: str,
        audit: PendingAudit | None = None,
    ) -> Cohort:
        """Save a named set of the project's studies; ValueError names the studies it does
        not hold, or a name taken."""
        wanted = sorted(set(study_uids))
        with write_transaction(self._engine) as connection:
            _require_project(connection, project_id)
            held = set()
            for start in range(0, len(wanted), _CHUNK):
                held.update(
                    connection.scalars(
                        sa.select(studies.c.study_instance_uid).where(
                            studies.c.project_id == project_id,
                            studies.c.study_instance_uid.in_(wanted[start : start + _CHUNK]),
                        )
                    )
                )
            missing = [uid for uid in wanted if uid not in held]
            if missing:
                raise ValueError(
                    f"the project holds no study {', '.join(missing[:5])}"
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                )
            try:
                with connection.begin_nested():
                    row = connection.execute(
                        cohorts.insert()
                        .values(
                            project_id=project_id,
                            name=name,
                            description=description,
                            study_uids=wanted,
                            created_by=created_by,
                            created_at=_stored_time(datetime.now(UTC)),
                        )
                        .returning(*cohorts.c)
                    ).one()
            except sa.exc.IntegrityError:
                raise ValueError(f"the project has a cohort named {name!r} already") from None
            if audit is not None:
                _audit.append(connection, audit)
        return _cohort(row._mapping)

    def cohorts(self, project_id: int) -> list[Cohort]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(cohorts).where(cohorts.c.project_id == project_id).order_by(cohorts.c.id)
            )
            return [_cohort(row._mapping) for row in rows]

    def grant_role(
        self,
        project_id: int,
        user_id: int,
        role: str,
        *,
        granted_by: str,
        expires_at: datetime | None = None,
        cohort_id: int | None = None,
        audit: PendingAudit | None = None,
    ) -> None:
        """Give the role (replacing an earlier grant of the same role, its expiry and its
        cohort)."""
        with write_transaction(self._engine) as connection:
            connection.execute(
                project_members.delete().where(
                    project_members.c.project_id == project_id,
                    project_members.c.user_id == user_id,
                    project_members.c.role == role,
                )
            )
            connection.execute(
                project_members.insert().values(
                    project_id=project_id,
                    user_id=user_id,
                    role=role,
                    granted_by=granted_by,
                    granted_at=_stored_time(datetime.now(UTC)),
                    expires_at=_stored_time(expires_at) if expires_at else None,
                    cohort_id=cohort_id,
                )
            )
            if audit is not None:
                _audit.append(connection, audit)

    def revoke_role(
        self, project_id: int, user_id: int, role: str, audit: PendingAudit | None = None
    ) -> bool:
        with write_transaction(self._engine) as connection:
            removed = connection.execute(
                project_members.delete().where(
                    project_members.c.project_id == project_id,
                    project_members.c.user_id == user_id,
                    project_members.c.role == role,
                )
            ).rowcount
            if removed and audit is not None:
                _audit.append(connection, audit)
        return bool(removed)

    def memberships(
        self, project_id: int | None = None, user_id: int | None = None
    ) -> list[Membership]:
        select = _identity.memberships_select()
        if project_id is not None:
            select = select.where(project_members.c.project_id == project_id)
        if user_id is not None:
            select = select.where(project_members.c.user_id == user_id)
        with self._engine.connect() as connection:
            return [_identity.membership(row._mapping) for row in connection.execute(select)]

    def login_locked_until(self, keys: Sequence[str]) -> datetime | None:
        """The latest lock among the keys ("user:<name>", "address:<ip>"), if any."""
        with self._engine.connect() as connection:
            value = connection.execute(
                sa.select(sa.func.max(login_failures.c.locked_until)).where(
                    login_failures.c.key.in_(list(keys))
                )
            ).scalar()
        return _identity.time_of(value)

    def record_login_failure(
        self, keys: Sequence[str], lock_for: Callable[[int], Any], now: datetime | None = None
    ) -> None:
        with write_transaction(self._engine) as connection:
            _identity.record_failure(
                connection, keys, _stored_time(now or datetime.now(UTC)), lock_for
            )

    def clear_login_failures(self, keys: Sequence[str]) -> None:
        with write_transaction(self._engine) as connection:
            connection.execute(login_failures.delete().where(login_failures.c.key.in_(list(keys))))

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

    def iter_instances(self) -> Iterator[InstanceRecord]:
        """Every instance of every project, streamed (for `radbank verify`)."""
        select = _records_select().order_by(instances.c.id)
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(select)
            for row in result:
                yield _record(row._mapping)

    def count_patient_studies(self, project_id: int, patient_id: str) -> int:
        """How many studies of the project carry Patient ID `patient_id` (a pseudonym)."""
        with self._engine.connect() as connection:
            return connection.scalar(
                sa.select(sa.func.count()).where(
                    studies.c.project_id == project_id, studies.c.patient_id == patient_id
                )
            )

    # Consent, withdrawal, erasure

    def add_consents(
        self,
        project_id: int,
        records: Sequence[Mapping[str, Any]],
        audit: PendingAudit | None = None,
    ) -> int:
        """Record consent decisions (pseudonym, status, scope, decided_on, form_reference,
        recorded_by), all in one transaction."""
        now = _stored_time(datetime.now(UTC))
        with write_transaction(self._engine) as connection:
            _require_project(connection, project_id)
            if records:
                connection.execute(
                    consents.insert(),
                    [
                        {**dict(record), "project_id": project_id, "recorded_at": now}
                        for record in records
                    ],
                )
            if audit is not None:
                _audit.append(connection, audit)
        return len(records)

    def current_consents(
        self, project_id: int, pseudonyms: Iterable[str] | None = None
    ) -> dict[str, ConsentRecord]:
        """The newest consent decision per subject (of the given pseudonyms only)."""
        with self._engine.connect() as connection:
            return _consent.current_consents(
                connection, project_id, list(pseudonyms) if pseudonyms is not None else None
            )

    def withdrawals(
        self, project_id: int, pseudonyms: Iterable[str] | None = None
    ) -> dict[str, Withdrawal]:
        select = _consent.withdrawals_select(project_id)
        if pseudonyms is not None:
            select = select.where(withdrawals.c.pseudonym.in_(list(pseudonyms)))
        with self._engine.connect() as connection:
            return {
                row.pseudonym: _consent.withdrawal(row._mapping)
                for row in connection.execute(select.order_by(withdrawals.c.id))
            }

    def record_withdrawal(
        self, project_id: int, pseudonym: str, *, by: str, audit: PendingAudit | None = None
    ) -> Withdrawal:
        """The subject's tombstone (kept from the first withdrawal on); from now on uploads
        of the subject are refused."""
        with write_transaction(self._engine) as connection:
            _require_project(connection, project_id)
            lock_subjects(connection, project_id, exclusive=True)
            row = connection.execute(
                _consent.withdrawals_select(project_id).where(withdrawals.c.pseudonym == pseudonym)
            ).one_or_none()
            if row is None:
                row = connection.execute(
                    withdrawals.insert()
                    .values(
                        project_id=project_id,
                        pseudonym=pseudonym,
                        withdrawn_at=_stored_time(datetime.now(UTC)),
                        withdrawn_by=by,
                    )
                    .returning(*withdrawals.c)
                ).one()
                if audit is not None:
                    _audit.append(connection, audit)
        return _consent.withdrawal(row._mapping)

    def subject_blob_keys(self, project_id: int, pseudonym: str) -> list[str]:
        with self._engine.connect() as connection:
            return _consent.subject_blob_keys(connection, project_id, pseudonym)

    def quarantine_without_pseudonym(self, project_id: int) -> list[tuple[int, str]]:
        """(id, blob_key) of quarantined objects stored before quarantine rows named their
        subject."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(quarantine.c.id, quarantine.c.blob_key).where(
                    quarantine.c.project_id == project_id, quarantine.c.pseudonym.is_(None)
                )
            )
            return [(row.id, row.blob_key) for row in rows]

    def set_quarantine_pseudonym(self, quarantine_id: int, pseudonym: str) -> None:
        with write_transaction(self._engine) as connection:
            connection.execute(
                quarantine.update()
                .where(quarantine.c.id == quarantine_id)
                .values(pseudonym=pseudonym)
            )

    def erase_subject(
        self, project_id: int, pseudonym: str, audit: PendingAudit | None = None
    ) -> int:
        """Delete every row of the subject (instances, series, studies, quarantine, vault
        entries, consents) and mark the withdrawal erased; returns the instances deleted."""
        with write_transaction(self._engine) as connection:
            deleted = _consent.delete_subject_rows(connection, project_id, pseudonym)
            connection.execute(
                withdrawals.update()
                .where(withdrawals.c.project_id == project_id, withdrawals.c.pseudonym == pseudonym)
                .values(erased_at=_stored_time(datetime.now(UTC)))
            )
            if audit is not None:
                _audit.append(connection, audit)
        return deleted

    def purge_deleted(self) -> None:
        """Push deleted rows out of the files: SQLite's write-ahead log is checkpointed and
        truncated (secure_delete zeroes the pages); PostgreSQL vacuums the tables."""
        if self._dialect == "sqlite":
            # A reader holding an old snapshot makes the checkpoint stop short ("busy"):
            # try again while readers finish.
            for _ in range(50):
                with self._engine.connect() as connection:
                    busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
                if not busy:
                    return
                time.sleep(0.1)
            raise RuntimeError(
                "the SQLite write-ahead log could not be truncated after an erasure (readers "
                "kept it busy for 5 s); the next start or erasure truncates it"
            )
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(
                "VACUUM studies, series, instances, quarantine, vault_entries, consents, cohorts"
            )

    # Access requests

    def add_access_request(
        self,
        project_id: int,
        *,
        requester: str,
        purposes: Sequence[str],
        attestations: Sequence[str],
        description: str,
        days: int,
        cohort_id: int | None = None,
        audit: PendingAudit | None = None,
    ) -> AccessRequest:
        with write_transaction(self._engine) as connection:
            name = _require_project(connection, project_id)
            row = connection.execute(
                access_requests.insert()
                .values(
                    project_id=project_id,
                    requester=requester,
                    purposes=list(purposes),
                    attestations=list(attestations),
                    description=description,
                    days=days,
                    cohort_id=cohort_id,
                    status="pending",
                    created_at=_stored_time(datetime.now(UTC)),
                )
                .returning(*access_requests.c)
            ).one()
            if audit is not None:
                _audit.append(connection, audit)
        return _consent.access_request(row._mapping, name)

    def access_requests(
        self, project_id: int | None = None, requester: str | None = None
    ) -> list[AccessRequest]:
        select = sa.select(access_requests, projects.c.name.label("project_name")).join(
            projects, projects.c.id == access_requests.c.project_id
        )
        if project_id is not None:
            select = select.where(access_requests.c.project_id == project_id)
        if requester is not None:
            select = select.where(access_requests.c.requester == requester)
        with self._engine.connect() as connection:
            return [
                _consent.access_request(row._mapping, row.project_name)
                for row in connection.execute(select.order_by(access_requests.c.id))
            ]

    def decide_access_request(
        self,
        request_id: int,
        *,
        status: str,
        by: str,
        note: str,
        grant_user_id: int | None = None,
        grant_expires_at: datetime | None = None,
        audit: PendingAudit | None = None,
    ) -> AccessRequest | None:
        """Decide a pending request (None when there is no pending request of that id); an
        approval gives grant_user_id the researcher role until grant_expires_at, in the same
        transaction."""
        now = _stored_time(datetime.now(UTC))
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                access_requests.update()
                .where(access_requests.c.id == request_id, access_requests.c.status == "pending")
                .values(
                    status=status,
                    decided_by=by,
                    decided_at=now,
                    decision_note=note,
                    grant_expires_at=(_stored_time(grant_expires_at) if grant_expires_at else None),
                )
                .returning(*access_requests.c)
            ).one_or_none()
            if row is None:
                return None
            if grant_user_id is not None:
                connection.execute(
                    project_members.delete().where(
                        project_members.c.project_id == row.project_id,
                        project_members.c.user_id == grant_user_id,
                        project_members.c.role == "researcher",
                    )
                )
                connection.execute(
                    project_members.insert().values(
                        project_id=row.project_id,
                        user_id=grant_user_id,
                        role="researcher",
                        granted_by=by,
                        granted_at=now,
                        expires_at=_stored_time(grant_expires_at) if grant_expires_at else None,
                        cohort_id=row.cohort_id,
                        access_request_id=row.id,
                    )
                )
            if audit is not None:
                _audit.append(connection, audit)
            name = connection.scalar(
                sa.select(projects.c.name).where(projects.c.id == row.project_id)
            )
        return _consent.access_request(row._mapping, name)

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
    ) -> None:
        """Hold a de-identified object for review (with its vault entries, if any)."""
        with write_transaction(self._engine) as connection:
            _require_project(connection, project_id)
            if pseudonym is not None:
                _refuse_withdrawn(connection, project_id, {pseudonym})
            if vault is not None:
                _vault.write(connection, vault)
            connection.execute(
                quarantine.insert(),
                {
                    "project_id": project_id,
                    "reason": reason,
                    "source": source,
                    "blob_key": blob_key,
                    "sop_instance_uid": sop_instance_uid,
                    "pseudonym": pseudonym,
                    "received_at": _stored_time(datetime.now(UTC)),
                },
            )

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
        _refuse_withdrawn(
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


def _refuse_withdrawn(
    connection: sa.Connection, project_id: int, pseudonyms: set[str | None]
) -> None:
    """Raise SubjectWithdrawn for subjects with a withdrawal tombstone (taking the subjects
    lock shared, so a withdrawal waits for this transaction or this one sees it)."""
    lock_subjects(connection, project_id, exclusive=False)
    named = [p for p in pseudonyms if p]
    if not named:
        return
    withdrawn = connection.scalars(
        sa.select(withdrawals.c.pseudonym).where(
            withdrawals.c.project_id == project_id, withdrawals.c.pseudonym.in_(named)
        )
    ).all()
    if withdrawn:
        raise SubjectWithdrawn(withdrawn)


def _require_project(connection: sa.Connection, project_id: int) -> str:
    """The project's name; UnknownProject when there is no such project."""
    found = connection.scalar(sa.select(projects.c.name).where(projects.c.id == project_id))
    if found is None:
        raise UnknownProject(f"no project with id {project_id} in the index")
    return found


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


@dataclass(frozen=True)
class Cohort:
    id: int
    name: str
    description: str
    study_uids: tuple[str, ...]
    created_by: str
    created_at: datetime


def _cohort(row: Mapping[str, Any]) -> Cohort:
    return Cohort(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        study_uids=tuple(row["study_uids"]),
        created_by=row["created_by"],
        created_at=_loaded_time(row["created_at"]),
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


def _stored_time(moment: datetime) -> datetime:
    """UTC; a naive datetime is taken to be UTC already (SQLite keeps no offset)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _loaded_time(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
