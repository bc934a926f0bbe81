"""OpenID Connect bearer tokens against a real issuer on loopback: discovery and a JWK set
served over HTTP, tokens signed with real RSA and EC keys, every refusal an InvalidToken whose
message says what was wrong and never repeats the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oidc_issuer import Issuer, Keys, make_keys

from radbank.governance.oidc import (
    InvalidToken,
    IssuerUnavailable,
    OidcConfig,
    OidcIdentity,
    OidcValidator,
    looks_like_jwt,
)

NOW = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
AUDIENCE = "radbank"
ROLE_MAP = {
    "radbank-admin": "admin",
    "radbank-audit": "auditor",
    "lung-ct-steward": "project:lung-ct:steward",
    "lung-ct-reader": "project:lung-ct:researcher",
    "brain-mr-broker": "project:brain-mr:honest_broker",
}


@pytest.fixture(scope="session")
def keys() -> Keys:
    return make_keys()


class Clock:
    """The validator's injectable clock, moved by the test: the rules under test span a
    minute and an hour, which a fast suite cannot wait for."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer(keys: Keys) -> Iterator[Issuer]:
    running = Issuer()
    running.keys = [keys.rsa.jwk(), keys.ec.jwk()]
    yield running
    running.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


MakeValidator = Callable[..., OidcValidator]


@pytest.fixture
def make_validator(clock: Clock) -> Iterator[MakeValidator]:
    """Validators on the test's clock, with ROLE_MAP and the given settings; closed after."""
    made: list[OidcValidator] = []

    def make(issuer_url: str, **config: Any) -> OidcValidator:
        config = {"role_map": ROLE_MAP, **config}
        made.append(OidcValidator(OidcConfig(issuer_url, AUDIENCE, **config), clock=clock))
        return made[-1]

    yield make
    for validator in made:
        validator.close()


@pytest.fixture
def validator(issuer: Issuer, make_validator: MakeValidator) -> OidcValidator:
    return make_validator(issuer.url)


def claims(issuer: Issuer, **changes: Any) -> dict[str, Any]:
    """An access token's claims as Keycloak writes them; a change to None drops the claim."""
    base: dict[str, Any] = {
        "iss": issuer.url,
        "aud": AUDIENCE,
        "sub": "5f0c1e6a-7d2b-4c1e-9a51-0d3c2b7e8f10",
        "preferred_username": "ana",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "roles": ["lung-ct-reader"],
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def refused(validator: OidcValidator, token: str) -> str:
    """The message of the InvalidToken the token gets, checked not to repeat the token."""
    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)
    message = str(caught.value)
    for segment in [token, *token.split(".")]:
        assert len(segment) < 8 or segment not in message
    return message


def b64(data: bytes | str | dict[str, Any] | list[Any]) -> str:
    if isinstance(data, dict | list):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def utc(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M:%S} UTC"


# A valid token and the roles it grants


def test_valid_token_gives_the_user_and_the_roles_of_the_role_map(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    roles = [
        "radbank-admin",
        "lung-ct-steward",
        "lung-ct-reader",
        "brain-mr-broker",
        "offline_access",
    ]
    token = keys.rsa.sign(claims(issuer, roles=roles))

    identity = validator.validate(token)

    assert identity == OidcIdentity(
        subject="5f0c1e6a-7d2b-4c1e-9a51-0d3c2b7e8f10",
        username="ana",
        issuer=issuer.url,
        node_roles=frozenset({"admin"}),
        project_roles={
            "lung-ct": frozenset({"steward", "researcher"}),
            "brain-mr": frozenset({"honest_broker"}),
        },
        expires_at=datetime.fromtimestamp(NOW + 300, UTC),
    )
    # The key set was discovered once and is cached for the next token.
    validator.validate(keys.rsa.sign(claims(issuer, sub="other", preferred_username="ben")))
    assert issuer.requests == {"discovery": 1, "jwks": 1}


def test_keycloak_realm_roles_nested_claim_and_an_ec_key(
    issuer: Issuer, keys: Keys, make_validator: MakeValidator
) -> None:
    validator = make_validator(issuer.url, roles_claim="realm_access.roles")
    token = keys.ec.sign(
        claims(
            issuer,
            roles=None,
            realm_access={"roles": ["radbank-audit", "lung-ct-reader", "default-roles-research"]},
            resource_access={"account": {"roles": ["manage-account"]}},
        )
    )

    identity = validator.validate(token)

    assert identity.node_roles == {"auditor"}
    assert identity.project_roles == {"lung-ct": {"researcher"}}


def test_space_separated_string_claim_like_scope(
    issuer: Issuer, keys: Keys, make_validator: MakeValidator
) -> None:
    validator = make_validator(issuer.url, roles_claim="scope")
    token = keys.rsa.sign(claims(issuer, roles=None, scope="openid profile lung-ct-steward email"))

    identity = validator.validate(token)

    assert identity.node_roles == frozenset()
    assert identity.project_roles == {"lung-ct": {"steward"}}


def test_username_falls_back_to_the_subject(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    identity = validator.validate(keys.rsa.sign(claims(issuer, preferred_username=None)))

    assert identity.username == identity.subject == "5f0c1e6a-7d2b-4c1e-9a51-0d3c2b7e8f10"


@pytest.mark.parametrize(
    "roles",
    [["offline_access", "uma_authorization", "Radbank-Admin", "radbank-admin "], [], None],
    ids=["unmapped", "empty", "absent"],
)
def test_claim_values_outside_the_role_map_grant_nothing(
    issuer: Issuer, keys: Keys, validator: OidcValidator, roles: list[str] | None
) -> None:
    identity = validator.validate(keys.rsa.sign(claims(issuer, roles=roles)))

    assert identity.username == "ana"
    assert identity.node_roles == frozenset()
    assert identity.project_roles == {}


def test_a_roles_claim_of_another_shape_is_refused_naming_the_claim(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    message = refused(validator, keys.rsa.sign(claims(issuer, roles={"radbank-admin": True})))

    assert "claim 'roles' must be a list of strings or a space-separated string" in message


# Times, audience, issuer


def test_expired_token_refused_beyond_the_leeway_only(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    expired = int(NOW) - 31
    message = refused(validator, keys.rsa.sign(claims(issuer, iat=expired - 300, exp=expired)))
    assert message.startswith(f"token expired at {utc(expired)}")

    within_leeway = claims(issuer, iat=int(NOW) - 300, exp=int(NOW) - 29)
    assert validator.validate(keys.rsa.sign(within_leeway)).username == "ana"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"nbf": int(NOW) + 31}, f"token not valid before {utc(NOW + 31)}"),
        ({"iat": int(NOW) + 31}, f"token issued in the future (at {utc(NOW + 31)})"),
    ],
    ids=["nbf", "iat"],
)
def test_token_from_the_future_refused_beyond_the_leeway(
    issuer: Issuer,
    keys: Keys,
    validator: OidcValidator,
    changes: dict[str, int],
    expected: str,
) -> None:
    assert refused(validator, keys.rsa.sign(claims(issuer, **changes))).startswith(expected)

    almost_now = {name: int(NOW) + 29 for name in changes}
    assert validator.validate(keys.rsa.sign(claims(issuer, **almost_now))).username == "ana"


def test_wrong_audience_refused_and_a_list_naming_ours_accepted(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    message = refused(validator, keys.rsa.sign(claims(issuer, aud="account")))
    assert message.startswith("audience mismatch (expected 'radbank', the token is for 'account')")

    identity = validator.validate(keys.rsa.sign(claims(issuer, aud=["account", AUDIENCE])))
    assert identity.username == "ana"


def test_wrong_issuer_refused(issuer: Issuer, keys: Keys, validator: OidcValidator) -> None:
    other = "https://login.example.org/realms/radbank"

    message = refused(validator, keys.rsa.sign(claims(issuer, iss=other)))

    assert message.startswith(f"issuer mismatch (expected {issuer.url!r}")
    assert repr(other) in message


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub"])
def test_token_lacking_a_required_claim_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator, missing: str
) -> None:
    message = refused(validator, keys.rsa.sign(claims(issuer, **{missing: None})))

    assert message.startswith(f"missing claim {missing!r}")


def test_a_time_claim_that_is_no_time_is_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    # Python's json reads NaN; every comparison with it is false, so it must not pass as exp.
    token = keys.rsa.sign(claims(issuer, exp=float("nan")))

    assert refused(validator, token).startswith("claim 'exp' must be a time in seconds since 1970")


# Signatures and algorithms


def test_token_signed_by_another_key_with_the_same_kid_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    message = refused(validator, keys.impostor.sign(claims(issuer, roles=["radbank-admin"])))

    assert message.startswith("bad signature")


def test_claims_changed_after_signing_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    header, _, signature = keys.rsa.sign(claims(issuer)).split(".")
    forged = f"{header}.{b64(claims(issuer, roles=['radbank-admin']))}.{signature}"

    assert refused(validator, forged).startswith("bad signature")


def test_unsigned_token_with_alg_none_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'rsa-1'})}.{b64(claims(issuer))}."

    assert refused(validator, token).startswith("algorithm 'none' not allowed")


def test_hs256_token_keyed_with_the_issuers_public_key_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    # The classic algorithm confusion: the public key is public, so anyone can "sign" with it.
    public_pem = keys.rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}."
        f"{b64(claims(issuer, roles=['radbank-admin']))}"
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"

    assert refused(validator, token).startswith("algorithm 'HS256' not allowed")


@pytest.mark.parametrize(
    ("signer", "alg", "kid"),
    [("ec", "ES256", "rsa-1"), ("rsa", "RS256", "ec-1"), ("rsa", "PS256", "rsa-1")],
    ids=["EC-alg-on-RSA-key", "RSA-alg-on-EC-key", "alg-other-than-the-keys-own"],
)
def test_algorithm_that_does_not_fit_the_named_key_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator, signer: str, alg: str, kid: str
) -> None:
    token = getattr(keys, signer).sign(claims(issuer), kid=kid, alg=alg)

    assert refused(validator, token).startswith(
        f"algorithm {alg!r} does not match the issuer's key"
    )


def test_token_without_kid_accepted_only_when_the_issuer_has_one_signing_key(
    issuer: Issuer, keys: Keys, make_validator: MakeValidator
) -> None:
    # Keycloak publishes an encryption key next to its signing key; it does not count.
    issuer.keys = [keys.rsa.jwk(), keys.rotated.jwk(use="enc", alg="RSA-OAEP")]
    token = keys.rsa.sign(claims(issuer), kid=None)
    assert make_validator(issuer.url).validate(token).username == "ana"

    issuer.keys = [keys.rsa.jwk(), keys.ec.jwk()]
    message = refused(make_validator(issuer.url), token)
    assert message.startswith("the token names no signing key id (kid)")


# The issuer's keys: refetching, rotation, outages


def test_unknown_kid_refused_and_the_key_set_refetched_at_most_once_a_minute(
    issuer: Issuer, keys: Keys, clock: Clock, validator: OidcValidator
) -> None:
    def garbage(n: int) -> str:
        return keys.rsa.sign(claims(issuer, exp=int(NOW) + 3000), kid=f"garbage-{n}")

    message = refused(validator, garbage(0))
    assert message.startswith("unknown signing key id 'garbage-0'")
    assert "'ec-1', 'rsa-1'" in message
    for n in range(1, 20):
        refused(validator, garbage(n))
    assert issuer.requests["jwks"] == 1

    clock.now += 61
    for n in range(20, 40):
        refused(validator, garbage(n))
    assert issuer.requests["jwks"] == 2

    clock.now += 30
    refused(validator, garbage(40))
    assert issuer.requests["jwks"] == 2
    clock.now += 31
    refused(validator, garbage(41))
    assert issuer.requests == {"discovery": 1, "jwks": 3}


def test_key_rotation_accepted_after_the_refetch(
    issuer: Issuer, keys: Keys, clock: Clock, validator: OidcValidator
) -> None:
    assert validator.validate(keys.rsa.sign(claims(issuer))).username == "ana"
    issuer.keys = [keys.rsa.jwk(), keys.rotated.jwk()]
    token = keys.rotated.sign(claims(issuer, exp=int(NOW) + 300))

    clock.now += 10  # within a minute of the last fetch: not refetched yet
    assert "retry in a minute" in refused(validator, token)
    clock.now += 51
    assert validator.validate(token).username == "ana"
    assert issuer.requests["jwks"] == 2


def test_a_key_the_issuer_withdraws_stops_working_within_an_hour(
    issuer: Issuer, keys: Keys, clock: Clock, validator: OidcValidator
) -> None:
    token = keys.rsa.sign(claims(issuer, exp=int(NOW) + 7200))
    validator.validate(token)
    issuer.keys = [keys.rotated.jwk()]

    clock.now += 1800
    assert validator.validate(token).username == "ana"
    clock.now += 1801

    assert refused(validator, token).startswith("unknown signing key id 'rsa-1'")


def test_issuer_down_gives_issuer_unavailable(keys: Keys, make_validator: MakeValidator) -> None:
    url = f"http://127.0.0.1:{closed_port()}/realms/radbank"
    validator = make_validator(url)

    with pytest.raises(IssuerUnavailable) as caught:
        validator.validate(keys.rsa.sign({"iss": url, "aud": AUDIENCE}))

    assert str(caught.value).startswith(
        f"cannot fetch the issuer's signing keys from {url}/.well-known/openid-configuration: "
    )


def test_issuer_failing_is_asked_again_after_a_pause_not_on_every_request(
    issuer: Issuer, keys: Keys, clock: Clock, validator: OidcValidator
) -> None:
    issuer.jwks_status = 503
    token = keys.rsa.sign(claims(issuer))

    for _ in range(3):
        with pytest.raises(IssuerUnavailable) as caught:
            validator.validate(token)
        assert str(caught.value) == (
            f"cannot fetch the issuer's signing keys from {issuer.jwks_url}: "
            "HTTP 503 Service Unavailable"
        )
    assert issuer.requests["jwks"] == 1

    issuer.jwks_status = 200
    clock.now += 6
    assert validator.validate(token).username == "ana"


def test_an_issuer_outage_does_not_sign_out_users_whose_keys_are_held(
    issuer: Issuer, keys: Keys, clock: Clock, validator: OidcValidator
) -> None:
    token = keys.rsa.sign(claims(issuer, exp=int(NOW) + 7200))
    validator.validate(token)
    issuer.stop()

    clock.now += 3601  # the key set is due for a refresh, which fails

    assert validator.validate(token).username == "ana"


def test_discovery_naming_another_issuer_gives_issuer_unavailable(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    issuer.discovery_issuer = "https://login.example.org/realms/radbank"

    with pytest.raises(IssuerUnavailable) as caught:
        validator.validate(keys.rsa.sign(claims(issuer)))

    assert "the discovery document names the issuer 'https://login.example.org" in str(caught.value)


def test_a_configured_jwks_url_skips_discovery(
    issuer: Issuer, keys: Keys, make_validator: MakeValidator
) -> None:
    validator = make_validator(issuer.url, jwks_url=issuer.jwks_url)

    assert validator.validate(keys.rsa.sign(claims(issuer))).username == "ana"
    assert issuer.requests == {"jwks": 1}


def test_concurrent_first_requests_fetch_the_key_set_once(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    tokens = [keys.rsa.sign(claims(issuer, preferred_username=f"user{n}")) for n in range(16)]
    start = threading.Barrier(len(tokens))
    names: list[str] = []

    def sign_in(token: str) -> None:
        start.wait()
        names.append(validator.validate(token).username)

    threads = [threading.Thread(target=sign_in, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(names) == sorted(f"user{n}" for n in range(16))
    assert issuer.requests == {"discovery": 1, "jwks": 1}


# Malformed tokens


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", "not a JWT: expected three base64url segments separated by '.', found 1"),
        ("rbk_0123456789abcdef_secret", "found 1"),
        ("eyJhbGciOiJSUzI1NiJ9.e30", "found 2"),
        ("a.b.c.d", "found 4"),
        ("a.b.c.d.e", "encrypted tokens (JWE) are not supported"),
        ("!!!!.e30.c2ln", "not a JWT: a segment is empty or not base64url"),
        (".e30.c2ln", "not a JWT: a segment is empty or not base64url"),
        ("eyJhbGciOiJSUzI1NiJ9.e30.c2ln\u00e9", "characters other than base64url"),
        ("eyJhb.e30.c2ln", "not a JWT: the header is not valid base64url"),
        (f"{b64('hello')}.e30.c2ln", "not a JWT: the header is not JSON"),
        (f"{b64('[' * 5000 + ']' * 5000)}.e30.c2ln", "not a JWT: the header is not JSON"),
        (f"{b64(['alg', 'RS256'])}.e30.c2ln", "not a JWT: the header is not a JSON object"),
        (f"{b64({'typ': 'JWT'})}.e30.c2ln", "not a JWT: the header names no algorithm"),
        (f"{b64({'alg': 'RS256', 'kid': 7})}.e30.c2ln", "key id (kid) must be a string"),
        (f"{b64({'alg': 'RS256', 'crit': ['exp']})}.e30.c2ln", "extension 'crit'"),
    ],
)
def test_malformed_tokens_refused_with_a_clear_message(
    issuer: Issuer, validator: OidcValidator, token: str, expected: str
) -> None:
    assert expected in refused(validator, token)
    assert issuer.requests == {}  # refused before the issuer is asked for anything


def test_a_100_kb_token_is_refused_before_anything_else(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    token = keys.rsa.sign(claims(issuer, padding="x" * 100_000))

    message = refused(validator, token)

    assert message == (
        f"token too large: {len(token)} characters, this node accepts at most 16384 bytes"
    )
    assert issuer.requests == {}


def test_a_signed_payload_that_is_not_a_json_object_refused(
    issuer: Issuer, keys: Keys, validator: OidcValidator
) -> None:
    token = jwt.api_jws.encode(
        b"[1, 2, 3]", keys.rsa.private, algorithm="RS256", headers={"kid": "rsa-1"}
    )

    assert "the payload is not a JSON object" in refused(validator, token)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_token_changed_anywhere_is_accepted_or_refused_never_crashes(
    issuer: Issuer, keys: Keys, validator: OidcValidator, data: st.DataObject
) -> None:
    token = keys.rsa.sign(claims(issuer, roles=["lung-ct-reader"]))
    at = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
    changed = token[:at] + data.draw(st.sampled_from(alphabet)) + token[at + 1 :]

    try:
        identity = validator.validate(changed)
    except InvalidToken as refusal:
        assert changed not in str(refusal)
    else:  # a change in the unused bits of the last base64 character leaves the same bytes
        assert identity.project_roles == {"lung-ct": {"researcher"}}


# Telling JWTs from the node's own API tokens


def test_looks_like_jwt_tells_signed_tokens_from_opaque_ones(issuer: Issuer, keys: Keys) -> None:
    assert looks_like_jwt(keys.rsa.sign(claims(issuer)))
    assert looks_like_jwt(f"{b64({'alg': 'none'})}.{b64(claims(issuer))}.")
    assert not looks_like_jwt("rbk_0123456789abcdef_" + "A" * 43)
    assert not looks_like_jwt("")
    assert not looks_like_jwt("a.b.c")
    assert not looks_like_jwt(f"{b64({'typ': 'JWT'})}.e30.c2ln")
    assert not looks_like_jwt(f"{b64('hello')}.e30.c2ln")


# Configuration


@pytest.mark.parametrize(
    "role",
    [
        "superuser",
        "project:lung-ct:owner",
        "project:Lung CT:steward",
        "project::steward",
        "project:lung-ct",
        "researcher",
    ],
)
def test_role_map_entry_that_is_no_radbank_role_refused_naming_it(role: str) -> None:
    with pytest.raises(ValueError) as caught:
        OidcConfig(issuer="https://login.example.org", audience=AUDIENCE, role_map={"grp": role})

    assert f"role_map entry 'grp' -> {role!r}" in str(caught.value)


@pytest.mark.parametrize(
    ("algorithms", "expected"),
    [
        (("none",), "algorithm 'none' is refused"),
        (("RS256", "HS256"), "algorithm 'HS256' is refused"),
        (("HS512",), "algorithm 'HS512' is refused"),
        (("RS1",), "unknown OpenID Connect algorithm 'RS1'"),
        ((), "must be a non-empty list"),
    ],
)
def test_configuration_listing_unsafe_algorithms_refused(
    algorithms: tuple[str, ...], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        OidcConfig(issuer="https://login.example.org", audience=AUDIENCE, algorithms=algorithms)


def test_issuer_over_plain_http_refused_except_on_loopback() -> None:
    with pytest.raises(ValueError, match="must use https"):
        OidcConfig(issuer="http://login.example.org/realms/research", audience=AUDIENCE)

    assert OidcConfig(issuer="http://localhost:8080/realms/dev", audience=AUDIENCE).leeway_s == 30


def test_the_configuration_cannot_be_changed_through_the_callers_dict() -> None:
    role_map = {"radbank-audit": "auditor"}
    config = OidcConfig(issuer="https://login.example.org", audience=AUDIENCE, role_map=role_map)

    role_map["radbank-audit"] = "admin"

    assert config.role_map == {"radbank-audit": "auditor"}
