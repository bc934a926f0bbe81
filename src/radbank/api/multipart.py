"""multipart/related (RFC 2387) for DICOMweb: a streaming reader and a streaming writer.

The reader never holds more than one part (plus one network chunk) in memory, so a
multi-gigabyte STOW-RS request is processed part by part.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message

_MAX_HEADER_BYTES = 16 * 1024


class MultipartError(ValueError):
    """The body is not the multipart/related message its Content-Type announced."""


class PartTooLarge(MultipartError):
    def __init__(self, index: int, limit: int) -> None:
        super().__init__(f"part {index} is larger than the limit of {limit} bytes")
        self.index = index
        self.limit = limit


@dataclass
class Part:
    index: int
    headers: dict[str, str]
    data: bytearray = field(default_factory=bytearray)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Media type (lower case) and its parameters, quotes removed."""
    message = Message()
    message["content-type"] = value
    media_type = message.get_content_type().lower()
    params = {k.lower(): v for k, v in message.get_params(failobj=[])[1:]}
    if not value.strip():
        media_type = ""
    return media_type, params


async def read_parts(
    chunks: AsyncIterator[bytes], boundary: str, *, max_part_bytes: int
) -> AsyncIterator[Part]:
    """Yield the parts of a multipart body arriving as chunks."""
    if not boundary or len(boundary) > 70:
        raise MultipartError("the Content-Type has no valid 'boundary' parameter")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    buffer = bytearray(b"\r\n")  # the first delimiter need not follow a CRLF
    state = "preamble"
    part: Part | None = None
    index = 0
    finished = False
    async for chunk in chunks:
        if finished:
            continue  # epilogue is ignored
        buffer += chunk
        while True:
            if state == "preamble":
                at = buffer.find(delimiter)
                if at < 0:
                    if len(buffer) > _MAX_HEADER_BYTES + len(delimiter):
                        raise MultipartError(
                            f"boundary {boundary!r} announced in the Content-Type does not occur in the body"
                        )
                    break
                del buffer[: at + len(delimiter)]
                state = "after-delimiter"
            if state == "after-delimiter":
                if len(buffer) < 2:
                    break
                if buffer[:2] == b"--":
                    finished = True
                    break
                eol = buffer.find(b"\r\n")
                if eol < 0:
                    if len(buffer) > 1024:
                        raise MultipartError("malformed multipart delimiter line")
                    break
                if buffer[:eol].strip(b" \t"):
                    raise MultipartError("malformed multipart delimiter line")
                del buffer[: eol + 2]
                state = "headers"
            if state == "headers":
                if buffer[:2] == b"\r\n":
                    headers: dict[str, str] = {}
                    del buffer[:2]
                else:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > _MAX_HEADER_BYTES:
                            raise MultipartError(f"headers of part {index + 1} are too long")
                        break
                    headers = _parse_headers(bytes(buffer[:end]), index + 1)
                    del buffer[: end + 4]
                index += 1
                part = Part(index, headers)
                state = "body"
            if state == "body":
                assert part is not None
                at = buffer.find(delimiter)
                if at < 0:
                    keep = len(delimiter) - 1
                    if len(buffer) > keep:
                        take = len(buffer) - keep
                        part.data += buffer[:take]
                        del buffer[:take]
                    if len(part.data) > max_part_bytes:
                        raise PartTooLarge(part.index, max_part_bytes)
                    break
                part.data += buffer[:at]
                del buffer[: at + len(delimiter)]
                if len(part.data) > max_part_bytes:
                    raise PartTooLarge(part.index, max_part_bytes)
                yield part
                part = None
                state = "after-delimiter"
    if not finished:
        if index == 0 and state == "preamble":
            raise MultipartError(
                f"boundary {boundary!r} announced in the Content-Type does not occur in the body"
            )
        raise MultipartError(
            "the multipart body ended before its closing delimiter (truncated upload?)"
        )


def _parse_headers(raw: bytes, index: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"part {index} has a malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def new_boundary() -> str:
    return f"radbank-{uuid.uuid4().hex}"


def write_parts(
    parts: Iterable[tuple[dict[str, str], Iterable[bytes]]], boundary: str
) -> Iterator[bytes]:
    """Stream a multipart/related body: each part is (headers, chunks of its body)."""
    delimiter = f"--{boundary}\r\n".encode()
    for headers, chunks in parts:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        yield delimiter + head.encode("latin-1") + b"\r\n"
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()
