"""Users, personal API tokens, project roles and sign-in failures: the rows, and the
Index methods that read and write them (IdentityMethods, mixed into Index).

Only hashes of secrets reach these tables (argon2id for passwords, SHA-256 for the random
secrets of tokens); the decisions built on them live in governance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from radbank.index._audit import PendingAudit
from radbank.index._audit import append as append_audit
from radbank.index._engine import write_transaction
from radbank.index._rows import loaded_time, optional_time, stored_time
from radbank.index._schema import (
    api_tokens,
    cohorts,
    login_failures,
    project_members,
    projects,
    users,
)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    display_name: str
    source: str
    """"local" (signs in with a password) or "oidc" (an OpenID Connect issuer vouches)."""
    oidc_subject: str | None
    password_hash: str | None
    node_roles: frozenset[str]
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class ApiToken:
    id: int
    token_id: str
    user_id: int
    name: str
    secret_sha256: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class Membership:
    project: str
    user: str
    role: str
    granted_by: str
    granted_at: datetime
    expires_at: datetime | None


FAILURES_FORGOTTEN_AFTER = timedelta(hours=1)


class UserExists(ValueError):
    """create_user with a name already taken."""


def user_of(row: Mapping[str, Any]) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        display_name=row["display_name"],
        source=row["source"],
        oidc_subject=row["oidc_subject"],
        password_hash=row["password_hash"],
        node_roles=frozenset(row["node_roles"]),
        disabled=bool(row["disabled"]),
        created_at=loaded_time(row["created_at"]),
    )


def token_of(row: Mapping[str, Any]) -> ApiToken:
    return ApiToken(
        id=row["id"],
        token_id=row["token_id"],
        user_id=row["user_id"],
        name=row["name"],
        secret_sha256=row["secret_sha256"],
        scopes=frozenset(row["scopes"]),
        created_at=loaded_time(row["created_at"]),
        expires_at=loaded_time(row["expires_at"]),
        revoked_at=optional_time(row["revoked_at"]),
        last_used_at=optional_time(row["last_used_at"]),
    )


def memberships_select() -> sa.Select:
    return (
        sa.select(
            projects.c.name.label("project"),
            users.c.name.label("user"),
            project_members.c.role,
            project_members.c.granted_by,
            project_members.c.granted_at,
            project_members.c.expires_at,
        )
        .join(projects, projects.c.id == project_members.c.project_id)
        .join(users, users.c.id == project_members.c.user_id)
        .order_by(projects.c.name, users.c.name, project_members.c.role)
    )


def membership_of(row: Mapping[str, Any]) -> Membership:
    return Membership(
        project=row["project"],
        user=row["user"],
        role=row["role"],
        granted_by=row["granted_by"],
        granted_at=loaded_time(row["granted_at"]),
        expires_at=optional_time(row["expires_at"]),
    )


@dataclass(frozen=True)
class Access:
    """A user's project roles that have not expired, and where reading is limited to saved
    cohorts: project name -> the studies the user may read there."""

    roles: dict[str, set[str]]
    cohorts: dict[str, frozenset[str]]
    grants: dict[str, int]
    """project name -> the approved access request that gave a role there."""


# Roles that let their holder read a whole project (a researcher role may be cohort-limited).
_READS_WHOLE_PROJECT = frozenset({"steward", "researcher"})


def active_access(connection: sa.Connection, user_id: int, now: datetime) -> Access:
    rows = connection.execute(
        sa.select(
            projects.c.name,
            project_members.c.role,
            cohorts.c.study_uids,
            project_members.c.access_request_id,
        )
        .join(projects, projects.c.id == project_members.c.project_id)
        .outerjoin(cohorts, cohorts.c.id == project_members.c.cohort_id)
        .where(
            project_members.c.user_id == user_id,
            sa.or_(project_members.c.expires_at.is_(None), project_members.c.expires_at > now),
        )
    )
    roles: dict[str, set[str]] = {}
    limited: dict[str, set[str]] = {}
    whole: set[str] = set()
    grants: dict[str, int] = {}
    for name, role, study_uids, request_id in rows:
        roles.setdefault(name, set()).add(role)
        if request_id is not None:
            grants[name] = request_id
        if study_uids is not None:
            limited.setdefault(name, set()).update(study_uids)
        elif role in _READS_WHOLE_PROJECT:
            whole.add(name)
    return Access(
        roles,
        {name: frozenset(uids) for name, uids in limited.items() if name not in whole},
        grants,
    )


def record_failure(
    connection: sa.Connection, keys: Sequence[str], now: datetime, lock_for: Any
) -> None:
    """Count a failed sign-in against each key; lock_for(failures) -> timedelta of lock."""
    for key in keys:
        row = connection.execute(
            sa.select(login_failures.c.failures, login_failures.c.last_failure_at)
            .where(login_failures.c.key == key)
            .with_for_update()
        ).one_or_none()
        # Failures older than FAILURES_FORGOTTEN_AFTER no longer count.
        recent = (
            row is not None and now - loaded_time(row.last_failure_at) < FAILURES_FORGOTTEN_AFTER
        )
        failures = (row.failures if recent else 0) + 1
        values = {
            "failures": failures,
            "last_failure_at": now,
            "locked_until": now + lock_for(failures),
        }
        if row is not None:
            connection.execute(
                login_failures.update().where(login_failures.c.key == key).values(**values)
            )
            continue
        try:
            with connection.begin_nested():
                connection.execute(login_failures.insert().values(key=key, **values))
        except sa.exc.IntegrityError:  # a concurrent first failure of the same key
            connection.execute(
                login_failures.update()
                .where(login_failures.c.key == key)
                .values(failures=login_failures.c.failures + 1, last_failure_at=now)
            )


class IdentityMethods:
    """Index methods for users, tokens, project roles and sign-in failures."""

    _engine: sa.Engine

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
            "created_at": stored_time(datetime.now(UTC)),
        }
        try:
            with write_transaction(self._engine) as connection:
                row = connection.execute(users.insert().values(values).returning(*users.c)).one()
                if audit is not None:
                    append_audit(connection, audit)
        except sa.exc.IntegrityError:
            raise UserExists(f"a user named {name!r} already exists") from None
        return user_of(row._mapping)

    def get_user(self, name: str) -> User | None:
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(users).where(users.c.name == name)).one_or_none()
        return user_of(row._mapping) if row else None

    def get_user_by_id(self, user_id: int) -> User | None:
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(users).where(users.c.id == user_id)).one_or_none()
        return user_of(row._mapping) if row else None

    def list_users(self) -> list[User]:
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(users).order_by(users.c.name))
            return [user_of(row._mapping) for row in rows]

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
                append_audit(connection, audit)
        return user_of(row._mapping)

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
            "created_at": stored_time(datetime.now(UTC)),
            "expires_at": stored_time(expires_at),
        }
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                api_tokens.insert().values(values).returning(*api_tokens.c)
            ).one()
            if audit is not None:
                append_audit(connection, audit)
        return token_of(row._mapping)

    def get_token(self, token_id: str) -> ApiToken | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            ).one_or_none()
        return token_of(row._mapping) if row else None

    def list_tokens(self, user_id: int) -> list[ApiToken]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(api_tokens)
                .where(api_tokens.c.user_id == user_id)
                .order_by(api_tokens.c.created_at, api_tokens.c.id)
            )
            return [token_of(row._mapping) for row in rows]

    def revoke_token(self, token_id: str, audit: PendingAudit | None = None) -> ApiToken | None:
        """Mark the token revoked (kept, for the record); None when there is no such token."""
        with write_transaction(self._engine) as connection:
            row = connection.execute(
                api_tokens.update()
                .where(api_tokens.c.token_id == token_id)
                .values(
                    revoked_at=sa.func.coalesce(
                        api_tokens.c.revoked_at, stored_time(datetime.now(UTC))
                    )
                )
                .returning(*api_tokens.c)
            ).one_or_none()
            if row is not None and audit is not None:
                append_audit(connection, audit)
        return token_of(row._mapping) if row else None

    def touch_token(self, token_id: str, moment: datetime) -> None:
        with write_transaction(self._engine) as connection:
            connection.execute(
                api_tokens.update()
                .where(api_tokens.c.token_id == token_id)
                .values(last_used_at=stored_time(moment))
            )

    def user_roles(self, user_id: int, now: datetime | None = None) -> dict[str, set[str]]:
        """Project name -> the user's roles there that have not expired."""
        return self.user_access(user_id, now).roles

    def user_access(self, user_id: int, now: datetime | None = None) -> Access:
        """The user's unexpired roles, and the cohorts their reading is limited to."""
        with self._engine.connect() as connection:
            return active_access(connection, user_id, stored_time(now or datetime.now(UTC)))

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
                    granted_at=stored_time(datetime.now(UTC)),
                    expires_at=stored_time(expires_at) if expires_at else None,
                    cohort_id=cohort_id,
                )
            )
            if audit is not None:
                append_audit(connection, audit)

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
                append_audit(connection, audit)
        return bool(removed)

    def memberships(
        self, project_id: int | None = None, user_id: int | None = None
    ) -> list[Membership]:
        select = memberships_select()
        if project_id is not None:
            select = select.where(project_members.c.project_id == project_id)
        if user_id is not None:
            select = select.where(project_members.c.user_id == user_id)
        with self._engine.connect() as connection:
            return [membership_of(row._mapping) for row in connection.execute(select)]

    def login_locked_until(self, keys: Sequence[str]) -> datetime | None:
        """The latest lock among the keys ("user:<name>", "address:<ip>"), if any."""
        with self._engine.connect() as connection:
            value = connection.execute(
                sa.select(sa.func.max(login_failures.c.locked_until)).where(
                    login_failures.c.key.in_(list(keys))
                )
            ).scalar()
        return optional_time(value)

    def record_login_failure(
        self, keys: Sequence[str], lock_for: Callable[[int], Any], now: datetime | None = None
    ) -> None:
        with write_transaction(self._engine) as connection:
            record_failure(connection, keys, stored_time(now or datetime.now(UTC)), lock_for)

    def clear_login_failures(self, keys: Sequence[str]) -> None:
        with write_transaction(self._engine) as connection:
            connection.execute(login_failures.delete().where(login_failures.c.key.in_(list(keys))))
