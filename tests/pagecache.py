"""What of a file the kernel holds in its page cache, for tests of writers that release it."""

from __future__ import annotations

import ctypes
import mmap
import sys
from pathlib import Path

import pytest

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="page cache release is Linux's posix_fadvise"
)


def resident_pages(path: Path) -> int:
    """Pages of the file held in the page cache (mincore(2) on a private mapping of it)."""
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vector = (ctypes.c_ubyte * pages)()
    mincore = ctypes.CDLL(None, use_errno=True).mincore
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) as mapped,
    ):
        start = ctypes.c_char.from_buffer(mapped)
        try:
            if mincore(ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(size), vector):
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del start  # the mapping cannot close while exported
    return sum(byte & 1 for byte in vector)


def skip_in_memory(path: Path) -> None:
    """Skip where `path` lives in memory (tmpfs): there its pages cannot be released."""
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    resolved = str(path.resolve())
    kind = max(
        (m for m in mounts if resolved == m[1] or resolved.startswith(m[1].rstrip("/") + "/")),
        key=lambda mount: len(mount[1]),
    )[2]
    if kind in {"tmpfs", "ramfs"}:
        pytest.skip(f"{path} is on {kind}: its pages stay in memory")
