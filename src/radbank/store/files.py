"""Blobs as files under one root directory, written atomically and durably."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

Blob = bytes | Sequence[bytes | memoryview]
"""A blob's bytes, or its pieces in order (an encoder's output, written without joining)."""

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_TEMP_SUFFIX = ".part"


class InvalidBlobKey(ValueError):
    """A key that could escape the store root or is not a plain relative path."""


class FileStore:
    """Blob store on a local file system; keys are relative paths like `p1/ab/cd/<sha>.dcm`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._flushers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync")

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
            raise InvalidBlobKey(f"invalid blob key {key!r}")
        return self.root / key

    def put(self, key: str, data: Blob) -> None:
        self.put_many([(key, data)])

    def put_many(self, items: Sequence[tuple[str, Blob]]) -> None:
        directories: set[Path] = set()
        staged: list[tuple[Path, Path, int]] = []
        try:
            for key, data in items:
                path = self._path(key)
                temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
                for attempt in range(3):
                    directories.update(_make_directories(path.parent))
                    try:
                        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
                        break
                    except FileNotFoundError:
                        # `delete` removed the emptied directory in between: make it again.
                        if attempt == 2:
                            raise
                staged.append((temp, path, fd))
                write_parts(fd, [data] if isinstance(data, bytes) else data)
            # Flushing many files at once lets the device merge the writes.
            list(self._flushers.map(os.fsync, [fd for _, _, fd in staged]))
        except BaseException:
            for temp, _, fd in staged:
                os.close(fd)
                temp.unlink(missing_ok=True)
            raise
        for temp, path, fd in staged:
            release_cached_pages(fd)
            os.close(fd)
            os.replace(temp, path)
            directories.add(path.parent)
        # A rename (or a new directory) is durable only once its directory entry is on disk.
        list(self._flushers.map(_fsync_directory, directories))

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the blob, and the directories it leaves empty: their names (a study's
        UID) must go with the last object of a subject who is erased."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        directory = path.parent
        while directory != self.root:
            try:
                directory.rmdir()
            except OSError:  # not empty (or being filled by a writer): it stays
                break
            directory = directory.parent
        if directory.exists():
            _fsync_directory(directory)

    def keys(self) -> Iterator[str]:
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".") and name.endswith(_TEMP_SUFFIX):
                    continue
                yield Path(dirpath, name).relative_to(self.root).as_posix()

    def remove_temporaries(self) -> int:
        """Delete temp files left by a crash mid-write; they were never acknowledged."""
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".") and name.endswith(_TEMP_SUFFIX):
                    Path(dirpath, name).unlink(missing_ok=True)
                    removed += 1
        return removed


# writev(2) takes at most this many buffers (IOV_MAX on Linux and the BSDs)
_MAX_BUFFERS = 1024


def write_parts(fd: int, parts: Sequence[bytes | memoryview]) -> None:
    """Write a file's parts in one writev(2): the kernel gathers them, so the 0.5 MB of an
    encoded CT slice is not first copied into one buffer by joining them (a fresh 0.5 MB,
    ~0.1-0.2 ms per slice with its page faults). A short write, or more parts than one call
    takes, writes the rest joined."""
    written, total = 0, sum(map(len, parts))
    # writev's total is limited to 2 GiB on some systems (macOS); os.write splits.
    if len(parts) <= _MAX_BUFFERS and total < 2**31 and hasattr(os, "writev"):
        written = os.writev(fd, parts)
        if written == total:
            return
    rest = memoryview(parts[0] if len(parts) == 1 else b"".join(parts))[written:]
    while rest:
        rest = rest[os.write(fd, rest) :]


def release_cached_pages(fd: int) -> None:
    """Let the kernel reuse the page cache holding a file whose data is on disk now.

    Written blobs and de-identified files are not read again soon (a retrieval reads them
    from disk), and the memory their pages hold is what the next ones are written into.
    Left cached, every write takes fresh memory; on virtual machines whose host reclaims
    the guest's free memory (virtio-balloon free page reporting) each fresh page costs a
    fault in the host, and the kernel's copy of written data was the largest single cost
    of ingest there (docs/benchmarks.md: STOW-RS run 21, de-identification run M).
    Released, the next writes reuse the same pages, and a bulk import does not push the
    rest of the machine's cache out (as `dd oflag=nocache`). Only clean pages are dropped:
    call it after the data is synced. A no-op where posix_fadvise is missing.
    """
    if _FADV_DONTNEED is None:
        return
    with contextlib.suppress(OSError):  # advice only: the data is on disk either way
        os.posix_fadvise(fd, 0, 0, _FADV_DONTNEED)


_FADV_DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)


def _make_directories(directory: Path) -> list[Path]:
    """Create directory and missing parents; return the parents whose entries changed."""
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
    return [created.parent for created in missing]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
