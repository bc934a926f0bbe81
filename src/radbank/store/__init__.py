"""Blob storage behind one small protocol; backends know nothing of DICOM or the index.

A blob is written durably before anything refers to it: `put` returns only after the
bytes are on disk (temp file, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import BinaryIO, Protocol

from radbank.store.files import Blob, FileStore, InvalidBlobKey

__all__ = ["Blob", "BlobStore", "FileStore", "InvalidBlobKey"]


class BlobStore(Protocol):
    """What the pipeline and the services need of a storage backend."""

    def put(self, key: str, data: Blob) -> None:
        """Store data (bytes, or pieces stored joined) under key atomically and durably;
        replaces an existing blob."""

    def put_many(self, items: Sequence[tuple[str, Blob]]) -> None:
        """Store several blobs; each is durable when this returns."""

    def get(self, key: str) -> bytes:
        """Return the bytes of a blob; FileNotFoundError when absent."""

    def open(self, key: str) -> BinaryIO:
        """Open a blob for streaming reads; FileNotFoundError when absent."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove a blob; absent blobs are not an error."""

    def keys(self) -> Iterator[str]:
        """Every stored key (for `radbank verify`)."""
