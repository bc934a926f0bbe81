"""Rows of users, personal API tokens, project roles and sign-in failures.

Only hashes of secrets reach these tables (argon2id for passwords, SHA-256 for the random
secrets of tokens); the decisions built on them live in governance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from radbank.index._schema import cohorts, login_failures, project_members, projects, users


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


def time_of(value: datetime | None) -> datetime | None:
    """UTC-aware; SQLite gives naive datetimes back."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def user(row: Mapping[str, Any]) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        display_name=row["display_name"],
        source=row["source"],
        oidc_subject=row["oidc_subject"],
        password_hash=row["password_hash"],
        node_roles=frozenset(row["node_roles"]),
        disabled=bool(row["disabled"]),
        created_at=time_of(row["created_at"]),  # type: ignore[arg-type]
    )


def token(row: Mapping[str, Any]) -> ApiToken:
    return ApiToken(
        id=row["id"],
        token_id=row["token_id"],
        user_id=row["user_id"],
        name=row["name"],
        secret_sha256=row["secret_sha256"],
        scopes=frozenset(row["scopes"]),
        created_at=time_of(row["created_at"]),  # type: ignore[arg-type]
        expires_at=time_of(row["expires_at"]),  # type: ignore[arg-type]
        revoked_at=time_of(row["revoked_at"]),
        last_used_at=time_of(row["last_used_at"]),
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


def membership(row: Mapping[str, Any]) -> Membership:
    return Membership(
        project=row["project"],
        user=row["user"],
        role=row["role"],
        granted_by=row["granted_by"],
        granted_at=time_of(row["granted_at"]),  # type: ignore[arg-type]
        expires_at=time_of(row["expires_at"]),
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
        recent = row is not None and now - time_of(row.last_failure_at) < FAILURES_FORGOTTEN_AFTER
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
