"""Project key files: one project's pseudonymisation key outside any node.

A site de-identifies a folder with `radbank deid --key-file K` before anything leaves the
hospital; a node whose project holds the same key (created with `radbank project create
--key-file K`, or exported with `radbank project export-key`) gives the same pseudonyms and
UIDs, so site-side and node-side de-identification link. The file is JSON, mode 0600:

    {"format": "radbank-project-key", "version": 1, "key": "<base64 of 32 bytes>"}
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

FORMAT = "radbank-project-key"
VERSION = 1
KEY_BYTES = 32


class KeyFileError(RuntimeError):
    """The key file is unreadable, malformed or has unsafe permissions; the message says which."""


def read_key_file(path: Path) -> bytes:
    """Return the key held in `path`; refuse files readable by group or others."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise KeyFileError(
            f"key file {path} has mode {mode:o}; it holds a pseudonymisation key and must be "
            f"0600 (run: chmod 600 {path})"
        )
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"format is {data.get('format')!r} version {data.get('version')!r}")
        key = base64.b64decode(data["key"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path} is not a radbank project key file: {exc}") from exc
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path}: the key has {len(key)} bytes, expected {KEY_BYTES}")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Write `key` to a new file `path` (mode 0600); never replaces an existing file."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a project key has {KEY_BYTES} bytes, not {len(key)}")
    payload = json.dumps(
        {"format": FORMAT, "version": VERSION, "key": base64.b64encode(key).decode("ascii")}
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} exists; radbank never overwrites a key file") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from exc
    try:
        os.write(fd, payload.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_key_file(path: Path) -> tuple[bytes, bool]:
    """Return (key, created): read `path`, or create it with a fresh random key."""
    if path.exists():
        return read_key_file(path), False
    key = secrets.token_bytes(KEY_BYTES)
    write_key_file(path, key)
    return key, True
