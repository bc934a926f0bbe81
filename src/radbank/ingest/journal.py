"""Write-ahead journal of blob keys, so a crash between blob write and index commit leaves
no orphan blobs: what the journal names but the index does not hold was never acknowledged
and is removed on recovery.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def begin(self, blob_keys: Iterable[str]) -> Path:
        """Durably record the keys about to be written; returns the entry to `end` later."""
        entry = self.directory / f"{uuid.uuid4().hex}.json"
        temp = entry.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, json.dumps(list(blob_keys)).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, entry)
        return entry

    def end(self, entry: Path) -> None:
        entry.unlink(missing_ok=True)

    def entries(self, *, newer_than_s: float | None = None) -> set[Path]:
        """The entries begun and not ended (only those begun in the last newer_than_s
        seconds, when given), without reading them."""
        found = set()
        cutoff = None if newer_than_s is None else time.time() - newer_than_s
        for entry in self.directory.glob("*.json"):
            try:
                if cutoff is None or entry.stat().st_mtime >= cutoff:
                    found.add(entry)
            except FileNotFoundError:  # ended meanwhile
                continue
        return found

    def pending(self) -> Iterator[tuple[Path, list[str]]]:
        """The entries begun and not ended, oldest first, with what they name."""
        for entry in sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                names = json.loads(entry.read_text())
            except (OSError, ValueError):
                names = []
            yield entry, [str(name) for name in names] if isinstance(names, list) else []

    def recover(self, is_referenced: Callable[[str], bool], delete: Callable[[str], None]) -> int:
        """Delete journalled blobs that the index does not reference; returns how many.

        Call only while no ingest runs (before the server starts its workers).
        """
        removed = 0
        for entry in sorted(self.directory.glob("*.tmp")):
            entry.unlink(missing_ok=True)
        for entry in sorted(self.directory.glob("*.json")):
            try:
                keys = json.loads(entry.read_text())
            except ValueError:
                keys = []
            for key in keys:
                if not is_referenced(key):
                    delete(key)
                    removed += 1
            entry.unlink(missing_ok=True)
        return removed
