"""A Keycloak-like OpenID Connect issuer on loopback for tests: discovery document and JWK
set over real HTTP, tokens signed with real RSA and EC keys."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass(frozen=True)
class Key:
    kid: str
    private: Any
    alg: str

    def jwk(self, **extra: str) -> dict[str, Any]:
        public = self.private.public_key()
        to_jwk = RSAAlgorithm.to_jwk if self.alg.startswith(("RS", "PS")) else ECAlgorithm.to_jwk
        return {
            **to_jwk(public, as_dict=True),
            "kid": self.kid,
            "use": "sig",
            "alg": self.alg,
            **extra,
        }

    def sign(self, claims: dict[str, Any], *, kid: str | None = "", alg: str = "") -> str:
        """kid "" means this key's own id; None leaves the header without one."""
        headers = {} if kid is None else {"kid": kid or self.kid}
        return jwt.encode(claims, self.private, algorithm=alg or self.alg, headers=headers)


@dataclass(frozen=True)
class Keys:
    rsa: Key
    impostor: Key  # another RSA key that claims the id of `rsa`
    rotated: Key
    ec: Key


def make_keys() -> Keys:
    """Fresh keys: RSA, an impostor RSA key with the same id, a rotated RSA key, EC P-256."""

    def rsa_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(
        rsa=Key("rsa-1", rsa_key(), "RS256"),
        impostor=Key("rsa-1", rsa_key(), "RS256"),
        rotated=Key("rsa-2", rsa_key(), "RS256"),
        ec=Key("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256"),
    )


class Issuer:
    """A Keycloak-like issuer: discovery document and JWK set over HTTP on 127.0.0.1,
    counting the requests it answers."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.requests: Counter[str] = Counter()
        self.jwks_status = 200
        self.discovery_issuer: str | None = None
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/realms/radbank/.well-known/openid-configuration":
                    issuer.requests["discovery"] += 1
                    status, document = (
                        200,
                        {
                            "issuer": issuer.discovery_issuer or issuer.url,
                            "jwks_uri": issuer.jwks_url,
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                        },
                    )
                elif self.path == "/realms/radbank/protocol/openid-connect/certs":
                    issuer.requests["jwks"] += 1
                    status, document = issuer.jwks_status, {"keys": list(issuer.keys)}
                else:
                    status, document = 404, {"error": "not found"}
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/realms/radbank"
        self.jwks_url = f"{self.url}/protocol/openid-connect/certs"
        # A short poll so that stopping the issuer after each test takes no noticeable time.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
