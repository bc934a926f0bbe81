"""The parts of a DICOMweb multipart/related answer, read without radbank's own multipart
code, so tests of what the server sends do not trust the code that writes it."""

from __future__ import annotations

import httpx


def parts(reply: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related answer."""
    _, params = reply.headers["content-type"].split(";", 1)
    boundary = params.split("boundary=")[1].split(";")[0].strip().strip('"')
    found = []
    for chunk in reply.content.split(b"--" + boundary.encode())[1:-1]:
        head, _, body = chunk[2:].partition(b"\r\n\r\n")
        content_type = next(
            line.split(":", 1)[1].strip()
            for line in head.decode("latin-1").split("\r\n")
            if line.lower().startswith("content-type:")
        )
        found.append((content_type, body[:-2]))
    return found
