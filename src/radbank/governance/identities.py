"""Who a caller is: local users (argon2id passwords), personal API tokens, OpenID Connect
bearer tokens, and the throttling of failed sign-ins.

    identities = Identities(index, trail, oidc=None)
    user = identities.create_user("ana", password="...", actor="admin", source="local")
    secret, token = identities.issue_token(user, name="laptop", actor="ana", source="10.0.0.5")
    principal = identities.principal_for_token(secret)      # InvalidCredentials if not

Token secrets are shown once and kept only as SHA-256 (they are 256 random bits, so a fast
hash cannot be reversed by guessing; passwords, chosen by people, get argon2id). Secrets,
passwords and bearer tokens never appear in a message, a log line or the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from radbank.governance.audit import AuditTrail, Outcome
from radbank.governance.policy import NODE_ROLES, PROJECT_ROLES, SCOPES, Principal
from radbank.index import ApiToken, Index, User, UserExists

if TYPE_CHECKING:  # imported lazily: only nodes configured for OpenID Connect need it
    from radbank.governance.oidc import OidcIdentity, OidcValidator

__all__ = [
    "DEFAULT_TOKEN_DAYS",
    "MAX_TOKEN_DAYS",
    "CannotVerify",
    "Identities",
    "InvalidCredentials",
    "InvalidIdentity",
    "SignInRefused",
    "UserExists",
]

DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 365
MIN_PASSWORD_CHARS = 12
# argon2 hashes whatever it is given; a megabyte "password" would be a cheap way to load the CPU.
MAX_PASSWORD_BYTES = 1024
# After this many failures in a row a user name (or a client address) is locked, for
# 2, 4, 8 ... seconds per further failure, at most 15 minutes.
USER_FAILURES_ALLOWED = 5
ADDRESS_FAILURES_ALLOWED = 20
MAX_LOCK = timedelta(minutes=15)
# last_used_at is written at most this often per token, not on every request.
_TOUCH_EVERY = timedelta(minutes=5)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_TOKEN = re.compile(r"rbk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters of argon2-cffi
# Verified against for unknown user names, so that they take as long as known ones.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class InvalidIdentity(ValueError):
    """A user name, password, role or scope that cannot be accepted; the message says why."""


class InvalidCredentials(Exception):
    """A token or password that does not identify anyone (the message never repeats it)."""


class CannotVerify(InvalidCredentials):
    """The token may be good but cannot be checked now (the OpenID Connect issuer's keys
    cannot be fetched): the caller should retry later."""


class SignInRefused(InvalidCredentials):
    """Too many failed sign-ins: retry_after seconds until the next attempt is considered."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class IssuedToken:
    secret: str
    """The bearer token, shown once."""
    token: ApiToken


def validate_user_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidIdentity(
            f"invalid user name {name[:80]!r}: 1 to 128 characters, letters, digits and "
            "._@+- , starting with a letter or digit"
        )
    return name


def validate_node_roles(roles: Iterable[str]) -> frozenset[str]:
    roles = frozenset(roles)
    unknown = roles - NODE_ROLES
    if unknown:
        raise InvalidIdentity(
            f"unknown node role {sorted(unknown)[0]!r}; node roles are "
            f"{', '.join(sorted(NODE_ROLES))} (project roles are given per project)"
        )
    return roles


def validate_project_role(role: str) -> str:
    if role not in PROJECT_ROLES:
        raise InvalidIdentity(
            f"unknown project role {role[:40]!r}; project roles are "
            f"{', '.join(sorted(PROJECT_ROLES))}"
        )
    return role


def validate_scopes(scopes: Iterable[str] | None) -> frozenset[str]:
    chosen = frozenset(SCOPES) if scopes is None else frozenset(scopes)
    unknown = chosen - set(SCOPES)
    if unknown or not chosen:
        raise InvalidIdentity(
            f"token scopes must be some of {', '.join(SCOPES)}"
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
        )
    return chosen


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidIdentity(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidIdentity(f"a password may have at most {MAX_PASSWORD_BYTES} bytes")


def _lock_for(failures: int, allowed: int) -> timedelta:
    if failures < allowed:
        return timedelta(0)
    return min(MAX_LOCK, timedelta(seconds=2 ** min(failures - allowed + 1, 20)))


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Identities:
    """Users, tokens and sign-in of one node; every change is audited."""

    def __init__(self, index: Index, trail: AuditTrail, oidc: OidcValidator | None = None) -> None:
        self.index = index
        self.trail = trail
        self.oidc = oidc

    # Users

    def create_user(
        self,
        name: str,
        *,
        actor: str,
        source: str,
        password: str | None = None,
        display_name: str = "",
        node_roles: Iterable[str] = (),
    ) -> User:
        """A local user (with a password to sign in, or only tokens issued for them)."""
        validate_user_name(name)
        roles = validate_node_roles(node_roles)
        if password is not None:
            _check_password(password)
        return self.index.create_user(
            name,
            source="local",
            display_name=display_name[:200],
            password_hash=_hasher.hash(password) if password is not None else None,
            node_roles=roles,
            audit=self.trail.event(
                "user.create",
                actor=actor,
                resource="node",
                detail={"user": name, "node_roles": sorted(roles)},
                source=source,
            ),
        )

    def require_user(self, name: str) -> User:
        found = self.index.get_user(name)
        if found is None:
            raise LookupError(f"no user named {name[:80]!r}")
        return found

    def set_password(self, name: str, password: str, *, actor: str, source: str) -> User:
        _check_password(password)
        user = self.require_user(name)
        if user.source != "local":
            raise InvalidIdentity(f"{name!r} signs in through OpenID Connect; it has no password")
        return self.index.update_user(
            user.id,
            {"password_hash": _hasher.hash(password)},
            self.trail.event(
                "user.password", actor=actor, resource="node", detail={"user": name}, source=source
            ),
        )

    def set_node_roles(self, name: str, roles: Iterable[str], *, actor: str, source: str) -> User:
        chosen = validate_node_roles(roles)
        user = self.require_user(name)
        return self.index.update_user(
            user.id,
            {"node_roles": chosen},
            self.trail.event(
                "user.roles",
                actor=actor,
                resource="node",
                detail={"user": name, "node_roles": sorted(chosen)},
                source=source,
            ),
        )

    def set_disabled(self, name: str, disabled: bool, *, actor: str, source: str) -> User:
        """A disabled user's tokens and sign-in stop working at once."""
        user = self.require_user(name)
        return self.index.update_user(
            user.id,
            {"disabled": disabled},
            self.trail.event(
                "user.disable" if disabled else "user.enable",
                actor=actor,
                resource="node",
                detail={"user": name},
                source=source,
            ),
        )

    # Tokens

    def issue_token(
        self,
        user: User,
        *,
        name: str,
        actor: str,
        source: str,
        scopes: Iterable[str] | None = None,
        days: int = DEFAULT_TOKEN_DAYS,
    ) -> IssuedToken:
        if not 1 <= days <= MAX_TOKEN_DAYS:
            raise InvalidIdentity(f"a token lives 1 to {MAX_TOKEN_DAYS} days, not {days}")
        name = name.strip()[:100] or "token"
        chosen = validate_scopes(scopes)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        token = self.index.add_token(
            user_id=user.id,
            token_id=token_id,
            name=name,
            secret_sha256=_sha256(secret),
            scopes=chosen,
            expires_at=datetime.now(UTC) + timedelta(days=days),
            audit=self.trail.event(
                "token.issue",
                actor=actor,
                resource="node",
                detail={
                    "user": user.name,
                    "token": token_id,
                    "scopes": sorted(chosen),
                    "days": days,
                },
                source=source,
            ),
        )
        return IssuedToken(f"rbk_{token_id}_{secret}", token)

    def revoke_token(self, token_id: str, *, actor: str, source: str) -> ApiToken:
        token = self.index.get_token(token_id)
        if token is None:
            raise LookupError(f"no token with id {token_id[:40]!r}")
        owner = self.index.get_user_by_id(token.user_id)
        revoked = self.index.revoke_token(
            token_id,
            self.trail.event(
                "token.revoke",
                actor=actor,
                resource="node",
                detail={"user": owner.name if owner else "", "token": token_id},
                source=source,
            ),
        )
        assert revoked is not None
        return revoked

    @staticmethod
    def token_id_of(secret: str) -> str | None:
        """The public id inside a personal token (for audit and revocation), else None."""
        match = _TOKEN.fullmatch(secret)
        return match.group(1) if match else None

    # Recognising callers

    def principal_for_token(self, secret: str) -> Principal:
        """The caller holding a personal API token, or an OpenID Connect bearer token."""
        match = _TOKEN.fullmatch(secret)
        if match is not None:
            return self._api_token_principal(match.group(1), match.group(2))
        if self.oidc is not None:
            from radbank.governance.oidc import InvalidToken, IssuerUnavailable, looks_like_jwt

            if looks_like_jwt(secret):
                try:
                    identity = self.oidc.validate(secret)
                except IssuerUnavailable as exc:
                    raise CannotVerify(f"OpenID Connect token not checked: {exc}") from exc
                except InvalidToken as exc:
                    raise InvalidCredentials(f"OpenID Connect token refused: {exc}") from exc
                return self._oidc_principal(identity)
        raise InvalidCredentials("invalid or expired token")

    def _api_token_principal(self, token_id: str, secret: str) -> Principal:
        token = self.index.get_token(token_id)
        if token is None or not hmac.compare_digest(token.secret_sha256, _sha256(secret)):
            raise InvalidCredentials("invalid or expired token")
        now = datetime.now(UTC)
        if token.revoked_at is not None:
            raise InvalidCredentials(f"token {token_id} was revoked")
        if token.expires_at <= now:
            raise InvalidCredentials(
                f"token {token_id} expired on {token.expires_at:%Y-%m-%d}; issue a new one"
            )
        user = self.index.get_user_by_id(token.user_id)
        if user is None or user.disabled:
            raise InvalidCredentials(f"the user of token {token_id} is disabled")
        if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
            self.index.touch_token(token_id, now)
        return self.principal_for_user(user, scopes=token.scopes, via="api-token")

    def principal_for_user(
        self, user: User, *, scopes: frozenset[str] | None = None, via: str = ""
    ) -> Principal:
        access = self.index.user_access(user.id)
        return Principal(
            user.name,
            node_roles=user.node_roles,
            project_roles={project: frozenset(r) for project, r in access.roles.items()},
            scopes=scopes,
            cohorts=access.cohorts,
            grants=access.grants,
            via=via,
        )

    def _oidc_principal(self, identity: OidcIdentity) -> Principal:
        name = identity.username
        if not _NAME.fullmatch(name):
            raise InvalidCredentials(
                f"the OpenID Connect user name {name[:80]!r} cannot be a radbank user name "
                "(letters, digits and ._@+- only); configure another username claim"
            )
        account = f"{identity.issuer}#{identity.subject}"
        user = self.index.get_user(name)
        if user is None:
            try:
                user = self.index.create_user(
                    name,
                    source="oidc",
                    oidc_subject=account,
                    audit=self.trail.event(
                        "user.create",
                        actor=name,
                        resource="node",
                        detail={"user": name, "source": "oidc", "issuer": identity.issuer},
                        source="oidc",
                    ),
                )
            except UserExists:  # another request of the same user came first
                user = self.require_user(name)
        if user.source != "oidc":
            raise InvalidCredentials(
                f"the OpenID Connect user {name!r} has the name of a local user of this node; "
                "an administrator must rename one of them"
            )
        if user.oidc_subject != account:
            raise InvalidCredentials(
                f"the user name {name!r} belongs to another account of the issuer (subject "
                "differs); the issuer reused or changed a user name: an administrator must "
                "resolve it"
            )
        if user.disabled:
            raise InvalidCredentials(f"user {name!r} is disabled on this node")
        access = self.index.user_access(user.id)
        local = access.roles
        projects = set(local) | set(identity.project_roles)
        return Principal(
            name,
            node_roles=user.node_roles | identity.node_roles,
            project_roles={
                p: frozenset(local.get(p, set())) | identity.project_roles.get(p, frozenset())
                for p in projects
            },
            # A whole-project role from the issuer lifts a local cohort limit.
            cohorts={
                p: studies
                for p, studies in access.cohorts.items()
                if not identity.project_roles.get(p, frozenset()) & {"steward", "researcher"}
            },
            grants=access.grants,
            via="oidc",
        )

    # Signing in with a password

    def sign_in(self, name: str, password: str, *, address: str) -> User:
        """The user, when the password is right and neither the name nor the address is
        locked by earlier failures. Every attempt is audited; the password never is."""
        keys = [f"user:{name[:128]}", f"address:{address}"]
        now = datetime.now(UTC)
        locked = self.index.login_locked_until(keys)
        if locked is not None and locked > now:
            wait = max(1, int((locked - now).total_seconds() + 0.999))
            self.trail.record(
                "auth.sign-in",
                actor=name[:128],
                resource="node",
                detail={"reason": "throttled"},
                source=address,
                outcome=Outcome.DENIED,
            )
            raise SignInRefused(
                f"too many failed sign-ins; try again in {wait} s", retry_after=wait
            )
        user = self.index.get_user(name) if _NAME.fullmatch(name) else None
        good = False
        try:
            good = _hasher.verify(
                user.password_hash if user is not None and user.password_hash else _DUMMY_HASH,
                password.encode()[:MAX_PASSWORD_BYTES],
            )
        except (VerificationError, InvalidHashError):
            good = False
        if not good or user is None or user.password_hash is None or user.disabled:
            self.index.record_login_failure(
                keys[:1], lambda n: _lock_for(n, USER_FAILURES_ALLOWED), now
            )
            self.index.record_login_failure(
                keys[1:], lambda n: _lock_for(n, ADDRESS_FAILURES_ALLOWED), now
            )
            self.trail.record(
                "auth.sign-in",
                actor=name[:128],
                resource="node",
                detail={
                    "reason": "disabled"
                    if user is not None and user.disabled and good
                    else "bad credentials"
                },
                source=address,
                outcome=Outcome.DENIED,
            )
            raise InvalidCredentials("unknown user name or wrong password")
        self.index.clear_login_failures(keys[:1])
        if _hasher.check_needs_rehash(user.password_hash):
            self.index.update_user(user.id, {"password_hash": _hasher.hash(password)})
        self.trail.record("auth.sign-in", actor=name, resource="node", source=address)
        return user
