"""What `radbank deid` wrote, tagged under the project key: the node stores those files as
they are instead of de-identifying them a second time.

Nothing in a de-identified file proves which key made its pseudonyms, and a node that
took a file's word for it ("PatientIdentityRemoved YES") would store whatever claims so.
The site tool therefore lists, in OUT/deid-manifest.txt, one tag per file it writes: an
HMAC-SHA256 under the project key of the file's SHA-256. Only a holder of the key can make
a tag, the tag names the exact bytes, and the list says nothing about the files beyond
that. `radbank import` of a folder holding the manifest computes each file's tag under the
target project's key: a listed file is stored as the site wrote it; any other is an
original and is de-identified as usual.

The tool appends a file's tag, and syncs the manifest, before the file gets its final
name: after a crash, every file under its final name is listed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["MANIFEST_NAME", "append_tags", "file_tag", "read_tags", "tag_of_parts"]

MANIFEST_NAME = "deid-manifest.txt"
_HEADER = (
    "# radbank deid manifest 1: one tag per file written (HMAC-SHA256 under the project key "
    "of the file's SHA-256); radbank import stores the listed files as they are\n"
)
_LABEL = b"radbank deid output\x00"
_TAG_LENGTH = 64


def file_tag(key: bytes, sha256: bytes) -> str:
    """The tag of a file whose SHA-256 digest is `sha256`, under the project `key`."""
    return hmac.digest(key, _LABEL + sha256, "sha256").hex()


def tag_of_parts(key: bytes, parts: Sequence[bytes | memoryview]) -> str:
    """The tag of the file made of `parts` in order (an encoder's output)."""
    checksum = hashlib.sha256()
    for part in parts:
        checksum.update(part)
    return file_tag(key, checksum.digest())


def append_tags(target: Path, tags: Iterable[str]) -> None:
    """Append tags to the manifest in `target` and sync it to disk."""
    lines = "".join(f"{tag}\n" for tag in tags)
    if not lines:
        return
    path = target / MANIFEST_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        if os.fstat(fd).st_size == 0:
            lines = _HEADER + lines
        os.write(fd, lines.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_tags(data: bytes) -> set[str]:
    """The tags of a manifest. A line that is neither a comment nor a tag raises
    ValueError naming it (a torn last line, after a crash, is ignored)."""
    text = data.decode("ascii", errors="replace")
    lines = text.split("\n")
    if lines and not text.endswith("\n"):
        lines.pop()  # cut short while being written: its file was not named yet
    tags: set[str] = set()
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) != _TAG_LENGTH or line.strip("0123456789abcdef"):
            raise ValueError(f"line {number} is not a tag of `radbank deid`")
        tags.add(line)
    return tags
