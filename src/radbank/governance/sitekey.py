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
import secrets
from pathlib import Path

from radbank.governance.secretfile import create_private_file, read_private_json

FORMAT = "radbank-project-key"
VERSION = 1
KEY_BYTES = 32


class KeyFileError(RuntimeError):
    """The key file is unreadable, malformed or has unsafe permissions; the message says which."""


def read_key_file(path: Path) -> bytes:
    """Return the key held in `path`; refuse files readable by group or others."""
    data = read_private_json(
        path,
        what="project key file",
        holds="holds a pseudonymisation key",
        error=KeyFileError,
        format_name=FORMAT,
        version=VERSION,
    )
    try:
        key = base64.b64decode(data["key"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a radbank project key file: {exc!r}") from exc
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
    create_private_file(path, payload.encode("ascii"), what="key file", error=KeyFileError)


def load_or_create_key_file(path: Path) -> tuple[bytes, bool]:
    """Return (key, created): read `path`, or create it with a fresh random key."""
    if path.exists():
        return read_key_file(path), False
    key = secrets.token_bytes(KEY_BYTES)
    write_key_file(path, key)
    return key, True
