"""The node's key file: the master secret that project keys derive from, and the admin token hash.

The key file lives outside the database (mode 0600), so a copy of the index alone does not
let anyone recompute pseudonyms. Project keys are HMAC-SHA256(master, salt) where each
project's random salt is stored with the project: the database alone is not enough, and the
key file alone does not say which projects exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

_FORMAT_VERSION = 1


class KeyFileError(RuntimeError):
    """The key file is unreadable, malformed or has unsafe permissions."""


@dataclass(frozen=True)
class KeyRing:
    master_key: bytes
    admin_token_sha256: str | None

    def project_key(self, key_salt: bytes) -> bytes:
        return hmac.new(self.master_key, b"radbank project key\x00" + key_salt, "sha256").digest()

    def is_admin_token(self, token: str) -> bool:
        if not self.admin_token_sha256:
            return False
        return hmac.compare_digest(token_sha256(token), self.admin_token_sha256)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "rb_" + secrets.token_urlsafe(32)


def load_or_create(path: Path, admin_token: str | None = None) -> tuple[KeyRing, str | None]:
    """Load the key file, creating it (mode 0600) on first start.

    Returns the key ring and, only when a token was generated now, that token in clear so
    the caller can show it once. A configured admin token replaces the stored hash.
    """
    generated: str | None = None
    if path.exists():
        ring = _read(path)
        if admin_token is not None and not ring.is_admin_token(admin_token):
            ring = KeyRing(ring.master_key, token_sha256(admin_token))
            _write(path, ring)
        return ring, None
    if admin_token is None:
        generated = admin_token = new_token()
    ring = KeyRing(secrets.token_bytes(32), token_sha256(admin_token))
    _write(path, ring)
    return ring, generated


def reset_admin_token(path: Path) -> str:
    """Replace the admin token with a fresh one and return it (shown once)."""
    ring = _read(path)
    token = new_token()
    _write(path, KeyRing(ring.master_key, token_sha256(token)))
    return token


def _read(path: Path) -> KeyRing:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(
            f"{path} has mode {mode:o}; it holds the node's secrets and must be 0600 "
            f"(run: chmod 600 {path})"
        )
    try:
        data = json.loads(path.read_text())
        return KeyRing(base64.b64decode(data["master_key"]), data.get("admin_token_sha256"))
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a radbank key file: {exc}") from exc


def _write(path: Path, ring: KeyRing) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(
        {
            "format": _FORMAT_VERSION,
            "master_key": base64.b64encode(ring.master_key).decode(),
            "admin_token_sha256": ring.admin_token_sha256,
        },
        indent=2,
    )
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, payload.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temp, 0o600)
    os.replace(temp, path)
