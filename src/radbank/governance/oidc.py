"""OpenID Connect bearer tokens: whether an issuer the node trusts (an institution's Keycloak,
a national research AAI) vouches for the caller, and which radbank roles its claims grant.

    config = OidcConfig(
        issuer="https://login.example.org/realms/research",
        audience="radbank",
        roles_claim="realm_access.roles",
        role_map={"radbank-admin": "admin", "lung-ct-reader": "project:lung-ct:researcher"},
    )
    validator = OidcValidator(config)
    identity = validator.validate(bearer_token)   # InvalidToken, or IssuerUnavailable (503)

This module owns the signature check (only asymmetric algorithms, each bound to the type of
the key it verifies with), the claim checks (exp, nbf, iat, iss, aud, sub) and the issuer's
key set (discovered, fetched lazily, cached, refetched for an unknown key id at most once a
minute). What a user may do with the roles is `policy.can`'s decision; turning an identity
into a node user is `identities`'. A token never appears in a message of this module.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from radbank.governance.policy import NODE_ROLES, PROJECT_ROLES, is_project_name

__all__ = [
    "DEFAULT_ALGORITHMS",
    "InvalidToken",
    "IssuerUnavailable",
    "OidcConfig",
    "OidcIdentity",
    "OidcValidator",
    "looks_like_jwt",
]

DEFAULT_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")

# The asymmetric algorithms this module can verify, with the key type (and curve) each one
# needs. HS* and "none" are absent on purpose: an HMAC "key" is a shared secret, and a node
# that accepted HS256 could be fooled by a token "signed" with the issuer's public key.
_KEY_FOR_ALGORITHM: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "ES256K": ("EC", "secp256k1"),
    "EdDSA": ("OKP", None),
}
_REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
_HTTP_TIMEOUT_S = 5.0
# A discovery document or key set is a few kilobytes; more is a misconfigured or hostile URL.
_MAX_DOCUMENT_BYTES = 1024 * 1024
# An unknown key id may mean the issuer rotated its keys, or that someone sends garbage ids:
# refetch for it at most this often, so garbage cannot make the node hammer the issuer.
_REFETCH_INTERVAL_S = 60.0
# While no key set was ever fetched, every request would otherwise wait up to 5 s on a dead
# issuer; they get the last failure instead until this much time has passed.
_RETRY_UNAVAILABLE_S = 5.0
# Keys are refreshed this often even when every token names a known key, so that a key the
# issuer withdrew (compromised, retired) stops being accepted.
_MAX_KEY_SET_AGE_S = 3600.0
_MIN_RSA_BITS = 2048
# looks_like_jwt decodes the header only; real headers are a few hundred characters.
_MAX_HEADER_CHARS = 8192
_JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_LAST_NUMERIC_DATE = 253402300799  # 9999-12-31T23:59:59Z
_LOOPBACK_NAMES = frozenset({"localhost"})
# The signature only: the claims are checked here, against the injectable clock and with
# messages that say what to do.
_SIGNATURE_ONLY: dict[str, Any] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


class InvalidToken(Exception):
    """A bearer token this node does not accept; the message says why (never the token)."""


class IssuerUnavailable(InvalidToken):
    """The issuer's signing keys cannot be fetched: the node, not the caller, has a problem
    (a server answers 503, not 401)."""


@dataclass(frozen=True)
class OidcConfig:
    """Which issuer the node trusts, for which audience, and how its claims map to roles.

    role_map maps a value of the roles claim to a radbank role: "admin", "auditor" or
    "project:<project-name>:<role>" with role steward, contributor, researcher or
    honest_broker. roles_claim may be a dotted path ("realm_access.roles" in Keycloak).
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    username_claim: str = "preferred_username"
    roles_claim: str = "roles"
    role_map: Mapping[str, str] = field(default_factory=dict)
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS
    leeway_s: float = 30
    max_token_bytes: int = 16384

    def __post_init__(self) -> None:
        _require_url("issuer", self.issuer)
        if self.jwks_url is not None:
            _require_url("jwks_url", self.jwks_url)
        for name in ("audience", "username_claim", "roles_claim"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"OpenID Connect {name} must be a non-empty string")
        algorithms = _checked_algorithms(self.algorithms)
        if not isinstance(self.role_map, Mapping):
            raise ValueError("OpenID Connect role_map must map claim values to radbank roles")
        for value, role in self.role_map.items():
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"OpenID Connect role_map entry {value!r}: the claim value must be a "
                    "non-empty string"
                )
            try:
                _parse_role(role)
            except ValueError as exc:
                raise ValueError(
                    f"OpenID Connect role_map entry {value!r} -> {role!r}: {exc}"
                ) from None
        leeway_s = self.leeway_s
        if (
            isinstance(leeway_s, bool)
            or not isinstance(leeway_s, int | float)
            or not 0 <= leeway_s <= 600
        ):
            raise ValueError(
                f"OpenID Connect leeway_s must be 0 to 600 seconds, not {self.leeway_s!r}"
            )
        max_bytes = self.max_token_bytes
        if (
            isinstance(max_bytes, bool)
            or not isinstance(max_bytes, int)
            or not 1024 <= max_bytes <= 1 << 20
        ):
            raise ValueError(
                "OpenID Connect max_token_bytes must be 1024 to 1048576, "
                f"not {self.max_token_bytes!r}"
            )
        # Frozen all the way down: a caller's later change to its dict must not change trust.
        object.__setattr__(self, "algorithms", algorithms)
        object.__setattr__(self, "role_map", MappingProxyType(dict(self.role_map)))


@dataclass(frozen=True)
class OidcIdentity:
    """Who the issuer says the caller is, and the radbank roles its claims grant."""

    subject: str
    username: str
    issuer: str
    node_roles: frozenset[str]
    project_roles: Mapping[str, frozenset[str]]  # project name -> roles
    expires_at: datetime


@dataclass(frozen=True)
class _SigningKey:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own "alg", when the issuer pins one
    public_key: Any

    def verifies(self, algorithm: str) -> bool:
        kty, crv = _KEY_FOR_ALGORITHM[algorithm]
        if self.kty != kty or (self.alg is not None and self.alg != algorithm):
            return False
        return crv is None or self.crv == crv


@dataclass(frozen=True)
class _KeySet:
    url: str
    keys: tuple[_SigningKey, ...]
    fetched_at: float

    def with_kid(self, kid: str) -> list[_SigningKey]:
        return [key for key in self.keys if key.kid == kid]

    def describe(self) -> str:
        kids = sorted({key.kid for key in self.keys if key.kid is not None})
        return ", ".join(repr(kid) for kid in kids) if kids else "no key ids"


class OidcValidator:
    """Validates bearer tokens of one issuer. Safe to share between threads.

    http: the client to fetch the issuer's documents with (one is made, and closed by
    `close`, when none is given). clock: seconds since 1970, for the token's times and the
    refetch limits.
    """

    def __init__(
        self,
        config: OidcConfig,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._http = http if http is not None else httpx.Client(timeout=_HTTP_TIMEOUT_S)
        self._owns_http = http is None
        self._clock = clock
        self._grants = {value: _parse_role(role) for value, role in config.role_map.items()}
        self._lock = threading.Lock()  # guards the fields below
        self._fetch_lock = threading.Lock()  # one fetch at a time; others wait for its result
        self._jwks_url = config.jwks_url
        self._key_set: _KeySet | None = None
        self._last_attempt: float | None = None
        self._last_failure = ""

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def validate(self, token: str) -> OidcIdentity:
        """The identity a valid token carries; InvalidToken saying why otherwise."""
        header = _read_header(token, self.config.max_token_bytes)
        algorithm = header["alg"]
        if not isinstance(algorithm, str) or algorithm not in self.config.algorithms:
            raise InvalidToken(
                f"algorithm {_shown(algorithm)} not allowed; this node accepts tokens signed "
                f"with {', '.join(self.config.algorithms)}"
            )
        # A verifier must refuse critical extensions it does not understand (RFC 7515 4.1.11);
        # "b64": false would change what the signature covers (RFC 7797).
        for extension in ("crit", "b64"):
            if extension in header:
                raise InvalidToken(
                    f"the token header uses the JWS extension {extension!r}, which this node "
                    "does not support"
                )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken(
                f"the token header's key id (kid) must be a string, not {_json_type(kid)}"
            )
        key = self._signing_key(kid, algorithm)
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                # From the key, never from the token: the key type decides what may verify.
                algorithms=[a for a in self.config.algorithms if key.verifies(a)],
                options=_SIGNATURE_ONLY,
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken(
                f"bad signature: the token was not signed with the issuer's key"
                f"{' ' + _shown(kid) if kid is not None else ''}, or was changed after signing"
            ) from None
        except jwt.DecodeError:
            raise InvalidToken(
                "not a JWT: the payload or signature is not base64url-encoded, or the payload "
                "is not a JSON object"
            ) from None
        except (jwt.PyJWTError, RecursionError):
            raise InvalidToken("not a JWT this node can read: its structure is invalid") from None
        return self._identity(claims)

    # Claims

    def _identity(self, claims: dict[str, Any]) -> OidcIdentity:
        config = self.config
        for name in _REQUIRED_CLAIMS:
            if name not in claims:
                raise InvalidToken(
                    f"missing claim {name!r}: the token must carry exp, iat, iss, aud and sub"
                )
        expires = _numeric_date(claims, "exp")
        issued = _numeric_date(claims, "iat")
        not_before = _numeric_date(claims, "nbf") if "nbf" in claims else None
        if claims["iss"] != config.issuer:
            raise InvalidToken(
                f"issuer mismatch (expected {config.issuer!r}, the token was issued by "
                f"{_shown(claims['iss'])}); check the node's OpenID Connect issuer setting"
            )
        audience = claims["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or config.audience not in audiences:
            raise InvalidToken(
                f"audience mismatch (expected {config.audience!r}, the token is for "
                f"{_shown(audience)}); the issuer must add {config.audience!r} to the token's "
                "audience (in Keycloak: an audience mapper on the client)"
            )
        now = self._clock()
        if now > expires + config.leeway_s:
            raise InvalidToken(f"token expired at {_utc(expires)}; sign in again for a new one")
        if not_before is not None and not_before > now + config.leeway_s:
            raise InvalidToken(
                f"token not valid before {_utc(not_before)}; if it was just issued, the clocks "
                "of the issuer and this node disagree"
            )
        if issued > now + config.leeway_s:
            raise InvalidToken(
                f"token issued in the future (at {_utc(issued)}); the clocks of the issuer and "
                "this node disagree"
            )
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("claim 'sub' must be a non-empty string")
        username = claims.get(config.username_claim)
        if username is None:
            username = subject
        if not isinstance(username, str) or not username:
            raise InvalidToken(f"claim {config.username_claim!r} must be a non-empty string")
        node_roles: set[str] = set()
        project_roles: dict[str, set[str]] = {}
        for value in _claim_values(claims, config.roles_claim):
            grant = self._grants.get(value)
            if grant is None:
                continue  # a claim value the node was not told about grants nothing
            project, role = grant
            if project is None:
                node_roles.add(role)
            else:
                project_roles.setdefault(project, set()).add(role)
        return OidcIdentity(
            subject=subject,
            username=username,
            issuer=config.issuer,
            node_roles=frozenset(node_roles),
            project_roles=MappingProxyType(
                {project: frozenset(roles) for project, roles in project_roles.items()}
            ),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    # Keys

    def _signing_key(self, kid: str | None, algorithm: str) -> _SigningKey:
        key_set = self._current_key_set(kid)
        if kid is None:
            # Without a kid there is no telling which of several keys is meant.
            if len(key_set.keys) != 1:
                raise InvalidToken(
                    f"the token names no signing key id (kid) and the issuer's key set at "
                    f"{key_set.url} holds {len(key_set.keys)} keys; the issuer must set kid"
                )
            candidates = list(key_set.keys)
        else:
            candidates = key_set.with_kid(kid)
            if not candidates:
                raise InvalidToken(
                    f"unknown signing key id {_shown(kid)}: the issuer's key set at {key_set.url} "
                    f"has {key_set.describe()}; if the issuer has just rotated its keys, retry "
                    "in a minute"
                )
        for key in candidates:
            if key.verifies(algorithm):
                return key
        key = candidates[0]
        raise InvalidToken(
            f"algorithm {algorithm!r} does not match the issuer's key {_shown(key.kid)} "
            f"({key.kty}{' ' + key.crv if key.crv else ''}{', ' + key.alg if key.alg else ''})"
        )

    def _current_key_set(self, kid: str | None) -> _KeySet:
        with self._lock:
            key_set = self._key_set
            if key_set is not None and not self._refetch_due(key_set, kid, self._clock()):
                return key_set
        with self._fetch_lock:
            with self._lock:
                now = self._clock()
                key_set = self._key_set
                # Another thread may have fetched while this one waited for the fetch lock.
                if key_set is None:
                    due = self._last_attempt is None or _elapsed(self._last_attempt, now) >= (
                        _RETRY_UNAVAILABLE_S
                    )
                    if not due:
                        raise IssuerUnavailable(self._last_failure)
                elif not self._refetch_due(key_set, kid, now):
                    return key_set
                self._last_attempt = now
            try:
                fetched = self._fetch_key_set(now)
            except IssuerUnavailable as failure:
                with self._lock:
                    self._last_failure = str(failure)
                if key_set is None:
                    raise
                return key_set  # keep the keys held; the issuer may be back on the next try
            with self._lock:
                self._key_set = fetched
            return fetched

    def _refetch_due(self, key_set: _KeySet, kid: str | None, now: float) -> bool:
        """Called with the lock held."""
        stale = _elapsed(key_set.fetched_at, now) >= _MAX_KEY_SET_AGE_S
        unknown = kid is not None and not key_set.with_kid(kid)
        if not (stale or unknown):
            return False
        return (
            self._last_attempt is None or _elapsed(self._last_attempt, now) >= _REFETCH_INTERVAL_S
        )

    def _fetch_key_set(self, now: float) -> _KeySet:
        url = self._jwks_url or self._discover()
        document = self._get_json(url)
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise IssuerUnavailable(
                f"cannot fetch the issuer's signing keys from {url}: the answer is not a JWK set "
                "(a JSON object with a 'keys' list)"
            )
        keys = tuple(key for key in map(_signing_key_of, entries) if key is not None)
        if not keys:
            raise IssuerUnavailable(
                f"cannot fetch the issuer's signing keys from {url}: the key set holds no "
                "signature key this node can use (RSA of 2048 bits or more, EC, Ed25519, Ed448)"
            )
        return _KeySet(url, keys, now)

    def _discover(self) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url)
        if not isinstance(document, dict):
            raise IssuerUnavailable(
                f"cannot fetch the issuer's signing keys from {url}: the discovery document is "
                "not a JSON object"
            )
        # OpenID Connect Discovery 1.0, section 4.3: the document must name the same issuer.
        if document.get("issuer") != self.config.issuer:
            raise IssuerUnavailable(
                f"cannot fetch the issuer's signing keys from {url}: the discovery document "
                f"names the issuer {_shown(document.get('issuer'))}, not "
                f"{self.config.issuer!r}; check the node's OpenID Connect issuer setting"
            )
        jwks_url = document.get("jwks_uri")
        try:
            _require_url("jwks_uri", jwks_url)
        except ValueError as exc:
            raise IssuerUnavailable(
                f"cannot fetch the issuer's signing keys from {url}: {exc}"
            ) from None
        assert isinstance(jwks_url, str)
        with self._lock:
            self._jwks_url = jwks_url
        return jwks_url

    def _get_json(self, url: str) -> Any:
        def unavailable(reason: str) -> IssuerUnavailable:
            return IssuerUnavailable(f"cannot fetch the issuer's signing keys from {url}: {reason}")

        # httpx's timeout bounds each read, not the whole answer: bound that too.
        deadline = time.monotonic() + _HTTP_TIMEOUT_S
        try:
            with self._http.stream(
                "GET",
                url,
                headers={"Accept": "application/json"},
                timeout=_HTTP_TIMEOUT_S,
                # A redirect could lead off https or to another host: keys come from the
                # configured address only.
                follow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise unavailable(
                        f"HTTP {response.status_code} {response.reason_phrase}".strip()
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_DOCUMENT_BYTES:
                        raise unavailable("the answer is larger than 1 MiB")
                    if time.monotonic() > deadline:
                        raise unavailable(f"no complete answer within {_HTTP_TIMEOUT_S:g} s")
        except httpx.TimeoutException:
            raise unavailable(f"no answer within {_HTTP_TIMEOUT_S:g} s") from None
        except httpx.HTTPError as exc:
            raise unavailable(str(exc) or type(exc).__name__) from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise unavailable("the answer is not JSON") from None


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token is shaped like a signed JWT (three base64url segments, the first
    a JSON object naming "alg"), as opposed to one of the node's own opaque API tokens.
    Cheap, and never raises; it says nothing about validity."""
    if not isinstance(token, str) or not _JWS_COMPACT.fullmatch(token):
        return False
    segment = token.split(".", 1)[0]
    if len(segment) > _MAX_HEADER_CHARS:
        return False
    try:
        header = _decode_header(segment)
    except InvalidToken:
        return False
    return isinstance(header.get("alg"), str)


# Helpers


def _read_header(token: str, max_token_bytes: int) -> dict[str, Any]:
    """The token's JOSE header, after the checks that need no key: size first, then shape."""
    if not isinstance(token, str):
        raise InvalidToken("not a JWT: a bearer token is text")
    # A character is at least one byte, so this refuses before anything is decoded.
    if len(token) > max_token_bytes:
        raise InvalidToken(
            f"token too large: {len(token)} characters, this node accepts at most "
            f"{max_token_bytes} bytes"
        )
    if not token.isascii():
        raise InvalidToken("not a JWT: it contains characters other than base64url and '.'")
    segments = token.split(".")
    if len(segments) == 5:
        raise InvalidToken("encrypted tokens (JWE) are not supported: send a signed JWT")
    if len(segments) != 3:
        raise InvalidToken(
            f"not a JWT: expected three base64url segments separated by '.', found {len(segments)}"
        )
    if not _JWS_COMPACT.fullmatch(token):
        raise InvalidToken("not a JWT: a segment is empty or not base64url (A-Z a-z 0-9 - _)")
    header = _decode_header(segments[0])
    if "alg" not in header:
        raise InvalidToken("not a JWT: the header names no algorithm ('alg')")
    return header


def _decode_header(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not a JWT: the header is not valid base64url") from None
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidToken("not a JWT: the header is not JSON") from None
    if not isinstance(header, dict):
        raise InvalidToken("not a JWT: the header is not a JSON object")
    return header


def _signing_key_of(jwk: Any) -> _SigningKey | None:
    """A verification key from one JWK, or None for what must not or cannot verify a
    signature here (encryption keys, shared secrets, unknown types, short RSA keys)."""
    if not isinstance(jwk, dict):
        return None
    kid, alg, crv = jwk.get("kid"), jwk.get("alg"), jwk.get("crv")
    if jwk.get("use", "sig") != "sig":
        return None
    operations = jwk.get("key_ops")
    if operations is not None and (not isinstance(operations, list) or "verify" not in operations):
        return None
    if kid is not None and not isinstance(kid, str):
        return None
    if alg is not None and alg not in _KEY_FOR_ALGORITHM:
        return None
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            key: Any = RSAAlgorithm.from_jwk(jwk)
        elif kty == "EC":
            key = ECAlgorithm.from_jwk(jwk)
        elif kty == "OKP" and crv in ("Ed25519", "Ed448"):
            key = OKPAlgorithm.from_jwk(jwk)
        else:
            return None  # "oct" is a shared secret; it has no place in a public key set
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    # An issuer that published its private half still verifies with the public one.
    if isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < _MIN_RSA_BITS:
        return None
    return _SigningKey(kid, kty, crv if isinstance(crv, str) else None, alg, key)


def _parse_role(role: object) -> tuple[str | None, str]:
    """(None, node role) or (project name, project role); ValueError saying what is wrong."""
    if not isinstance(role, str):
        raise ValueError("a radbank role must be a string")
    if role in NODE_ROLES:
        return None, role
    parts = role.split(":")
    if len(parts) != 3 or parts[0] != "project":
        raise ValueError(
            f"a radbank role is {' or '.join(sorted(NODE_ROLES))} or "
            "'project:<project-name>:<role>'"
        )
    _, project, project_role = parts
    if not is_project_name(project):
        raise ValueError(
            f"invalid project name {project[:80]!r} in the role map: 1-63 lower-case letters, "
            "digits, '-' or '_', starting with a letter or digit"
        )
    if project_role not in PROJECT_ROLES:
        raise ValueError(
            f"unknown project role {project_role!r}; choose one of {', '.join(sorted(PROJECT_ROLES))}"
        )
    return project, project_role


def _checked_algorithms(algorithms: Sequence[str]) -> tuple[str, ...]:
    if isinstance(algorithms, str) or not algorithms:
        raise ValueError("OpenID Connect algorithms must be a non-empty list of algorithm names")
    for algorithm in algorithms:
        name = str(algorithm)
        if name.lower() == "none":
            raise ValueError("OpenID Connect algorithm 'none' is refused: it means unsigned tokens")
        if name.upper().startswith("HS"):
            raise ValueError(
                f"OpenID Connect algorithm {name!r} is refused: HMAC uses a shared secret, and "
                "an issuer's public key must never serve as one"
            )
        if name not in _KEY_FOR_ALGORITHM:
            raise ValueError(
                f"unknown OpenID Connect algorithm {name!r}; choose from "
                f"{', '.join(_KEY_FOR_ALGORITHM)}"
            )
    return tuple(algorithms)


def _require_url(name: str, url: object) -> None:
    """https, or http on the loopback interface: the signing keys decide whom the node trusts,
    so they must not be fetched where anyone on the network could replace them."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"OpenID Connect {name} must be an https URL, not {_shown(url)}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"OpenID Connect {name} {_shown(url)} must use https (plain http only on loopback)"
        )


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """The values of the roles claim: a list of strings or one space-separated string
    (like "scope"); a dotted path walks into objects unless a claim has that very name."""
    if path in claims:
        value = claims[path]
    else:
        value = claims
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return []
            value = value[part]
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise InvalidToken(
        f"claim {path!r} must be a list of strings or a space-separated string, not "
        f"{_json_type(value)}; check the node's OpenID Connect roles_claim setting"
    )


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    # json accepts NaN and Infinity, and every comparison with NaN is false: refuse both.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= _LAST_NUMERIC_DATE
    ):
        raise InvalidToken(
            f"claim {name!r} must be a time in seconds since 1970, not {_shown(value)}"
        )
    return float(value)


def _elapsed(since: float, now: float) -> float:
    # A wall clock set back must not suspend refetching until it catches up again.
    return abs(now - since)


def _utc(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _shown(value: object) -> str:
    """A value from a token or an issuer for a message: quoted, and short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list with non-string items"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
