"""The streaming multipart/related reader and writer used by STOW-RS and WADO-RS."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from radbank.api import multipart
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


def test_delimiters_split_anywhere_between_chunks() -> None:
    """Parts holding near-delimiters, cut into chunks of random sizes: a delimiter split
    across chunks (or spread over several tiny ones) still ends its part, and only it."""
    boundary = "bnd"
    near = [b"\r", b"\r\n", b"\r\n-", b"\r\n--", b"\r\n--b", b"\r\n--bn", b"--bnd"]
    rng = random.Random(20261129)
    for _ in range(300):
        payloads = [
            b"".join(rng.choice([*near, b"x", bytes([rng.randrange(256)])]) for _ in range(n))
            for n in (rng.randrange(0, 40) for _ in range(rng.randrange(1, 5)))
        ]
        if any(b"\r\n--bnd" in p for p in payloads):
            continue  # a sender's part never holds the delimiter
        body = b"".join(write_parts([({}, iter([p])) for p in payloads], boundary))
        cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randrange(1, 30))))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]

        async def collect(chunks: list[bytes] = chunks) -> list[bytes]:
            async def stream() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            return [p.data async for p in read_parts(stream(), boundary, max_part_bytes=10**6)]

        assert asyncio.run(collect()) == payloads


@pytest.mark.parametrize("chunk", [1, 5, 7, 4096])
def test_a_part_of_exactly_the_limit_is_accepted(chunk: int) -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 1000])), ({}, iter([b"y" * 999]))], "b"))
    assert [len(data) for _, data in _read(body, "b", chunk, limit=1000)] == [1000, 999]
    with pytest.raises(PartTooLarge):
        _read(body, "b", chunk, limit=999)


def test_the_c_librarys_search_finds_what_python_finds() -> None:
    """The body is searched with memmem(3) where the C library has it: same answers as
    bytes.find, first occurrence included, on data full of near-delimiters."""
    rng = random.Random(7)
    needle = b"\r\n--b0undary-1234abcd"
    for _ in range(500):
        data = b"".join(
            rng.choice([needle, needle[:-1], needle[1:], b"\r\n", bytes([rng.randrange(256)])])
            for _ in range(rng.randrange(0, 60))
        )
        assert multipart._find(data, needle) == data.find(needle)
        assert multipart._find(data, b"\r") == data.find(b"\r")


def test_chunks_of_other_buffer_types_are_read() -> None:
    async def collect() -> list[bytes]:
        async def stream() -> AsyncIterator[bytes]:
            body = b"".join(write_parts([({}, iter([b"x" * 300]))], "b"))
            for start in range(0, len(body), 64):
                yield bytearray(body[start : start + 64])  # type: ignore[misc]

        return [p.data async for p in read_parts(stream(), "b", max_part_bytes=1000)]

    assert asyncio.run(collect()) == [b"x" * 300]


def test_wrong_boundary_is_reported() -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 100000]))], "real"))
    with pytest.raises(MultipartError, match="does not occur"):
        _read(body, "other", 4096)


def test_truncated_body_is_reported_naming_the_part() -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 1000])) for _ in range(2)], "b"))
    with pytest.raises(MultipartError, match="ended before .* in part 2"):
        _read(body[:-20], "b", 100)


def test_a_broken_delimiter_line_names_the_part_it_precedes() -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 10])) for _ in range(2)], "b"))
    with pytest.raises(MultipartError, match="delimiter line before part 2"):
        _read(body.replace(b"\r\n--b\r\n", b"\r\n--bogus\r\n"), "b", 100)


def test_oversize_part_is_refused_while_streaming() -> None:
    body = b"".join(write_parts([({}, iter([b"x" * 5000]))], "b"))
    with pytest.raises(PartTooLarge):
        _read(body, "b", 100, limit=1000)


def test_missing_boundary_parameter() -> None:
    with pytest.raises(MultipartError, match="boundary"):
        _read(b"--x\r\n\r\nabc\r\n--x--", "", 10)


def test_an_overlong_boundary_and_an_empty_body_are_named_as_such() -> None:
    with pytest.raises(MultipartError, match="71 characters; RFC 2046 allows at most 70"):
        _read(b"--x\r\n\r\nabc\r\n--x--", "b" * 71, 10)
    with pytest.raises(MultipartError, match="the request body is empty"):
        _read(b"", "b", 10)
