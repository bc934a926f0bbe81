"""The streaming multipart/related reader and writer used by STOW-RS and WADO-RS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from radbank.api.multipart import MultipartError, PartTooLarge, read_parts, write_parts


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _read(body: bytes, boundary: str, size: int, limit: int = 10**9) -> list[tuple[dict, bytes]]:
    async def collect() -> list[tuple[dict, bytes]]:
        return [
            (p.headers, bytes(p.data))
            async for p in read_parts(_chunks(body, size), boundary, max_part_bytes=limit)
        ]

    return asyncio.run(collect())


PAYLOADS = [b"", b"a", b"\r\n--notit\r\n", bytes(range(256)) * 300, b"--b\r\n" * 10]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096, 10**6])
def test_round_trip_at_every_chunk_size(chunk: int) -> None:
    boundary = "b0undary-xyz"
    body = b"".join(
        write_parts(
            [({"Content-Type": "application/dicom"}, iter([p])) for p in PAYLOADS], boundary
        )
    )
    parts = _read(b"preamble text\r\n" + body + b"epilogue", boundary, chunk)
    assert [data for _, data in parts] == PAYLOADS
    assert all(h["content-type"] == "application/dicom" for h, _ in parts)


def test_wrong_boundary_is_reported() -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 100000]))], "real"))
    with pytest.raises(MultipartError, match="does not occur"):
        _read(body, "other", 4096)


def test_truncated_body_is_reported() -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 1000]))], "b"))
    with pytest.raises(MultipartError, match="ended before"):
        _read(body[:-20], "b", 100)


def test_oversize_part_is_refused_while_streaming() -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 5000]))], "b"))
    with pytest.raises(PartTooLarge):
        _read(body, "b", 100, limit=1000)


def test_missing_boundary_parameter() -> None:
    with pytest.raises(MultipartError, match="boundary"):
        _read(b"--x\r\n\r\nabc\r\n--x--", "", 10)
