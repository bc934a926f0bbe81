"""The node's key file and the project keys it protects.

The key file (mode 0600, outside the database) holds the master key and the admin token
hash. A project key is either derived, HMAC-SHA256(master, the project's random salt), or
held wrapped: AES-GCM under a key derived from the master key, with the project name as
associated data, so a wrapped key cannot be moved to another project. Each project row
names the master key (by key id) that derives or wraps its key. The database alone is not
enough to recompute pseudonyms, and the key file alone does not say which projects exist.

Master key rotation (`rotate_master_key`) wraps every project key under a new master key,
so pseudonyms and UIDs never change. It is crash-safe: the new key file keeps the previous
master key until the database transaction that re-wraps the keys has committed; a rotation
interrupted anywhere is completed by running it again, and nothing becomes unreadable.

    {"format": 1, "master_key": "<base64>", "previous_master_key": "<base64>" (mid-rotation),
     "admin_token_sha256": "<hex>"}
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from radbank.governance.audit import AuditTrail
from radbank.governance.secretfile import check_private
from radbank.index import Index, PendingAudit, Project

_FORMAT_VERSION = 1
MASTER_KEY_BYTES = 32
_WRAP_VERSION = b"\x01"
_NONCE_BYTES = 12


class KeyFileError(RuntimeError):
    """The key file is unreadable, malformed or has unsafe permissions."""


class ProjectKeyError(KeyFileError):
    """A project key cannot be recovered with the master keys of the key file."""


@dataclass(frozen=True)
class KeyRing:
    master_key: bytes
    admin_token_sha256: str | None
    previous_master_key: bytes | None = None
    """Present only while a master key rotation has not finished."""

    @property
    def master_key_id(self) -> str:
        return key_id(self.master_key)

    @property
    def masters(self) -> dict[str, bytes]:
        """Master keys by key id: the current one and, mid-rotation, the previous one."""
        found = {key_id(self.master_key): self.master_key}
        if self.previous_master_key is not None:
            found[key_id(self.previous_master_key)] = self.previous_master_key
        return found

    def project_key(self, key_salt: bytes) -> bytes:
        """The project key derived from key_salt with the current master key."""
        return _derive(self.master_key, key_salt)

    def key_of(self, project: Project) -> bytes:
        """The effective key of `project`: unwrapped, or derived with its master key."""
        if project.key_id is None:
            # Rows from before key ids: derived with the key the node had then, which is
            # the previous master key while a rotation is unfinished.
            master = self.previous_master_key or self.master_key
        else:
            master = self.masters.get(project.key_id)
            if master is None:
                raise ProjectKeyError(
                    f"the key of project {project.name!r} is held under master key id "
                    f"{project.key_id}, but the key file holds {', '.join(self.masters)}; "
                    "restore the key file that belongs to this database"
                )
        if project.wrapped_key is None:
            return _derive(master, project.key_salt)
        return _unwrap(master, project.name, project.wrapped_key)

    def wrap(self, project_name: str, key: bytes) -> tuple[bytes, str]:
        """(wrapped key, master key id): `key` wrapped for `project_name` under the master key."""
        if len(key) != MASTER_KEY_BYTES:
            raise ValueError(f"a project key has {MASTER_KEY_BYTES} bytes, not {len(key)}")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(_wrapping_key(self.master_key)).encrypt(
            nonce, key, _associated_data(project_name)
        )
        return _WRAP_VERSION + nonce + sealed, self.master_key_id

    def is_admin_token(self, token: str) -> bool:
        if not self.admin_token_sha256:
            return False
        return hmac.compare_digest(token_sha256(token), self.admin_token_sha256)


def key_id(master_key: bytes) -> str:
    """A public name of a master key (a keyed digest, so it says nothing about the key)."""
    return hmac.new(master_key, b"radbank master key id", "sha256").hexdigest()[:16]


def _derive(master_key: bytes, key_salt: bytes) -> bytes:
    return hmac.new(master_key, b"radbank project key\x00" + key_salt, "sha256").digest()


def _wrapping_key(master_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"radbank project key wrapping v1"
    ).derive(master_key)


def _associated_data(project_name: str) -> bytes:
    return b"radbank project key\x00" + project_name.encode()


def _unwrap(master_key: bytes, project_name: str, wrapped: bytes) -> bytes:
    if not wrapped.startswith(_WRAP_VERSION) or len(wrapped) <= 1 + _NONCE_BYTES:
        raise ProjectKeyError(f"the wrapped key of project {project_name!r} is malformed")
    nonce, sealed = wrapped[1 : 1 + _NONCE_BYTES], wrapped[1 + _NONCE_BYTES :]
    try:
        return AESGCM(_wrapping_key(master_key)).decrypt(
            nonce, sealed, _associated_data(project_name)
        )
    except InvalidTag:
        raise ProjectKeyError(
            f"the wrapped key of project {project_name!r} does not open with its master key: "
            "the key file or the project row was altered"
        ) from None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "rb_" + secrets.token_urlsafe(32)


class NodeKeys:
    """The key ring of a running node, re-read when the key file was replaced (by `radbank
    keys rotate` or `radbank admin-token --reset` in another process), so long-running
    servers follow a rotation without a restart."""

    def __init__(self, path: Path, ring: KeyRing) -> None:
        self.path = path
        self._ring = ring
        self._stamp = _stamp(path)

    @property
    def ring(self) -> KeyRing:
        stamp = _stamp(self.path)
        if stamp != self._stamp:
            self._ring, self._stamp = _read(self.path), stamp
        return self._ring

    def project_key(self, project: Project) -> bytes:
        return self.ring.key_of(project)

    def is_admin_token(self, token: str) -> bool:
        return self.ring.is_admin_token(token)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


def load_or_create(path: Path, admin_token: str | None = None) -> tuple[KeyRing, str | None]:
    """Load the key file, creating it (mode 0600) on first start.

    Returns the key ring and, only when a token was generated now, that token in clear so
    the caller can show it once. A configured admin token replaces the stored hash.
    """
    generated: str | None = None
    if path.exists():
        ring = _read(path)
        if admin_token is None or ring.is_admin_token(admin_token):
            return ring, None
    with _exclusive(path):
        if path.exists():
            ring = _read(path)
            if admin_token is not None and not ring.is_admin_token(admin_token):
                ring = KeyRing(ring.master_key, token_sha256(admin_token), ring.previous_master_key)
                _write(path, ring)
            return ring, None
        if admin_token is None:
            generated = admin_token = new_token()
        ring = KeyRing(secrets.token_bytes(MASTER_KEY_BYTES), token_sha256(admin_token))
        _write(path, ring)
    return ring, generated


def reset_admin_token(path: Path) -> str:
    """Replace the admin token with a fresh one and return it (shown once)."""
    token = new_token()
    with _exclusive(path):
        ring = _read(path)
        _write(path, KeyRing(ring.master_key, token_sha256(token), ring.previous_master_key))
    return token


@dataclass(frozen=True)
class Rotation:
    """What `rotate_master_key` did."""

    old_key_id: str
    new_key_id: str
    projects: list[str]
    """Projects whose key was (re-)wrapped under the new master key."""
    resumed: bool
    """True when an interrupted rotation was completed instead of starting a new one."""


def rotate_master_key(
    path: Path, index: Index, trail: AuditTrail, *, actor: str, source: str = "local"
) -> Rotation:
    """Replace the master key; every project key is wrapped under the new one.

    1. The key file gets the new master key and keeps the old one as previous (durably).
    2. One database transaction wraps every project key under the new master key (derived
       keys are materialised) and appends the audit record.
    3. Only then the previous master key leaves the key file.
    A crash before 3 leaves both keys in the file: every row opens with one of them, and
    running the rotation again completes it (`resumed`).
    """
    with _exclusive(path):
        ring = _read(path)
        resumed = ring.previous_master_key is not None
        if not resumed:
            ring = KeyRing(
                secrets.token_bytes(MASTER_KEY_BYTES), ring.admin_token_sha256, ring.master_key
            )
            _write(path, ring)
        assert ring.previous_master_key is not None
        old_id, new_id = key_id(ring.previous_master_key), ring.master_key_id

        def rewrap(project: Project) -> tuple[bytes, str] | None:
            if project.key_id == new_id and project.wrapped_key is not None:
                return None
            return ring.wrap(project.name, ring.key_of(project))

        def audit(changed: list[str]) -> PendingAudit:
            return trail.event(
                "keys.rotate",
                actor=actor,
                resource="node",
                source=source,
                detail={
                    "from_key_id": old_id,
                    "to_key_id": new_id,
                    "projects": changed,
                    "resumed": resumed,
                },
            )

        changed = index.rewrap_project_keys(rewrap, audit)
        current = _read(path)
        _write(path, KeyRing(current.master_key, current.admin_token_sha256))
    return Rotation(old_id, new_id, changed, resumed)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One writer of the key file at a time, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(path: Path) -> KeyRing:
    check_private(path, what="key file", holds="holds the node's secrets", error=KeyFileError)
    try:
        data = json.loads(path.read_text())
        previous = data.get("previous_master_key")
        return KeyRing(
            base64.b64decode(data["master_key"]),
            data.get("admin_token_sha256"),
            base64.b64decode(previous) if previous else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a radbank key file: {exc}") from exc


def _write(path: Path, ring: KeyRing) -> None:
    """Replace the key file atomically and durably (temp file, fsync, rename, fsync dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content: dict[str, object] = {
        "format": _FORMAT_VERSION,
        "master_key": base64.b64encode(ring.master_key).decode(),
        "admin_token_sha256": ring.admin_token_sha256,
    }
    if ring.previous_master_key is not None:
        content["previous_master_key"] = base64.b64encode(ring.previous_master_key).decode()
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(content, indent=2).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temp, 0o600)
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
