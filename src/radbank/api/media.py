"""Accept-header negotiation for DICOMweb retrieve (PS3.18 8.7)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import HTTPException

from radbank.api.multipart import parse_content_type
from radbank.dicom.uids import is_valid_uid


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


def _dicom_ranges(accept: str | None) -> list[MediaRange]:
    """`parse_accept` for DICOMweb: 400 for a transfer-syntax parameter that is neither a
    UID nor "*" (PS3.18 8.7.3.5.2), a malformed request, where a UID the server cannot send
    is a request it cannot satisfy (406). An invalid q is HTTP's and ignored (`_quality`);
    ignoring the transfer syntax would send what was not asked for. Every range admitted
    counts, whichever resource is asked for, so all DICOMweb resources answer a header
    alike. An empty value counts as none, as Orthanc takes it."""
    ranges = parse_accept(accept)
    for r in ranges:
        syntax = r.transfer_syntax
        if syntax is not None and syntax != "*" and not is_valid_uid(syntax):
            shown = f"{syntax[:64]!r}{'...' if len(syntax) > 64 else ''}"  # repr: no controls
            raise HTTPException(
                400,
                f"transfer-syntax {shown} in Accept is neither a UID nor '*' (PS3.18 "
                "8.7.3.5.2); name a transfer syntax UID, or * for objects as stored",
            )
    return ranges


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

    Raises 406 naming what can be served when nothing in Accept fits, 400 for a malformed
    transfer syntax (`_dicom_ranges`).
    """
    acceptable = []
    for r in _dicom_ranges(accept):
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
    """406 unless `accept` admits DICOM JSON, the only form `what` is served in; 400 for a
    malformed transfer syntax in it, as for every DICOMweb resource."""
    for r in _dicom_ranges(accept):
        if r.media_type in ("*/*", "application/*", "application/json", "application/dicom+json"):
            return
    raise HTTPException(406, f"{what} is served as application/dicom+json, not {accept!r}")
