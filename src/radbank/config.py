"""Settings: the one configuration object of a node (environment prefix RADBANK_)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a node can be configured with; embedded defaults run on one machine."""

    model_config = SettingsConfigDict(env_prefix="RADBANK_", extra="ignore")

    data_dir: Path = Field(
        default=Path("radbank-data"), description="Where blobs, index and keys live"
    )
    host: str = "127.0.0.1"
    port: int = 8043
    public_url: str | None = Field(
        default=None,
        description="Base URL clients use (behind a reverse proxy), e.g. https://node.example.org",
    )
    workers: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4),
        ge=1,
        le=64,
        description="Worker processes (default: one per core, at most 4)",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in WAL mode in data_dir"
    )
    admin_token: str | None = Field(
        default=None, description="Admin API token for automated deployments; otherwise generated"
    )
    max_request_bytes: int = Field(
        default=8 * 1024**3, description="Largest STOW-RS request body accepted (bytes)"
    )
    max_instance_bytes: int = Field(
        default=2 * 1024**3, description="Largest single DICOM part accepted (bytes)"
    )
    qido_max_limit: int = Field(default=1000, ge=1, description="Upper bound of QIDO-RS limit")
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For "
        "header names the client (audit trail, sign-in throttling)",
    )
    max_json_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest body of a REST (JSON) request"
    )
    node_name: str = Field(
        default_factory=socket.gethostname,
        max_length=255,
        description="This node's name in exported audit events (FHIR AuditEvent, syslog)",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer whose access tokens the node accepts "
        "(e.g. https://keycloak.example.org/realms/research); unset: no OIDC",
    )
    oidc_audience: str = Field(
        default="radbank", description="Audience (aud) the issuer puts in tokens for this node"
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="The issuer's JWKS; default: from its discovery document"
    )
    oidc_username_claim: str = "preferred_username"
    oidc_roles_claim: str = Field(
        default="roles", description="Claim holding roles or groups (dotted: realm_access.roles)"
    )
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict,
        description="Claim value -> radbank role: 'admin', 'auditor' or "
        "'project:<name>:<steward|contributor|researcher|honest_broker>' (JSON in the "
        "environment)",
    )

    rdf_store: str = Field(
        default="",
        description="RDF store: empty for the embedded Oxigraph store in data_dir/rdf, or the "
        "base URL of a SPARQL 1.1 server (e.g. http://127.0.0.1:7878 for Oxigraph: query, "
        "update and graph store endpoints under it)",
    )
    sparql_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest a SPARQL query may run (seconds)"
    )
    max_submission_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest non-DICOM submission (JSON-LD, JSON, CSV) accepted (bytes)",
    )

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'index.sqlite3'}"

    @property
    def blob_dir(self) -> Path:
        return self.resolved_data_dir / "blobs"

    @property
    def key_file(self) -> Path:
        return self.resolved_data_dir / "keys.json"
