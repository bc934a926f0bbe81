"""Accept-header negotiation for DICOMweb retrieve (PS3.18 8.7)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import HTTPException

from radbank.api.multipart import parse_content_type


@dataclass(frozen=True)
class MediaRange:
    media_type: str  # e.g. multipart/related, application/dicom+json, */*
    part_type: str | None  # the `type` parameter of multipart/related
    transfer_syntax: str | None
    quality: float


def parse_accept(header: str | None) -> list[MediaRange]:
    if not header or not header.strip():
        return [MediaRange("*/*", None, None, 1.0)]
    ranges: list[MediaRange] = []
    for raw in _split(header):
        media_type, params = parse_content_type(raw)
        if not media_type:
            continue
        quality = _quality(params.get("q"))
        ranges.append(
            MediaRange(
                media_type,
                params.get("type", "").lower() or None,
                params.get("transfer-syntax") or None,
                quality,
            )
        )
    ranges.sort(key=lambda r: -r.quality)
    return [r for r in ranges if r.quality > 0]


# RFC 9110 12.4.2: 0 to 1 with at most three decimals.
_QVALUE = re.compile(r"0(?:\.\d{0,3})?|1(?:\.0{0,3})?")


def _quality(text: str | None) -> float:
    """A media range's q; an invalid one is ignored, as PS3.18 8.7.7 says of invalid
    parameters (the range keeps the default weight 1)."""
    if text is None or not _QVALUE.fullmatch(text.strip()):
        return 1.0
    return float(text)


def _split(header: str) -> list[str]:
    """Split on commas outside quoted strings."""
    parts, current, quoted = [], [], False
    for char in header[:4096]:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def choose_multipart(
    accept: str | None, part_types: tuple[str, ...], available_syntax: str | None = None
) -> tuple[str, str | None]:
    """Pick the part media type and the transfer syntax asked for ('*' = as stored).

    Raises 406 naming what can be served when nothing in Accept fits.
    """
    return acceptable_multipart(accept, part_types)[0]


def acceptable_multipart(
    accept: str | None, part_types: tuple[str, ...]
) -> list[tuple[str, str | None]]:
    """Every (part media type, transfer syntax asked for) in Accept that names one of
    `part_types`, the most preferred first: a server that cannot send the first (an instance
    it cannot convert) sends the next (PS3.18 8.7.8).

    Raises 406 naming what can be served when nothing in Accept fits.
    """
    acceptable = []
    for r in parse_accept(accept):
        if r.media_type in ("*/*", "multipart/*", "multipart/related"):
            part = r.part_type or part_types[0]
            if part in part_types or part == "*/*":
                acceptable.append(((part_types[0] if part == "*/*" else part), r.transfer_syntax))
        elif r.media_type in part_types:
            # A bare single-part type is accepted as the part type of the multipart answer.
            acceptable.append((r.media_type, r.transfer_syntax))
    if not acceptable:
        raise HTTPException(
            406,
            f"cannot answer with any media type in Accept {accept!r}; this resource is served "
            f'as multipart/related; type="{part_types[0]}"',
        )
    return acceptable


def require_json(accept: str | None, what: str = "metadata") -> None:
    """406 unless `accept` admits DICOM JSON, the only form `what` is served in."""
    for r in parse_accept(accept):
        if r.media_type in ("*/*", "application/*", "application/json", "application/dicom+json"):
            return
    raise HTTPException(406, f"{what} is served as application/dicom+json, not {accept!r}")
