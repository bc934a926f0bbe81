"""Files that hold secrets (the node's key file, project key files, vault key files): read
only when no one but the owner can read them, created with mode 0600 and never replaced."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def check_private(path: Path, *, what: str, holds: str, error: type[Exception]) -> None:
    """Raise `error` unless `path` exists with no permission for group or others.

    what: the kind of file ("project key file"); holds: why it matters ("holds a
    pseudonymisation key"), both for the message."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise error(
            f"{what} {path} has mode {mode:o}; it {holds} and must be 0600 (run: chmod 600 {path})"
        )


def read_private_json(
    path: Path, *, what: str, holds: str, error: type[Exception], format_name: str, version: int
) -> dict[str, Any]:
    """The JSON object of a private file of the given format and version, else `error`."""
    check_private(path, what=what, holds=holds, error=error)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("the file holds no JSON object")
        if data.get("format") != format_name or data.get("version") != version:
            raise ValueError(f"format is {data.get('format')!r} version {data.get('version')!r}")
    except (OSError, ValueError) as exc:
        raise error(f"{path} is not a radbank {what}: {exc}") from exc
    return data


def create_private_file(path: Path, payload: bytes, *, what: str, error: type[Exception]) -> None:
    """Write `payload` to the new file `path` with mode 0600, durably; never replaces a file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise error(f"{path} exists; radbank never overwrites a {what}") from exc
    except OSError as exc:
        raise error(f"cannot create {what} {path}: {exc.strerror}") from exc
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
